// The central records on SQLite: one file, nothing to install. A single connection behind a
// mutex: SQLite has one writer at a time anyway, and sequence numbers are then assigned in
// commit order, so a pull can never skip an entry committed later with a smaller sequence.
#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <set>

#include "carnet/merge.h"
#include "carnet/server_store.h"
#include "carnet/sqlite.h"
#include "sync/server/sqlite/audit_sqlite.h"
#include "sync/server/device_credentials.h"
#include "sync/server/conflicts.h"
#include "sync/server/erasure.h"
#include "sync/server/push.h"
#include "sync/server/scope.h"
#include "sync/server/snapshot_token.h"
#include "sync/server/pg/server_store_pg.h"

namespace carnet {
namespace {

using sqlite::Blob;

const char* const kMigrations[] = {
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;
CREATE TABLE entries(
  collection TEXT NOT NULL, record TEXT NOT NULL, field TEXT NOT NULL, element TEXT NOT NULL,
  stamp BLOB NOT NULL, kind INTEGER NOT NULL, live INTEGER NOT NULL, value BLOB, refs BLOB,
  seq INTEGER NOT NULL,
  PRIMARY KEY(collection, record, field, element, stamp)) WITHOUT ROWID;
CREATE INDEX entries_by_seq ON entries(seq);
CREATE INDEX live_tombstones ON entries(collection, record) WHERE field = '' AND live = 1;
CREATE TABLE record_scope(
  collection TEXT NOT NULL, record TEXT NOT NULL, participant TEXT, territory TEXT,
  PRIMARY KEY(collection, record)) WITHOUT ROWID;
CREATE INDEX record_scope_by_participant ON record_scope(participant);
CREATE TABLE participant_scope(
  participant TEXT PRIMARY KEY, referent TEXT, territory TEXT) WITHOUT ROWID;
CREATE TABLE devices(
  id TEXT PRIMARY KEY, adviser TEXT NOT NULL, territories TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE, revoked INTEGER NOT NULL DEFAULT 0,
  cursor INTEGER NOT NULL DEFAULT 0, acknowledged_seq INTEGER NOT NULL DEFAULT 0,
  last_contact_ms INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE TABLE forgets(
  seq INTEGER PRIMARY KEY, device TEXT NOT NULL, collection TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX forgets_by_device ON forgets(device, seq);
)sql",
    // Each opening of the store is an incarnation; `handed_out` is the greatest sequence number
    // a pull cursor of that incarnation has carried (PROTOCOL.md, Restoring the server).
    R"sql(
CREATE TABLE incarnations(epoch INTEGER PRIMARY KEY, handed_out INTEGER NOT NULL);
)sql",
    // The highest operation acknowledged to each life of each tablet's store (PROTOCOL.md, Push).
    R"sql(
CREATE TABLE store_lives(
  device TEXT NOT NULL, incarnation TEXT NOT NULL, acknowledged_seq INTEGER NOT NULL,
  PRIMARY KEY(device, incarnation)) WITHOUT ROWID;
)sql",
    // Deleted records being purged: out of every scope, their forgets (numbered first_forget to
    // last_forget) on their way, their entries kept until those are pulled (PROTOCOL.md, Purge).
    R"sql(
CREATE TABLE purging(
  collection TEXT NOT NULL, record TEXT NOT NULL, first_forget INTEGER NOT NULL,
  last_forget INTEGER NOT NULL, PRIMARY KEY(collection, record)) WITHOUT ROWID;
)sql",
    // Credentials (PROTOCOL.md, Devices): tokens that expire and are renewed (the next token
    // valid beside the current one until first used), one-time enrollment codes, the wipe of a
    // revoked device. A device waiting for its first code holds the hash of a token no one has.
    R"sql(
ALTER TABLE devices ADD COLUMN token_issued_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN token_expires_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN next_token_hash TEXT;
ALTER TABLE devices ADD COLUMN next_token_expires_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN code_hash TEXT;
ALTER TABLE devices ADD COLUMN code_expires_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN revoked_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN wipe_confirmed_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN next_token_from_code INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX devices_by_next_token ON devices(next_token_hash);
CREATE UNIQUE INDEX devices_by_code ON devices(code_hash);
)sql",
    // The grace after a hand-over (sync/SECURITY.md, Scope): when each forget was made and
    // whether the device's own push made it, the furthest a device's pulls ever acknowledged,
    // which a pull from an older cursor cannot undo, and the furthest a pull ever served it.
    R"sql(
ALTER TABLE forgets ADD COLUMN made_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE forgets ADD COLUMN own INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN pulled_past INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN served_past INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET pulled_past = cursor, served_past = cursor;
)sql",
};
constexpr int kLayoutVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);

// Which records a device sees, as SQL over record_scope (rs) and participant_scope (ps); the
// device's adviser is ?A and its territories the JSON array ?T.
constexpr const char* kInScopeSql =
    "((rs.participant IS NOT NULL AND (ps.referent = :adviser OR ps.territory IN "
    "(SELECT value FROM json_each(:territories)))) OR "
    "(rs.participant IS NULL AND rs.territory IN (SELECT value FROM json_each(:territories))))";

// A pull cursor is opaque to the tablet: the incarnation that handed it out in its high bits, a
// sequence number in the low ones.
constexpr int kCursorSeqBits = 40;
constexpr uint64_t kCursorSeqMask = (uint64_t{1} << kCursorSeqBits) - 1;
constexpr uint64_t kEpochMask = (uint64_t{1} << 23) - 1;  // cursors stay below 2^63

// Entries with the scope of their record, for kInScopeSql to filter; a condition follows.
constexpr const char* kScopedEntriesSql =
    " FROM entries e JOIN record_scope rs ON rs.collection = e.collection AND rs.record = "
    "e.record LEFT JOIN participant_scope ps ON ps.participant = rs.participant WHERE ";

constexpr const char* kEntryColumns =
    "e.collection, e.record, e.field, e.element, e.stamp, e.kind, e.live, e.value, e.refs, e.seq";

Result<Entry> ReadEntry(const sqlite::Statement& st) {
  Entry e;
  e.key.collection = st.Text(0);
  e.key.record = st.Text(1);
  e.key.field = st.Text(2);
  e.key.element = st.Text(3);
  Result<Stamp> stamp = DecodeStamp(st.Text(4));
  if (!stamp.ok()) return Status(StatusCode::kCorruption, "stored stamp: " + stamp.status().message());
  e.key.stamp = std::move(stamp.value());
  e.kind = static_cast<FieldKind>(st.Int(5));
  e.live = st.Int(6) != 0;
  e.value = st.OptionalText(7);
  Result<std::vector<Stamp>> refs = DecodeStampList(st.Text(8));
  if (!refs.ok()) return refs.status();
  e.refs = std::move(refs.value());
  return e;
}

// Every entry a query's rows hold, in its order.
Result<std::vector<Entry>> ReadEntries(sqlite::Statement& st) {
  std::vector<Entry> entries;
  Status status;
  while (st.Step(&status)) {
    Result<Entry> e = ReadEntry(st);
    if (!e.ok()) {
      st.Reset();
      return e.status();
    }
    entries.push_back(std::move(e.value()));
  }
  if (!status.ok()) return status;
  return entries;
}

std::string TerritoriesJson(const std::vector<std::string>& territories) {
  // Territory names are checked to be plain ids on enrollment: nothing to escape.
  std::string json = "[";
  for (size_t i = 0; i < territories.size(); ++i) {
    json += (i ? ",\"" : "\"") + territories[i] + "\"";
  }
  return json + "]";
}

std::vector<std::string> TerritoriesFromJson(const std::string& json) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = json.find('"', pos)) != std::string::npos) {
    size_t end = json.find('"', pos + 1);
    if (end == std::string::npos) break;
    out.push_back(json.substr(pos + 1, end - pos - 1));
    pos = end + 1;
  }
  return out;
}

