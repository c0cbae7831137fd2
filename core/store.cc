// Opening a store, its storage layout, transactions and the sync-facing calls.
//
// Durability: WAL journal with synchronous=FULL. Every commit is on the disk before the call
// returns, so a power cut loses no edit the app was told is saved, and the outbox, which is what
// the server will acknowledge, never holds an operation that a crash could still take back.
// A commit costs one fsync of the WAL; an adviser makes a few edits a minute, and bulk work
// (applying a pulled batch) commits once per batch. See core/README.md.
#include "carnet/store.h"

#include <algorithm>

#include "core/store_impl.h"

namespace carnet {
namespace {

// Storage layout versions. Each entry upgrades from the previous version; PRAGMA user_version
// holds the version a file is at. Adding a field to the schema needs no entry here: the storage
// is generic over fields.
const char* const kMigrations[] = {
    // 1: the first layout.
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;
CREATE TABLE entries(
  collection TEXT NOT NULL, record TEXT NOT NULL, field TEXT NOT NULL, element TEXT NOT NULL,
  stamp BLOB NOT NULL, kind INTEGER NOT NULL, live INTEGER NOT NULL, value BLOB, refs BLOB,
  PRIMARY KEY(collection, record, field, element, stamp)) WITHOUT ROWID;
CREATE INDEX live_tombstones ON entries(collection, record) WHERE field = '' AND live = 1;
CREATE TABLE outbox(
  seq INTEGER PRIMARY KEY, hlc INTEGER NOT NULL, kind INTEGER NOT NULL, collection TEXT NOT NULL,
  record TEXT NOT NULL, field TEXT NOT NULL, element TEXT NOT NULL, value BLOB, refs BLOB);
CREATE TABLE sync_state(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
)sql",
    // 2: encryption at rest (core/ENCRYPTION.md). The data keys, wrapped by the master key: the
    // store key (participant ''), one per participant for health data; an erased key keeps its
    // id, with neither participant nor key. No index: the store reads the table whole when it
    // opens, and a new key is appended at the end of the file's B-tree, whatever the
    // participant's id (a first pull makes thousands).
    R"sql(
CREATE TABLE data_keys(participant TEXT, id BLOB NOT NULL, wrapped BLOB);
)sql",
};
constexpr int kStorageVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);

// After SQLite has rolled a transaction back by itself (see sqlite::Database::InTransaction), the
// calls that follow must neither run outside it, where each statement would commit on its own,
// nor pretend to commit it.
Status TransactionLost() {
  return FailedPrecondition(
      "the transaction was rolled back after a storage error and nothing of it was saved: begin "
      "it again");
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

}  // namespace

Store::Impl::Impl(const StoreOptions& options, std::unique_ptr<sqlite::Database> db)
    : options_(options),
      schema_(options.schema ? options.schema : &Schema::Programme()),
      db_(std::move(db)),
      clock_(options.env, options.clock) {}

