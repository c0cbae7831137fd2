// Local changes: what a transaction checks before it turns a call into an operation.
#include <algorithm>
#include <map>

#include "carnet/store.h"
#include "core/store_impl.h"

namespace carnet {
namespace {

struct Target {
  const CollectionSpec* collection = nullptr;
  const FieldSpec* field = nullptr;
};

Result<Target> Resolve(const Schema& schema, const std::string& collection, const std::string& id,
                       const std::string& field, std::optional<FieldKind> kind) {
  Target t;
  t.collection = schema.Find(collection);
  if (t.collection == nullptr) return InvalidArgument("unknown collection '" + collection + "'");
  if (!IsValidRecordId(id)) {
    return InvalidArgument("invalid record id '" + id.substr(0, 100) +
                           "': 1 to 96 characters among A-Z a-z 0-9 . _ : -");
  }
  if (!kind) return t;
  t.field = t.collection->Find(field);
  if (t.field == nullptr) {
    return InvalidArgument("unknown field '" + field + "' in collection '" + collection + "'");
  }
  if (t.field->kind != *kind) {
    return InvalidArgument("field '" + collection + "." + field + "' is a " +
                           FieldKindName(t.field->kind) + ", not a " + FieldKindName(*kind));
  }
  return t;
}

// Whether the live heads of a collection's freeze field put the record past its freeze point.
bool IsFrozen(const CollectionSpec& collection, const std::vector<Entry>& freeze_heads) {
  if (collection.freeze_field.empty() || freeze_heads.empty()) return false;
  const FieldSpec* freeze = collection.Find(collection.freeze_field);
  return ValueRank(*freeze, RegisterWinner(freeze, freeze_heads).value) >=
         static_cast<int>(collection.freeze_rank);
}

Status FrozenError(const std::string& collection, const std::string& id) {
  return FailedPrecondition(collection + " " + id +
                            " is validated and frozen: record a correction as a new record");
}

std::vector<Entry> LiveOnly(std::vector<Entry> entries) {
  std::erase_if(entries, [](const Entry& e) { return !e.live; });
  return entries;
}

}  // namespace

// Checks that hold for every local change to an existing field of a record.
class LocalChange {
 public:
  LocalChange(Store::Impl* impl, const std::string& collection, const std::string& id,
              const std::string& field, FieldKind kind)
      : impl_(impl), collection_(collection), id_(id), field_(field), kind_(kind) {}

  Status Check() {
    Result<Target> target = Resolve(*impl_->schema_, collection_, id_, field_, kind_);
    if (!target.ok()) return target.status();
    target_ = *target;
    // Only the rows the checks and the change read, never the whole record: a record's history
    // (dead entries, every log text) grows with each edit.
    Result<bool> deleted = IsDeleted();
    if (!deleted.ok()) return deleted.status();
    if (*deleted) {
      return FailedPrecondition(collection_ + " " + id_ +
                                " is deleted: restore it before changing it");
    }
    const CollectionSpec& c = *target_.collection;
    if (!c.freeze_field.empty() && field_ != c.freeze_field) {
      CARNET_RETURN_IF_ERROR(LoadHeads(c.freeze_field));
      if (IsFrozen(c, Heads(c.freeze_field))) return FrozenError(collection_, id_);
    }
    return LoadHeads(field_);
  }

  // The live entries of the changed field, or of the freeze field, in (element, stamp) order;
  // register values only (log texts are never read to change a log), refs never.
  std::vector<Entry> Heads(const std::string& field) const {
    auto it = heads_.find(field);
    return it == heads_.end() ? std::vector<Entry>() : it->second;
  }

  const FieldSpec& field() const { return *target_.field; }

 private:
  Store::Impl* impl_;
  std::string collection_, id_, field_;
  FieldKind kind_;
  Target target_;
  std::map<std::string, std::vector<Entry>> heads_;