// Rolls back unless committed.
class WriteTransaction {
 public:
  explicit WriteTransaction(sqlite::Database* db) : db_(db) {}
  ~WriteTransaction() {
    if (open_) (void)db_->Exec("ROLLBACK");
  }
  Status Begin() {
    CARNET_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
    open_ = true;
    return Status::Ok();
  }
  void Rollback() {
    if (open_) (void)db_->Exec("ROLLBACK");
    open_ = false;
  }
  Status Commit() {
    open_ = false;
    Status status = db_->Exec("COMMIT");
    if (!status.ok()) (void)db_->Exec("ROLLBACK");
    return status;
  }

 private:
  sqlite::Database* db_;
  bool open_ = false;
};

class SqliteServerStore : public ServerStore, private ScopeSource {
 public:
  SqliteServerStore(const ServerStoreOptions& options, std::unique_ptr<sqlite::Database> db)
      : options_(options),
        schema_(options.schema ? options.schema : &Schema::Programme()),
        db_(std::move(db)),
        scopes_(schema_, this) {}

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
  // ScopeSource: what the scope tracker reads and writes.
  Result<std::vector<Entry>> LiveHeads(const std::string& collection, const std::string& record,
                                       const std::string& field) override;
  Result<std::optional<RecordScope>> StoredScope(const std::string& collection,
                                                 const std::string& record) override;
  Status SaveScope(const std::string& collection, const std::string& record,
                   const std::optional<RecordScope>& scope) override;
  Result<std::optional<ParticipantScope>> StoredParticipant(const std::string& participant) override;
  Status SaveParticipant(const std::string& participant,
                         const std::optional<ParticipantScope>& scope) override;
  Result<std::vector<std::pair<std::string, std::string>>> RecordsOf(
      const std::string& participant) override;
  Status Resequence(const std::string& collection, const std::string& record) override;
  Status AddForget(const std::string& device, const std::string& collection,
                   const std::string& record, bool own) override;
  Result<bool> ForgetPending(const Device& device, const std::string& collection,
                             const std::string& record) override;
  Result<Grace> InGrace(const Device& device, const std::string& collection,
                        const std::string& record) override;
  Result<std::set<std::string>> AuthorsOf(const std::string& collection,
                                          const std::string& record) override;
  Result<std::vector<Device>> ActiveDevices() override;

  Result<std::optional<Device>> LoadDevice(const std::string& where, const std::string& arg);
  Result<std::optional<Entry>> FindEntry(const EntryKey& key);
  Status PutEntry(const Entry& entry);
  Status SaveNextSeq();
  // Begins a write transaction, the sequence going on from what another process on the same
  // file may have numbered since (a carnet-server command: erase, retention, purge).
  Status BeginWrite(WriteTransaction* txn);
  // Erasure and retention (sync/server/erasure.h).
  Result<bool> ScrubErasures(int64_t wait_ms) override;
  Status InErasureTransaction(bool write,
                              const std::function<Status(ErasureTxn&)>& body) override;
  Result<uint32_t> DropErased(const Device& device, std::vector<Operation>* ops);
  // Logs a push refused for its scope, in a transaction of its own: the push's rolled back.
  Status AuditRefusal(const Device& device, int64_t now, const PushGuard& guard, size_t ops);
  // A change pushed to a record being purged keeps it (PROTOCOL.md, Purge): its forgets not yet
  // pulled are withdrawn; the scope update that follows serves it again, whole.
  Status CancelPurge(const std::string& collection, const std::string& record);
  Status StartIncarnation();
  // The sequence number a pull cursor stands for in this store's history; 0 (from the start)
  // for a cursor this store cannot vouch for: handed out by an incarnation it does not know, or
  // past what that incarnation had handed out (the store was restored from a backup).
  Result<uint64_t> SeqOfCursor(const Device& device, uint64_t cursor);
  // Records that this incarnation handed out a cursor up to `seq`.
  Status NoteHandedOut(uint64_t seq);
  // The device as stored now; kUnauthenticated if it is unknown or revoked.
  Result<Device> LoadEnrolledDevice(const std::string& id);
  uint64_t CursorFor(uint64_t seq) const { return seq == 0 ? 0 : (epoch_ << kCursorSeqBits) | seq; }

  ServerStoreOptions options_;
  const Schema* schema_;
  std::unique_ptr<sqlite::Database> db_;
  ScopeTracker scopes_;
  std::mutex mutex_;
  uint64_t next_seq_ = 1;
  uint64_t epoch_ = 0;
};

Status SqliteServerStore::Initialize() {
  CARNET_RETURN_IF_ERROR(db_->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
  Result<sqlite::Statement*> version = db_->Query("PRAGMA user_version");
  if (!version.ok()) return version.status();
  Status status;
  int at = (*version)->Step(&status) ? static_cast<int>((*version)->Int(0)) : 0;
  (*version)->Reset();
  CARNET_RETURN_IF_ERROR(status);
  if (at > kLayoutVersion) {
    return FailedPrecondition("server store has layout " + std::to_string(at) +
                              ", newer than this carnet-server: update it");
  }
  for (int next = at + 1; next <= kLayoutVersion; ++next) {
    WriteTransaction txn(db_.get());
    CARNET_RETURN_IF_ERROR(txn.Begin());
    CARNET_RETURN_IF_ERROR(db_->Exec(kMigrations[next - 1]));
    CARNET_RETURN_IF_ERROR(db_->Exec("PRAGMA user_version=" + std::to_string(next)));
    CARNET_RETURN_IF_ERROR(txn.Commit());
  }
  CARNET_RETURN_IF_ERROR(audit::InstallSqlite(db_.get()));
  CARNET_RETURN_IF_ERROR(InstallErasureSqlite(db_.get()));
  Result<sqlite::Statement*> seq = db_->Query("SELECT value FROM meta WHERE key = 'next_seq'");
  if (!seq.ok()) return seq.status();
  if ((*seq)->Step(&status)) next_seq_ = std::stoull((*seq)->Text(0));
  (*seq)->Reset();
  CARNET_RETURN_IF_ERROR(status);
  return StartIncarnation();
}

Status SqliteServerStore::StartIncarnation() {
  WriteTransaction txn(db_.get());
  CARNET_RETURN_IF_ERROR(txn.Begin());
  // An incarnation that handed out no cursor vouches for none (the CLI's openings, mostly); one
  // still serving writes its row again with its first cursor.
  CARNET_RETURN_IF_ERROR(db_->Exec("DELETE FROM incarnations WHERE handed_out = 0"));
  for (;;) {
    uint64_t epoch = options_.env->RandomU64() & kEpochMask;
    if (epoch == 0) continue;
    Result<sqlite::Statement*> st =
        db_->Query("INSERT OR IGNORE INTO incarnations VALUES(?, 0)", epoch);
    if (!st.ok()) return st.status();
    CARNET_RETURN_IF_ERROR((*st)->Run());
    if (db_->Changes() == 0) continue;  // drawn before: draw again
    epoch_ = epoch;
    return txn.Commit();
  }
}

Result<uint64_t> SqliteServerStore::SeqOfCursor(const Device& device, uint64_t cursor) {
  const uint64_t epoch = cursor >> kCursorSeqBits, seq = cursor & kCursorSeqMask;
  if (cursor == 0 || epoch == epoch_) return seq;
  Result<sqlite::Statement*> st =
      db_->Query("SELECT handed_out FROM incarnations WHERE epoch = ?", epoch);
  if (!st.ok()) return st.status();
  Status status;
  std::optional<uint64_t> handed_out;
  if ((*st)->Step(&status)) handed_out = static_cast<uint64_t>((*st)->Int(0));
  (*st)->Reset();
  CARNET_RETURN_IF_ERROR(status);
  if (handed_out && seq <= *handed_out) return seq;
  options_.env->Log(LogLevel::kWarning,
                    "pull of " + device.id + " from cursor " + std::to_string(cursor) +
                        ", which this store did not hand out (restored from a backup?): served "
                        "from the start");
  return uint64_t{0};
}

Status SqliteServerStore::NoteHandedOut(uint64_t seq) {
  Result<sqlite::Statement*> handed = db_->Query(
      "INSERT INTO incarnations VALUES(?, ?) ON CONFLICT(epoch) DO UPDATE SET handed_out = "
      "MAX(handed_out, excluded.handed_out)",
      epoch_, seq);
  if (!handed.ok()) return handed.status();
  return (*handed)->Run();
}

Result<Device> SqliteServerStore::LoadEnrolledDevice(const std::string& id) {
  Result<std::optional<Device>> fresh = LoadDevice("id", id);
  if (!fresh.ok()) return fresh.status();
  if (!fresh->has_value() || (*fresh)->revoked) return NotEnrolled(id);
  return std::move(**fresh);
}

Status SqliteServerStore::SaveNextSeq() {
  Result<sqlite::Statement*> st =
      db_->Query("INSERT OR REPLACE INTO meta VALUES('next_seq', ?)", std::to_string(next_seq_));
  return st.ok() ? (*st)->Run() : st.status();
}

Result<std::optional<Device>> SqliteServerStore::LoadDevice(const std::string& where,
                                                            const std::string& arg) {
  Result<sqlite::Statement*> st = db_->Query(
      "SELECT id, adviser, territories, revoked, cursor, acknowledged_seq, last_contact_ms, "
      "token_issued_ms, token_expires_ms, code_expires_ms, revoked_ms, wipe_confirmed_ms "
      "FROM devices WHERE " + where + " = ?", arg);
  if (!st.ok()) return st.status();
  Status status;
  std::optional<Device> device;
  if ((*st)->Step(&status)) {
    sqlite::Statement& s = **st;
    device = Device{s.Text(0), s.Text(1), TerritoriesFromJson(s.Text(2)), s.Int(3) != 0,
                    static_cast<uint64_t>(s.Int(4)), static_cast<uint64_t>(s.Int(5)), s.Int(6),
                    s.Int(7), s.Int(8), s.Int(9), s.Int(10), s.Int(11)};
  }
  (*st)->Reset();
  if (!status.ok()) return status;
  return device;
}

Status SqliteServerStore::Enroll(const Device& device, const std::string& token_hash,
                                 int64_t token_expires_ms) {
  CARNET_RETURN_IF_ERROR(CheckNewDevice(device));
  std::lock_guard<std::mutex> lock(mutex_);
  Result<std::optional<Device>> existing = LoadDevice("id", device.id);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    return Status(StatusCode::kAlreadyExists, "device '" + device.id + "' is enrolled already");
  }
  Result<sqlite::Statement*> st = db_->Query(
      "INSERT INTO devices(id, adviser, territories, token_hash, token_issued_ms, "
      "token_expires_ms) VALUES(?, ?, ?, ?, ?, ?)",
      device.id, device.adviser, TerritoriesJson(device.territories), token_hash,
      options_.env->NowMillis(), token_expires_ms);
  return st.ok() ? (*st)->Run() : st.status();
}