Status Store::Impl::Initialize() {
  // secure_delete: a deleted row is overwritten with zeros in its page, so that an erasure (and
  // any purge or forget) leaves no copy of the data in the file's free space.
  CARNET_RETURN_IF_ERROR(
      db_->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;"));
  Result<sqlite::Statement*> version_query = db_->Prepare("PRAGMA user_version");
  if (!version_query.ok()) return version_query.status();
  Status status;
  int version = (*version_query)->Step(&status) ? static_cast<int>((*version_query)->Int(0)) : 0;
  (*version_query)->Reset();
  CARNET_RETURN_IF_ERROR(status);
  opened_layout_ = version;
  if (version > kStorageVersion) {
    return FailedPrecondition("store file has layout version " + std::to_string(version) +
                              ", newer than this build of Carnet (" +
                              std::to_string(kStorageVersion) + "): update the app");
  }
  for (int next = version + 1; next <= kStorageVersion; ++next) {
    CARNET_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
    Status step = db_->Exec(kMigrations[next - 1]);
    if (step.ok()) step = db_->Exec("PRAGMA user_version=" + std::to_string(next));
    if (step.ok()) step = db_->Exec("COMMIT");
    if (!step.ok()) {
      (void)db_->Exec("ROLLBACK");
      return Status(step.code(), "migrating the store to layout " + std::to_string(next) + ": " +
                                     step.message());
    }
  }

  Result<std::optional<std::string>> wiped = GetMeta(kWipedMetaKey);
  if (!wiped.ok()) return wiped.status();
  if (wiped->has_value()) {
    return Status(StatusCode::kDeviceRevoked,
                  "store '" + options_.path + "' was wiped on the server's order (the device was "
                  "revoked): it holds nothing; delete the file");
  }
  Result<std::optional<std::string>> device = GetMeta("device_id");
  if (!device.ok()) return device.status();
  if (!device->has_value()) {
    CARNET_RETURN_IF_ERROR(PutMeta("device_id", options_.device_id));
  } else if (**device != options_.device_id) {
    return FailedPrecondition("store belongs to device '" + **device + "', not '" +
                              options_.device_id + "'");
  }
  for (const char* key : {"next_seq", "hlc", "clock_offset_ms"}) {
    Result<std::optional<std::string>> value = GetMeta(key);
    if (!value.ok()) return value.status();
    if (!value->has_value()) continue;
    int64_t number = std::stoll(**value);
    if (std::string(key) == "next_seq") committed_next_seq_ = next_seq_ = number;
    if (std::string(key) == "hlc") clock_.Restore(static_cast<Hlc>(number));
    if (std::string(key) == "clock_offset_ms") clock_.SetOffsetMs(number);
  }
  return InitializeKeys();
}

Status Store::Impl::PutMeta(const std::string& key, const std::string& value) {
  Result<sqlite::Statement*> st = db_->Prepare("INSERT OR REPLACE INTO meta VALUES(?, ?)");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, key);
  (*st)->Bind(2, value);
  return (*st)->Run();
}

Result<std::optional<std::string>> Store::Impl::GetMeta(const std::string& key) {
  Result<sqlite::Statement*> st = db_->Prepare("SELECT value FROM meta WHERE key = ?");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, key);
  Status status;
  std::optional<std::string> value;
  if ((*st)->Step(&status)) value = (*st)->Text(0);
  (*st)->Reset();
  if (!status.ok()) return status;
  return value;
}

Status Store::Impl::BeginTransaction() {
  CARNET_RETURN_IF_ERROR(RefuseIfWiped());
  CARNET_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  next_seq_ = committed_next_seq_;
  pending_changes_.clear();
  keys_made_.clear();
  return Status::Ok();
}

Status Store::Impl::CommitTransaction(std::vector<Change>* changes) {
  Status status = db_->InTransaction() ? Status::Ok() : TransactionLost();
  if (status.ok() && next_seq_ != committed_next_seq_) {
    status = PutMeta("next_seq", std::to_string(next_seq_));
  }
  if (status.ok()) status = PutMeta("hlc", std::to_string(clock_.Last()));
  if (status.ok()) status = db_->Exec("COMMIT");
  if (!status.ok()) {
    RollbackTransaction();
    return status;
  }
  committed_next_seq_ = next_seq_;
  keys_made_.clear();
  changes->swap(pending_changes_);
  pending_changes_.clear();
  return Status::Ok();
}

void Store::Impl::RollbackTransaction() {
  (void)db_->Exec("ROLLBACK");
  next_seq_ = committed_next_seq_;
  pending_changes_.clear();
  DropKeysMade(0);
}

Status Store::Impl::Savepoint() {
  if (!db_->InTransaction()) return TransactionLost();
  savepoint_next_seq_ = next_seq_;
  savepoint_changes_ = pending_changes_.size();
  savepoint_keys_made_ = keys_made_.size();
  return db_->Exec("SAVEPOINT local_change");
}

Status Store::Impl::ReleaseSavepoint(bool keep) {
  if (keep) return db_->Exec("RELEASE local_change");
  next_seq_ = savepoint_next_seq_;
  pending_changes_.resize(savepoint_changes_);
  DropKeysMade(savepoint_keys_made_);
  return db_->Exec("ROLLBACK TO local_change; RELEASE local_change");
}

