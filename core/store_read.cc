// Reading the store: records, conflicts and the canonical dump.
#include <algorithm>
#include <array>
#include <set>

#include "carnet/store.h"
#include "core/store_impl.h"

namespace carnet {
Result<Entry> ReadEntry(const sqlite::Statement& st) {
  Entry e;
  e.key.collection = st.Text(0);
  e.key.record = st.Text(1);
  e.key.field = st.Text(2);
  e.key.element = st.Text(3);
  Result<Stamp> stamp = DecodeStamp(st.Text(4));
  if (!stamp.ok()) return Status(StatusCode::kCorruption, "entry stamp: " + stamp.status().message());
  e.key.stamp = std::move(stamp.value());
  e.kind = static_cast<FieldKind>(st.Int(5));
  e.live = st.Int(6) != 0;
  e.value = st.OptionalText(7);
  Result<std::vector<Stamp>> refs = DecodeStampList(st.Text(8));
  if (!refs.ok()) return refs.status();
  e.refs = std::move(refs.value());
  return e;
}

namespace {

// The entries the statement selects (in key order), in clear; those sealed with an erased key
// are left out.
Result<std::vector<Entry>> ReadAll(Store::Impl* impl, sqlite::Statement* st) {
  std::vector<Entry> entries;
  bool sealed_elements = false;
  Status status;
  while (st->Step(&status)) {
    Result<Entry> e = ReadEntry(*st);
    Result<bool> readable = e.ok() ? impl->Unseal(&e.value()) : Result<bool>(e.status());
    if (!readable.ok()) {
      st->Reset();
      return readable.status();
    }
    if (!*readable) continue;
    sealed_elements = sealed_elements ||
                      (e->kind == FieldKind::kSet &&
                       impl->ProtectionOf(e->key.collection, e->key.field) !=
                           Store::Impl::Protection::kClear);
    entries.push_back(std::move(e.value()));
  }
  if (!status.ok()) return status;
  // Sealed set elements sort by their sealed form in the file; in clear, back in key order.
  if (sealed_elements) {
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.key < b.key; });
  }
  return entries;
}

// Whether the collection may be read: the schema's, or a newer app's this store holds.
Status CheckReadable(Store::Impl* impl, const std::string& collection) {
  if (impl->schema_->Find(collection) != nullptr) return Status::Ok();
  if (IsValidName(collection)) {
    Result<sqlite::Statement*> st =
        impl->db_->Prepare("SELECT 1 FROM entries WHERE collection = ? LIMIT 1");
    if (!st.ok()) return st.status();
    (*st)->Bind(1, collection);
    Status status;
    const bool held = (*st)->Step(&status);
    (*st)->Reset();
    CARNET_RETURN_IF_ERROR(status);
    if (held) return Status::Ok();
  }
  return InvalidArgument("unknown collection '" + collection + "'");
}

// Whether the schema knows the field and every element of its set.
bool KnowsElements(const FieldSpec* spec, const std::set<std::string>& elements) {
  return spec != nullptr && std::all_of(elements.begin(), elements.end(), [&](const std::string& e) {
           return IsKnownValue(*spec, e);
         });
}

}  // namespace

Result<std::vector<Entry>> Store::Impl::LoadRecord(const std::string& collection,
                                                   const std::string& record) {
  Result<sqlite::Statement*> st = db_->Prepare(
      std::string(kEntryColumns) + "WHERE collection = ? AND record = ? ORDER BY field, element, stamp");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, collection);
  (*st)->Bind(2, record);
  return ReadAll(this, *st);
}

Result<std::vector<Entry>> Store::Impl::LoadField(const std::string& collection,
                                                  const std::string& record,
                                                  const std::string& field) {
  Result<sqlite::Statement*> st = db_->Prepare(
      std::string(kEntryColumns) +
      "WHERE collection = ? AND record = ? AND field = +? ORDER BY element, stamp");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, collection);
  (*st)->Bind(2, record);
  (*st)->Bind(3, field);
  return ReadAll(this, *st);
}