Status SqliteServerStore::CreateEnrollmentCode(const Device& device, const std::string& code_hash,
                                               int64_t code_expires_ms) {
  CARNET_RETURN_IF_ERROR(CheckNewDevice(device));
  std::lock_guard<std::mutex> lock(mutex_);
  WriteTransaction txn(db_.get());
  CARNET_RETURN_IF_ERROR(txn.Begin());
  Result<std::optional<Device>> existing = LoadDevice("id", device.id);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    CARNET_RETURN_IF_ERROR(CheckReEnrollment(**existing, device));
    Result<sqlite::Statement*> st = db_->Query(
        "UPDATE devices SET code_hash = ?, code_expires_ms = ?, " + std::string(kVoidCodeToken) +
            " WHERE id = ?",
        code_hash, code_expires_ms, device.id);
    if (!st.ok()) return st.status();
    CARNET_RETURN_IF_ERROR((*st)->Run());
  } else {
    Result<sqlite::Statement*> st = db_->Query(
        "INSERT INTO devices(id, adviser, territories, token_hash, code_hash, code_expires_ms) "
        "VALUES(?, ?, ?, ?, ?, ?)",
        device.id, device.adviser, TerritoriesJson(device.territories),
        HashToken(NewDeviceToken(options_.env)), code_hash, code_expires_ms);
    if (!st.ok()) return st.status();
    CARNET_RETURN_IF_ERROR((*st)->Run());
  }
  return txn.Commit();
}

Result<Device> SqliteServerStore::RedeemEnrollmentCode(const std::string& device_id,
                                                       const std::string& code_hash,
                                                       const std::string& token_hash,
                                                       int64_t token_expires_ms) {
  const int64_t now = options_.env->NowMillis();
  std::lock_guard<std::mutex> lock(mutex_);
  WriteTransaction txn(db_.get());
  CARNET_RETURN_IF_ERROR(txn.Begin());
  // The token is the device's next one: the code is spent at its first use (Authenticate), so
  // that a tablet whose reply was lost can exchange the code again.
  Result<sqlite::Statement*> st = db_->Query(
      "UPDATE devices SET next_token_hash = ?, next_token_expires_ms = ?, "
      "next_token_from_code = 1 WHERE id = ? AND code_hash = ? AND code_expires_ms > ? AND "
      "revoked = 0",
      token_hash, token_expires_ms, device_id, code_hash, now);
  if (!st.ok()) return st.status();
  CARNET_RETURN_IF_ERROR((*st)->Run());
  if (db_->Changes() == 0) return InvalidEnrollmentCode(device_id);
  Result<std::optional<Device>> device = LoadDevice("id", device_id);
  if (!device.ok()) return device.status();
  CARNET_RETURN_IF_ERROR(txn.Commit());
  return std::move(**device);
}

Status SqliteServerStore::SetNextToken(const std::string& device_id, const std::string& token_hash,
                                       int64_t token_expires_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  Result<sqlite::Statement*> st = db_->Query(
      "UPDATE devices SET next_token_hash = ?, next_token_expires_ms = ?, next_token_from_code = 0 "
      "WHERE id = ? AND revoked = 0",
      token_hash, token_expires_ms, device_id);
  if (!st.ok()) return st.status();
  CARNET_RETURN_IF_ERROR((*st)->Run());
  if (db_->Changes() == 0) return NotEnrolled(device_id);
  return Status::Ok();
}

Result<Device> SqliteServerStore::Authenticate(const std::string& token_hash) {
  std::lock_guard<std::mutex> lock(mutex_);
  Result<std::optional<Device>> device = LoadDevice("token_hash", token_hash);
  if (!device.ok()) return device.status();
  // A next token's first use makes it the only one. Looked up first: a request with an unknown
  // token must not take the file's write lock.
  Result<std::optional<Device>> by_next =
      device->has_value() ? std::optional<Device>() : LoadDevice("next_token_hash", token_hash);
  if (!by_next.ok()) return by_next.status();
  if (by_next->has_value()) {
    Result<sqlite::Statement*> st = db_->Query(
        "UPDATE devices SET token_hash = next_token_hash, token_issued_ms = ?, "
        "token_expires_ms = next_token_expires_ms, next_token_hash = NULL, "
        "next_token_expires_ms = 0, next_token_from_code = 0, "
        "code_hash = CASE WHEN next_token_from_code = 1 THEN NULL ELSE code_hash END, "
        "code_expires_ms = CASE WHEN next_token_from_code = 1 THEN 0 ELSE code_expires_ms END "
        "WHERE next_token_hash = ?",
        options_.env->NowMillis(), token_hash);
    if (!st.ok()) return st.status();
    CARNET_RETURN_IF_ERROR((*st)->Run());
    if (db_->Changes() > 0) device = LoadDevice("token_hash", token_hash);
    if (!device.ok()) return device.status();
  }
  if (!device->has_value()) return Status(StatusCode::kUnauthenticated, "unknown device token");
  CARNET_RETURN_IF_ERROR(CheckCredential(**device, options_.env->NowMillis()));
  return std::move(**device);
}

