// The local store: one adviser's caseload in one SQLite file, every change recorded as an
// operation in an outbox in the same transaction, remote operations merged with the same rules.
//
// Threads: a Store may be shared between threads; its methods serialise on an internal lock.
// A Transaction holds that lock from Begin() until Commit() or destruction, and must be used and
// ended on the thread that began it. Observers are called after a commit, on the committing
// thread, without the lock held (they may read the store).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "carnet/env.h"
#include "carnet/hlc.h"
#include "carnet/key_store.h"
#include "carnet/merge.h"
#include "carnet/operation.h"
#include "carnet/schema.h"
#include "carnet/status.h"

namespace carnet {

struct StoreOptions {
  std::string path;       // the SQLite file; created if missing
  std::string device_id;  // this tablet's id; a store file belongs to one device for life
  Env* env = nullptr;     // not owned; must outlive the store
  const Schema* schema = nullptr;  // defaults to Schema::Programme()
  HlcOptions clock;
  int busy_timeout_ms = 5000;
  // Encryption at rest (core/ENCRYPTION.md): the host's key storage, which holds this store's
  // master key; not owned, used only by Open. With it, the values of classes S and H (and the
  // elements of such sets) are sealed in the file with keys the master key wraps, health data
  // with a key per participant; a store file kept in clear is sealed at its first open with one.
  // Without it, values are stored in clear (tests, tools), and a store file sealed at rest is
  // refused with kFailedPrecondition. A key store whose master key does not open the file, or
  // that has none for a sealed file, is refused with kFailedPrecondition too; one that cannot
  // answer now (a device locked since it booted) gives its kUnavailable.
  KeyStore* key_store = nullptr;
  // The offline lease, in days: once this long has passed without a successful sync
  // (NoteServerContact), records can be neither read nor changed until one succeeds (Get, List,
  // Query, Conflicts, CanonicalDump and Begin, hence every local change, fail with
  // kLeaseExpired "offline lease expired: sync to continue"); what sync calls keeps
  // working, so that it can push the outbox, pull, and renew the lease. Counted on the store's
  // clock (the Env's time plus the server's offset), from the store's creation until its first
  // sync. 0: no lease.
  int lease_days = 0;
};

struct LogEntry {
  Stamp stamp;
  std::string text;            // empty when redacted
  bool redacted = false;
  std::optional<Stamp> revises;  // the entry this one is a revision of
};

struct FieldValue {
  FieldKind kind = FieldKind::kRegister;
  std::optional<std::string> value;    // register: the winner's value; none if unset or cleared
  std::optional<Stamp> stamp;          // register: the winner's stamp
  bool in_conflict = false;            // register: other concurrent values are kept for review
  std::vector<std::string> elements;   // set: present elements, sorted
  std::vector<LogEntry> entries;       // log: entries by stamp, redacted ones included
  // Holds what this build's schema does not know, received from a newer app and kept as it came
  // (core/README.md, Mixed versions): a field or collection missing from the schema (its kind
  // is the one its entries carry), a register whose value is an enum value outside the field's
  // values, or a set with such an element. Shown as it is; never an error.
  bool unknown = false;
};

struct Record {
  std::string collection;
  std::string id;
  std::map<std::string, FieldValue> fields;  // only fields that hold something
};

enum class ConflictKind {
  kConcurrentWrite,   // two devices wrote a register without seeing each other's value
  kEditedWhileDeleted,  // a record was deleted on one device while edited on another
};

struct Conflict {
  ConflictKind kind = ConflictKind::kConcurrentWrite;
  std::string collection;
  std::string record;
  std::string field;
  // kConcurrentWrite: the value in force (the winner) and the concurrent one that lost.
  // kEditedWhileDeleted: kept_* is the tombstone (no value), losing_* the edit the deleter had
  // not seen (a register value, a set element or a log text).
  std::optional<std::string> kept_value;
  Stamp kept_stamp;
  std::optional<std::string> losing_value;
  Stamp losing_stamp;
};

struct Change {
  std::string collection;
  std::string record;
  std::string field;  // empty for a delete or restore
  bool remote = false;
};
using Observer = std::function<void(const std::vector<Change>&)>;
using ObserverId = uint64_t;

// An erasure order (GDPR art. 17; sync/PROTOCOL.md, Erasure): a participant, and records the
// server erased with them (any this replica holds goes too, whoever it names now).
struct Erasure {
  std::string participant;
  std::vector<std::pair<std::string, std::string>> records;  // (collection, id)
};

struct ApplyStats {
  size_t applied = 0;     // operations that changed something
  size_t duplicates = 0;  // operations already known
};

class Store;

// A group of local changes committed together, or not at all. Rolls back when destroyed
// uncommitted. After a failed call the transaction can still commit the calls that succeeded,
// unless the failure was a storage error (kIoError, kResourceExhausted) after which SQLite rolled
// the whole transaction back: the calls that follow and Commit then fail with
// kFailedPrecondition, and nothing of the transaction is saved.
class Transaction {
 public:
  Transaction(Transaction&&) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  // Writes registers. A value of std::nullopt clears the field.
  Status Put(const std::string& collection, const std::string& id,
             const std::vector<std::pair<std::string, std::optional<std::string>>>& fields);
  Status Set(const std::string& collection, const std::string& id, const std::string& field,
             std::optional<std::string> value);
  Status Add(const std::string& collection, const std::string& id, const std::string& field,
             const std::string& element);
  Status Remove(const std::string& collection, const std::string& id, const std::string& field,
                const std::string& element);
  // Appends a log entry; `revises` names the entry this text revises (both are kept).
  Result<Stamp> Append(const std::string& collection, const std::string& id,
                       const std::string& field, const std::string& text,
                       std::optional<Stamp> revises = std::nullopt);
  Status Redact(const std::string& collection, const std::string& id, const std::string& field,
                const Stamp& entry);
  Status Delete(const std::string& collection, const std::string& id);
  Status Restore(const std::string& collection, const std::string& id);
  // Ends a kConcurrentWrite conflict: writes `value` over every value of the field, winner and
  // losers alike, so the conflict disappears on every replica that receives the write.
  Status Resolve(const std::string& collection, const std::string& id, const std::string& field,
                 std::optional<std::string> value);
  // Ends the kEditedWhileDeleted conflicts of a record: keep it deleted (a new tombstone that has
  // seen every edit) or bring it back with its edits.
  Status ResolveDeleted(const std::string& collection, const std::string& id, bool keep_deleted);

