// The erasure list and its orders in the PostgreSQL server store (sync/server/erasure.h). Errors
// come out as libpqxx exceptions, which the store's pool turns into a Status.
#include <string>

#include "sync/server/pg/pg_pool.h"
#include "sync/server/pg/pg_sequence.h"
#include "sync/server/erasure.h"

namespace carnet {
namespace {

using pg::Bytea;

// As in sync/server/sqlite/erasure_sqlite.cc.
constexpr const char* kTables = R"sql(
CREATE TABLE IF NOT EXISTS erasures(
  participant text COLLATE "C" PRIMARY KEY, at_ms bigint NOT NULL, ordered_by text NOT NULL,
  seq bigint NOT NULL);
CREATE TABLE IF NOT EXISTS erased_records(
  collection text COLLATE "C" NOT NULL, record text COLLATE "C" NOT NULL,
  participant text COLLATE "C" NOT NULL, PRIMARY KEY(collection, record));
CREATE INDEX IF NOT EXISTS erased_records_by_participant ON erased_records(participant);
CREATE TABLE IF NOT EXISTS erasure_orders(
  participant text COLLATE "C" NOT NULL, device text COLLATE "C" NOT NULL, seq bigint NOT NULL,
  confirmed_ms bigint, PRIMARY KEY(participant, device));
CREATE INDEX IF NOT EXISTS erasure_orders_by_device ON erasure_orders(device, seq);
)sql";

// A text[] literal, every element quoted.
std::string TextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    out += i ? ",\"" : "\"";
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

class PostgresErasureSource : public ErasureSource {
 public:
  PostgresErasureSource(pqxx::transaction_base& txn, pg::Sequence* seq) : txn_(txn), seq_(seq) {}

  Result<bool> AnyErasure() override {
    return !txn_.exec("SELECT 1 FROM erasures LIMIT 1").empty();
  }

  Result<std::set<std::string>> ErasedParticipants(const std::set<std::string>& ids) override {
    std::set<std::string> erased;
    if (ids.empty()) return erased;
    for (const pqxx::row& r :
         txn_.exec_params("SELECT participant FROM erasures WHERE participant = ANY($1::text[])",
                          TextArray({ids.begin(), ids.end()}))) {
      erased.insert(r[0].as<std::string>());
    }
    return erased;
  }

  Result<std::set<RecordKey>> ErasedRecords(const std::set<RecordKey>& records) override {
    std::set<RecordKey> erased;
    if (records.empty()) return erased;
    std::vector<std::string> collections, ids;
    for (const auto& [collection, record] : records) {
      collections.push_back(collection);
      ids.push_back(record);
    }
    for (const pqxx::row& r : txn_.exec_params(
             "SELECT e.collection, e.record FROM erased_records e JOIN unnest($1::text[], "
             "$2::text[]) AS t(c, r) ON e.collection = t.c AND e.record = t.r",
             TextArray(collections), TextArray(ids))) {
      erased.emplace(r[0].as<std::string>(), r[1].as<std::string>());
    }
    return erased;
  }

  Result<std::vector<std::string>> RecordsNaming(const std::string& collection,
                                                 const std::string& field,
                                                 const std::string& id) override {
    std::vector<std::string> records;
    for (const pqxx::row& r : txn_.exec_params(
             "SELECT DISTINCT record FROM entries WHERE collection = $1 AND field = $2 AND live "
             "AND value = $3::bytea",
             collection, field, Bytea(id))) {
      records.push_back(r[0].as<std::string>());
    }
    return records;
  }

  Result<uint64_t> DeleteRecord(const RecordKey& record) override {
    const auto& [collection, id] = record;
    const uint64_t entries =
        txn_.exec_params0("DELETE FROM entries WHERE collection = $1 AND record = $2", collection,
                          id)
            .affected_rows();
    for (const char* sql : {"DELETE FROM record_scope WHERE collection = $1 AND record = $2",
                            "DELETE FROM forgets WHERE collection = $1 AND record = $2",
                            "DELETE FROM purging WHERE collection = $1 AND record = $2"}) {
      txn_.exec_params0(sql, collection, id);
    }
    return entries;
  }

  Result<uint64_t> DeleteReferences(const std::string& collection, const std::string& field,
                                    const std::string& id) override {
    return static_cast<uint64_t>(
        txn_.exec_params0("DELETE FROM entries WHERE collection = $1 AND field = $2 AND (element "
                          "= $3::bytea OR value = $3::bytea)",
                          collection, field, Bytea(id))
            .affected_rows());
  }