Result<std::vector<Device>> SqliteServerStore::Devices() {
  std::lock_guard<std::mutex> lock(mutex_);
  Result<sqlite::Statement*> st = db_->Query("SELECT id FROM devices ORDER BY id");
  if (!st.ok()) return st.status();
  std::vector<std::string> ids;
  Status status;
  while ((*st)->Step(&status)) ids.push_back((*st)->Text(0));
  CARNET_RETURN_IF_ERROR(status);
  std::vector<Device> devices;
  for (const std::string& id : ids) {
    Result<std::optional<Device>> device = LoadDevice("id", id);
    if (!device.ok()) return device.status();
    if (device->has_value()) devices.push_back(std::move(**device));
  }
  return devices;
}

Result<std::vector<Device>> SqliteServerStore::ActiveDevices() {
  Result<sqlite::Statement*> st = db_->Query("SELECT id FROM devices WHERE revoked = 0 ORDER BY id");
  if (!st.ok()) return st.status();
  std::vector<std::string> ids;
  Status status;
  while ((*st)->Step(&status)) ids.push_back((*st)->Text(0));
  CARNET_RETURN_IF_ERROR(status);
  std::vector<Device> devices;
  for (const std::string& id : ids) {
    Result<std::optional<Device>> device = LoadDevice("id", id);
    if (!device.ok()) return device.status();
    if (device->has_value()) devices.push_back(std::move(**device));
  }
  return devices;
}

Status SqliteServerStore::Revoke(const std::string& device_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Its tokens and code stay: the revoked tablet must still be recognised, to be told to wipe.
  Result<sqlite::Statement*> st = db_->Query(
      "UPDATE devices SET revoked = 1, revoked_ms = CASE WHEN revoked = 1 THEN revoked_ms ELSE ? "
      "END WHERE id = ?",
      options_.env->NowMillis(), device_id);
  if (!st.ok()) return st.status();
  CARNET_RETURN_IF_ERROR((*st)->Run());
  if (db_->Changes() == 0) return NotFound("no device '" + device_id + "'");
  return Status::Ok();
}

Status SqliteServerStore::ConfirmWipe(const std::string& device_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Result<sqlite::Statement*> st = db_->Query(
      "UPDATE devices SET wipe_confirmed_ms = ? WHERE id = ? AND revoked = 1 AND "
      "wipe_confirmed_ms = 0",
      options_.env->NowMillis(), device_id);
  if (!st.ok()) return st.status();
  CARNET_RETURN_IF_ERROR((*st)->Run());
  if (db_->Changes() == 0) {
    return FailedPrecondition("device '" + device_id + "' is not revoked, or confirmed its wipe");
  }
  return Status::Ok();
}

Result<std::optional<Entry>> SqliteServerStore::FindEntry(const EntryKey& key) {
  Result<sqlite::Statement*> st = db_->Query(
      "SELECT kind, live FROM entries WHERE collection = ? AND record = ? AND field = ? AND "
      "element = ? AND stamp = ?",
      key.collection, key.record, key.field, key.element, Blob{EncodeStamp(key.stamp)});
  if (!st.ok()) return st.status();
  Status status;
  std::optional<Entry> found;
  if ((*st)->Step(&status)) {
    found = Entry{key, static_cast<FieldKind>((*st)->Int(0)), (*st)->Int(1) != 0, {}, {}};
  }
  (*st)->Reset();
  if (!status.ok()) return status;
  return found;
}

Status SqliteServerStore::PutEntry(const Entry& e) {
  std::string refs = EncodeStampList(e.refs);
  Result<sqlite::Statement*> st = db_->Query(
      "INSERT OR REPLACE INTO entries VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", e.key.collection,
      e.key.record, e.key.field, e.key.element, Blob{EncodeStamp(e.key.stamp)},
      static_cast<int64_t>(e.kind), int64_t{e.live}, e.value,
      e.refs.empty() ? std::optional<std::string>() : std::optional<std::string>(refs),
      next_seq_++);
  return st.ok() ? (*st)->Run() : st.status();
}

Result<std::vector<Entry>> SqliteServerStore::LiveHeads(const std::string& collection,
                                                        const std::string& record,
                                                        const std::string& field) {
  Result<sqlite::Statement*> st = db_->Query(
      std::string("SELECT ") + kEntryColumns +
          " FROM entries e WHERE collection = ? AND record = ? AND field = ? AND live = 1",
      collection, record, field);
  if (!st.ok()) return st.status();
  return ReadEntries(**st);
}

Result<std::optional<RecordScope>> SqliteServerStore::StoredScope(const std::string& collection,
                                                                  const std::string& record) {
  Result<sqlite::Statement*> st = db_->Query(
      "SELECT participant, territory FROM record_scope WHERE collection = ? AND record = ?",
      collection, record);
  if (!st.ok()) return st.status();
  Status status;
  std::optional<RecordScope> scope;
  if ((*st)->Step(&status)) scope = RecordScope{(*st)->OptionalText(0), (*st)->OptionalText(1)};
  (*st)->Reset();
  if (!status.ok()) return status;
  return scope;
}

Status SqliteServerStore::SaveScope(const std::string& collection, const std::string& record,
                                    const std::optional<RecordScope>& scope) {
  Result<sqlite::Statement*> st =
      scope ? db_->Query("INSERT OR REPLACE INTO record_scope VALUES(?, ?, CAST(? AS TEXT), "
                         "CAST(? AS TEXT))",
                         collection, record, scope->participant, scope->territory)
            : db_->Query("DELETE FROM record_scope WHERE collection = ? AND record = ?",
                         collection, record);
  return st.ok() ? (*st)->Run() : st.status();
}

Result<std::optional<ParticipantScope>> SqliteServerStore::StoredParticipant(
    const std::string& participant) {
  Result<sqlite::Statement*> st = db_->Query(
      "SELECT referent, territory FROM participant_scope WHERE participant = ?", participant);
  if (!st.ok()) return st.status();
  Status status;
  std::optional<ParticipantScope> scope;
  if ((*st)->Step(&status)) {
    scope = ParticipantScope{(*st)->OptionalText(0), (*st)->OptionalText(1)};
  }
  (*st)->Reset();
  if (!status.ok()) return status;
  return scope;
}

Status SqliteServerStore::SaveParticipant(const std::string& participant,
                                          const std::optional<ParticipantScope>& scope) {
  Result<sqlite::Statement*> st =
      scope ? db_->Query("INSERT OR REPLACE INTO participant_scope VALUES(?, CAST(? AS TEXT), "
                         "CAST(? AS TEXT))",
                         participant, scope->referent, scope->territory)
            : db_->Query("DELETE FROM participant_scope WHERE participant = ?", participant);
  return st.ok() ? (*st)->Run() : st.status();
}

Result<std::vector<std::pair<std::string, std::string>>> SqliteServerStore::RecordsOf(
    const std::string& participant) {
  Result<sqlite::Statement*> st = db_->Query(
      "SELECT collection, record FROM record_scope WHERE participant = ? ORDER BY 1, 2",
      participant);
  if (!st.ok()) return st.status();
  std::vector<std::pair<std::string, std::string>> records;
  Status status;
  while ((*st)->Step(&status)) records.emplace_back((*st)->Text(0), (*st)->Text(1));
  if (!status.ok()) return status;
  return records;
}

Status SqliteServerStore::Resequence(const std::string& collection, const std::string& record) {
  Result<sqlite::Statement*> keys = db_->Query(
      "SELECT field, element, stamp FROM entries WHERE collection = ? AND record = ? "
      "ORDER BY seq",
      collection, record);
  if (!keys.ok()) return keys.status();
  std::vector<std::array<std::string, 3>> rows;
  Status status;
  while ((*keys)->Step(&status)) rows.push_back({(*keys)->Text(0), (*keys)->Text(1), (*keys)->Text(2)});
  CARNET_RETURN_IF_ERROR(status);
  for (const auto& [field, element, stamp] : rows) {
    Result<sqlite::Statement*> st = db_->Query(
        "UPDATE entries SET seq = ? WHERE collection = ? AND record = ? AND field = ? AND "
        "element = ? AND stamp = ?",
        next_seq_++, collection, record, field, element, Blob{stamp});
    if (!st.ok()) return st.status();
    CARNET_RETURN_IF_ERROR((*st)->Run());
  }
  return Status::Ok();
}