  Status Commit();

 private:
  friend class Store;
  explicit Transaction(Store* store);
  Store* store_;
  bool open_ = false;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& device_id() const;
  const Schema& schema() const;

  // A new 128-bit record id (32 hex digits) drawn from the Env's randomness.
  std::string NewId();

  Result<Transaction> Begin();

  // One-change transactions.
  Status Put(const std::string& collection, const std::string& id,
             const std::vector<std::pair<std::string, std::optional<std::string>>>& fields);
  Status Set(const std::string& collection, const std::string& id, const std::string& field,
             std::optional<std::string> value);
  Status Add(const std::string& collection, const std::string& id, const std::string& field,
             const std::string& element);
  Status Remove(const std::string& collection, const std::string& id, const std::string& field,
                const std::string& element);
  Result<Stamp> Append(const std::string& collection, const std::string& id,
                       const std::string& field, const std::string& text,
                       std::optional<Stamp> revises = std::nullopt);
  Status Redact(const std::string& collection, const std::string& id, const std::string& field,
                const Stamp& entry);
  Status Delete(const std::string& collection, const std::string& id);
  Status Restore(const std::string& collection, const std::string& id);
  Status Resolve(const std::string& collection, const std::string& id, const std::string& field,
                 std::optional<std::string> value);
  Status ResolveDeleted(const std::string& collection, const std::string& id, bool keep_deleted);

  // kNotFound for a record never seen or deleted. A collection the schema does not know is
  // readable once this store holds records of it (a newer app's, received by sync), every field
  // flagged unknown; any other name is refused with kInvalidArgument, so a typo stays an error.
  Result<Record> Get(const std::string& collection, const std::string& id);
  // Records not deleted, by id, of a collection as for Get. With `field`, only those whose
  // register `field` equals `value`.
  Result<std::vector<Record>> List(const std::string& collection);
  Result<std::vector<Record>> Query(const std::string& collection, const std::string& field,
                                    const std::string& value);
  Result<std::vector<Conflict>> Conflicts();

  ObserverId AddObserver(Observer observer);
  void RemoveObserver(ObserverId id);

  // --- What sync calls ---

