// Erasure on the tablet: not a tombstone, which would keep the data under it, but the rows gone,
// zeroed in their pages (PRAGMA secure_delete, set when the store opens) and out of the WAL.
#include "core/store_erase.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace carnet {
namespace {

using RecordKey = std::pair<std::string, std::string>;

// The fields whose values or elements are record ids, hence may name a participant.
std::vector<std::pair<std::string, std::string>> RefFields(const Schema& schema) {
  std::vector<std::pair<std::string, std::string>> fields;
  for (const CollectionSpec& c : schema.collections()) {
    for (const FieldSpec& f : c.fields) {
      if (f.type == FieldType::kRef) fields.emplace_back(c.name, f.name);
    }
  }
  return fields;
}

Result<bool> Exists(sqlite::Database& db, const std::string& sql,
                    const std::vector<std::string>& args) {
  Result<sqlite::Statement*> st = db.Prepare(sql);
  if (!st.ok()) return st.status();
  for (size_t i = 0; i < args.size(); ++i) (*st)->Bind(static_cast<int>(i + 1), args[i]);
  Status status;
  const bool found = (*st)->Step(&status);
  (*st)->Reset();
  if (!status.ok()) return status;
  return found;
}

// Values are stored as BLOBs, elements as TEXT: "value = CAST(? AS BLOB)" compares bytes.
constexpr const char* kNamesSql =
    "collection = ? AND field = +? AND (element = ? OR value = CAST(? AS BLOB))";

// A newer app's fields (core/README.md, Mixed versions) may name the participant too: their
// type being unknown here, any value or element that is their id does. Sealed at rest (their
// class is unknown too), each is opened to be compared. Returns how many entries went.
Result<size_t> EraseFromUnknownFields(Store::Impl& impl, const std::string& participant) {
  std::vector<Entry> naming;  // keys as stored
  {
    Result<sqlite::Statement*> st =
        impl.db_->Prepare(std::string(kEntryColumns) + "WHERE field <> ''");
    if (!st.ok()) return st.status();
    Status status;
    while ((*st)->Step(&status)) {
      const CollectionSpec* c = impl.schema_->Find((*st)->Text(0));
      if (c != nullptr && c->Find((*st)->Text(2)) != nullptr) continue;
      Result<Entry> stored = ReadEntry(**st);
      Entry opened = stored.ok() ? *stored : Entry{};
      Result<bool> readable = stored.ok() ? impl.Unseal(&opened) : Result<bool>(stored.status());
      if (!readable.ok()) {
        (*st)->Reset();
        return readable.status();
      }
      if (*readable && (opened.key.element == participant || opened.value == participant)) {
        naming.push_back(std::move(stored.value()));
      }
    }
    CARNET_RETURN_IF_ERROR(status);
  }
  for (const Entry& e : naming) {
    CARNET_RETURN_IF_ERROR(impl.DeleteEntry(e.key));
    impl.NoteChange(Change{e.key.collection, e.key.record, e.key.field, true});
  }
  return naming.size();
}

}  // namespace

Status ValidateErasure(const Erasure& erasure) {
  if (!IsValidRecordId(erasure.participant)) {
    return InvalidArgument("cannot erase participant '" + erasure.participant +
                           "': not a record id");
  }
  for (const auto& [collection, id] : erasure.records) {
    // A collection the schema does not know is a newer app's, which this replica keeps too.
    if (!IsValidName(collection) || !IsValidRecordId(id)) {
      return InvalidArgument("cannot erase " + collection + " " + id + ": not a record");
    }
  }
  return Status::Ok();
}

Status EraseKeyBeforeErasure(Store::Impl& impl, const Erasure& erasure) {
  return impl.EraseParticipantKey(erasure.participant);
}