Status SqliteServerStore::CancelPurge(const std::string& collection, const std::string& record) {
  Result<sqlite::Statement*> withdraw = db_->Query(
      "DELETE FROM forgets WHERE collection = :collection AND record = :record AND seq BETWEEN "
      "(SELECT first_forget FROM purging WHERE collection = :collection AND record = :record) AND "
      "(SELECT last_forget FROM purging WHERE collection = :collection AND record = :record)",
      collection, record);
  if (!withdraw.ok()) return withdraw.status();
  CARNET_RETURN_IF_ERROR((*withdraw)->Run());
  Result<sqlite::Statement*> unmark =
      db_->Query("DELETE FROM purging WHERE collection = ? AND record = ?", collection, record);
  return unmark.ok() ? (*unmark)->Run() : unmark.status();
}

Status SqliteServerStore::AddForget(const std::string& device, const std::string& collection,
                                    const std::string& record, bool own) {
  Result<sqlite::Statement*> st = db_->Query(
      "INSERT INTO forgets(seq, device, collection, record, made_ms, own) VALUES(?, ?, ?, ?, ?, ?)",
      next_seq_++, device, collection, record, options_.env->NowMillis(), int64_t{own});
  return st.ok() ? (*st)->Run() : st.status();
}

Result<std::set<std::string>> SqliteServerStore::AuthorsOf(const std::string& collection,
                                                           const std::string& record) {
  Result<sqlite::Statement*> st = db_->Query(
      "SELECT stamp FROM entries WHERE collection = ? AND record = ?", collection, record);
  if (!st.ok()) return st.status();
  std::set<std::string> authors;
  Status status;
  while ((*st)->Step(&status)) {
    Result<Stamp> stamp = DecodeStamp((*st)->Text(0));
    if (!stamp.ok()) {
      (*st)->Reset();
      return Status(StatusCode::kCorruption, "stored stamp: " + stamp.status().message());
    }
    authors.insert(stamp->device);
  }
  if (!status.ok()) return status;
  return authors;
}

Result<bool> SqliteServerStore::ForgetPending(const Device& device, const std::string& collection,
                                              const std::string& record) {
  Result<std::optional<RecordScope>> scope = StoredScope(collection, record);
  if (!scope.ok()) return scope.status();
  std::string owner = *scope && (*scope)->participant ? *(*scope)->participant : "";
  Result<sqlite::Statement*> st = db_->Query(
      "SELECT 1 FROM forgets WHERE device = ? AND seq > ? AND ((collection = ? AND record = ?) "
      "OR (collection = 'participants' AND record = ?)) LIMIT 1",
      device.id, device.cursor, collection, record, owner);
  if (!st.ok()) return st.status();
  Status status;
  bool pending = (*st)->Step(&status);
  (*st)->Reset();
  if (!status.ok()) return status;
  return pending;
}

Result<Grace> SqliteServerStore::InGrace(const Device& device, const std::string& collection,
                                         const std::string& record) {
  Result<std::optional<RecordScope>> scope = StoredScope(collection, record);
  if (!scope.ok()) return scope.status();
  std::string owner = *scope && (*scope)->participant ? *(*scope)->participant : "";
  Result<sqlite::Statement*> st = db_->Query(
      "SELECT max(f.own AND f.seq <= d.served_past) FROM forgets f JOIN devices d ON d.id = "
      "f.device WHERE f.device = ? AND "
      "f.seq > d.pulled_past AND f.made_ms >= ? AND ((f.collection = ? AND f.record = ?) OR "
      "(f.collection = 'participants' AND f.record = ?))",
      device.id, options_.env->NowMillis() - options_.hand_over_grace_ms, collection, record,
      owner);
  if (!st.ok()) return st.status();
  Status status;
  Grace grace = Grace::kNone;
  if ((*st)->Step(&status) && !(*st)->IsNull(0)) {
    grace = (*st)->Int(0) ? Grace::kAfterOwn : Grace::kAfterAnother;
  }
  (*st)->Reset();
  if (!status.ok()) return status;
  return grace;
}

Status SqliteServerStore::AuditRefusal(const Device& device, int64_t now,
                                       const PushGuard& guard, size_t ops) {
  WriteTransaction txn(db_.get());
  CARNET_RETURN_IF_ERROR(BeginWrite(&txn));
  const auto& [collection, record] = guard.refused();
  CARNET_RETURN_IF_ERROR(audit::AppendSqlite(
      db_.get(), {audit::RefusalRow(device, now, collection, record, ops)}));
  return txn.Commit();
}

Result<wire::PushReply> SqliteServerStore::Push(const Device& caller,
                                                const wire::PushRequest& push) {
  const int64_t now = options_.env->NowMillis();
  CARNET_RETURN_IF_ERROR(
      CheckPushBatch(*schema_, caller, push, now, options_.max_forward_skew_ms));
  std::lock_guard<std::mutex> lock(mutex_);
  Result<Device> fresh = LoadEnrolledDevice(caller.id);
  if (!fresh.ok()) return fresh.status();
  const Device& device = *fresh;
  std::optional<uint64_t> life_acknowledged;
  if (!push.incarnation.empty()) {
    Result<sqlite::Statement*> life = db_->Query(
        "SELECT acknowledged_seq FROM store_lives WHERE device = ? AND incarnation = ?", device.id,
        push.incarnation);
    if (!life.ok()) return life.status();
    Status status;
    if ((*life)->Step(&status)) life_acknowledged = static_cast<uint64_t>((*life)->Int(0));
    (*life)->Reset();
    CARNET_RETURN_IF_ERROR(status);
  }
  const IncarnationVerdict verdict =
      JudgeIncarnation(options_.env, device, push, life_acknowledged);
  if (verdict.stale) return StaleIncarnationReply(now);
  std::vector<Operation> ops(push.ops.begin() + verdict.first_fresh, push.ops.end());

  WriteTransaction txn(db_.get());
  CARNET_RETURN_IF_ERROR(BeginWrite(&txn));
  const uint64_t first_seq = next_seq_;
  PushGuard guard(schema_, &scopes_, &device);
  auto fail = [&](Status status) {
    next_seq_ = first_seq;  // the transaction rolls back the sequence numbers it used
    if (status.code() == StatusCode::kPermissionDenied && !guard.refused().first.empty()) {
      txn.Rollback();
      Status logged = AuditRefusal(device, now, guard, ops.size());
      if (!logged.ok()) return logged;
    }
    return status;
  };
  Result<uint32_t> erased = DropErased(device, &ops);  // PROTOCOL.md, Erasure
  if (!erased.ok()) return fail(erased.status());

  // Who may touch what is judged on the scopes before the batch (PROTOCOL.md, Push).
  if (Status admitted = guard.Admit(ops); !admitted.ok()) return fail(admitted);
  std::set<std::pair<std::string, std::string>> touched, changed;
  wire::PushReply reply;
  reply.duplicates = static_cast<uint32_t>(verdict.first_fresh);
  reply.erased = *erased;
  for (const Operation& op : ops) {
    touched.emplace(op.collection, op.record);
    // A duplicate is known by what it does, not by its sequence number: a store reinstalled
    // under the same device id counts from 1 again (PROTOCOL.md, Push).
    std::vector<Entry> existing;
    for (const EntryKey& k : KeysTouchedBy(op)) {
      Result<std::optional<Entry>> found = FindEntry(k);
      if (!found.ok()) return fail(found.status());
      if (found->has_value()) existing.push_back(std::move(**found));
    }
    std::vector<Entry> changes = MergeOperation(op, existing);
    for (const Entry& change : changes) {
      Status put = PutEntry(change);
      if (!put.ok()) return fail(put);
    }
    if (changes.empty()) {
      ++reply.duplicates;
    } else {
      ++reply.applied;
      changed.emplace(op.collection, op.record);
    }
  }
  for (const auto& [collection, record] : changed) {
    if (Status kept = CancelPurge(collection, record); !kept.ok()) return fail(kept);
  }
  // Participants first: their scope decides that of the records that belong to them.
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& [collection, record] : touched) {
      if ((collection == "participants") != (pass == 0)) continue;
      Status updated = scopes_.Update(collection, record, device.id);
      if (!updated.ok()) return fail(updated);
    }
  }
  if (Status checked = guard.Check(); !checked.ok()) return fail(checked);
  // The reply acknowledges this batch, never more: a reinstalled store has not made the
  // operations of its former life, and would refuse their acknowledgement.
  const uint64_t acknowledged = push.ops.empty() ? verdict.acknowledged : push.ops.back().seq;
  Result<sqlite::Statement*> progress = db_->Query(
      "UPDATE devices SET acknowledged_seq = ?, last_contact_ms = ? WHERE id = ?",
      std::max(device.acknowledged_seq, acknowledged), now, device.id);
  if (!progress.ok()) return fail(progress.status());
  Status saved = (*progress)->Run();
  if (saved.ok() && !push.incarnation.empty()) {
    Result<sqlite::Statement*> life = db_->Query(
        "INSERT INTO store_lives VALUES(?, ?, ?) ON CONFLICT DO UPDATE SET acknowledged_seq = "
        "max(acknowledged_seq, excluded.acknowledged_seq)",
        device.id, push.incarnation, acknowledged);
    saved = life.ok() ? (*life)->Run() : life.status();
  }
  if (saved.ok()) saved = SaveNextSeq();
  if (saved.ok()) saved = audit::AppendSqlite(db_.get(), audit::PushRows(device, now, ops));
  if (saved.ok()) saved = txn.Commit();
  if (!saved.ok()) return fail(saved);
  reply.acknowledged_seq = acknowledged;
  reply.server_time_ms = now;
  return reply;
}

