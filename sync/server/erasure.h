// Erasure and retention on the server (sync/PROTOCOL.md, Erasure and Retention), written once for
// both stores: the decisions in server_erasure.cc, each store's SQL behind ErasureSource
// (erasure_sqlite.cc, erasure_pg.cc), and the few calls each store's Push and Pull make.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "carnet/erasure.h"
#include "carnet/operation.h"
#include "carnet/schema.h"
#include "carnet/server_store.h"
#include "carnet/wire.h"
#include "sync/server/scope.h"

namespace pqxx {
class transaction_base;
}

namespace carnet {
namespace sqlite {
class Database;
}
namespace pg {
class Sequence;
}

using RecordKey = std::pair<std::string, std::string>;  // (collection, record)

// What the erasure code reads and writes beyond the scopes, in the store's open transaction.
class ErasureSource {
 public:
  virtual ~ErasureSource() = default;

  // Whether any participant was ever erased: a push checks nothing more when none was.
  virtual Result<bool> AnyErasure() = 0;
  // Those of `ids` that are erased participants.
  virtual Result<std::set<std::string>> ErasedParticipants(const std::set<std::string>& ids) = 0;
  // Those of `records` on the erasure list.
  virtual Result<std::set<RecordKey>> ErasedRecords(const std::set<RecordKey>& records) = 0;

  // The records of `collection` holding a live entry of `field` whose value is `id`.
  virtual Result<std::vector<std::string>> RecordsNaming(const std::string& collection,
                                                         const std::string& field,
                                                         const std::string& id) = 0;
  // Removes the record: its entries, its scope, the forgets of it owed to devices, its purge
  // mark. Returns how many entries went.
  virtual Result<uint64_t> DeleteRecord(const RecordKey& record) = 0;
  // Removes the entries of `field` in `collection` whose value or element is `id`. Returns how
  // many went.
  virtual Result<uint64_t> DeleteReferences(const std::string& collection,
                                            const std::string& field, const std::string& id) = 0;

  // Puts the participant on the erasure list with its records, and an order for each device,
  // all under one new sequence number.
  virtual Status AddErasure(const std::string& participant, int64_t at_ms,
                            const std::string& ordered_by, const std::set<RecordKey>& records,
                            const std::vector<std::string>& devices) = 0;
  // A record found to be an erased participant's after their erasure (Push).
  virtual Status AddErasedRecord(const std::string& participant, const RecordKey& record) = 0;
  virtual Result<std::vector<ErasureState>> ListErasures(const std::string& participant) = 0;

  // Per participant with records (by their stored scopes), the physical time of the newest
  // stamp among all their entries, live and dead.
  virtual Result<std::map<std::string, int64_t>> LastContacts() = 0;
};

// One transaction's worth of what the erasure code works with.
struct ErasureTxn {
  ErasureSource* erasures = nullptr;
  ScopeSource* scopes = nullptr;
  const Schema* schema = nullptr;
  Env* env = nullptr;
};

// The referent that puts a participant retired by the retention policy in nobody's scope: not a
// valid adviser id, so no device's adviser is it (PROTOCOL.md, Retention).
inline constexpr const char* kRetiredReferent = "(retired)";

// In a push's transaction, before anything is judged or applied: removes from `ops` every
// operation that touches an erased participant (on them, on a record erased with them, or naming
// them in a field of type ref). A record of unknown owner whose participant field the batch
// writes with an erased participant's id is taken as theirs: its operations go too, whatever
// the store held of it is erased, and it joins the erasure list. Logs and returns how many went.
Result<uint32_t> DropErasedOperations(ErasureTxn& txn, const Device& device,
                                      std::vector<Operation>* ops);

std::unique_ptr<ErasureSource> NewSqliteErasureSource(sqlite::Database* db, uint64_t* next_seq);
// `seq` may be null in a transaction that writes nothing.
std::unique_ptr<ErasureSource> NewPostgresErasureSource(pqxx::transaction_base& txn,
                                                        pg::Sequence* seq);

// The erasure tables, created if missing: when the store opens.
Status InstallErasureSqlite(sqlite::Database* db);
void InstallErasurePostgres(pqxx::transaction_base& txn);

// ServerStore::ScrubErasures on SQLite, outside any transaction.
Result<bool> ScrubErasuresSqlite(sqlite::Database* db, Env* env, int64_t wait_ms);

// In a pull's transaction: confirms the device's orders numbered up to `cursor` (the cursor it
// pulls from holds them; 0 confirms nothing) and puts in reply->erase those numbered after
// `cursor` up to `through` (the reply's next cursor; a snapshot's first page: its sequence).
// PostgreSQL serves in the pull's read-only snapshot and confirms in its acknowledgement.
Status ServeErasuresSqlite(sqlite::Database* db, const std::string& device, uint64_t cursor,
                           uint64_t through, int64_t now_ms, wire::PullReply* reply);
void ServeErasuresPostgres(pqxx::transaction_base& txn, const std::string& device,
                           uint64_t cursor, uint64_t through, wire::PullReply* reply);
void ConfirmErasuresPostgres(pqxx::transaction_base& txn, const std::string& device,
                             uint64_t cursor, int64_t now_ms);

}  // namespace carnet