Result<bool> Store::Impl::ApplyOperation(const Operation& op) {
  // Static SQL: the statement cache is keyed by it, and a literal would be copied at every call.
  // "field = +?", not "field = ?": SQLite matches a bare parameter against the partial index's
  // "field = ''" by its bound value, and so re-prepared the statement at every new binding.
  static const std::string kFind =
      "SELECT kind, live FROM entries WHERE collection = ? AND record = ? AND field = +? AND "
      "element = ? AND stamp = ?";
  static const std::string kInsertIfAbsent =
      "INSERT INTO entries VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";
  std::vector<EntryKey> keys = KeysTouchedBy(op);
  // The operation's own entry, when it makes one, comes first; the others are those it ends.
  const size_t first_ended = !keys.empty() && keys[0].stamp == op.stamp() ? 1 : 0;
  std::vector<Entry> existing;
  // Only the ended entries are looked up: most operations end none, and cost no lookup at all.
  for (size_t i = first_ended; i < keys.size(); ++i) {
    const EntryKey& key = keys[i];
    Result<sqlite::Statement*> find = db_->Query(kFind, key.collection, key.record, key.field,
                                                 key.element, sqlite::Blob{EncodeStamp(key.stamp)});
    if (!find.ok()) return find.status();
    Status status;
    if ((*find)->Step(&status)) {
      // Merging needs only whether the entry exists and lives: its content never changes.
      existing.push_back(
          Entry{key, static_cast<FieldKind>((*find)->Int(0)), (*find)->Int(1) != 0, {}, {}});
    }
    (*find)->Reset();
    if (!status.ok()) return status;
  }
  // Unaware of the own entry, MergeOperation always proposes it; its rule for it (created live
  // when absent, left as it is when present) is exactly an insert that ignores an existing key,
  // which spares the lookup.
  std::vector<Entry> changes = MergeOperation(op, existing);
  bool changed = false;
  for (const Entry& e : changes) {
    if (first_ended == 1 && e.key == keys[0]) {
      std::optional<std::string> refs;
      if (!e.refs.empty()) refs = EncodeStampList(e.refs);
      Result<sqlite::Statement*> st =
          db_->Query(kInsertIfAbsent, e.key.collection, e.key.record, e.key.field, e.key.element,
                     sqlite::Blob{EncodeStamp(e.key.stamp)}, static_cast<int64_t>(e.kind),
                     int64_t{e.live}, e.value, refs);
      if (!st.ok()) return st.status();
      CARNET_RETURN_IF_ERROR((*st)->Run());
      changed = changed || db_->Changes() > 0;
    } else {
      CARNET_RETURN_IF_ERROR(PutEntry(e));
      changed = true;
    }
  }
  return changed;
}