Result<Record> Store::Impl::BuildRecord(const std::string& collection, const std::string& id,
                                        const std::vector<Entry>& entries, bool* deleted) {
  const CollectionSpec* spec = schema_->Find(collection);
  Record record{collection, id, {}};
  *deleted = false;
  size_t i = 0;
  while (i < entries.size()) {
    const std::string& field = entries[i].key.field;
    size_t end = i;
    while (end < entries.size() && entries[end].key.field == field) ++end;
    std::vector<Entry> live;
    for (size_t k = i; k < end; ++k) {
      if (entries[k].live) live.push_back(entries[k]);
    }
    const FieldSpec* field_spec = spec ? spec->Find(field) : nullptr;
    FieldKind kind = field_spec ? field_spec->kind : entries[i].kind;
    if (field.empty()) {
      *deleted = !live.empty();
    } else if (kind == FieldKind::kRegister) {
      if (!live.empty()) {
        const Entry& winner = RegisterWinner(field_spec, live);
        FieldValue& value = record.fields[field];
        value.kind = kind;
        value.value = winner.value;
        value.stamp = winner.key.stamp;
        value.in_conflict = !RegisterLosers(field_spec, live, winner).empty();
        value.unknown =
            field_spec == nullptr || (winner.value && !IsKnownValue(*field_spec, *winner.value));
      }
    } else if (kind == FieldKind::kSet) {
      std::set<std::string> present;
      for (const Entry& e : live) present.insert(e.key.element);
      if (!present.empty()) {
        FieldValue& value = record.fields[field];
        value.kind = kind;
        value.elements.assign(present.begin(), present.end());
        value.unknown = !KnowsElements(field_spec, present);
      }
    } else {
      FieldValue value;
      value.kind = kind;
      value.unknown = field_spec == nullptr;
      for (size_t k = i; k < end; ++k) {
        const Entry& e = entries[k];
        LogEntry entry{e.key.stamp, e.value.value_or(""), !e.live, std::nullopt};
        if (!e.refs.empty()) entry.revises = e.refs.front();
        value.entries.push_back(std::move(entry));
      }
      std::sort(value.entries.begin(), value.entries.end(),
                [](const LogEntry& a, const LogEntry& b) { return a.stamp < b.stamp; });
      record.fields[field] = std::move(value);
    }
    i = end;
  }
  return record;
}

Result<Record> Store::Get(const std::string& collection, const std::string& id) {
  std::lock_guard<std::recursive_mutex> lock(impl_->mutex_);
  CARNET_RETURN_IF_ERROR(impl_->CheckLease());
  CARNET_RETURN_IF_ERROR(CheckReadable(impl_.get(), collection));
  Result<std::vector<Entry>> entries = impl_->LoadRecord(collection, id);
  if (!entries.ok()) return entries.status();
  if (entries->empty()) return NotFound(collection + " " + id + " does not exist");
  bool deleted = false;
  Result<Record> record = impl_->BuildRecord(collection, id, *entries, &deleted);
  if (record.ok() && deleted) return NotFound(collection + " " + id + " is deleted");
  return record;
}

Result<std::vector<Record>> Store::List(const std::string& collection) {
  std::lock_guard<std::recursive_mutex> lock(impl_->mutex_);
  CARNET_RETURN_IF_ERROR(impl_->CheckLease());
  CARNET_RETURN_IF_ERROR(CheckReadable(impl_.get(), collection));
  Result<sqlite::Statement*> st = impl_->db_->Prepare(
      std::string(kEntryColumns) + "WHERE collection = ? ORDER BY record, field, element, stamp");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, collection);
  Result<std::vector<Entry>> entries = ReadAll(impl_.get(), *st);
  if (!entries.ok()) return entries.status();
  std::vector<Record> records;
  size_t i = 0;
  while (i < entries->size()) {
    size_t end = i;
    while (end < entries->size() && (*entries)[end].key.record == (*entries)[i].key.record) ++end;
    std::vector<Entry> one(entries->begin() + i, entries->begin() + end);
    bool deleted = false;
    Result<Record> record = impl_->BuildRecord(collection, one.front().key.record, one, &deleted);
    if (!record.ok()) return record.status();
    if (!deleted) records.push_back(std::move(record.value()));
    i = end;
  }
  return records;
}

Result<std::vector<Record>> Store::Query(const std::string& collection, const std::string& field,
                                         const std::string& value) {
  const CollectionSpec* spec = impl_->schema_->Find(collection);
  if (spec != nullptr) {
    const FieldSpec* f = spec->Find(field);
    if (f == nullptr || f->kind != FieldKind::kRegister) {
      return InvalidArgument("'" + collection + "." + field + "' is not a register field");
    }
  }
  Result<std::vector<Record>> all = List(collection);
  if (!all.ok()) return all.status();
  std::erase_if(*all, [&](const Record& r) {
    auto it = r.fields.find(field);
    return it == r.fields.end() || it->second.value != value;
  });
  return all;
}

