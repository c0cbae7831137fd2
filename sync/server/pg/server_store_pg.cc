// The central records on PostgreSQL, for production: several carnet-server nodes on one
// database, each with a pool of connections. The same merge (carnet/merge.h) and scope tracking
// (sync/server/scope.h) as the SQLite store; what differs is how numbers are given so that a
// pull never passes an entry that commits later (sync/server/pg/pg_sequence.h, sync/SCALING.md).
#include "sync/server/pg/server_store_pg.h"

#include <algorithm>
#include <map>
#include <set>

#include "carnet/merge.h"
#include "sync/server/pg/audit_pg.h"
#include "sync/server/device_credentials.h"
#include "sync/server/pg/pg_pool.h"
#include "sync/server/pg/pg_sequence.h"
#include "sync/server/pull.h"
#include "sync/server/conflicts.h"
#include "sync/server/erasure.h"
#include "sync/server/push.h"
#include "sync/server/scope.h"
#include "sync/server/snapshot_token.h"

namespace carnet {
namespace {

using pg::Bytea;
using pg::Bytes;

// Each migration runs once, in order, in its own transaction; carnet_migrations says which ran.
// Names and ids compare as bytes (COLLATE "C"), as in SQLite, so dumps come in the same order.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE counters(name text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE entries(
  collection text COLLATE "C" NOT NULL, record text COLLATE "C" NOT NULL,
  field text COLLATE "C" NOT NULL, element bytea NOT NULL, stamp bytea NOT NULL,
  kind smallint NOT NULL, live boolean NOT NULL, value bytea, refs bytea, seq bigint NOT NULL,
  PRIMARY KEY(collection, record, field, element, stamp));
CREATE INDEX entries_by_seq ON entries(seq);
CREATE INDEX live_tombstones ON entries(collection, record) WHERE field = '' AND live;
CREATE TABLE record_scope(
  collection text COLLATE "C" NOT NULL, record text COLLATE "C" NOT NULL,
  participant text COLLATE "C", territory text COLLATE "C",
  PRIMARY KEY(collection, record));
CREATE INDEX record_scope_by_participant ON record_scope(participant);
CREATE TABLE participant_scope(
  participant text COLLATE "C" PRIMARY KEY, referent text COLLATE "C", territory text COLLATE "C");
CREATE TABLE devices(
  id text COLLATE "C" PRIMARY KEY, adviser text NOT NULL, territories text[] NOT NULL,
  token_hash text NOT NULL UNIQUE, revoked boolean NOT NULL DEFAULT false,
  cursor bigint NOT NULL DEFAULT 0, acknowledged_seq bigint NOT NULL DEFAULT 0,
  last_contact_ms bigint NOT NULL DEFAULT 0);
CREATE TABLE forgets(
  seq bigint PRIMARY KEY, device text NOT NULL, collection text NOT NULL, record text NOT NULL);
CREATE INDEX forgets_by_device ON forgets(device, seq);
)sql",
    // The highest operation acknowledged to each life of each tablet's store (PROTOCOL.md, Push).
    R"sql(
CREATE TABLE store_lives(
  device text COLLATE "C" NOT NULL, incarnation text COLLATE "C" NOT NULL,
  acknowledged_seq bigint NOT NULL, PRIMARY KEY(device, incarnation));
)sql",
    // Deleted records being purged: out of every scope, their forgets (numbered first_forget to
    // last_forget) on their way, their entries kept until those are pulled (PROTOCOL.md, Purge).
    R"sql(
CREATE TABLE purging(
  collection text COLLATE "C" NOT NULL, record text COLLATE "C" NOT NULL,
  first_forget bigint NOT NULL, last_forget bigint NOT NULL, PRIMARY KEY(collection, record));
)sql",
    // Credentials (PROTOCOL.md, Devices): tokens that expire and are renewed (the next token
    // valid beside the current one until first used), one-time enrollment codes, the wipe of a
    // revoked device. A device waiting for its first code holds the hash of a token no one has.
    R"sql(
ALTER TABLE devices ADD COLUMN token_issued_ms bigint NOT NULL DEFAULT 0,
  ADD COLUMN token_expires_ms bigint NOT NULL DEFAULT 0, ADD COLUMN next_token_hash text UNIQUE,
  ADD COLUMN next_token_expires_ms bigint NOT NULL DEFAULT 0, ADD COLUMN code_hash text UNIQUE,
  ADD COLUMN code_expires_ms bigint NOT NULL DEFAULT 0,
  ADD COLUMN revoked_ms bigint NOT NULL DEFAULT 0,
  ADD COLUMN wipe_confirmed_ms bigint NOT NULL DEFAULT 0,
  ADD COLUMN next_token_from_code boolean NOT NULL DEFAULT false;
)sql",
    // The grace after a hand-over (sync/SECURITY.md, Scope): when each forget was made and
    // whether the device's own push made it, the furthest a device's pulls ever acknowledged,
    // which a pull from an older cursor cannot undo, and the furthest a pull ever served it.
    R"sql(
ALTER TABLE forgets ADD COLUMN made_ms bigint NOT NULL DEFAULT 0,
  ADD COLUMN own boolean NOT NULL DEFAULT false;
ALTER TABLE devices ADD COLUMN pulled_past bigint NOT NULL DEFAULT 0,
  ADD COLUMN served_past bigint NOT NULL DEFAULT 0;
UPDATE devices SET pulled_past = cursor, served_past = cursor;
)sql",
};
constexpr int kLayoutVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);
// Any number: it only keeps two nodes from migrating at once.
constexpr int64_t kMigrationLock = 0x436172'6e6574;

// What ReadDevice reads, in its order.
constexpr const char* kDeviceFields =
    "id, adviser, territories, revoked, cursor, acknowledged_seq, last_contact_ms, "
    "token_issued_ms, token_expires_ms, code_expires_ms, revoked_ms, wipe_confirmed_ms ";

constexpr const char* kEntryColumns =
    "e.collection, e.record, e.field, e.element, e.stamp, e.kind, e.live, e.value, e.refs, e.seq";
// Which records a device sees, over record_scope (rs) and participant_scope (ps); $1 is the
// device's adviser and $2 its territories.
constexpr const char* kInScopeSql =
    "((rs.participant IS NOT NULL AND (ps.referent = $1 OR ps.territory = ANY($2::text[]))) OR "
    "(rs.participant IS NULL AND rs.territory = ANY($2::text[])))";
constexpr const char* kScopeJoin =
    " FROM entries e JOIN record_scope rs ON rs.collection = e.collection AND rs.record = e.record "
    "LEFT JOIN participant_scope ps ON ps.participant = rs.participant WHERE ";