Status Store::Impl::AppendToOutbox(const Operation& op) {
  Result<sqlite::Statement*> st =
      db_->Prepare("INSERT INTO outbox VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!st.ok()) return st.status();
  sqlite::Statement* s = *st;
  s->Bind(1, static_cast<int64_t>(op.seq));
  s->Bind(2, static_cast<int64_t>(op.hlc));
  s->Bind(3, static_cast<int64_t>(op.kind));
  s->Bind(4, op.collection);
  s->Bind(5, op.record);
  s->Bind(6, op.field);
  s->Bind(7, op.element);
  if (op.value) {
    s->BindBlob(8, *op.value);
  } else {
    s->BindNull(8);
  }
  if (op.refs.empty()) {
    s->BindNull(9);
  } else {
    s->BindBlob(9, EncodeStampList(op.refs));
  }
  return s->Run();
}

Status Store::Impl::ApplyLocal(Operation op) {
  op.device = options_.device_id;
  op.seq = next_seq_;
  op.hlc = clock_.Tick();
  // The entry and the outbox row share one sealed value: same place, same key.
  CARNET_RETURN_IF_ERROR(Seal(&op));
  Result<bool> applied = ApplyOperation(op);
  if (!applied.ok()) return applied.status();
  CARNET_RETURN_IF_ERROR(AppendToOutbox(op));
  ++next_seq_;
  NoteChange(Change{op.collection, op.record, op.field, false});
  return Status::Ok();
}

void Store::Impl::Notify(const std::vector<Change>& changes) {
  if (changes.empty()) return;
  std::vector<std::pair<ObserverId, Observer>> observers;
  {
    std::lock_guard<std::mutex> lock(observers_mutex_);
    observers = observers_;
  }
  for (auto& [id, observer] : observers) observer(changes);
}

// ---------------------------------------------------------------------------------------------

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  if (options.env == nullptr) return InvalidArgument("StoreOptions.env is required");
  if (!IsValidDeviceId(options.device_id)) {
    return InvalidArgument("invalid device id '" + options.device_id +
                           "': 1 to 64 characters among A-Z a-z 0-9 . _ : -");
  }
  if (options.path.empty()) return InvalidArgument("StoreOptions.path is empty");
  StoreOptions resolved = options;
  if (resolved.path.find('/') == std::string::npos && resolved.path != ":memory:") {
    resolved.path = JoinPath(options.env->DataDirectory(), resolved.path);
  }
  Result<std::unique_ptr<sqlite::Database>> db =
      sqlite::Database::Open(resolved.path, resolved.busy_timeout_ms);
  if (!db.ok()) return db.status();
  auto impl = std::make_unique<Impl>(resolved, std::move(db.value()));
  CARNET_RETURN_IF_ERROR(impl->Initialize());
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

const std::string& Store::device_id() const { return impl_->options_.device_id; }
const Schema& Store::schema() const { return *impl_->schema_; }

std::string Store::NewId() {
  static const char kHex[] = "0123456789abcdef";
  std::string id;
  std::lock_guard<std::recursive_mutex> lock(impl_->mutex_);
  for (int half = 0; half < 2; ++half) {
    uint64_t bits = impl_->options_.env->RandomU64();
    for (int i = 0; i < 16; ++i) id.push_back(kHex[(bits >> (60 - 4 * i)) & 0xf]);
  }
  return id;
}

Result<Transaction> Store::Begin() {
  impl_->mutex_.lock();
  Status status = impl_->CheckLease();
  if (status.ok()) status = impl_->BeginTransaction();
  if (!status.ok()) {
    impl_->mutex_.unlock();
    return status;
  }
  Transaction txn(this);
  txn.open_ = true;
  return txn;
}

ObserverId Store::AddObserver(Observer observer) {
  std::lock_guard<std::mutex> lock(impl_->observers_mutex_);
  ObserverId id = impl_->next_observer_++;
  impl_->observers_.emplace_back(id, std::move(observer));
  return id;
}

void Store::RemoveObserver(ObserverId id) {
  std::lock_guard<std::mutex> lock(impl_->observers_mutex_);
  std::erase_if(impl_->observers_, [id](const auto& entry) { return entry.first == id; });
}

Result<std::vector<Operation>> Store::PendingOperations(uint64_t after_seq, size_t limit) {
  std::lock_guard<std::recursive_mutex> lock(impl_->mutex_);
  Result<sqlite::Statement*> st = impl_->db_->Prepare(
      "SELECT seq, hlc, kind, collection, record, field, element, value, refs FROM outbox "
      "WHERE seq > ? ORDER BY seq LIMIT ?");
  if (!st.ok()) return st.status();
  sqlite::Statement* s = *st;
  s->Bind(1, static_cast<int64_t>(after_seq));
  s->Bind(2, static_cast<int64_t>(std::min<uint64_t>(limit, INT64_MAX)));
  std::vector<Operation> ops;
  Status status;
  while (s->Step(&status)) {
    Operation op;
    op.device = impl_->options_.device_id;
    op.seq = static_cast<uint64_t>(s->Int(0));
    op.hlc = static_cast<Hlc>(s->Int(1));
    op.kind = static_cast<OpKind>(s->Int(2));
    op.collection = s->Text(3);
    op.record = s->Text(4);
    op.field = s->Text(5);
    op.element = s->Text(6);
    op.value = s->OptionalText(7);
    Result<std::vector<Stamp>> refs = DecodeStampList(s->Text(8));
    if (!refs.ok()) {
      s->Reset();
      return refs.status();
    }
    op.refs = std::move(refs.value());
    ops.push_back(std::move(op));
  }
  if (!status.ok()) return status;
  // Opened once the statement is done: opening may read keys from the file.
  for (Operation& op : ops) CARNET_RETURN_IF_ERROR(impl_->Unseal(&op));
  return ops;
}

Result<uint64_t> Store::PendingCount() {
  std::lock_guard<std::recursive_mutex> lock(impl_->mutex_);
  Result<sqlite::Statement*> st = impl_->db_->Prepare("SELECT COUNT(*) FROM outbox");
  if (!st.ok()) return st.status();
  Status status;
  uint64_t count = (*st)->Step(&status) ? static_cast<uint64_t>((*st)->Int(0)) : 0;
  (*st)->Reset();
  if (!status.ok()) return status;
  return count;
}

Status Store::AcknowledgeOperations(uint64_t seq) {
  std::lock_guard<std::recursive_mutex> lock(impl_->mutex_);
  if (seq >= impl_->committed_next_seq_) {
    return InvalidArgument("acknowledgement of operation " + std::to_string(seq) +
                           ", which this device has not made yet");
  }
  Result<sqlite::Statement*> st = impl_->db_->Prepare("DELETE FROM outbox WHERE seq <= ?");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, static_cast<int64_t>(seq));
  return (*st)->Run();
}