Result<wire::PullReply> SqliteServerStore::Pull(const Device& caller, uint64_t pull_cursor,
                                                uint32_t limit) {
  limit = std::clamp<uint32_t>(limit, 1, wire::kMaxPullEntries);
  std::lock_guard<std::mutex> lock(mutex_);
  WriteTransaction txn(db_.get());
  CARNET_RETURN_IF_ERROR(BeginWrite(&txn));
  Result<Device> fresh = LoadEnrolledDevice(caller.id);
  if (!fresh.ok()) return fresh.status();
  const Device& device = *fresh;
  Result<uint64_t> from = SeqOfCursor(device, pull_cursor);
  if (!from.ok()) return from.status();
  const uint64_t cursor = *from;
  const std::string territories = TerritoriesJson(device.territories);
  wire::PullReply reply;
  reply.server_time_ms = options_.env->NowMillis();

  std::vector<std::pair<uint64_t, Entry>> entries;
  {
    Result<sqlite::Statement*> st = db_->Query(
        std::string("SELECT ") + kEntryColumns + kScopedEntriesSql + "e.seq > :cursor AND " +
            kInScopeSql +
            " ORDER BY e.seq LIMIT :limit",
        cursor, device.adviser, territories, int64_t{limit} + 1);
    if (!st.ok()) return st.status();
    Status status;
    while ((*st)->Step(&status)) {
      Result<Entry> e = ReadEntry(**st);
      if (!e.ok()) {
        (*st)->Reset();
        return e.status();
      }
      entries.emplace_back(static_cast<uint64_t>((*st)->Int(9)), std::move(e.value()));
    }
    CARNET_RETURN_IF_ERROR(status);
  }
  std::vector<std::pair<uint64_t, wire::RecordRef>> forgets;
  {
    Result<sqlite::Statement*> st = db_->Query(
        "SELECT seq, collection, record FROM forgets WHERE device = ? AND seq > ? ORDER BY seq "
        "LIMIT ?",
        device.id, cursor, int64_t{limit} + 1);
    if (!st.ok()) return st.status();
    Status status;
    while ((*st)->Step(&status)) {
      forgets.emplace_back(static_cast<uint64_t>((*st)->Int(0)),
                           wire::RecordRef{(*st)->Text(1), (*st)->Text(2)});
    }
    CARNET_RETURN_IF_ERROR(status);
  }
  // A batch holds entries only, or forgets only, in sequence order: the tablet applies a batch's
  // entries before its forgets, so an entry that follows a forget must wait for the next batch.
  size_t e = 0, f = 0;
  uint64_t last = cursor;
  const bool forgets_first = !forgets.empty() && (entries.empty() || forgets[0].first < entries[0].first);
  while (reply.entries.size() + reply.forget.size() < limit) {
    if (forgets_first) {
      if (f == forgets.size() || (e < entries.size() && entries[e].first < forgets[f].first)) break;
      last = forgets[f].first;
      reply.forget.push_back(forgets[f++].second);
    } else {
      if (e == entries.size() || (f < forgets.size() && forgets[f].first < entries[e].first)) break;
      last = entries[e].first;
      reply.entries.push_back(std::move(entries[e++].second));
    }
  }
  reply.more = e < entries.size() || f < forgets.size();
  // Nothing more in scope: the cursor moves to the present, so that this device's
  // acknowledgement lets the purge go forward.
  const uint64_t next = reply.more ? last : std::max(last, next_seq_ - 1);
  if (next > kCursorSeqMask) return Internal("sequence numbers exhausted the pull cursor");
  reply.next_cursor = CursorFor(next);
  CARNET_RETURN_IF_ERROR(NoteHandedOut(next));
  // The erasure orders up to the reply's cursor, carried out with it (PROTOCOL.md, Erasure).
  CARNET_RETURN_IF_ERROR(
      ServeErasuresSqlite(db_.get(), device.id, cursor, next, reply.server_time_ms, &reply));

  Result<sqlite::Statement*> ack = db_->Query(
      "UPDATE devices SET cursor = ?, pulled_past = max(pulled_past, ?), served_past = "
      "max(served_past, ?), last_contact_ms = ? WHERE id = ?",
      cursor, cursor, next, reply.server_time_ms, device.id);
  if (!ack.ok()) return ack.status();
  CARNET_RETURN_IF_ERROR((*ack)->Run());
  CARNET_RETURN_IF_ERROR(audit::AppendSqlite(db_.get(), audit::PullRows(device, reply)));
  CARNET_RETURN_IF_ERROR(txn.Commit());
  return reply;
}