const pg::Statements& Prepared() {
  static const pg::Statements statements = {
      {"device_by_id",
       std::string("SELECT ") + kDeviceFields + "FROM devices WHERE id = $1"},
      {"device_by_token",
       std::string("SELECT ") + kDeviceFields + "FROM devices WHERE token_hash = $1"},
      {"entries_of",
       "SELECT e.collection, e.record, e.field, e.element, e.stamp, e.kind, e.live FROM entries e "
       "JOIN unnest($1::text[], $2::text[]) AS t(c, r) ON e.collection = t.c AND e.record = t.r"},
      {"live_heads", std::string("SELECT ") + kEntryColumns +
                         " FROM entries e WHERE collection = $1 AND record = $2 AND field = $3 "
                         "AND live"},
      {"stamps_of", "SELECT stamp FROM entries WHERE collection = $1 AND record = $2"},
      {"stored_scope",
       "SELECT participant, territory FROM record_scope WHERE collection = $1 AND record = $2"},
      {"save_scope",
       "INSERT INTO record_scope VALUES($1, $2, $3, $4) ON CONFLICT (collection, record) DO "
       "UPDATE SET participant = excluded.participant, territory = excluded.territory"},
      {"drop_scope", "DELETE FROM record_scope WHERE collection = $1 AND record = $2"},
      {"stored_participant",
       "SELECT referent, territory FROM participant_scope WHERE participant = $1"},
      {"save_participant",
       "INSERT INTO participant_scope VALUES($1, $2, $3) ON CONFLICT (participant) DO UPDATE SET "
       "referent = excluded.referent, territory = excluded.territory"},
      {"drop_participant", "DELETE FROM participant_scope WHERE participant = $1"},
      {"records_of",
       "SELECT collection, record FROM record_scope WHERE participant = $1 ORDER BY 1, 2"},
      {"count_record", "SELECT count(*) FROM entries WHERE collection = $1 AND record = $2"},
      // Keeps the record's entries in their order: the n-th oldest gets the n-th new number.
      {"resequence",
       "UPDATE entries e SET seq = $3 + r.n - 1 FROM (SELECT field, element, stamp, row_number() "
       "OVER (ORDER BY seq) AS n FROM entries WHERE collection = $1 AND record = $2) r WHERE "
       "e.collection = $1 AND e.record = $2 AND e.field = r.field AND e.element = r.element AND "
       "e.stamp = r.stamp"},
      {"add_forget",
       "INSERT INTO forgets(seq, device, collection, record, made_ms, own) VALUES($1, $2, $3, $4, "
       "$5, $6)"},
      {"in_grace",
       "SELECT bool_or(f.own AND f.seq <= d.served_past) FROM forgets f JOIN devices d ON d.id = "
       "f.device WHERE f.device = "
       "$1 AND f.seq > d.pulled_past AND f.made_ms >= $2 AND ((f.collection = $3 AND f.record = "
       "$4) OR (f.collection = 'participants' AND f.record = $5))"},
      {"forget_pending",
       "SELECT 1 FROM forgets WHERE device = $1 AND seq > $2 AND ((collection = $3 AND record = "
       "$4) OR (collection = 'participants' AND record = $5)) LIMIT 1"},
      {"active_devices",
       std::string("SELECT ") + kDeviceFields + "FROM devices WHERE NOT revoked ORDER BY id"},
      {"pull_entries", std::string("SELECT ") + kEntryColumns + kScopeJoin + "e.seq > $3 AND " +
                           kInScopeSql + " ORDER BY e.seq LIMIT $4"},
      {"pull_forgets",
       "SELECT seq, collection, record FROM forgets WHERE device = $1 AND seq > $2 ORDER BY seq "
       "LIMIT $3"},
  };
  return statements;
}

// Territories are plain ids (checked on enrollment): an array literal needs no quoting.
std::string TerritoryArray(const std::vector<std::string>& territories) {
  std::string out = "{";
  for (size_t i = 0; i < territories.size(); ++i) out += (i ? "," : "") + territories[i];
  return out + "}";
}

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

