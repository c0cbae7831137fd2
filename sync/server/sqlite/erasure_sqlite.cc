// The erasure list and its orders in the SQLite server store (sync/server/erasure.h).
#include <string>

#include "carnet/sqlite.h"
#include "sync/server/erasure.h"

namespace carnet {
namespace {

using sqlite::Blob;

// The erasure list: who, when, by whom, under which sequence number its orders went; the records
// erased with them (and those found theirs in later pushes); per device, the order and when a
// pull confirmed it.
constexpr const char* kTables = R"sql(
CREATE TABLE IF NOT EXISTS erasures(
  participant TEXT PRIMARY KEY, at_ms INTEGER NOT NULL, ordered_by TEXT NOT NULL,
  seq INTEGER NOT NULL) WITHOUT ROWID;
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
        Change(db_, "INSERT INTO erasures VALUES(?, ?, ?, ?)", participant, at_ms, ordered_by, seq)
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
          "r.participant = e.participant) FROM erasures e WHERE ? = '' OR participant = ? "
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
  // the file's free space (the WAL is truncated after each erasure).
  CARNET_RETURN_IF_ERROR(db->Exec("PRAGMA secure_delete=ON"));
  return db->Exec(kTables);
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