// A first pull in key order (PROTOCOL.md, Snapshot): a tablet's entries table is keyed like
// ours, so pages in key order are written as a bulk load, where pages in sequence order scatter
// over the whole B-tree at every commit (about three times slower on the tablet).
Result<wire::PullReply> SqliteServerStore::PullSnapshot(const Device& caller,
                                                        const std::string& token,
                                                        uint32_t limit) {
  limit = std::clamp<uint32_t>(limit, 1, wire::kMaxPullEntries);
  SnapshotPosition position;
  if (token != wire::kSnapshotBegin) {
    Result<SnapshotPosition> decoded = DecodeSnapshotToken(token);
    if (!decoded.ok()) return decoded.status();
    position = *decoded;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  WriteTransaction txn(db_.get());
  CARNET_RETURN_IF_ERROR(BeginWrite(&txn));
  Result<Device> fresh = LoadEnrolledDevice(caller.id);
  if (!fresh.ok()) return fresh.status();
  const Device& device = *fresh;
  wire::PullReply reply;
  reply.server_time_ms = options_.env->NowMillis();

  // The token carries the snapshot's sequence as a cursor, so that a store restored from a
  // backup, which cannot vouch for it, starts the snapshot over.
  uint64_t snapshot_seq = 0;
  if (token != wire::kSnapshotBegin) {
    Result<uint64_t> seq = SeqOfCursor(device, position.snapshot_seq);
    if (!seq.ok()) return seq.status();
    snapshot_seq = *seq;
  }
  if (snapshot_seq == 0) {
    snapshot_seq = next_seq_ - 1;
    position = SnapshotPosition{CursorFor(snapshot_seq), false, 0, std::nullopt};
    // Until the snapshot ends, this device holds back the purge: an entry that dies during the
    // snapshot reaches the tablet by sequence afterwards, so its tombstone must stay until then.
    Result<sqlite::Statement*> hold = db_->Query(
        "UPDATE devices SET cursor = 0, last_contact_ms = ? WHERE id = ?", reply.server_time_ms,
        device.id);
    if (!hold.ok()) return hold.status();
    CARNET_RETURN_IF_ERROR((*hold)->Run());
    CARNET_RETURN_IF_ERROR(NoteHandedOut(snapshot_seq));
    // The erasure orders up to the snapshot come with its first page (PROTOCOL.md, Erasure).
    CARNET_RETURN_IF_ERROR(ServeErasuresSqlite(db_.get(), device.id, 0, snapshot_seq,
                                               reply.server_time_ms, &reply));
  }

  // First the forgets made for this device up to the snapshot (records it may hold from before:
  // its own creations handed over), then the entries of its scope, by key. A page holds one kind.
  if (!position.in_entries) {
    Result<sqlite::Statement*> st = db_->Query(
        "SELECT seq, collection, record FROM forgets WHERE device = ? AND seq > ? AND seq <= ? "
        "ORDER BY seq LIMIT ?",
        device.id, position.after_forget, snapshot_seq, int64_t{limit} + 1);
    if (!st.ok()) return st.status();
    Status status;
    while ((*st)->Step(&status)) {
      if (reply.forget.size() == limit) {
        reply.more = true;
        (*st)->Reset();
        break;
      }
      position.after_forget = static_cast<uint64_t>((*st)->Int(0));
      reply.forget.push_back(wire::RecordRef{(*st)->Text(1), (*st)->Text(2)});
    }
    CARNET_RETURN_IF_ERROR(status);
    if (!reply.more) position.in_entries = true;
  }
  if (reply.forget.empty()) {
    const std::string territories = TerritoriesJson(device.territories);
    const std::string select =
        std::string("SELECT ") + kEntryColumns + kScopedEntriesSql;
    const std::string order =
        std::string(kInScopeSql) +
        " ORDER BY e.collection, e.record, e.field, e.element, e.stamp LIMIT :limit";
    Result<sqlite::Statement*> st =
        position.after_entry
            ? db_->Query(select +
                             "(e.collection, e.record, e.field, e.element, e.stamp) > "
                             "(:collection, :record, :field, :element, :stamp) AND " + order,
                         position.after_entry->collection, position.after_entry->record,
                         position.after_entry->field, position.after_entry->element,
                         Blob{EncodeStamp(position.after_entry->stamp)}, device.adviser,
                         territories, int64_t{limit} + 1)
            : db_->Query(select + order, device.adviser, territories, int64_t{limit} + 1);
    if (!st.ok()) return st.status();
    Status status;
    while ((*st)->Step(&status)) {
      if (reply.entries.size() == limit) {
        reply.more = true;
        (*st)->Reset();
        break;
      }
      Result<Entry> e = ReadEntry(**st);
      if (!e.ok()) {
        (*st)->Reset();
        return e.status();
      }
      reply.entries.push_back(std::move(e.value()));
    }
    CARNET_RETURN_IF_ERROR(status);
    if (!reply.entries.empty()) position.after_entry = reply.entries.back().key;
  }
  if (reply.more || !reply.forget.empty()) {  // a page of forgets is followed by the entries
    reply.more = true;
    reply.snapshot = EncodeSnapshotToken(position);
  } else {
    // Done: the tablet goes on by sequence from the snapshot's start, which brings what changed
    // during the snapshot (entries and forgets alike); its next pull acknowledges the snapshot.
    reply.next_cursor = position.snapshot_seq;
    reply.more = next_seq_ - 1 > snapshot_seq;
  }
  CARNET_RETURN_IF_ERROR(audit::AppendSqlite(db_.get(), audit::PullRows(device, reply)));
  CARNET_RETURN_IF_ERROR(txn.Commit());
  return reply;
}

Result<uint64_t> SqliteServerStore::Purge() {
  std::lock_guard<std::mutex> lock(mutex_);
  WriteTransaction txn(db_.get());
  CARNET_RETURN_IF_ERROR(BeginWrite(&txn));
  const uint64_t first_seq = next_seq_;
  auto fail = [&](Status status) {
    next_seq_ = first_seq;
    return status;
  };
  Result<std::vector<Device>> devices = ActiveDevices();
  if (!devices.ok()) return devices.status();
  uint64_t horizon = next_seq_ - 1;
  for (const Device& d : *devices) horizon = std::min(horizon, d.cursor);

  uint64_t purged = 0;
  Result<sqlite::Statement*> dead = db_->Query(
      "DELETE FROM entries WHERE live = 0 AND seq <= ? AND NOT EXISTS (SELECT 1 FROM entries t "
      "WHERE t.collection = entries.collection AND t.record = entries.record AND t.field = '' "
      "AND t.live = 1)",
      horizon);
  if (!dead.ok()) return fail(dead.status());
  Status status = (*dead)->Run();
  if (!status.ok()) return fail(status);
  purged += db_->Changes();

  std::vector<std::pair<std::string, std::string>> deleted;
  {
    Result<sqlite::Statement*> st = db_->Query(
        "SELECT DISTINCT collection, record FROM entries e WHERE field = '' AND live = 1 AND NOT "
        "EXISTS (SELECT 1 FROM purging p WHERE p.collection = e.collection AND p.record = "
        "e.record)");
    if (!st.ok()) return fail(st.status());
    while ((*st)->Step(&status)) deleted.emplace_back((*st)->Text(0), (*st)->Text(1));
    if (!status.ok()) return fail(status);
  }
  for (const auto& [collection, record] : deleted) {
    if (collection == "participants") {
      // A deleted participant stays while records still belong to them: forgetting them on a
      // tablet would take those records along.
      Result<std::vector<std::pair<std::string, std::string>>> owned = RecordsOf(record);
      if (!owned.ok()) return fail(owned.status());
      if (owned->size() > 1) continue;
    }
    Result<sqlite::Statement*> newest = db_->Query(
        "SELECT MAX(seq) FROM entries WHERE collection = ? AND record = ?", collection, record);
    if (!newest.ok()) return fail(newest.status());
    uint64_t max_seq = (*newest)->Step(&status) ? static_cast<uint64_t>((*newest)->Int(0)) : 0;
    (*newest)->Reset();
    if (!status.ok()) return fail(status);
    // Everyone who holds the record, or still has to be told to forget it, must be past it; so
    // must every device that wrote to it: until it has pulled past its own operations, it may
    // push them again (a lost reply), and they must find the record to be known as duplicates.
    Result<std::set<std::string>> authors = AuthorsOf(collection, record);
    if (!authors.ok()) return fail(authors.status());
    std::vector<std::string> holders;
    bool everyone_past = true;
    for (const Device& d : *devices) {
      Result<bool> holds = scopes_.Holds(d, collection, record);
      if (!holds.ok()) return fail(holds.status());
      Result<bool> pending = ForgetPending(d, collection, record);
      if (!pending.ok()) return fail(pending.status());
      if (!*holds && !*pending && !authors->count(d.id)) continue;
      if (d.cursor < max_seq) everyone_past = false;
      if (*holds) holders.push_back(d.id);
    }
    if (!everyone_past) continue;
    // First out of every scope, with forgets to those who hold it; its entries go once those
    // are pulled (below), so that a restore pushed meanwhile finds them (PROTOCOL.md, Purge).
    if (status = SaveScope(collection, record, std::nullopt); !status.ok()) return fail(status);
    if (collection == "participants") {
      if (status = SaveParticipant(record, std::nullopt); !status.ok()) return fail(status);
    }
    const uint64_t first_forget = next_seq_;
    for (const std::string& id : holders) {
      if (status = AddForget(id, collection, record, false); !status.ok()) return fail(status);
    }
    Result<sqlite::Statement*> mark = db_->Query("INSERT INTO purging VALUES(?, ?, ?, ?)",
                                                 collection, record, first_forget, next_seq_ - 1);
    if (!mark.ok()) return fail(mark.status());
    if (status = (*mark)->Run(); !status.ok()) return fail(status);
  }
  // Records whose forgets every active device has pulled: no tablet holds them any more.
  std::vector<std::pair<std::string, std::string>> forgotten;
  {
    Result<sqlite::Statement*> st = db_->Query(
        "SELECT collection, record FROM purging p WHERE NOT EXISTS (SELECT 1 FROM forgets f "
        "JOIN devices d ON d.id = f.device WHERE f.collection = p.collection AND f.record = "
        "p.record AND f.seq BETWEEN p.first_forget AND p.last_forget AND f.seq > d.cursor AND "
        "d.revoked = 0)");
    if (!st.ok()) return fail(st.status());
    while ((*st)->Step(&status)) forgotten.emplace_back((*st)->Text(0), (*st)->Text(1));
    if (!status.ok()) return fail(status);
  }
  for (const auto& [collection, record] : forgotten) {
    Result<sqlite::Statement*> erase =
        db_->Query("DELETE FROM entries WHERE collection = ? AND record = ?", collection, record);
    if (!erase.ok()) return fail(erase.status());
    if (status = (*erase)->Run(); !status.ok()) return fail(status);
    purged += db_->Changes();
    Result<sqlite::Statement*> done =
        db_->Query("DELETE FROM purging WHERE collection = ? AND record = ?", collection, record);
    if (!done.ok()) return fail(done.status());
    if (status = (*done)->Run(); !status.ok()) return fail(status);
  }
  // Forgets every device has pulled past are done with.
  Result<sqlite::Statement*> done = db_->Query("DELETE FROM forgets WHERE seq <= ?", horizon);
  if (!done.ok()) return fail(done.status());
  if (status = (*done)->Run(); !status.ok()) return fail(status);
  if (status = SaveNextSeq(); !status.ok()) return fail(status);
  if (status = txn.Commit(); !status.ok()) return fail(status);
  return purged;
}

Result<std::vector<AuditRow>> SqliteServerStore::ReadAudit(const AuditFilter& filter,
                                                            uint64_t after_id, uint32_t limit) {
  std::lock_guard<std::mutex> lock(mutex_);
  return audit::ReadSqlite(db_.get(), filter, after_id, limit);
}

Result<AuditHead> SqliteServerStore::ReadAuditHead() {
  std::lock_guard<std::mutex> lock(mutex_);
  return audit::HeadSqlite(db_.get());
}

Result<std::string> SqliteServerStore::ScopeDump(const std::string& device_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Result<sqlite::Statement*> st = Status::Ok();
  std::optional<Device> device;
  if (!device_id.empty()) {
    Result<std::optional<Device>> found = LoadDevice("id", device_id);
    if (!found.ok()) return found.status();
    if (!found->has_value()) return NotFound("no device '" + device_id + "'");
    device = **found;
    st = db_->Query(std::string("SELECT ") + kEntryColumns +
                        " FROM entries e JOIN record_scope rs ON rs.collection = e.collection AND "
                        "rs.record = e.record LEFT JOIN participant_scope ps ON ps.participant = "
                        "rs.participant WHERE e.live = 1 AND " + kInScopeSql +
                        " ORDER BY e.collection, e.record, e.field, e.element, e.stamp",
                    device->adviser, TerritoriesJson(device->territories));
  } else {
    st = db_->Query(std::string("SELECT ") + kEntryColumns +
                    " FROM entries e WHERE e.live = 1 AND NOT EXISTS (SELECT 1 FROM purging p "
                    "WHERE p.collection = e.collection AND p.record = e.record) ORDER BY "
                    "e.collection, e.record, e.field, e.element, e.stamp");
  }
  if (!st.ok()) return st.status();
  std::string dump;
  Status status;
  while ((*st)->Step(&status)) {
    Result<Entry> e = ReadEntry(**st);
    if (!e.ok()) {
      (*st)->Reset();
      return e.status();
    }
    dump += CanonicalLine(*e);
  }
  if (!status.ok()) return status;
  return dump;
}

Result<std::vector<Entry>> SqliteServerStore::LiveEntries(const std::string& collection) {
  std::lock_guard<std::mutex> lock(mutex_);
  Result<sqlite::Statement*> st = db_->Query(
      std::string("SELECT ") + kEntryColumns +
          " FROM entries e WHERE e.collection = ? AND e.live = 1 ORDER BY e.record, e.field, "
          "e.element, e.stamp",
      collection);
  if (!st.ok()) return st.status();
  return ReadEntries(**st);
}

Result<uint64_t> SqliteServerStore::CountConflicts() {
  std::lock_guard<std::mutex> lock(mutex_);
  Result<sqlite::Statement*> st = db_->Query(
      std::string("SELECT ") + kEntryColumns + " FROM entries e JOIN (" +
      kRegistersWithSeveralHeadsSql +
      ") m ON m.collection = e.collection AND m.record = e.record AND m.field = e.field WHERE "
      "e.live ORDER BY e.collection, e.record, e.field");
  if (!st.ok()) return st.status();
  Result<std::vector<Entry>> heads = ReadEntries(**st);
  if (!heads.ok()) return heads.status();
  return CountRegisterConflicts(*schema_, *heads);
}

Status SqliteServerStore::BeginWrite(WriteTransaction* txn) {
  CARNET_RETURN_IF_ERROR(txn->Begin());
  Result<sqlite::Statement*> st = db_->Query("SELECT value FROM meta WHERE key = 'next_seq'");
  if (!st.ok()) return st.status();
  Status status;
  if ((*st)->Step(&status)) next_seq_ = std::max<uint64_t>(next_seq_, std::stoull((*st)->Text(0)));
  (*st)->Reset();
  return status;
}

Status SqliteServerStore::InErasureTransaction(bool write,
                                               const std::function<Status(ErasureTxn&)>& body) {
  std::lock_guard<std::mutex> lock(mutex_);
  WriteTransaction txn(db_.get());
  CARNET_RETURN_IF_ERROR(BeginWrite(&txn));
  const uint64_t first_seq = next_seq_;
  std::unique_ptr<ErasureSource> erasures = NewSqliteErasureSource(db_.get(), &next_seq_);
  ErasureTxn context{erasures.get(), this, schema_, options_.env};
  Status status = body(context);
  if (status.ok() && write) status = SaveNextSeq();
  if (status.ok() && write) status = txn.Commit();
  if (!status.ok() || !write) next_seq_ = first_seq;  // rolled back
  return status;
}

Result<bool> SqliteServerStore::ScrubErasures(int64_t wait_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  return ScrubErasuresSqlite(db_.get(), options_.env, wait_ms);
}

Result<uint32_t> SqliteServerStore::DropErased(const Device& device, std::vector<Operation>* ops) {
  std::unique_ptr<ErasureSource> erasures = NewSqliteErasureSource(db_.get(), &next_seq_);
  ErasureTxn context{erasures.get(), this, schema_, options_.env};
  return DropErasedOperations(context, device, ops);
}

}  // namespace

Result<std::unique_ptr<ServerStore>> OpenServerStore(const std::string& spec,
                                                     const ServerStoreOptions& options) {
  if (options.env == nullptr) return InvalidArgument("ServerStoreOptions.env is required");
  std::string path = spec;
  if (path.rfind("sqlite:", 0) == 0) {
    path = path.substr(7);
  } else if (path.rfind("postgresql://", 0) == 0 || path.rfind("postgres://", 0) == 0) {
    return OpenPostgresServerStore(spec, options);
  } else if (path.find("://") != std::string::npos) {
    return InvalidArgument("unsupported store '" + spec +
                           "': use sqlite:PATH or postgresql://...");
  }
  if (path.empty()) return InvalidArgument("store path is empty");
  Result<std::unique_ptr<sqlite::Database>> db = sqlite::Database::Open(path, 5000);
  if (!db.ok()) return db.status();
  auto store = std::make_unique<SqliteServerStore>(options, std::move(db.value()));
  CARNET_RETURN_IF_ERROR(store->Initialize());
  return std::unique_ptr<ServerStore>(std::move(store));
}

}  // namespace carnet