std::vector<std::string> TerritoriesFromArray(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  for (char c : text) {
    if (c == '{' || c == '}' || c == '"') continue;
    if (c == ',') {
      out.push_back(std::move(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

Device ReadDevice(const pqxx::row& r) {
  return Device{r[0].as<std::string>(), r[1].as<std::string>(),
                TerritoriesFromArray(r[2].as<std::string>()), r[3].as<bool>(),
                r[4].as<uint64_t>(), r[5].as<uint64_t>(), r[6].as<int64_t>(),
                r[7].as<int64_t>(), r[8].as<int64_t>(), r[9].as<int64_t>(),
                r[10].as<int64_t>(), r[11].as<int64_t>()};
}

// The device as stored now; kUnauthenticated if it is unknown or revoked.
Result<Device> EnrolledDevice(pqxx::transaction_base& txn, const std::string& id) {
  pqxx::result found = txn.exec_prepared("device_by_id", id);
  if (found.empty() || found[0][3].as<bool>()) return NotEnrolled(id);
  return ReadDevice(found[0]);
}

Result<Entry> ReadEntry(const pqxx::row& r) {
  Entry e;
  e.key.collection = r[0].as<std::string>();
  e.key.record = r[1].as<std::string>();
  e.key.field = r[2].as<std::string>();
  e.key.element = Bytes(r[3]);
  Result<Stamp> stamp = DecodeStamp(Bytes(r[4]));
  if (!stamp.ok()) return Status(StatusCode::kCorruption, "stored stamp: " + stamp.status().message());
  e.key.stamp = std::move(stamp.value());
  e.kind = static_cast<FieldKind>(r[5].as<int>());
  e.live = r[6].as<bool>();
  if (!r[7].is_null()) e.value = Bytes(r[7]);
  if (!r[8].is_null()) {
    Result<std::vector<Stamp>> refs = DecodeStampList(Bytes(r[8]));
    if (!refs.ok()) return refs.status();
    e.refs = std::move(refs.value());
  }
  return e;
}

std::optional<std::string> OptionalText(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::string>();
}

// A nullable parameter: libpqxx sends a null pointer as NULL.
const char* Nullable(const std::optional<std::string>& text) {
  return text ? text->c_str() : nullptr;
}

// What the scope tracker reads and writes, inside one transaction.
class TxnScopes : public ScopeSource {
 public:
  // `options`: the clock and the hand-over grace (InGrace, AddForget).
  TxnScopes(pqxx::transaction_base& txn, pg::Sequence* seq, const ServerStoreOptions& options)
      : txn_(txn), seq_(seq), options_(options) {}

  Result<std::vector<Entry>> LiveHeads(const std::string& collection, const std::string& record,
                                       const std::string& field) override {
    std::vector<Entry> heads;
    for (const pqxx::row& r : txn_.exec_prepared("live_heads", collection, record, field)) {
      Result<Entry> e = ReadEntry(r);
      if (!e.ok()) return e.status();
      heads.push_back(std::move(e.value()));
    }
    return heads;
  }
  Result<std::optional<RecordScope>> StoredScope(const std::string& collection,
                                                 const std::string& record) override {
    pqxx::result r = txn_.exec_prepared("stored_scope", collection, record);
    if (r.empty()) return std::optional<RecordScope>();
    return std::optional<RecordScope>(RecordScope{OptionalText(r[0][0]), OptionalText(r[0][1])});
  }
  Status SaveScope(const std::string& collection, const std::string& record,
                   const std::optional<RecordScope>& scope) override {
    if (scope) {
      txn_.exec_prepared0("save_scope", collection, record, Nullable(scope->participant),
                          Nullable(scope->territory));
    } else {
      txn_.exec_prepared0("drop_scope", collection, record);
    }
    return Status::Ok();
  }
  Result<std::optional<ParticipantScope>> StoredParticipant(const std::string& participant) override {
    pqxx::result r = txn_.exec_prepared("stored_participant", participant);
    if (r.empty()) return std::optional<ParticipantScope>();
    return std::optional<ParticipantScope>(
        ParticipantScope{OptionalText(r[0][0]), OptionalText(r[0][1])});
  }
  Status SaveParticipant(const std::string& participant,
                         const std::optional<ParticipantScope>& scope) override {
    if (scope) {
      txn_.exec_prepared0("save_participant", participant, Nullable(scope->referent),
                          Nullable(scope->territory));
    } else {
      txn_.exec_prepared0("drop_participant", participant);
    }
    return Status::Ok();
  }
  Result<std::vector<std::pair<std::string, std::string>>> RecordsOf(
      const std::string& participant) override {
    std::vector<std::pair<std::string, std::string>> records;
    for (const pqxx::row& r : txn_.exec_prepared("records_of", participant)) {
      records.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
    }
    return records;
  }
  Status Resequence(const std::string& collection, const std::string& record) override {
    uint64_t n = txn_.exec_prepared1("count_record", collection, record)[0].as<uint64_t>();
    if (n == 0) return Status::Ok();
    txn_.exec_prepared0("resequence", collection, record, seq_->Take(n));
    return Status::Ok();
  }
  Status AddForget(const std::string& device, const std::string& collection,
                   const std::string& record, bool own) override {
    txn_.exec_prepared0("add_forget", seq_->Take(), device, collection, record,
                        options_.env->NowMillis(), own);
    return Status::Ok();
  }
  Result<std::set<std::string>> AuthorsOf(const std::string& collection,
                                          const std::string& record) override {
    std::set<std::string> authors;
    for (const pqxx::row& r : txn_.exec_prepared("stamps_of", collection, record)) {
      Result<Stamp> stamp = DecodeStamp(Bytes(r[0]));
      if (!stamp.ok()) return Status(StatusCode::kCorruption, "stored stamp: " + stamp.status().message());
      authors.insert(std::move(stamp->device));
    }
    return authors;
  }
  Result<std::vector<Device>> ActiveDevices() override {
    std::vector<Device> devices;
    for (const pqxx::row& r : txn_.exec_prepared("active_devices")) devices.push_back(ReadDevice(r));
    return devices;
  }

  // Store-side reads and writes the push and the purge share.
  // Every entry of the records (kind and state only: what the merge reads).
  std::map<EntryKey, Entry> EntriesOf(const std::set<std::pair<std::string, std::string>>& records) {
    std::vector<std::string> collections, ids;
    for (const auto& [collection, record] : records) {
      collections.push_back(collection);
      ids.push_back(record);
    }
    std::map<EntryKey, Entry> entries;
    for (const pqxx::row& r : txn_.exec_prepared("entries_of", TextArray(collections),
                                                 TextArray(ids))) {
      Result<Stamp> stamp = DecodeStamp(Bytes(r[4]));
      if (!stamp.ok()) throw std::runtime_error("stored stamp: " + stamp.status().message());
      EntryKey key{r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>(),
                   Bytes(r[3]), std::move(stamp.value())};
      Entry e{key, static_cast<FieldKind>(r[5].as<int>()), r[6].as<bool>(), {}, {}};
      entries.emplace(std::move(key), std::move(e));
    }
    return entries;
  }
  // Inserts or replaces the entries, each with a new number, a few hundred rows a statement.
  void PutEntries(const std::vector<const Entry*>& entries) {
    constexpr size_t kRows = 500, kColumns = 10;
    for (size_t at = 0; at < entries.size(); at += kRows) {
      const size_t n = std::min(kRows, entries.size() - at);
      std::vector<std::optional<std::string>> params;
      params.reserve(n * kColumns);
      std::string sql = "INSERT INTO entries VALUES";
      for (size_t i = 0; i < n; ++i) {
        const Entry& e = *entries[at + i];
        sql += i ? ",(" : "(";
        for (size_t c = 1; c <= kColumns; ++c) {
          sql += "$" + std::to_string(i * kColumns + c) + (c == 6 ? "::smallint" : "") +
                 (c == 7 ? "::boolean" : "") + (c == 10 ? "::bigint" : "") +
                 (c < kColumns ? "," : ")");
        }
        params.push_back(e.key.collection);
        params.push_back(e.key.record);
        params.push_back(e.key.field);
        params.push_back(Bytea(e.key.element));
        params.push_back(Bytea(EncodeStamp(e.key.stamp)));
        params.push_back(std::to_string(static_cast<int>(e.kind)));
        params.push_back(e.live ? "t" : "f");
        params.push_back(e.value ? std::optional<std::string>(Bytea(*e.value)) : std::nullopt);
        params.push_back(e.refs.empty() ? std::nullopt
                                        : std::optional<std::string>(Bytea(EncodeStampList(e.refs))));
        params.push_back(std::to_string(seq_->Take()));
      }
      sql += " ON CONFLICT (collection, record, field, element, stamp) DO UPDATE SET kind = "
             "excluded.kind, live = excluded.live, value = excluded.value, refs = excluded.refs, "
             "seq = excluded.seq";
      std::vector<const char*> values;
      values.reserve(params.size());
      for (const std::optional<std::string>& p : params) values.push_back(Nullable(p));
      txn_.exec_params0(sql, pqxx::prepare::make_dynamic_params(values));
    }
  }
  Result<bool> ForgetPending(const Device& device, const std::string& collection,
                             const std::string& record) override {
    Result<std::optional<RecordScope>> scope = StoredScope(collection, record);
    if (!scope.ok()) return scope.status();
    std::string owner = *scope && (*scope)->participant ? *(*scope)->participant : "";
    return !txn_.exec_prepared("forget_pending", device.id, device.cursor, collection, record,
                               owner)
                .empty();
  }
  Result<Grace> InGrace(const Device& device, const std::string& collection,
                        const std::string& record) override {
    Result<std::optional<RecordScope>> scope = StoredScope(collection, record);
    if (!scope.ok()) return scope.status();
    std::string owner = *scope && (*scope)->participant ? *(*scope)->participant : "";
    pqxx::row own = txn_.exec_prepared1("in_grace", device.id,
                                        options_.env->NowMillis() - options_.hand_over_grace_ms,
                                        collection, record, owner);
    if (own[0].is_null()) return Grace::kNone;
    return own[0].as<bool>() ? Grace::kAfterOwn : Grace::kAfterAnother;
  }

 private:
  pqxx::transaction_base& txn_;
  pg::Sequence* seq_;
  const ServerStoreOptions& options_;
};

class PostgresServerStore : public ServerStore {
 public:
  PostgresServerStore(const ServerStoreOptions& options, const std::string& conninfo,
                      size_t pool_size)
      : options_(options),
        schema_(options.schema ? options.schema : &Schema::Programme()),
        pool_(conninfo, pool_size, Prepared()) {}

  Status Initialize();

  Status Enroll(const Device& device, const std::string& token_hash,
                int64_t token_expires_ms) override;
  Status CreateEnrollmentCode(const Device& device, const std::string& code_hash,
                              int64_t code_expires_ms) override;
  Result<Device> RedeemEnrollmentCode(const std::string& device_id, const std::string& code_hash,
                                      const std::string& token_hash,
                                      int64_t token_expires_ms) override;
  Status SetNextToken(const std::string& device_id, const std::string& token_hash,
                      int64_t token_expires_ms) override;
  Result<Device> Authenticate(const std::string& token_hash) override;
  Result<std::vector<Device>> Devices() override;
  Status Revoke(const std::string& device_id) override;
  Status ConfirmWipe(const std::string& device_id) override;
  Result<wire::PushReply> Push(const Device& device, const wire::PushRequest& push) override;
  Result<wire::PullReply> Pull(const Device& device, uint64_t cursor, uint32_t limit) override;
  bool ServesSnapshots() const override { return true; }
  Result<wire::PullReply> PullSnapshot(const Device& device, const std::string& token,
                                       uint32_t limit) override;
  Result<uint64_t> Purge() override;
  Result<std::vector<AuditRow>> ReadAudit(const AuditFilter& filter, uint64_t after_id,
                                          uint32_t limit) override;
  Result<AuditHead> ReadAuditHead() override;
  Result<std::string> ScopeDump(const std::string& device_id) override;
  Result<std::vector<Entry>> LiveEntries(const std::string& collection) override;
  Result<uint64_t> CountConflicts() override;

 private:
  // `refused`: the record a scope refusal named, for the audit log.
  Status PushIn(pqxx::transaction_base& txn, const Device& caller, const wire::PushRequest& push,
                int64_t now, wire::PushReply* reply, std::pair<std::string, std::string>* refused);
  Status PurgeIn(pqxx::transaction_base& txn, uint64_t* purged);
  // Erasure and retention (sync/server/erasure.h).
  Status InErasureTransaction(bool write,
                              const std::function<Status(ErasureTxn&)>& body) override;
  // Logs what a pull served, in a transaction of its own (sync/server/pg/audit_pg.h).
  Status AuditPull(const Device& device, const wire::PullReply& reply);

  ServerStoreOptions options_;
  const Schema* schema_;
  pg::Pool pool_;
};

Status PostgresServerStore::Initialize() {
  return pool_.Run(pg::Pool::Isolation::kReadCommitted, [&](pqxx::transaction_base& txn) {
    txn.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLock);
    txn.exec0(
        "CREATE TABLE IF NOT EXISTS carnet_migrations(version integer PRIMARY KEY, "
        "applied_at timestamptz NOT NULL DEFAULT now())");
    int at = txn.exec1("SELECT coalesce(max(version), 0) FROM carnet_migrations")[0].as<int>();
    if (at > kLayoutVersion) {
      return FailedPrecondition("server store has layout " + std::to_string(at) +
                                ", newer than this carnet-server: update it");
    }
    for (int next = at + 1; next <= kLayoutVersion; ++next) {
      txn.exec0(kMigrations[next - 1]);
      txn.exec_params0("INSERT INTO carnet_migrations(version) VALUES($1)", next);
    }
    pg::Sequence::Install(txn);
    audit::InstallPostgres(txn);
    InstallErasurePostgres(txn);
    return Status::Ok();
  });
}

Status PostgresServerStore::Enroll(const Device& device, const std::string& token_hash,
                                   int64_t token_expires_ms) {
  CARNET_RETURN_IF_ERROR(CheckNewDevice(device));
  return pool_.Run(pg::Pool::Isolation::kReadCommitted, [&](pqxx::transaction_base& txn) {
    pqxx::result inserted = txn.exec_params(
        "INSERT INTO devices(id, adviser, territories, token_hash, token_issued_ms, "
        "token_expires_ms) VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING 1",
        device.id, device.adviser, TerritoryArray(device.territories), token_hash,
        options_.env->NowMillis(), token_expires_ms);
    if (inserted.empty()) {
      return Status(StatusCode::kAlreadyExists, "device '" + device.id + "' is enrolled already");
    }
    return Status::Ok();
  });
}

Status PostgresServerStore::CreateEnrollmentCode(const Device& device,
                                                 const std::string& code_hash,
                                                 int64_t code_expires_ms) {
  CARNET_RETURN_IF_ERROR(CheckNewDevice(device));
  // Until its code is exchanged, the device holds the hash of a token no one was given.
  const std::string unheld_token_hash = HashToken(NewDeviceToken(options_.env));
  return pool_.Run(pg::Pool::Isolation::kReadCommitted, [&](pqxx::transaction_base& txn) {
    pqxx::result inserted = txn.exec_params(
        "INSERT INTO devices(id, adviser, territories, token_hash, code_hash, code_expires_ms) "
        "VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING 1",
        device.id, device.adviser, TerritoryArray(device.territories), unheld_token_hash, code_hash,
        code_expires_ms);
    if (!inserted.empty()) return Status::Ok();
    pqxx::result found = txn.exec_params(
        std::string("SELECT ") + kDeviceFields + "FROM devices WHERE id = $1 FOR UPDATE",
        device.id);
    if (found.empty()) return Status(StatusCode::kBusy, "device '" + device.id + "' changed");
    CARNET_RETURN_IF_ERROR(CheckReEnrollment(ReadDevice(found[0]), device));
    txn.exec_params0("UPDATE devices SET code_hash = $1, code_expires_ms = $2, " +
                         std::string(kVoidCodeToken) + " WHERE id = $3",
                     code_hash, code_expires_ms, device.id);
    return Status::Ok();
  });
}

Result<Device> PostgresServerStore::RedeemEnrollmentCode(const std::string& device_id,
                                                         const std::string& code_hash,
                                                         const std::string& token_hash,
                                                         int64_t token_expires_ms) {
  const int64_t now = options_.env->NowMillis();
  std::optional<Device> device;
  Status status = pool_.Run(pg::Pool::Isolation::kReadCommitted, [&](pqxx::transaction_base& txn) {
    // The token is the device's next one: the code is spent at its first use (Authenticate), so
    // that a tablet whose reply was lost can exchange the code again.
    pqxx::result r = txn.exec_params(
        "UPDATE devices SET next_token_hash = $1, next_token_expires_ms = $2, "
        "next_token_from_code = true WHERE id = $3 AND code_hash = $4 AND code_expires_ms > $5 "
        "AND NOT revoked RETURNING " +
            std::string(kDeviceFields),
        token_hash, token_expires_ms, device_id, code_hash, now);
    if (r.empty()) return InvalidEnrollmentCode(device_id);
    device = ReadDevice(r[0]);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return std::move(*device);
}

Status PostgresServerStore::SetNextToken(const std::string& device_id,
                                         const std::string& token_hash,
                                         int64_t token_expires_ms) {
  return pool_.Run(pg::Pool::Isolation::kReadCommitted, [&](pqxx::transaction_base& txn) {
    pqxx::result r = txn.exec_params(
        "UPDATE devices SET next_token_hash = $1, next_token_expires_ms = $2, "
        "next_token_from_code = false WHERE id = $3 AND NOT revoked RETURNING 1",
        token_hash, token_expires_ms, device_id);
    return r.empty() ? NotEnrolled(device_id) : Status::Ok();
  });
}

Result<Device> PostgresServerStore::Authenticate(const std::string& token_hash) {
  std::optional<Device> device;
  Status status = pool_.RunPlain([&](pqxx::transaction_base& txn) {
    pqxx::result r = txn.exec_prepared("device_by_token", token_hash);
    if (!r.empty()) device = ReadDevice(r[0]);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  if (!device) {
    // A next token's first use makes it the only one.
    status = pool_.Run(pg::Pool::Isolation::kReadCommitted, [&](pqxx::transaction_base& txn) {
      pqxx::result r = txn.exec_params(
          "UPDATE devices SET token_hash = next_token_hash, token_issued_ms = $1, "
          "token_expires_ms = next_token_expires_ms, next_token_hash = NULL, "
          "next_token_expires_ms = 0, next_token_from_code = false, "
          "code_hash = CASE WHEN next_token_from_code THEN NULL ELSE code_hash END, "
          "code_expires_ms = CASE WHEN next_token_from_code THEN 0 ELSE code_expires_ms END "
          "WHERE next_token_hash = $2 RETURNING " +
              std::string(kDeviceFields),
          options_.env->NowMillis(), token_hash);
      device.reset();
      if (!r.empty()) device = ReadDevice(r[0]);
      return Status::Ok();
    });
    if (!status.ok()) return status;
  }
  if (!device) return Status(StatusCode::kUnauthenticated, "unknown device token");
  CARNET_RETURN_IF_ERROR(CheckCredential(*device, options_.env->NowMillis()));
  return std::move(*device);
}

Result<std::vector<Device>> PostgresServerStore::Devices() {
  std::vector<Device> devices;
  Status status = pool_.RunPlain([&](pqxx::transaction_base& txn) {
    for (const pqxx::row& r : txn.exec(
             std::string("SELECT ") + kDeviceFields + "FROM devices ORDER BY id")) {
      devices.push_back(ReadDevice(r));
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return devices;
}

Status PostgresServerStore::Revoke(const std::string& device_id) {
  return pool_.Run(pg::Pool::Isolation::kReadCommitted, [&](pqxx::transaction_base& txn) {
    // Its tokens and code stay: the revoked tablet must still be recognised, to be told to wipe.
    pqxx::result r = txn.exec_params(
        "UPDATE devices SET revoked = true, revoked_ms = CASE WHEN revoked THEN revoked_ms ELSE "
        "$2 END WHERE id = $1 RETURNING 1",
        device_id, options_.env->NowMillis());
    return r.empty() ? NotFound("no device '" + device_id + "'") : Status::Ok();
  });
}

Status PostgresServerStore::ConfirmWipe(const std::string& device_id) {
  return pool_.Run(pg::Pool::Isolation::kReadCommitted, [&](pqxx::transaction_base& txn) {
    pqxx::result r = txn.exec_params(
        "UPDATE devices SET wipe_confirmed_ms = $2 WHERE id = $1 AND revoked AND "
        "wipe_confirmed_ms = 0 RETURNING 1",
        device_id, options_.env->NowMillis());
    return r.empty() ? FailedPrecondition("device '" + device_id +
                                          "' is not revoked, or confirmed its wipe")
                     : Status::Ok();
  });
}

Result<wire::PushReply> PostgresServerStore::Push(const Device& caller,
                                                  const wire::PushRequest& push) {
  const int64_t now = options_.env->NowMillis();
  CARNET_RETURN_IF_ERROR(CheckPushBatch(*schema_, caller, push, now, options_.max_forward_skew_ms));
  wire::PushReply reply;
  std::pair<std::string, std::string> refused;
  Status status = pool_.Run(pg::Pool::Isolation::kReadCommitted, [&](pqxx::transaction_base& txn) {
    reply = wire::PushReply{};
    refused = {};
    return PushIn(txn, caller, push, now, &reply, &refused);
  });
  if (status.code() == StatusCode::kPermissionDenied && !refused.first.empty()) {
    // Logged though the push rolled back (sync/SECURITY.md, Scope).
    Status logged = pool_.Run(pg::Pool::Isolation::kReadCommitted, [&](pqxx::transaction_base& txn) {
      audit::AppendPostgres(txn, {audit::RefusalRow(caller, now, refused.first, refused.second,
                                                    push.ops.size())});
      return Status::Ok();
    });
    if (!logged.ok()) return logged;
  }
  if (!status.ok()) return status;
  return reply;
}

Status PostgresServerStore::PushIn(pqxx::transaction_base& txn, const Device& caller,
                                   const wire::PushRequest& push, int64_t now,
                                   wire::PushReply* reply,
                                   std::pair<std::string, std::string>* refused) {
  // First the store-wide lock (pg_sequence.h): from here on this transaction sees every
  // push committed before it, on any node, and none runs beside it.
  pg::Sequence seq(txn);
  TxnScopes source(txn, &seq, options_);
  ScopeTracker scopes(schema_, &source);
  Result<Device> fresh = EnrolledDevice(txn, caller.id);
  if (!fresh.ok()) return fresh.status();
  const Device& device = *fresh;
  std::optional<uint64_t> life_acknowledged;
  if (!push.incarnation.empty()) {
    pqxx::result life = txn.exec_params(
        "SELECT acknowledged_seq FROM store_lives WHERE device = $1 AND incarnation = $2",
        device.id, push.incarnation);
    if (!life.empty()) life_acknowledged = life[0][0].as<uint64_t>();
  }
  const IncarnationVerdict verdict =
      JudgeIncarnation(options_.env, device, push, life_acknowledged);
  if (verdict.stale) {
    *reply = StaleIncarnationReply(now);
    return Status::Ok();
  }
  std::vector<Operation> ops(push.ops.begin() + verdict.first_fresh, push.ops.end());
  reply->duplicates = static_cast<uint32_t>(verdict.first_fresh);
  // Nothing of an erased participant comes back (PROTOCOL.md, Erasure).
  std::unique_ptr<ErasureSource> erasures = NewPostgresErasureSource(txn, &seq);
  ErasureTxn erasure_txn{erasures.get(), &source, schema_, options_.env};
  Result<uint32_t> erased = DropErasedOperations(erasure_txn, device, &ops);
  if (!erased.ok()) return erased.status();
  reply->erased = *erased;
  // Who may touch what is judged on the scopes before the batch (PROTOCOL.md, Push).
  PushGuard guard(schema_, &scopes, &device);
  if (Status admitted = guard.Admit(ops); !admitted.ok()) {
    *refused = guard.refused();
    return admitted;
  }
  std::set<std::pair<std::string, std::string>> touched;
  for (const Operation& op : ops) touched.emplace(op.collection, op.record);
  // The merge reads only entries of the records it touches (an operation's refs name entries of
  // its own record): one query reads them all, and the batch's changes are written at the end,
  // the last state of each entry once, rather than a round trip per entry.
  std::map<EntryKey, Entry> state = source.EntriesOf(touched);
  std::map<EntryKey, const Entry*> changed;
  for (const Operation& op : ops) {
    // A duplicate is known by what it does, not by its sequence number (PROTOCOL.md, Push).
    std::vector<Entry> existing;
    for (const EntryKey& k : KeysTouchedBy(op)) {
      auto found = state.find(k);
      if (found != state.end()) existing.push_back(found->second);
    }
    std::vector<Entry> changes = MergeOperation(op, existing);
    for (Entry& change : changes) {
      EntryKey key = change.key;
      Entry& held = state[key] = std::move(change);
      changed[key] = &held;
    }
    ++(changes.empty() ? reply->duplicates : reply->applied);
  }
  std::vector<const Entry*> writes;
  for (const auto& [key, entry] : changed) writes.push_back(entry);
  source.PutEntries(writes);
  // A change pushed to a record being purged keeps it (PROTOCOL.md, Purge): its forgets not yet
  // pulled are withdrawn; the scope update below serves it again, whole.
  std::set<std::pair<std::string, std::string>> changed_records;
  for (const auto& [key, entry] : changed) changed_records.emplace(key.collection, key.record);
  for (const auto& [collection, record] : changed_records) {
    pqxx::result purging = txn.exec_params(
        "DELETE FROM purging WHERE collection = $1 AND record = $2 RETURNING first_forget, "
        "last_forget",
        collection, record);
    if (purging.empty()) continue;
    txn.exec_params0(
        "DELETE FROM forgets WHERE collection = $1 AND record = $2 AND seq BETWEEN $3 AND $4",
        collection, record, purging[0][0].as<int64_t>(), purging[0][1].as<int64_t>());
  }
  // Participants first: their scope decides that of the records that belong to them.
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& [collection, record] : touched) {
      if ((collection == "participants") != (pass == 0)) continue;
      CARNET_RETURN_IF_ERROR(scopes.Update(collection, record, device.id));
    }
  }
  if (Status checked = guard.Check(); !checked.ok()) {
    *refused = guard.refused();
    return checked;
  }
  // The reply acknowledges this batch, never more (PROTOCOL.md, Push).
  const uint64_t acknowledged = push.ops.empty() ? verdict.acknowledged : push.ops.back().seq;
  txn.exec_params0("UPDATE devices SET acknowledged_seq = $1, last_contact_ms = $2 WHERE id = $3",
                   std::max(device.acknowledged_seq, acknowledged), now, device.id);
  if (!push.incarnation.empty()) {
    txn.exec_params0(
        "INSERT INTO store_lives VALUES($1, $2, $3) ON CONFLICT (device, incarnation) DO UPDATE "
        "SET acknowledged_seq = greatest(store_lives.acknowledged_seq, excluded.acknowledged_seq)",
        device.id, push.incarnation, acknowledged);
  }
  audit::AppendPostgres(txn, audit::PushRows(device, now, ops));
  seq.Save();
  reply->acknowledged_seq = acknowledged;
  reply->server_time_ms = now;
  return Status::Ok();
}

Result<wire::PullReply> PostgresServerStore::Pull(const Device& caller, uint64_t cursor,
                                                  uint32_t limit) {
  limit = std::clamp<uint32_t>(limit, 1, wire::kMaxPullEntries);
  wire::PullReply reply;
  reply.server_time_ms = options_.env->NowMillis();
  // One snapshot for the entries, the forgets and the present: what it holds at or below the
  // present is all there will ever be (sync/server/pg/pg_sequence.h).
  Status status = pool_.Run(pg::Pool::Isolation::kRepeatableReadReadOnly,
                            [&](pqxx::transaction_base& txn) {
    reply.entries.clear();
    reply.forget.clear();
    Result<Device> fresh = EnrolledDevice(txn, caller.id);
    if (!fresh.ok()) return fresh.status();
    const Device& device = *fresh;
    const uint64_t present = pg::Sequence::Committed(txn);
    std::vector<std::pair<uint64_t, Entry>> entries;
    for (const pqxx::row& r : txn.exec_prepared("pull_entries", device.adviser,
                                                TerritoryArray(device.territories), cursor,
                                                int64_t{limit} + 1)) {
      Result<Entry> e = ReadEntry(r);
      if (!e.ok()) return e.status();
      entries.emplace_back(r[9].as<uint64_t>(), std::move(e.value()));
    }
    std::vector<std::pair<uint64_t, wire::RecordRef>> forgets;
    for (const pqxx::row& r :
         txn.exec_prepared("pull_forgets", device.id, cursor, int64_t{limit} + 1)) {
      forgets.emplace_back(r[0].as<uint64_t>(),
                           wire::RecordRef{r[1].as<std::string>(), r[2].as<std::string>()});
    }
    CutPullReply(std::move(entries), std::move(forgets), limit, cursor, present, &reply);
    // The erasure orders up to the reply's cursor, carried out with it (PROTOCOL.md, Erasure).
    ServeErasuresPostgres(txn, device.id, cursor, reply.next_cursor, &reply);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  CARNET_RETURN_IF_ERROR(AuditPull(caller, reply));
  // The acknowledgement needs no snapshot: the cursor the device sent is what it holds.
  status = pool_.RunPlain([&](pqxx::transaction_base& txn) {
    txn.exec_params0(
        "UPDATE devices SET cursor = $1, pulled_past = greatest(pulled_past, $1), served_past = "
        "greatest(served_past, $4), last_contact_ms = $2 WHERE id = $3",
        cursor, reply.server_time_ms, caller.id, reply.next_cursor);
    ConfirmErasuresPostgres(txn, caller.id, cursor, reply.server_time_ms);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return reply;
}

// A first pull in key order (PROTOCOL.md, Snapshot), as the SQLite store serves it.
Result<wire::PullReply> PostgresServerStore::PullSnapshot(const Device& caller,
                                                          const std::string& token,
                                                          uint32_t limit) {
  limit = std::clamp<uint32_t>(limit, 1, wire::kMaxPullEntries);
  SnapshotPosition start;
  const bool begin = token == wire::kSnapshotBegin;
  if (!begin) {
    Result<SnapshotPosition> decoded = DecodeSnapshotToken(token);
    if (!decoded.ok()) return decoded.status();
    start = *decoded;
  }
  wire::PullReply reply;
  reply.server_time_ms = options_.env->NowMillis();
  Status status = pool_.Run(pg::Pool::Isolation::kRepeatableReadReadOnly,
                            [&](pqxx::transaction_base& txn) {
    reply.entries.clear();
    reply.forget.clear();
    reply.more = false;
    SnapshotPosition position = start;
    Result<Device> fresh = EnrolledDevice(txn, caller.id);
    if (!fresh.ok()) return fresh.status();
    const Device& device = *fresh;
    const uint64_t present = pg::Sequence::Committed(txn);
    if (begin) position = SnapshotPosition{present, false, 0, std::nullopt};
    // The erasure orders up to the snapshot come with its first page (PROTOCOL.md, Erasure).
    if (begin) ServeErasuresPostgres(txn, device.id, 0, present, &reply);
    if (position.snapshot_seq > present) {
      return InvalidArgument("a snapshot token from beyond this store's present");
    }
    // First the forgets made for this device up to the snapshot, then its scope, by key. A page
    // holds one kind.
    if (!position.in_entries) {
      for (const pqxx::row& r : txn.exec_params(
               "SELECT seq, collection, record FROM forgets WHERE device = $1 AND seq > $2 AND "
               "seq <= $3 ORDER BY seq LIMIT $4",
               device.id, position.after_forget, position.snapshot_seq, int64_t{limit} + 1)) {
        if (reply.forget.size() == limit) {
          reply.more = true;
          break;
        }
        position.after_forget = r[0].as<uint64_t>();
        reply.forget.push_back(wire::RecordRef{r[1].as<std::string>(), r[2].as<std::string>()});
      }
      if (!reply.more) position.in_entries = true;
    }
    if (reply.forget.empty()) {
      const std::string select = std::string("SELECT ") + kEntryColumns + kScopeJoin;
      const std::string order =
          std::string(kInScopeSql) +
          " ORDER BY e.collection, e.record, e.field, e.element, e.stamp LIMIT $3";
      const std::string territories = TerritoryArray(device.territories);
      pqxx::result rows;
      if (position.after_entry) {
        const EntryKey& after = *position.after_entry;
        rows = txn.exec_params(select + "(e.collection, e.record, e.field, e.element, e.stamp) > "
                                        "($4, $5, $6, $7::bytea, $8::bytea) AND " + order,
                               device.adviser, territories, int64_t{limit} + 1, after.collection,
                               after.record, after.field, Bytea(after.element),
                               Bytea(EncodeStamp(after.stamp)));
      } else {
        rows = txn.exec_params(select + order, device.adviser, territories, int64_t{limit} + 1);
      }
      for (const pqxx::row& r : rows) {
        if (reply.entries.size() == limit) {
          reply.more = true;
          break;
        }
        Result<Entry> e = ReadEntry(r);
        if (!e.ok()) return e.status();
        reply.entries.push_back(std::move(e.value()));
      }
      if (!reply.entries.empty()) position.after_entry = reply.entries.back().key;
    }
    if (reply.more || !reply.forget.empty()) {  // a page of forgets is followed by the entries
      reply.more = true;
      reply.snapshot = EncodeSnapshotToken(position);
    } else {
      // Done: the tablet goes on by sequence from the snapshot's start, which brings what
      // changed during the snapshot; its next pull acknowledges the snapshot.
      reply.next_cursor = position.snapshot_seq;
      reply.more = present > position.snapshot_seq;
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  CARNET_RETURN_IF_ERROR(AuditPull(caller, reply));
  if (begin) {
    // Until the snapshot ends, this device holds back the purge: an entry that dies during the
    // snapshot reaches the tablet by sequence afterwards, so its tombstone must stay until then.
    status = pool_.RunPlain([&](pqxx::transaction_base& txn) {
      txn.exec_params0("UPDATE devices SET cursor = 0, last_contact_ms = $1 WHERE id = $2",
                       reply.server_time_ms, caller.id);
      return Status::Ok();
    });
    if (!status.ok()) return status;
  }
  return reply;
}

Result<uint64_t> PostgresServerStore::Purge() {
  uint64_t purged = 0;
  Status status = pool_.Run(pg::Pool::Isolation::kReadCommitted,
                            [&](pqxx::transaction_base& txn) { return PurgeIn(txn, &purged); });
  if (!status.ok()) return status;
  return purged;
}

Status PostgresServerStore::PurgeIn(pqxx::transaction_base& txn, uint64_t* purged) {
  *purged = 0;
  pg::Sequence seq(txn);  // forgets take numbers; and no push runs meanwhile
  TxnScopes source(txn, &seq, options_);
  ScopeTracker scopes(schema_, &source);
  Result<std::vector<Device>> devices = source.ActiveDevices();
  if (!devices.ok()) return devices.status();
  uint64_t horizon = seq.Last();
  for (const Device& d : *devices) horizon = std::min(horizon, d.cursor);

  *purged += txn.exec_params0(
                    "DELETE FROM entries e WHERE NOT live AND seq <= $1 AND NOT EXISTS (SELECT 1 "
                    "FROM entries t WHERE t.collection = e.collection AND t.record = e.record "
                    "AND t.field = '' AND t.live)",
                    horizon)
                 .affected_rows();
  std::vector<std::pair<std::string, std::string>> deleted;
  for (const pqxx::row& r :
       txn.exec("SELECT DISTINCT collection, record FROM entries e WHERE field = '' AND live AND "
                "NOT EXISTS (SELECT 1 FROM purging p WHERE p.collection = e.collection AND "
                "p.record = e.record)")) {
    deleted.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
  }
  for (const auto& [collection, record] : deleted) {
    if (collection == "participants") {
      // A deleted participant stays while records still belong to them: forgetting them on a
      // tablet would take those records along.
      Result<std::vector<std::pair<std::string, std::string>>> owned = source.RecordsOf(record);
      if (!owned.ok()) return owned.status();
      if (owned->size() > 1) continue;
    }
    uint64_t max_seq = txn.exec_params1("SELECT coalesce(max(seq), 0) FROM entries WHERE "
                                        "collection = $1 AND record = $2",
                                        collection, record)[0]
                           .as<uint64_t>();
    // Everyone who holds the record, or still has to be told to forget it, must be past it; so
    // must every device that wrote to it, which may push its operations again (a lost reply)
    // until it has pulled past them (PROTOCOL.md, Purge).
    Result<std::set<std::string>> authors = source.AuthorsOf(collection, record);
    if (!authors.ok()) return authors.status();
    std::vector<std::string> holders;
    bool everyone_past = true;
    for (const Device& d : *devices) {
      Result<bool> holds = scopes.Holds(d, collection, record);
      if (!holds.ok()) return holds.status();
      Result<bool> pending = source.ForgetPending(d, collection, record);
      if (!pending.ok()) return pending.status();
      if (!*holds && !*pending && !authors->count(d.id)) continue;
      if (d.cursor < max_seq) everyone_past = false;
      if (*holds) holders.push_back(d.id);
    }
    if (!everyone_past) continue;
    // First out of every scope, with forgets to those who hold it; its entries go once those
    // are pulled (below), so that a restore pushed meanwhile finds them (PROTOCOL.md, Purge).
    CARNET_RETURN_IF_ERROR(source.SaveScope(collection, record, std::nullopt));
    if (collection == "participants") {
      CARNET_RETURN_IF_ERROR(source.SaveParticipant(record, std::nullopt));
    }
    const uint64_t first_forget = seq.Last() + 1;
    for (const std::string& id : holders) {
      CARNET_RETURN_IF_ERROR(source.AddForget(id, collection, record, false));
    }
    txn.exec_params0("INSERT INTO purging VALUES($1, $2, $3, $4)", collection, record,
                     first_forget, seq.Last());
  }
  // Records whose forgets every active device has pulled: no tablet holds them any more.
  for (const pqxx::row& r : txn.exec(
           "DELETE FROM purging p WHERE NOT EXISTS (SELECT 1 FROM forgets f JOIN devices d ON "
           "d.id = f.device WHERE f.collection = p.collection AND f.record = p.record AND f.seq "
           "BETWEEN p.first_forget AND p.last_forget AND f.seq > d.cursor AND NOT d.revoked) "
           "RETURNING collection, record")) {
    *purged += txn.exec_params0("DELETE FROM entries WHERE collection = $1 AND record = $2",
                                r[0].as<std::string>(), r[1].as<std::string>())
                   .affected_rows();
  }
  // Forgets every device has pulled past are done with.
  txn.exec_params0("DELETE FROM forgets WHERE seq <= $1", horizon);
  seq.Save();
  return Status::Ok();
}

Status PostgresServerStore::AuditPull(const Device& device, const wire::PullReply& reply) {
  std::vector<AuditRow> rows = audit::PullRows(device, reply);
  if (rows.empty()) return Status::Ok();
  return pool_.Run(pg::Pool::Isolation::kReadCommitted, [&](pqxx::transaction_base& txn) {
    audit::AppendPostgres(txn, rows);
    return Status::Ok();
  });
}

Result<std::vector<AuditRow>> PostgresServerStore::ReadAudit(const AuditFilter& filter,
                                                              uint64_t after_id, uint32_t limit) {
  std::vector<AuditRow> rows;
  Status status = pool_.RunPlain([&](pqxx::transaction_base& txn) {
    rows = audit::ReadPostgres(txn, filter, after_id, limit);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return rows;
}

Result<AuditHead> PostgresServerStore::ReadAuditHead() {
  AuditHead head;
  Status status = pool_.RunPlain([&](pqxx::transaction_base& txn) {
    head = audit::HeadPostgres(txn);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return head;
}

Result<std::string> PostgresServerStore::ScopeDump(const std::string& device_id) {
  std::string dump;
  Status status = pool_.Run(pg::Pool::Isolation::kRepeatableReadReadOnly,
                            [&](pqxx::transaction_base& txn) {
    dump.clear();
    pqxx::result rows;
    if (device_id.empty()) {
      rows = txn.exec(std::string("SELECT ") + kEntryColumns +
                      " FROM entries e WHERE e.live AND NOT EXISTS (SELECT 1 FROM purging p "
                      "WHERE p.collection = e.collection AND p.record = e.record) ORDER BY "
                      "e.collection, e.record, e.field, e.element, e.stamp");
    } else {
      pqxx::result found = txn.exec_prepared("device_by_id", device_id);
      if (found.empty()) return NotFound("no device '" + device_id + "'");
      const Device device = ReadDevice(found[0]);
      rows = txn.exec_params(std::string("SELECT ") + kEntryColumns + kScopeJoin + "e.live AND " +
                                 kInScopeSql +
                                 " ORDER BY e.collection, e.record, e.field, e.element, e.stamp",
                             device.adviser, TerritoryArray(device.territories));
    }
    for (const pqxx::row& r : rows) {
      Result<Entry> e = ReadEntry(r);
      if (!e.ok()) return e.status();
      dump += CanonicalLine(*e);
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return dump;
}

Result<std::vector<Entry>> PostgresServerStore::LiveEntries(const std::string& collection) {
  std::vector<Entry> entries;
  Status status = pool_.Run(pg::Pool::Isolation::kRepeatableReadReadOnly,
                            [&](pqxx::transaction_base& txn) {
    entries.clear();
    for (const pqxx::row& r : txn.exec_params(
             std::string("SELECT ") + kEntryColumns +
                 " FROM entries e WHERE e.collection = $1 AND e.live ORDER BY e.record, e.field, "
                 "e.element, e.stamp",
             collection)) {
      Result<Entry> e = ReadEntry(r);
      if (!e.ok()) return e.status();
      entries.push_back(std::move(e.value()));
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return entries;
}

Result<uint64_t> PostgresServerStore::CountConflicts() {
  std::vector<Entry> heads;
  Status status = pool_.Run(pg::Pool::Isolation::kRepeatableReadReadOnly,
                            [&](pqxx::transaction_base& txn) {
    heads.clear();
    for (const pqxx::row& r : txn.exec(
             std::string("SELECT ") + kEntryColumns + " FROM entries e JOIN (" +
             kRegistersWithSeveralHeadsSql +
             ") m ON m.collection = e.collection AND m.record = e.record AND m.field = e.field "
             "WHERE e.live ORDER BY e.collection, e.record, e.field")) {
      Result<Entry> e = ReadEntry(r);
      if (!e.ok()) return e.status();
      heads.push_back(std::move(e.value()));
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return CountRegisterConflicts(*schema_, heads);
}

Status PostgresServerStore::InErasureTransaction(
    bool write, const std::function<Status(ErasureTxn&)>& body) {
  auto run = [&](pqxx::transaction_base& txn) -> Status {
    std::optional<pg::Sequence> seq;
    if (write) seq.emplace(txn);  // the store-wide lock: no push or purge runs beside it
    pg::Sequence* numbers = seq ? &*seq : nullptr;
    TxnScopes source(txn, numbers, options_);
    std::unique_ptr<ErasureSource> erasures = NewPostgresErasureSource(txn, numbers);
    ErasureTxn context{erasures.get(), &source, schema_, options_.env};
    CARNET_RETURN_IF_ERROR(body(context));
    if (seq) seq->Save();
    return Status::Ok();
  };
  return pool_.Run(write ? pg::Pool::Isolation::kReadCommitted
                         : pg::Pool::Isolation::kRepeatableReadReadOnly,
                   run);
}

}  // namespace

Result<std::unique_ptr<ServerStore>> OpenPostgresServerStore(const std::string& url,
                                                             const ServerStoreOptions& options) {
  if (options.env == nullptr) return InvalidArgument("ServerStoreOptions.env is required");
  // carnet_pool=N is ours: libpq would refuse a parameter it does not know.
  size_t pool_size = 8;
  std::string conninfo = url;
  if (size_t query = url.find('?'); query != std::string::npos) {
    conninfo = url.substr(0, query);
    std::string kept;
    size_t start = query + 1;
    while (start <= url.size()) {
      size_t end = std::min(url.find('&', start), url.size());
      std::string param = url.substr(start, end - start);
      if (param.rfind("carnet_pool=", 0) == 0) {
        pool_size = static_cast<size_t>(std::max(1, std::atoi(param.c_str() + 12)));
      } else if (!param.empty()) {
        kept += (kept.empty() ? "?" : "&") + param;
      }
      start = end + 1;
    }
    conninfo += kept;
  }
  auto store = std::make_unique<PostgresServerStore>(options, conninfo, pool_size);
  CARNET_RETURN_IF_ERROR(store->Initialize());
  return std::unique_ptr<ServerStore>(std::move(store));
}

}  // namespace carnet