  Result<bool> IsDeleted() {
    // Literal "field = ''" so that SQLite answers from the partial index of live tombstones.
    Result<sqlite::Statement*> st = impl_->db_->Query(
        "SELECT 1 FROM entries WHERE collection = ? AND record = ? AND field = '' AND live = 1 "
        "LIMIT 1",
        collection_, id_);
    if (!st.ok()) return st.status();
    Status status;
    bool deleted = (*st)->Step(&status);
    (*st)->Reset();
    if (!status.ok()) return status;
    return deleted;
  }

  Status LoadHeads(const std::string& field) {
    // "field = +?": a bare parameter would be matched against the partial index's "field = ''"
    // by its bound value, making SQLite re-prepare the statement at each new field.
    Result<sqlite::Statement*> st = impl_->db_->Query(
        "SELECT element, stamp, kind, CASE WHEN kind = ? THEN value END FROM entries "
        "WHERE collection = ? AND record = ? AND field = +? AND live = 1 ORDER BY element, stamp",
        static_cast<int64_t>(FieldKind::kRegister), collection_, id_, field);
    if (!st.ok()) return st.status();
    sqlite::Statement* s = *st;
    std::vector<Entry>& heads = heads_[field];
    Status status;
    while (s->Step(&status)) {
      Result<Stamp> stamp = DecodeStamp(s->Text(1));
      if (!stamp.ok()) {
        s->Reset();
        return Status(StatusCode::kCorruption, "entry stamp: " + stamp.status().message());
      }
      EntryKey key{collection_, id_, field, s->Text(0), std::move(stamp.value())};
      heads.push_back(
          Entry{std::move(key), static_cast<FieldKind>(s->Int(2)), true, s->OptionalText(3), {}});
    }
    CARNET_RETURN_IF_ERROR(status);
    // Values and elements in clear: a write compares them with its own (the same value is no
    // conflict), a remove finds its element. Those sealed with an erased key are absent.
    for (size_t i = 0; i < heads.size();) {
      Result<bool> readable = impl_->Unseal(&heads[i]);
      if (!readable.ok()) return readable.status();
      if (*readable) {
        ++i;
      } else {
        heads.erase(heads.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
    return Status::Ok();
  }
};

namespace {

Operation NewOp(OpKind kind, const std::string& collection, const std::string& id,
                const std::string& field) {
  Operation op;
  op.kind = kind;
  op.collection = collection;
  op.record = id;
  op.field = field;
  return op;
}

Status LocalWrite(Store::Impl* impl, const std::string& collection, const std::string& id,
                  const std::string& field, std::optional<std::string> value, bool resolving) {
  LocalChange change(impl, collection, id, field, FieldKind::kRegister);
  CARNET_RETURN_IF_ERROR(change.Check());
  const FieldSpec& spec = change.field();
  if (value) CARNET_RETURN_IF_ERROR(ValidateValue(spec, *value));
  std::vector<Entry> heads = change.Heads(field);
  Operation op = NewOp(OpKind::kWrite, collection, id, field);
  op.value = std::move(value);
  if (heads.empty()) {
    if (resolving) return FailedPrecondition("no conflict on " + collection + " " + id + " " + field);
    return impl->ApplyLocal(std::move(op));
  }
  const Entry& winner = RegisterWinner(&spec, heads);
  std::vector<const Entry*> losers = RegisterLosers(&spec, heads, winner);
  if (resolving && losers.empty()) {
    return FailedPrecondition("no conflict on " + collection + " " + id + " " + field);
  }
  // A resolution settles a conflict, it does not step back: the same rule as a plain write.
  if (spec.forward_only && ValueRank(spec, op.value) < ValueRank(spec, winner.value)) {
    return FailedPrecondition(collection + "." + field + " only moves forward: it is '" +
                              winner.value.value_or("") + "' already");
  }
  // The write replaces what its writer sees as the value: the winner, and the heads that are not
  // conflicts (the same value, a state the field moved past). A plain write leaves the real
  // losers kept for review until someone resolves them; a resolution ends them too.
  std::vector<const Entry*> kept = resolving ? std::vector<const Entry*>() : losers;
  for (const Entry& head : heads) {
    if (std::find(kept.begin(), kept.end(), &head) == kept.end()) op.refs.push_back(head.key.stamp);
  }
  return impl->ApplyLocal(std::move(op));
}

}  // namespace

Transaction::Transaction(Store* store) : store_(store) {}

Transaction::Transaction(Transaction&& other) noexcept
    : store_(other.store_), open_(other.open_) {
  other.open_ = false;
}

Transaction::~Transaction() {
  if (!open_) return;
  store_->impl_->RollbackTransaction();
  store_->impl_->mutex_.unlock();
}

Status Transaction::Commit() {
  if (!open_) return FailedPrecondition("transaction already ended");
  open_ = false;
  std::vector<Change> changes;
  Status status = store_->impl_->CommitTransaction(&changes);
  store_->impl_->mutex_.unlock();
  if (status.ok()) store_->impl_->Notify(changes);
  return status;
}

namespace {

// Runs one call of a transaction inside a savepoint, so that a failed call leaves nothing behind
// and the calls before it can still commit.
template <typename Fn>
Status Guarded(bool open, Store::Impl* impl, Fn fn) {
  if (!open) return FailedPrecondition("transaction already ended");
  CARNET_RETURN_IF_ERROR(impl->Savepoint());
  Status status = fn();
  Status released = impl->ReleaseSavepoint(status.ok());
  return status.ok() ? released : status;
}

}  // namespace

Status Transaction::Put(
    const std::string& collection, const std::string& id,
    const std::vector<std::pair<std::string, std::optional<std::string>>>& fields) {
  return Guarded(open_, store_->impl_.get(), [&] {
    // The freeze field goes last, so that a record can be completed and validated in one Put:
    // the other fields are checked against the state before it.
    const CollectionSpec* spec = store_->impl_->schema_->Find(collection);
    auto ordered = fields;
    if (spec != nullptr && !spec->freeze_field.empty()) {
      std::stable_partition(ordered.begin(), ordered.end(),
                            [&](const auto& field) { return field.first != spec->freeze_field; });
    }
    // The participant goes first, so that the record's health values are sealed with the key
    // of the participant it names (core/ENCRYPTION.md).
    if (spec != nullptr && !spec->participant_field.empty()) {
      std::stable_partition(ordered.begin(), ordered.end(), [&](const auto& field) {
        return field.first == spec->participant_field;
      });
    }
    for (const auto& [field, value] : ordered) {
      CARNET_RETURN_IF_ERROR(LocalWrite(store_->impl_.get(), collection, id, field, value, false));
    }
    return Status::Ok();
  });
}

Status Transaction::Set(const std::string& collection, const std::string& id,
                        const std::string& field, std::optional<std::string> value) {
  return Guarded(open_, store_->impl_.get(), [&] {
    return LocalWrite(store_->impl_.get(), collection, id, field, std::move(value), false);
  });
}

Status Transaction::Resolve(const std::string& collection, const std::string& id,
                            const std::string& field, std::optional<std::string> value) {
  return Guarded(open_, store_->impl_.get(), [&] {
    return LocalWrite(store_->impl_.get(), collection, id, field, std::move(value), true);
  });
}

Status Transaction::Add(const std::string& collection, const std::string& id,
                        const std::string& field, const std::string& element) {
  return Guarded(open_, store_->impl_.get(), [&] {
    LocalChange change(store_->impl_.get(), collection, id, field, FieldKind::kSet);
    CARNET_RETURN_IF_ERROR(change.Check());
    CARNET_RETURN_IF_ERROR(ValidateValue(change.field(), element));
    Operation op = NewOp(OpKind::kAdd, collection, id, field);
    op.element = element;
    return store_->impl_->ApplyLocal(std::move(op));
  });
}

Status Transaction::Remove(const std::string& collection, const std::string& id,
                           const std::string& field, const std::string& element) {
  return Guarded(open_, store_->impl_.get(), [&] {
    LocalChange change(store_->impl_.get(), collection, id, field, FieldKind::kSet);
    CARNET_RETURN_IF_ERROR(change.Check());
    Operation op = NewOp(OpKind::kRemove, collection, id, field);
    op.element = element;
    for (const Entry& tag : change.Heads(field)) {
      if (tag.key.element == element) op.refs.push_back(tag.key.stamp);
    }
    if (op.refs.empty()) {
      return NotFound("'" + element + "' is not in " + collection + " " + id + " " + field);
    }
    return store_->impl_->ApplyLocal(std::move(op));
  });
}

Result<Stamp> Transaction::Append(const std::string& collection, const std::string& id,
                                  const std::string& field, const std::string& text,
                                  std::optional<Stamp> revises) {
  Stamp stamp;
  Status status = Guarded(open_, store_->impl_.get(), [&] {
    LocalChange change(store_->impl_.get(), collection, id, field, FieldKind::kLog);
    CARNET_RETURN_IF_ERROR(change.Check());
    FieldSpec as_text = change.field();
    as_text.type = FieldType::kText;
    CARNET_RETURN_IF_ERROR(ValidateValue(as_text, text));
    Operation op = NewOp(OpKind::kAppend, collection, id, field);
    op.value = text;
    if (revises) {
      std::vector<Entry> live = change.Heads(field);
      if (std::none_of(live.begin(), live.end(),
                       [&](const Entry& e) { return e.key.stamp == *revises; })) {
        return NotFound("no entry " + StampToString(*revises) + " to revise in " + collection +
                        " " + id + " " + field);
      }
      op.refs.push_back(*revises);
    }
    CARNET_RETURN_IF_ERROR(store_->impl_->ApplyLocal(op));
    stamp = Stamp{store_->impl_->clock_.Last(), store_->impl_->options_.device_id};
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return stamp;
}

Status Transaction::Redact(const std::string& collection, const std::string& id,
                           const std::string& field, const Stamp& entry) {
  return Guarded(open_, store_->impl_.get(), [&] {
    LocalChange change(store_->impl_.get(), collection, id, field, FieldKind::kLog);
    CARNET_RETURN_IF_ERROR(change.Check());
    std::vector<Entry> live = change.Heads(field);
    if (std::none_of(live.begin(), live.end(), [&](const Entry& e) { return e.key.stamp == entry; }))
      return NotFound("no entry " + StampToString(entry) + " in " + collection + " " + id + " " + field);
    Operation op = NewOp(OpKind::kRedact, collection, id, field);
    op.refs.push_back(entry);
    return store_->impl_->ApplyLocal(std::move(op));
  });
}

namespace {

// A tombstone that has seen, per device, everything this replica holds of the record.
Status LocalDelete(Store::Impl* impl, const std::string& collection, const std::string& id,
                   bool must_be_deleted) {
  Result<Target> target = Resolve(*impl->schema_, collection, id, "", std::nullopt);
  if (!target.ok()) return target.status();
  Result<std::vector<Entry>> entries = impl->LoadRecord(collection, id);
  if (!entries.ok()) return entries.status();
  if (entries->empty()) return NotFound(collection + " " + id + " does not exist");
  std::map<std::string, Hlc> seen;
  bool deleted = false;
  for (const Entry& e : *entries) {
    Hlc& newest = seen[e.key.stamp.device];
    newest = std::max(newest, e.key.stamp.hlc);
    deleted = deleted || (e.key.field.empty() && e.live);
  }
  if (must_be_deleted && !deleted) return FailedPrecondition(collection + " " + id + " is not deleted");
  if (!must_be_deleted && deleted) return FailedPrecondition(collection + " " + id + " is deleted already");
  const CollectionSpec& spec = *target->collection;
  if (!must_be_deleted && !spec.freeze_field.empty()) {
    std::vector<Entry> freeze_heads = LiveOnly(*entries);
    std::erase_if(freeze_heads, [&](const Entry& e) { return e.key.field != spec.freeze_field; });
    if (IsFrozen(spec, freeze_heads)) return FrozenError(collection, id);
  }
  Operation op = NewOp(OpKind::kDelete, collection, id, "");
  for (const auto& [device, hlc] : seen) op.refs.push_back(Stamp{hlc, device});
  return impl->ApplyLocal(std::move(op));
}

Status LocalRestore(Store::Impl* impl, const std::string& collection, const std::string& id) {
  Result<Target> target = Resolve(*impl->schema_, collection, id, "", std::nullopt);
  if (!target.ok()) return target.status();
  Result<std::vector<Entry>> entries = impl->LoadRecord(collection, id);
  if (!entries.ok()) return entries.status();
  Operation op = NewOp(OpKind::kRestore, collection, id, "");
  for (const Entry& e : LiveOnly(std::move(entries.value()))) {
    if (e.key.field.empty()) op.refs.push_back(e.key.stamp);
  }
  if (op.refs.empty()) return FailedPrecondition(collection + " " + id + " is not deleted");
  return impl->ApplyLocal(std::move(op));
}

}  // namespace

Status Transaction::Delete(const std::string& collection, const std::string& id) {
  return Guarded(open_, store_->impl_.get(),
                 [&] { return LocalDelete(store_->impl_.get(), collection, id, false); });
}

Status Transaction::Restore(const std::string& collection, const std::string& id) {
  return Guarded(open_, store_->impl_.get(),
                 [&] { return LocalRestore(store_->impl_.get(), collection, id); });
}

Status Transaction::ResolveDeleted(const std::string& collection, const std::string& id,
                                   bool keep_deleted) {
  return Guarded(open_, store_->impl_.get(), [&] {
    if (keep_deleted) return LocalDelete(store_->impl_.get(), collection, id, true);
    return LocalRestore(store_->impl_.get(), collection, id);
  });
}

// --- One-change transactions ------------------------------------------------------------------

namespace {

template <typename Fn>
Status InOwnTransaction(Store* store, Fn fn) {
  Result<Transaction> txn = store->Begin();
  if (!txn.ok()) return txn.status();
  CARNET_RETURN_IF_ERROR(fn(*txn));
  return txn->Commit();
}

}  // namespace

Status Store::Put(const std::string& collection, const std::string& id,
                  const std::vector<std::pair<std::string, std::optional<std::string>>>& fields) {
  return InOwnTransaction(this, [&](Transaction& t) { return t.Put(collection, id, fields); });
}
Status Store::Set(const std::string& collection, const std::string& id, const std::string& field,
                  std::optional<std::string> value) {
  return InOwnTransaction(this, [&](Transaction& t) { return t.Set(collection, id, field, value); });
}
Status Store::Add(const std::string& collection, const std::string& id, const std::string& field,
                  const std::string& element) {
  return InOwnTransaction(this, [&](Transaction& t) { return t.Add(collection, id, field, element); });
}
Status Store::Remove(const std::string& collection, const std::string& id,
                     const std::string& field, const std::string& element) {
  return InOwnTransaction(this,
                          [&](Transaction& t) { return t.Remove(collection, id, field, element); });
}
Result<Stamp> Store::Append(const std::string& collection, const std::string& id,
                            const std::string& field, const std::string& text,
                            std::optional<Stamp> revises) {
  Stamp stamp;
  Status status = InOwnTransaction(this, [&](Transaction& t) {
    Result<Stamp> appended = t.Append(collection, id, field, text, revises);
    if (appended.ok()) stamp = *appended;
    return appended.status();
  });
  if (!status.ok()) return status;
  return stamp;
}
Status Store::Redact(const std::string& collection, const std::string& id,
                     const std::string& field, const Stamp& entry) {
  return InOwnTransaction(this,
                          [&](Transaction& t) { return t.Redact(collection, id, field, entry); });
}
Status Store::Delete(const std::string& collection, const std::string& id) {
  return InOwnTransaction(this, [&](Transaction& t) { return t.Delete(collection, id); });
}
Status Store::Restore(const std::string& collection, const std::string& id) {
  return InOwnTransaction(this, [&](Transaction& t) { return t.Restore(collection, id); });
}
Status Store::Resolve(const std::string& collection, const std::string& id,
                      const std::string& field, std::optional<std::string> value) {
  return InOwnTransaction(
      this, [&](Transaction& t) { return t.Resolve(collection, id, field, value); });
}
Status Store::ResolveDeleted(const std::string& collection, const std::string& id,
                             bool keep_deleted) {
  return InOwnTransaction(
      this, [&](Transaction& t) { return t.ResolveDeleted(collection, id, keep_deleted); });
}

}  // namespace carnet