Result<ApplyStats> Store::ApplyRemote(
    const std::vector<Operation>& ops,
    const std::vector<std::pair<std::string, std::string>>& sync_state) {
  std::unique_lock<std::recursive_mutex> lock(impl_->mutex_);
  Hlc newest = 0;
  for (const Operation& op : ops) {
    CARNET_RETURN_IF_ERROR(ValidateOperation(*impl_->schema_, op));
    Status skew = impl_->clock_.CheckSkew(op.hlc);
    if (!skew.ok()) {
      return Status(skew.code(), "operation " + op.device + "#" + std::to_string(op.seq) + ": " +
                                     skew.message());
    }
    newest = std::max(newest, op.hlc);
  }
  CARNET_RETURN_IF_ERROR(impl_->BeginTransaction());
  ApplyStats stats;
  Status status;
  for (const Operation& op : ops) {
    Result<bool> changed = false;
    if (impl_->ProtectionOf(op.collection, op.field) == Impl::Protection::kClear) {
      changed = impl_->ApplyOperation(op);
    } else {
      Operation sealed = op;
      status = impl_->Seal(&sealed);
      if (!status.ok()) break;
      changed = impl_->ApplyOperation(sealed);
    }
    if (!changed.ok()) {
      status = changed.status();
      break;
    }
    if (*changed) {
      ++stats.applied;
      impl_->NoteChange(Change{op.collection, op.record, op.field, true});
    } else {
      ++stats.duplicates;
    }
    // Our own operations coming back (a store restored from an older copy): never reuse their
    // sequence numbers.
    if (op.device == impl_->options_.device_id && op.seq >= impl_->next_seq_) {
      impl_->next_seq_ = op.seq + 1;
    }
  }
  if (status.ok()) {
    Result<sqlite::Statement*> put =
        impl_->db_->Prepare("INSERT OR REPLACE INTO sync_state VALUES(?, ?)");
    if (!put.ok()) status = put.status();
    for (size_t i = 0; status.ok() && i < sync_state.size(); ++i) {
      (*put)->Reset();
      (*put)->Bind(1, sync_state[i].first);
      (*put)->Bind(2, sync_state[i].second);
      status = (*put)->Run();
    }
  }
  if (!status.ok()) {
    impl_->RollbackTransaction();
    return status;
  }
  if (newest != 0) (void)impl_->clock_.Observe(newest);  // checked above, cannot be refused
  std::vector<Change> changes;
  CARNET_RETURN_IF_ERROR(impl_->CommitTransaction(&changes));
  lock.unlock();
  impl_->Notify(changes);
  return stats;
}

Result<std::optional<std::string>> Store::GetSyncState(const std::string& key) {
  std::lock_guard<std::recursive_mutex> lock(impl_->mutex_);
  Result<sqlite::Statement*> st = impl_->db_->Prepare("SELECT value FROM sync_state WHERE key = ?");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, key);
  Status status;
  std::optional<std::string> value;
  if ((*st)->Step(&status)) value = (*st)->Text(0);
  (*st)->Reset();
  if (!status.ok()) return status;
  return value;
}

Status Store::SetSyncState(const std::string& key, const std::string& value) {
  std::lock_guard<std::recursive_mutex> lock(impl_->mutex_);
  Result<sqlite::Statement*> st = impl_->db_->Prepare("INSERT OR REPLACE INTO sync_state VALUES(?, ?)");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, key);
  (*st)->Bind(2, value);
  return (*st)->Run();
}

Status Store::SetClockOffsetMs(int64_t offset_ms) {
  std::lock_guard<std::recursive_mutex> lock(impl_->mutex_);
  CARNET_RETURN_IF_ERROR(impl_->PutMeta("clock_offset_ms", std::to_string(offset_ms)));
  impl_->clock_.SetOffsetMs(offset_ms);
  return Status::Ok();
}

Hlc Store::LastHlc() {
  std::lock_guard<std::recursive_mutex> lock(impl_->mutex_);
  return impl_->clock_.Last();
}

}  // namespace carnet