  // Local operations not yet acknowledged, in sequence order, with seq > after_seq.
  Result<std::vector<Operation>> PendingOperations(uint64_t after_seq, size_t limit);
  Result<uint64_t> PendingCount();
  // The server has made operations up to `seq` durable: they leave the outbox.
  Status AcknowledgeOperations(uint64_t seq);
  // Gives fresh stamps to the outbox's operations stamped more than `max_ahead_ms` ahead of this
  // replica's time (the Env's clock plus the offset the server told): what a tablet whose clock
  // was set ahead stamped, which the server refuses (kClockSkew) and, the clock never going
  // back, would refuse in every later push too. Call it only for operations no other replica
  // can hold: `max_ahead_ms` must be beyond the bound of every server the tablet pushed to (plus
  // the error of the offset), so that none of them can have accepted one of these stamps.
  //
  // In one transaction: the clock is set back to the greatest stamp the store keeps besides
  // those operations' (stamps observed from others, operations not ahead), each operation is
  // stamped anew from it, in sequence order, and every place the store keeps an old stamp
  // follows: the outbox, the operation's entry, the refs of later operations and entries. The
  // new stamps keep the order of the old ones among themselves and against every other stamp,
  // so the store reads as before: same winners, same conflicts. Observers are told of the
  // fields whose stamps changed; a stamp Append returned for one of them names nothing now.
  // Returns how many operations were re-stamped: 0 when none is that far ahead, or when a stamp
  // the store cannot change (one others have seen) is that far ahead too, and nothing would
  // come back within the bound.
  Result<size_t> RestampAhead(int64_t max_ahead_ms);
  // Merges remote operations, all or nothing: a malformed operation or a stamp too far in the
  // future refuses the whole batch and writes nothing. `sync_state` key/values are saved in the
  // same transaction (a pull cursor covers exactly what was applied with it).
  Result<ApplyStats> ApplyRemote(
      const std::vector<Operation>& ops,
      const std::vector<std::pair<std::string, std::string>>& sync_state = {});
  // Merges entry states pulled from the server (see carnet/merge.h, MergeEntry), then forgets the
  // records named in `forget` (see Forget), then carries out the erasures (see Erase), all in
  // one transaction with `sync_state`. All or nothing: a malformed entry, a stamp too far ahead,
  // or a record to forget or erase that still has operations in the outbox (kFailedPrecondition:
  // push first) refuses the whole batch. With erasures, the WAL is checkpointed and truncated
  // once the batch is committed.
  Result<ApplyStats> ApplyPulled(
      const std::vector<Entry>& entries,
      const std::vector<std::pair<std::string, std::string>>& forget,
      const std::vector<std::pair<std::string, std::string>>& sync_state,
      const std::vector<Erasure>& erase = {});
  // Removes a record and, for a participant, every record that belongs to them, from this
  // replica only: no operation is made (the records left this device's scope, or the server
  // purged them). Refused with kFailedPrecondition while the outbox holds changes to them.
  Status Forget(const std::string& collection, const std::string& id);
  // Erases a participant from this replica, on the server's order (GDPR art. 17): in one
  // transaction, every entry (history and conflicts included) of the participant, of the records
  // whose participant field's winning value names them, and of `records`; and, in any other
  // record, the entries of fields of type ref that name them. No operation is made. The rows are
  // zeroed in the file (PRAGMA secure_delete) and the WAL is checkpointed and truncated before
  // this returns, so that no copy of them is left in either. Refused with kFailedPrecondition
  // while the outbox holds changes to them (push first: the server drops them).
  Status Erase(const std::string& participant,
               const std::vector<std::pair<std::string, std::string>>& records = {});
  Result<std::optional<std::string>> GetSyncState(const std::string& key);
  Status SetSyncState(const std::string& key, const std::string& value);

  // The sync client calls it after a sync that completed with the server: the offline lease
  // (StoreOptions::lease_days) starts again from now. Persisted.
  Status NoteServerContact();
  // When the offline lease runs out, in the store's clock (ms since the epoch); nullopt without a
  // lease. Once it is past, reads and local changes are refused until NoteServerContact.
  std::optional<int64_t> LeaseExpiresAtMs();

  // Erases the key that seals `participant`'s health data (class H) on this tablet, for the
  // right to erasure (GDPR art. 17): their health values left in the file (rows not purged yet,
  // free pages, the WAL, a copy of the file) can no longer be opened, even with the master key.
  // Their records' other fields are untouched: purging them is the erasure's job (Forget).
  // Health values of the participant's records sealed with another key (written before the
  // record named them) are sealed with theirs first, and values of records that moved to
  // another participant are sealed with the new one's, so that the erasure takes exactly the
  // participant's health data. The file is rebuilt (VACUUM) and the WAL is checkpointed and
  // truncated before this returns, so that the wrapped key is in neither; a rebuild that fails
  // is done again by the next call or the next open. Afterwards their health values read as
  // absent (a field unset, a log without those entries); a later health value for them is sealed
  // with a new key. Refused with kFailedPrecondition while the outbox holds changes to their
  // health data (push first). Ok, doing nothing, for a participant without a key or a store
  // without encryption at rest.
  Status EraseParticipantKey(const std::string& participant);

  // Erases everything this tablet holds, on the server's order once the device is revoked
  // (sync/PROTOCOL.md, Devices): records, history, conflicts, the outbox (changes not pushed
  // are lost: the département revoked the tablet), sync state and data keys, in one
  // transaction; then the file is rebuilt and the WAL truncated, so that no byte of them is
  // left in either, and the master key is deleted from `key_store` (the one the store was
  // opened with; null: none). Afterwards every call of the store is refused with
  // kDeviceRevoked, and opening the file again too: the app deletes it. Again after a wipe cut
  // short (a rebuild or a key deletion that failed): finishes it.
  Status Wipe(KeyStore* key_store);
  // Whether Wipe ran on this store.
  bool IsWiped();

  // Clock offset (ms) measured by the server; persisted.
  Status SetClockOffsetMs(int64_t offset_ms);
  Hlc LastHlc();

  // Every entry, dead ones included, in key order, one line each (CanonicalLine): replicas that
  // have seen the same operations return byte-identical dumps. Local bookkeeping (outbox, clock)
  // is left out. With `live_only`, dead entries too: what a tablet and the server compare, since
  // each purges dead entries on its own schedule.
  Result<std::string> CanonicalDump(bool live_only = false);

 public:
  class Impl;  // opaque: the private side, in core/

 private:
  friend class Transaction;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace carnet