Result<std::vector<Conflict>> Store::Conflicts() {
  std::lock_guard<std::recursive_mutex> lock(impl_->mutex_);
  CARNET_RETURN_IF_ERROR(impl_->CheckLease());
  std::vector<Conflict> conflicts;
  sqlite::Database& db = *impl_->db_;

  std::vector<std::array<std::string, 3>> contested;
  {
    Result<sqlite::Statement*> st = db.Prepare(
        "SELECT collection, record, field FROM entries WHERE kind = 0 AND live = 1 AND field <> '' "
        "GROUP BY collection, record, field HAVING COUNT(*) > 1");
    if (!st.ok()) return st.status();
    Status status;
    while ((*st)->Step(&status)) contested.push_back({(*st)->Text(0), (*st)->Text(1), (*st)->Text(2)});
    if (!status.ok()) return status;
  }
  for (const auto& [collection, record, field] : contested) {
    Result<std::vector<Entry>> entries = impl_->LoadField(collection, record, field);
    if (!entries.ok()) return entries.status();
    std::erase_if(*entries, [](const Entry& e) { return !e.live; });
    if (entries->size() < 2) continue;  // the others were sealed with an erased key
    const CollectionSpec* spec = impl_->schema_->Find(collection);
    const FieldSpec* field_spec = spec ? spec->Find(field) : nullptr;
    const Entry& winner = RegisterWinner(field_spec, *entries);
    for (const Entry* loser : RegisterLosers(field_spec, *entries, winner)) {
      conflicts.push_back(Conflict{ConflictKind::kConcurrentWrite, collection, record, field,
                                   winner.value, winner.key.stamp, loser->value, loser->key.stamp});
    }
  }

  std::vector<std::pair<std::string, std::string>> deleted;
  {
    Result<sqlite::Statement*> st = db.Prepare(
        "SELECT DISTINCT collection, record FROM entries WHERE field = '' AND live = 1 "
        "ORDER BY collection, record");
    if (!st.ok()) return st.status();
    Status status;
    while ((*st)->Step(&status)) deleted.emplace_back((*st)->Text(0), (*st)->Text(1));
    if (!status.ok()) return status;
  }
  for (const auto& [collection, record] : deleted) {
    Result<std::vector<Entry>> entries = impl_->LoadRecord(collection, record);
    if (!entries.ok()) return entries.status();
    std::vector<const Entry*> tombstones;
    for (const Entry& e : *entries) {
      if (e.key.field.empty() && e.live) tombstones.push_back(&e);
    }
    const Entry* newest = *std::max_element(
        tombstones.begin(), tombstones.end(),
        [](const Entry* a, const Entry* b) { return a->key.stamp < b->key.stamp; });
    for (const Entry& e : *entries) {
      if (e.key.field.empty() || !e.live) continue;
      bool seen = std::any_of(tombstones.begin(), tombstones.end(), [&](const Entry* t) {
        return DeleteHadSeen(t->refs, e.key.stamp);
      });
      if (seen) continue;
      std::optional<std::string> edit = e.kind == FieldKind::kSet ? e.key.element : e.value;
      conflicts.push_back(Conflict{ConflictKind::kEditedWhileDeleted, collection, record,
                                   e.key.field, std::nullopt, newest->key.stamp, edit,
                                   e.key.stamp});
    }
  }
  return conflicts;
}

Result<std::string> Store::CanonicalDump(bool live_only) {
  std::lock_guard<std::recursive_mutex> lock(impl_->mutex_);
  CARNET_RETURN_IF_ERROR(impl_->CheckLease());
  Result<sqlite::Statement*> st = impl_->db_->Prepare(
      std::string(kEntryColumns) + "ORDER BY collection, record, field, element, stamp");
  if (!st.ok()) return st.status();
  std::string dump;
  if (!impl_->encrypted_) {
    Status status;
    while ((*st)->Step(&status)) {
      Result<Entry> e = ReadEntry(**st);
      if (!e.ok()) {
        (*st)->Reset();
        return e.status();
      }
      if (live_only && !e->live) continue;
      dump += CanonicalLine(*e);
    }
    if (!status.ok()) return status;
    return dump;
  }
  Result<std::vector<Entry>> entries = ReadAll(impl_.get(), *st);
  if (!entries.ok()) return entries.status();
  for (const Entry& e : *entries) {
    if (live_only && !e.live) continue;
    dump += CanonicalLine(e);
  }
  return dump;
}

}  // namespace carnet