  Status AddErasure(const std::string& participant, int64_t at_ms, const std::string& ordered_by,
                    const std::set<RecordKey>& records,
                    const std::vector<std::string>& devices) override {
    if (seq_ == nullptr) return Internal("an erasure needs a write transaction");
    const uint64_t seq = seq_->Take();
    txn_.exec_params0("INSERT INTO erasures VALUES($1, $2, $3, $4)", participant, at_ms,
                      ordered_by, seq);
    for (const RecordKey& record : records) CARNET_RETURN_IF_ERROR(AddErasedRecord(participant, record));
    for (const std::string& device : devices) {
      txn_.exec_params0("INSERT INTO erasure_orders VALUES($1, $2, $3, NULL)", participant, device,
                        seq);
    }
    return Status::Ok();
  }

  Status AddErasedRecord(const std::string& participant, const RecordKey& record) override {
    txn_.exec_params0("INSERT INTO erased_records VALUES($1, $2, $3) ON CONFLICT DO NOTHING",
                      record.first, record.second, participant);
    return Status::Ok();
  }

  Result<std::vector<ErasureState>> ListErasures(const std::string& participant) override {
    std::vector<ErasureState> list;
    for (const pqxx::row& r : txn_.exec_params(
             "SELECT participant, at_ms, ordered_by, (SELECT count(*) FROM erased_records r "
             "WHERE r.participant = e.participant) FROM erasures e WHERE $1 = '' OR participant "
             "= $1 ORDER BY at_ms, participant",
             participant)) {
      ErasureState e;
      e.participant = r[0].as<std::string>();
      e.at_ms = r[1].as<int64_t>();
      e.ordered_by = r[2].as<std::string>();
      e.records = r[3].as<uint64_t>();
      list.push_back(std::move(e));
    }
    for (ErasureState& e : list) {
      for (const pqxx::row& r : txn_.exec_params(
               "SELECT o.device, coalesce(d.revoked, false), o.confirmed_ms FROM erasure_orders o "
               "LEFT JOIN devices d ON d.id = o.device WHERE o.participant = $1 ORDER BY "
               "o.device",
               e.participant)) {
        ErasureOrderState order{r[0].as<std::string>(), r[1].as<bool>(), std::nullopt};
        if (!r[2].is_null()) order.confirmed_ms = r[2].as<int64_t>();
        e.devices.push_back(std::move(order));
      }
    }
    return list;
  }

  Result<std::map<std::string, int64_t>> LastContacts() override {
    std::map<std::string, int64_t> contacts;
    for (const pqxx::row& r : txn_.exec(
             // No max() of bytea in PostgreSQL: the first of each participant's, newest first.
             "SELECT DISTINCT ON (rs.participant) rs.participant, e.stamp FROM record_scope rs "
             "JOIN entries e ON e.collection = rs.collection AND e.record = rs.record WHERE "
             "rs.participant IS NOT NULL ORDER BY rs.participant, e.stamp DESC")) {
      // Stamps begin with their clock, big-endian: the greatest is the newest.
      Result<Stamp> stamp = DecodeStamp(pg::Bytes(r[1]));
      if (!stamp.ok()) {
        return Status(StatusCode::kCorruption, "stored stamp: " + stamp.status().message());
      }
      contacts[r[0].as<std::string>()] = HlcPhysicalMs(stamp->hlc);
    }
    return contacts;
  }

 private:
  pqxx::transaction_base& txn_;
  pg::Sequence* seq_;
};

}  // namespace

std::unique_ptr<ErasureSource> NewPostgresErasureSource(pqxx::transaction_base& txn,
                                                        pg::Sequence* seq) {
  return std::make_unique<PostgresErasureSource>(txn, seq);
}

void InstallErasurePostgres(pqxx::transaction_base& txn) { txn.exec0(kTables); }

void ServeErasuresPostgres(pqxx::transaction_base& txn, const std::string& device,
                           uint64_t cursor, uint64_t through, wire::PullReply* reply) {
  reply->erase.clear();
  for (const pqxx::row& r : txn.exec_params(
           "SELECT participant FROM erasure_orders WHERE device = $1 AND seq > $2 AND seq <= $3 "
           "ORDER BY seq, participant",
           device, cursor, through)) {
    reply->erase.push_back(wire::ErasureOrder{r[0].as<std::string>(), {}});
  }
  for (wire::ErasureOrder& order : reply->erase) {
    for (const pqxx::row& r : txn.exec_params(
             "SELECT collection, record FROM erased_records WHERE participant = $1 ORDER BY 1, 2",
             order.participant)) {
      order.records.push_back(wire::RecordRef{r[0].as<std::string>(), r[1].as<std::string>()});
    }
  }
}

void ConfirmErasuresPostgres(pqxx::transaction_base& txn, const std::string& device,
                             uint64_t cursor, int64_t now_ms) {
  if (cursor == 0) return;
  txn.exec_params0(
      "UPDATE erasure_orders SET confirmed_ms = $1 WHERE device = $2 AND seq <= $3 AND "
      "confirmed_ms IS NULL",
      now_ms, device, cursor);
}

}  // namespace carnet
