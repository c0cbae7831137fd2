// What the sync client needs beyond operations: merging pulled entry states and forgetting
// records that left this device's scope.
#include <algorithm>
#include <set>

#include "carnet/store.h"
#include "core/store_erase.h"
#include "core/store_impl.h"

namespace carnet {
namespace {

// Binds an entry's key to parameters 1 to 5 (collection, record, field, element, stamp).
void BindKey(sqlite::Statement* s, const EntryKey& key) {
  s->Bind(1, key.collection);
  s->Bind(2, key.record);
  s->Bind(3, key.field);
  s->Bind(4, key.element);
  s->BindBlob(5, EncodeStamp(key.stamp));
}

}  // namespace

Result<std::optional<Entry>> Store::Impl::FindEntry(const EntryKey& key) {
  // "field = +?": see LoadHeads in store_local.cc (a bare parameter re-prepares the statement).
  Result<sqlite::Statement*> st = db_->Prepare(
      "SELECT kind, live FROM entries WHERE collection = ? AND record = ? AND field = +? AND "
      "element = ? AND stamp = ?");
  if (!st.ok()) return st.status();
  sqlite::Statement* s = *st;
  BindKey(s, key);
  Status status;
  std::optional<Entry> found;
  // Merging needs only whether the entry exists and lives: an entry's content never changes.
  if (s->Step(&status)) found = Entry{key, static_cast<FieldKind>(s->Int(0)), s->Int(1) != 0, {}, {}};
  s->Reset();
  if (!status.ok()) return status;
  return found;
}

namespace {

void BindEntry(sqlite::Statement* s, const Entry& e) {
  BindKey(s, e.key);
  s->Bind(6, static_cast<int64_t>(e.kind));
  s->Bind(7, int64_t{e.live});
  if (e.value) {
    s->BindBlob(8, *e.value);
  } else {
    s->BindNull(8);
  }
  if (e.refs.empty()) {
    s->BindNull(9);
  } else {
    s->BindBlob(9, EncodeStampList(e.refs));
  }
}

}  // namespace

Status Store::Impl::PutEntry(const Entry& e) {
  Result<sqlite::Statement*> st =
      db_->Prepare("INSERT OR REPLACE INTO entries VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!st.ok()) return st.status();
  BindEntry(*st, e);
  return (*st)->Run();
}

Status Store::Impl::DeleteEntry(const EntryKey& key) {
  Result<sqlite::Statement*> st = db_->Prepare(
      "DELETE FROM entries WHERE collection = ? AND record = ? AND field = +? AND element = ? AND "
      "stamp = ?");
  if (!st.ok()) return st.status();
  BindKey(*st, key);
  return (*st)->Run();
}

Result<bool> Store::Impl::InsertEntryIfAbsent(const Entry& e) {
  Result<sqlite::Statement*> st = db_->Prepare(
      "INSERT INTO entries VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING");
  if (!st.ok()) return st.status();
  BindEntry(*st, e);
  CARNET_RETURN_IF_ERROR((*st)->Run());
  return db_->Changes() > 0;
}

void Store::Impl::NoteChange(Change change) {
  if (!pending_changes_.empty()) {
    const Change& last = pending_changes_.back();
    if (last.collection == change.collection && last.record == change.record &&
        last.field == change.field && last.remote == change.remote) {
      return;
    }
  }
  pending_changes_.push_back(std::move(change));
}

Result<std::vector<std::pair<std::string, std::string>>> Store::Impl::RecordsToForget(
    const std::string& collection, const std::string& id) {
  std::vector<std::pair<std::string, std::string>> records = {{collection, id}};
  if (collection != "participants") return records;
  for (const CollectionSpec& c : schema_->collections()) {
    if (c.participant_field.empty()) continue;
    std::vector<std::string> candidates;
    {
      Result<sqlite::Statement*> st = db_->Prepare(
          "SELECT DISTINCT record FROM entries WHERE collection = ? AND field = +? AND "
          "live = 1 AND value = CAST(? AS BLOB)");
      if (!st.ok()) return st.status();
      (*st)->Bind(1, c.name);
      (*st)->Bind(2, c.participant_field);
      (*st)->Bind(3, id);
      Status status;
      while ((*st)->Step(&status)) candidates.push_back((*st)->Text(0));
      if (!status.ok()) return status;
    }
    // A record goes with the participant its field names: the winning value, as on the server.
    // A losing head naming this participant (a conflict kept for review) does not take it along.
    const FieldSpec* field = c.Find(c.participant_field);
    for (const std::string& record : candidates) {
      Result<std::vector<Entry>> heads = LoadField(c.name, record, c.participant_field);
      if (!heads.ok()) return heads.status();
      std::erase_if(*heads, [](const Entry& e) { return !e.live; });
      if (!heads->empty() && RegisterWinner(field, *heads).value == id) {
        records.emplace_back(c.name, record);
      }
    }
  }
  return records;
}

Status Store::Impl::ForgetRecords(const std::string& collection, const std::string& id) {
  Result<std::vector<std::pair<std::string, std::string>>> records = RecordsToForget(collection, id);
  if (!records.ok()) return records.status();
  for (const auto& [c, r] : *records) {
    Result<sqlite::Statement*> pending =
        db_->Prepare("SELECT 1 FROM outbox WHERE collection = ? AND record = ? LIMIT 1");
    if (!pending.ok()) return pending.status();
    (*pending)->Bind(1, c);
    (*pending)->Bind(2, r);
    Status status;
    bool has_pending = (*pending)->Step(&status);
    (*pending)->Reset();
    CARNET_RETURN_IF_ERROR(status);
    if (has_pending) {
      return FailedPrecondition(c + " " + r + " has changes not yet pushed: push before forgetting");
    }
    Result<sqlite::Statement*> erase =
        db_->Prepare("DELETE FROM entries WHERE collection = ? AND record = ?");
    if (!erase.ok()) return erase.status();
    (*erase)->Bind(1, c);
    (*erase)->Bind(2, r);
    CARNET_RETURN_IF_ERROR((*erase)->Run());
    NoteChange(Change{c, r, "", true});
  }
  return Status::Ok();
}

Result<ApplyStats> Store::ApplyPulled(
    const std::vector<Entry>& entries,
    const std::vector<std::pair<std::string, std::string>>& forget,
    const std::vector<std::pair<std::string, std::string>>& sync_state,
    const std::vector<Erasure>& erase) {
  std::unique_lock<std::recursive_mutex> lock(impl_->mutex_);
  Hlc newest = 0;
  for (const Entry& e : entries) {
    CARNET_RETURN_IF_ERROR(ValidateEntry(*impl_->schema_, e));
    CARNET_RETURN_IF_ERROR(impl_->clock_.CheckSkew(e.key.stamp.hlc));
    newest = std::max(newest, e.key.stamp.hlc);
  }
  for (const auto& [collection, id] : forget) {
    // A collection the schema does not know is a newer app's, which this replica keeps too.
    if (!IsValidName(collection) || !IsValidRecordId(id)) {
      return InvalidArgument("cannot forget " + collection + " " + id + ": not a record");
    }
  }
  for (const Erasure& e : erase) CARNET_RETURN_IF_ERROR(ValidateErasure(e));
  for (const Erasure& e : erase) CARNET_RETURN_IF_ERROR(EraseKeyBeforeErasure(*impl_, e));
  CARNET_RETURN_IF_ERROR(impl_->BeginTransaction());
  ApplyStats stats;
  Status status = [&]() -> Status {
    // In key order: a batch arrives in the server's order, scattered over the table's B-tree;
    // sorted, its inserts walk the tree once. Merging is commutative, so the order is free.
    std::vector<const Entry*> in_key_order;
    in_key_order.reserve(entries.size());
    for (const Entry& e : entries) in_key_order.push_back(&e);
    std::sort(in_key_order.begin(), in_key_order.end(),
              [](const Entry* a, const Entry* b) { return a->key < b->key; });
    if (impl_->encrypted_) {
      // Participant fields first, so that the health values of a record arriving with its
      // participant are sealed with that participant's key (core/ENCRYPTION.md).
      std::stable_partition(in_key_order.begin(), in_key_order.end(), [&](const Entry* e) {
        const CollectionSpec* c = impl_->schema_->Find(e->key.collection);
        return c != nullptr && !c->participant_field.empty() &&
               e->key.field == c->participant_field;
      });
    }
    Entry sealed;
    for (const Entry* entry : in_key_order) {
      if (impl_->ProtectionOf(entry->key.collection, entry->key.field) !=
          Impl::Protection::kClear) {
        sealed = *entry;
        CARNET_RETURN_IF_ERROR(impl_->Seal(&sealed));
        entry = &sealed;
      }
      const Entry& e = *entry;
      // Most pulled entries are new here (a first pull, a colleague's day): one insert settles
      // them. Only an entry already present needs reading and merging.
      Result<bool> inserted = impl_->InsertEntryIfAbsent(*MergeEntry(e, nullptr));
      if (!inserted.ok()) return inserted.status();
      if (!*inserted) {
        Result<std::optional<Entry>> existing = impl_->FindEntry(e.key);
        if (!existing.ok()) return existing.status();
        std::optional<Entry> merged = MergeEntry(e, existing->has_value() ? &**existing : nullptr);
        if (!merged) {
          ++stats.duplicates;
          continue;
        }
        CARNET_RETURN_IF_ERROR(impl_->PutEntry(*merged));
      }
      ++stats.applied;
      impl_->NoteChange(Change{e.key.collection, e.key.record, e.key.field, true});
    }
    for (const auto& [collection, id] : forget) {
      CARNET_RETURN_IF_ERROR(impl_->ForgetRecords(collection, id));
    }
    for (const Erasure& e : erase) CARNET_RETURN_IF_ERROR(EraseFromReplica(*impl_, e).status());
    for (const auto& [key, value] : sync_state) {
      Result<sqlite::Statement*> put =
          impl_->db_->Prepare("INSERT OR REPLACE INTO sync_state VALUES(?, ?)");
      if (!put.ok()) return put.status();
      (*put)->Bind(1, key);
      (*put)->Bind(2, value);
      CARNET_RETURN_IF_ERROR((*put)->Run());
    }
    return Status::Ok();
  }();
  if (!status.ok()) {
    impl_->RollbackTransaction();
    return status;
  }
  if (newest != 0) (void)impl_->clock_.Observe(newest);  // checked above, cannot be refused
  std::vector<Change> changes;
  CARNET_RETURN_IF_ERROR(impl_->CommitTransaction(&changes));
  if (!erase.empty()) ScrubAfterErasure(*impl_);
  lock.unlock();
  impl_->Notify(changes);
  return stats;
}

Status Store::Forget(const std::string& collection, const std::string& id) {
  std::unique_lock<std::recursive_mutex> lock(impl_->mutex_);
  if (impl_->schema_->Find(collection) == nullptr) {
    return InvalidArgument("unknown collection '" + collection + "'");
  }
  // Not through Begin: forgetting is sync's, which the offline lease does not stop.
  CARNET_RETURN_IF_ERROR(impl_->BeginTransaction());
  Status status = impl_->ForgetRecords(collection, id);
  std::vector<Change> changes;
  if (status.ok()) {
    status = impl_->CommitTransaction(&changes);
  } else {
    impl_->RollbackTransaction();
  }
  CARNET_RETURN_IF_ERROR(status);
  lock.unlock();
  impl_->Notify(changes);
  return Status::Ok();
}

}  // namespace carnet