Result<size_t> EraseFromReplica(Store::Impl& impl, const Erasure& erasure) {
  sqlite::Database& db = *impl.db_;
  const std::string& participant = erasure.participant;
  Result<std::vector<RecordKey>> owned = impl.RecordsToForget("participants", participant);
  if (!owned.ok()) return owned.status();
  std::set<RecordKey> records(owned->begin(), owned->end());
  records.insert(erasure.records.begin(), erasure.records.end());
  const std::vector<std::pair<std::string, std::string>> ref_fields = RefFields(*impl.schema_);

  // Changes not yet pushed would be lost here without the server hearing of them: they go first,
  // and the server drops them (sync/PROTOCOL.md, Erasure).
  auto pending = [&](const std::string& what) -> Status {
    return FailedPrecondition(what + " has changes not yet pushed: push before erasing");
  };
  for (const auto& [collection, record] : records) {
    Result<bool> found = Exists(db, "SELECT 1 FROM outbox WHERE collection = ? AND record = ?",
                                {collection, record});
    if (!found.ok()) return found.status();
    if (*found) return pending(collection + " " + record);
  }
  for (const auto& [collection, field] : ref_fields) {
    Result<bool> found = Exists(db, std::string("SELECT 1 FROM outbox WHERE ") + kNamesSql,
                                {collection, field, participant, participant});
    if (!found.ok()) return found.status();
    if (*found) return pending("a reference to participant " + participant);
  }

  size_t removed = 0;
  for (const auto& [collection, record] : records) {
    Result<sqlite::Statement*> erase =
        db.Prepare("DELETE FROM entries WHERE collection = ? AND record = ?");
    if (!erase.ok()) return erase.status();
    (*erase)->Bind(1, collection);
    (*erase)->Bind(2, record);
    CARNET_RETURN_IF_ERROR((*erase)->Run());
    if (db.Changes() == 0) continue;
    removed += static_cast<size_t>(db.Changes());
    impl.NoteChange(Change{collection, record, "", true});
  }
  for (const auto& [collection, field] : ref_fields) {
    std::vector<std::string> touched;
    {
      Result<sqlite::Statement*> st =
          db.Prepare(std::string("SELECT DISTINCT record FROM entries WHERE ") + kNamesSql);
      if (!st.ok()) return st.status();
      (*st)->Bind(1, collection);
      (*st)->Bind(2, field);
      (*st)->Bind(3, participant);
      (*st)->Bind(4, participant);
      Status status;
      while ((*st)->Step(&status)) touched.push_back((*st)->Text(0));
      if (!status.ok()) return status;
    }
    if (touched.empty()) continue;
    Result<sqlite::Statement*> erase =
        db.Prepare(std::string("DELETE FROM entries WHERE ") + kNamesSql);
    if (!erase.ok()) return erase.status();
    (*erase)->Bind(1, collection);
    (*erase)->Bind(2, field);
    (*erase)->Bind(3, participant);
    (*erase)->Bind(4, participant);
    CARNET_RETURN_IF_ERROR((*erase)->Run());
    removed += static_cast<size_t>(db.Changes());
    for (const std::string& record : touched) impl.NoteChange(Change{collection, record, field, true});
  }
  Result<size_t> unknown = EraseFromUnknownFields(impl, participant);
  if (!unknown.ok()) return unknown.status();
  return removed + *unknown;
}

void ScrubAfterErasure(Store::Impl& impl) {
  // TRUNCATE, not PASSIVE: the WAL file keeps old frames past its reset point until truncated.
  Result<sqlite::Statement*> st = impl.db_->Prepare("PRAGMA wal_checkpoint(TRUNCATE)");
  Status status = st.status();
  bool busy = false;
  if (status.ok()) {
    if ((*st)->Step(&status)) busy = (*st)->Int(0) != 0;
    (*st)->Reset();
  }
  if (!status.ok() || busy) {
    impl.options_.env->Log(LogLevel::kWarning,
                           "erasure: the WAL could not be checkpointed now (" +
                               (status.ok() ? std::string("another connection reads the store")
                                            : status.ToString()) +
                               "): the erased rows leave it at the next checkpoint");
  }
}

Status Store::Erase(const std::string& participant,
                    const std::vector<std::pair<std::string, std::string>>& records) {
  const Erasure erasure{participant, records};
  CARNET_RETURN_IF_ERROR(ValidateErasure(erasure));
  std::unique_lock<std::recursive_mutex> lock(impl_->mutex_);
  CARNET_RETURN_IF_ERROR(EraseKeyBeforeErasure(*impl_, erasure));
  // Not Begin(): an erasure is the server's order, carried out even once the offline lease has
  // run out, like everything sync calls.
  CARNET_RETURN_IF_ERROR(impl_->BeginTransaction());
  Result<size_t> removed = EraseFromReplica(*impl_, erasure);
  if (!removed.ok()) {
    impl_->RollbackTransaction();
    return removed.status();
  }
  std::vector<Change> changes;
  CARNET_RETURN_IF_ERROR(impl_->CommitTransaction(&changes));
  ScrubAfterErasure(*impl_);
  lock.unlock();
  impl_->Notify(changes);
  return Status::Ok();
}

}  // namespace carnet
