// The erasure list and its orders in the SQLite server store (sync/server/erasure.h).
#include <algorithm>
#include <string>
#include <vector>

#include "carnet/sqlite.h"
#include "sync/server/erasure.h"

namespace carnet {
namespace {

using sqlite::Blob;

// The erasure list: who, when, by whom, under which sequence number its orders went; the records
// erased with them (and those found theirs in later pushes); per device, the order and when a
// pull confirmed it. scrubbed_ms: when a checkpoint took what the erasure removed out of the
// file and its WAL (ScrubErasuresSqlite); NULL until then.
constexpr const char* kTables = R"sql(
CREATE TABLE IF NOT EXISTS erasures(
  participant TEXT PRIMARY KEY, at_ms INTEGER NOT NULL, ordered_by TEXT NOT NULL,
  seq INTEGER NOT NULL, scrubbed_ms INTEGER) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS erased_records(
  collection TEXT NOT NULL, record TEXT NOT NULL, participant TEXT NOT NULL,
  PRIMARY KEY(collection, record)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS erased_records_by_participant ON erased_records(participant);
CREATE TABLE IF NOT EXISTS erasure_orders(
  participant TEXT NOT NULL, device TEXT NOT NULL, seq INTEGER NOT NULL, confirmed_ms INTEGER,
  PRIMARY KEY(participant, device)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS erasure_orders_by_device ON erasure_orders(device, seq);
)sql";

// Runs a statement that returns no rows; how many rows it changed.
template <typename... Args>
Result<uint64_t> Change(sqlite::Database* db, const std::string& sql, const Args&... args) {
  Result<sqlite::Statement*> st = db->Query(sql, args...);
  if (!st.ok()) return st.status();
  CARNET_RETURN_IF_ERROR((*st)->Run());
  return static_cast<uint64_t>(db->Changes());
}

class SqliteErasureSource : public ErasureSource {
 public:
  SqliteErasureSource(sqlite::Database* db, uint64_t* next_seq) : db_(db), next_seq_(next_seq) {}

  Result<bool> AnyErasure() override {
    Result<sqlite::Statement*> st = db_->Query("SELECT 1 FROM erasures LIMIT 1");
    if (!st.ok()) return st.status();
    Status status;
    const bool any = (*st)->Step(&status);
    (*st)->Reset();
    if (!status.ok()) return status;
    return any;
  }

  Result<std::set<std::string>> ErasedParticipants(const std::set<std::string>& ids) override {
    std::set<std::string> erased;
    for (const std::string& id : ids) {
      Result<sqlite::Statement*> st =
          db_->Query("SELECT 1 FROM erasures WHERE participant = ?", id);
      if (!st.ok()) return st.status();
      Status status;
      if ((*st)->Step(&status)) erased.insert(id);
      (*st)->Reset();
      CARNET_RETURN_IF_ERROR(status);
    }
    return erased;
  }

  Result<std::set<RecordKey>> ErasedRecords(const std::set<RecordKey>& records) override {
    std::set<RecordKey> erased;
    for (const RecordKey& record : records) {
      Result<sqlite::Statement*> st = db_->Query(
          "SELECT 1 FROM erased_records WHERE collection = ? AND record = ?", record.first,
          record.second);
      if (!st.ok()) return st.status();
      Status status;
      if ((*st)->Step(&status)) erased.insert(record);
      (*st)->Reset();
      CARNET_RETURN_IF_ERROR(status);
    }
    return erased;
  }

  Result<std::vector<std::string>> RecordsNaming(const std::string& collection,
                                                 const std::string& field,
                                                 const std::string& id) override {
    Result<sqlite::Statement*> st = db_->Query(
        "SELECT DISTINCT record FROM entries WHERE collection = ? AND field = ? AND live = 1 AND "
        "value = ?",
        collection, field, Blob{id});
    if (!st.ok()) return st.status();
    std::vector<std::string> records;
    Status status;
    while ((*st)->Step(&status)) records.push_back((*st)->Text(0));
    if (!status.ok()) return status;
    return records;
  }

  Result<uint64_t> DeleteRecord(const RecordKey& record) override {
    const auto& [collection, id] = record;
    Result<uint64_t> entries =
        Change(db_, "DELETE FROM entries WHERE collection = ? AND record = ?", collection, id);
    if (!entries.ok()) return entries.status();
    for (const char* sql : {"DELETE FROM record_scope WHERE collection = ? AND record = ?",
                            "DELETE FROM forgets WHERE collection = ? AND record = ?",
                            "DELETE FROM purging WHERE collection = ? AND record = ?"}) {
      CARNET_RETURN_IF_ERROR(Change(db_, sql, collection, id).status());
    }
    return entries;
  }

  Result<uint64_t> DeleteReferences(const std::string& collection, const std::string& field,
                                    const std::string& id) override {
    return Change(db_,
                  "DELETE FROM entries WHERE collection = ? AND field = ? AND (element = ? OR "
                  "value = ?)",
                  collection, field, id, Blob{id});
  }

  Status AddErasure(const std::string& participant, int64_t at_ms, const std::string& ordered_by,
                    const std::set<RecordKey>& records,
                    const std::vector<std::string>& devices) override {
    const uint64_t seq = (*next_seq_)++;
    CARNET_RETURN_IF_ERROR(
        Change(db_, "INSERT INTO erasures(participant, at_ms, ordered_by, seq) VALUES(?, ?, ?, ?)",
               participant, at_ms, ordered_by, seq)
            .status());
    for (const RecordKey& record : records) CARNET_RETURN_IF_ERROR(AddErasedRecord(participant, record));
    for (const std::string& device : devices) {
      CARNET_RETURN_IF_ERROR(
          Change(db_, "INSERT INTO erasure_orders VALUES(?, ?, ?, NULL)", participant, device, seq)
              .status());
    }
    return Status::Ok();
  }

  Status AddErasedRecord(const std::string& participant, const RecordKey& record) override {
    return Change(db_, "INSERT OR IGNORE INTO erased_records VALUES(?, ?, ?)", record.first,
                  record.second, participant)
        .status();
  }

  Result<std::vector<ErasureState>> ListErasures(const std::string& participant) override {
    std::vector<ErasureState> list;
    {
      Result<sqlite::Statement*> st = db_->Query(
          "SELECT participant, at_ms, ordered_by, (SELECT count(*) FROM erased_records r WHERE "
          "r.participant = e.participant), scrubbed_ms FROM erasures e WHERE ? = '' OR "
          "participant = ? "
          "ORDER BY at_ms, participant",
          participant, participant);
      if (!st.ok()) return st.status();
      Status status;
      while ((*st)->Step(&status)) {
        ErasureState e;
        e.participant = (*st)->Text(0);
        e.at_ms = (*st)->Int(1);
        e.ordered_by = (*st)->Text(2);
        e.records = static_cast<uint64_t>((*st)->Int(3));
        e.scrub_pending = (*st)->IsNull(4);
        if (!e.scrub_pending) e.scrubbed_ms = (*st)->Int(4);
        list.push_back(std::move(e));
      }
      CARNET_RETURN_IF_ERROR(status);
    }
    for (ErasureState& e : list) {
      Result<sqlite::Statement*> st = db_->Query(
          "SELECT o.device, coalesce(d.revoked, 0), o.confirmed_ms FROM erasure_orders o LEFT "
          "JOIN devices d ON d.id = o.device WHERE o.participant = ? ORDER BY o.device",
          e.participant);
      if (!st.ok()) return st.status();
      Status status;
      while ((*st)->Step(&status)) {
        ErasureOrderState order{(*st)->Text(0), (*st)->Int(1) != 0, std::nullopt};
        if (!(*st)->IsNull(2)) order.confirmed_ms = (*st)->Int(2);
        e.devices.push_back(std::move(order));
      }
      CARNET_RETURN_IF_ERROR(status);
    }
    return list;
  }

  Result<std::map<std::string, int64_t>> LastContacts() override {
    Result<sqlite::Statement*> st = db_->Query(
        "SELECT rs.participant, max(e.stamp) FROM record_scope rs JOIN entries e ON "
        "e.collection = rs.collection AND e.record = rs.record WHERE rs.participant IS NOT NULL "
        "GROUP BY rs.participant");
    if (!st.ok()) return st.status();
    std::map<std::string, int64_t> contacts;
    Status status;
    while ((*st)->Step(&status)) {
      // Stamps begin with their clock, big-endian: the greatest is the newest.
      Result<Stamp> stamp = DecodeStamp((*st)->Text(1));
      if (!stamp.ok()) {
        (*st)->Reset();
        return Status(StatusCode::kCorruption, "stored stamp: " + stamp.status().message());
      }
      contacts[(*st)->Text(0)] = HlcPhysicalMs(stamp->hlc);
    }
    if (!status.ok()) return status;
    return contacts;
  }

 private:
  sqlite::Database* db_;
  uint64_t* next_seq_;
};

}  // namespace

std::unique_ptr<ErasureSource> NewSqliteErasureSource(sqlite::Database* db, uint64_t* next_seq) {
  return std::make_unique<SqliteErasureSource>(db, next_seq);
}

Status InstallErasureSqlite(sqlite::Database* db) {
  // A deleted row is overwritten with zeros in its page: an erased participant leaves no copy in
  // the file's free space once the page reaches it (ScrubErasuresSqlite).
  CARNET_RETURN_IF_ERROR(db->Exec("PRAGMA secure_delete=ON"));
  CARNET_RETURN_IF_ERROR(db->Exec(kTables));
  Result<sqlite::Statement*> st =
      db->Query("SELECT 1 FROM pragma_table_info('erasures') WHERE name = 'scrubbed_ms'");
  if (!st.ok()) return st.status();
  Status status;
  const bool has = (*st)->Step(&status);
  (*st)->Reset();
  CARNET_RETURN_IF_ERROR(status);
  // A store from before scrubbed_ms: its erasures count as pending until the next checkpoint.
  return has ? Status::Ok() : db->Exec("ALTER TABLE erasures ADD COLUMN scrubbed_ms INTEGER");
}

namespace {

// PRAGMA wal_checkpoint(TRUNCATE): whether every frame of the WAL reached the main file and the
// WAL was emptied. A reader whose snapshot predates the last frames holds them back: busy, or
// fewer frames checkpointed than logged.
Result<bool> CheckpointTruncate(sqlite::Database* db) {
  Result<sqlite::Statement*> st = db->Query("PRAGMA wal_checkpoint(TRUNCATE)");
  if (!st.ok()) return st.status();
  Status status;
  bool done = false;
  if ((*st)->Step(&status)) done = (*st)->Int(0) == 0 && (*st)->Int(1) == (*st)->Int(2);
  (*st)->Reset();
  if (!status.ok()) return status;
  return done;
}

Result<int64_t> BusyTimeout(sqlite::Database* db) {
  Result<sqlite::Statement*> st = db->Query("PRAGMA busy_timeout");
  if (!st.ok()) return st.status();
  Status status;
  const int64_t ms = (*st)->Step(&status) ? (*st)->Int(0) : 0;
  (*st)->Reset();
  if (!status.ok()) return status;
  return ms;
}

}  // namespace

Result<bool> ScrubErasuresSqlite(sqlite::Database* db, Env* env, int64_t wait_ms) {
  // Only those recorded before the checkpoint are in what it copies.
  std::vector<std::string> pending;
  {
    Result<sqlite::Statement*> st =
        db->Query("SELECT participant FROM erasures WHERE scrubbed_ms IS NULL");
    if (!st.ok()) return st.status();
    Status status;
    while ((*st)->Step(&status)) pending.push_back((*st)->Text(0));
    CARNET_RETURN_IF_ERROR(status);
  }
  if (pending.empty()) return true;
  Result<int64_t> busy_timeout = BusyTimeout(db);
  if (!busy_timeout.ok()) return busy_timeout.status();
  // Each try returns at once; the wait is this loop's, bounded by wait_ms.
  CARNET_RETURN_IF_ERROR(db->Exec("PRAGMA busy_timeout=0"));
  const int64_t deadline = env->NowMillis() + wait_ms;
  Result<bool> done = CheckpointTruncate(db);
  while (done.ok() && !*done && env->NowMillis() < deadline) {
    env->SleepForMillis(std::min<int64_t>(50, deadline - env->NowMillis()));
    done = CheckpointTruncate(db);
  }
  CARNET_RETURN_IF_ERROR(db->Exec("PRAGMA busy_timeout=" + std::to_string(*busy_timeout)));
  if (!done.ok() || !*done) return done;
  const int64_t now_ms = env->NowMillis();
  CARNET_RETURN_IF_ERROR(db->Exec("BEGIN IMMEDIATE"));
  for (const std::string& participant : pending) {
    Status marked =
        Change(db, "UPDATE erasures SET scrubbed_ms = ? WHERE participant = ?", now_ms,
               participant)
            .status();
    if (!marked.ok()) {
      (void)db->Exec("ROLLBACK");
      return marked;
    }
  }
  CARNET_RETURN_IF_ERROR(db->Exec("COMMIT"));
  // The mark's own frames hold only the erasure list, which keeps the ids by design: a reader
  // holding them back leaves nothing erased in the WAL.
  (void)CheckpointTruncate(db);
  return true;
}

Status ServeErasuresSqlite(sqlite::Database* db, const std::string& device, uint64_t cursor,
                           uint64_t through, int64_t now_ms, wire::PullReply* reply) {
  if (cursor > 0) {
    CARNET_RETURN_IF_ERROR(Change(db,
                                  "UPDATE erasure_orders SET confirmed_ms = ? WHERE device = ? AND "
                                  "seq <= ? AND confirmed_ms IS NULL",
                                  now_ms, device, cursor)
                               .status());
  }
  reply->erase.clear();
  {
    Result<sqlite::Statement*> st = db->Query(
        "SELECT participant FROM erasure_orders WHERE device = ? AND seq > ? AND seq <= ? ORDER "
        "BY seq, participant",
        device, cursor, through);
    if (!st.ok()) return st.status();
    Status status;
    while ((*st)->Step(&status)) reply->erase.push_back(wire::ErasureOrder{(*st)->Text(0), {}});
    CARNET_RETURN_IF_ERROR(status);
  }
  for (wire::ErasureOrder& order : reply->erase) {
    Result<sqlite::Statement*> st = db->Query(
        "SELECT collection, record FROM erased_records WHERE participant = ? ORDER BY 1, 2",
        order.participant);
    if (!st.ok()) return st.status();
    Status status;
    while ((*st)->Step(&status)) {
      order.records.push_back(wire::RecordRef{(*st)->Text(0), (*st)->Text(1)});
    }
    CARNET_RETURN_IF_ERROR(status);
  }
  return Status::Ok();
}

}  // namespace carnet
