// The private side of carnet::Store, shared by the files that implement it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "carnet/merge.h"
#include "carnet/sqlite.h"
#include "carnet/store.h"
#include "core/crypto.h"

namespace carnet {

// The one key Store::Wipe leaves in meta (store_wipe.cc): when it ran.
extern const char* const kWipedMetaKey;

// Every column of an entry row, in the order ReadEntry (store_read.cc) reads them.
inline constexpr const char* kEntryColumns =
    "SELECT collection, record, field, element, stamp, kind, live, value, refs FROM entries ";
Result<Entry> ReadEntry(const sqlite::Statement& st);

class Store::Impl {
 public:
  Impl(const StoreOptions& options, std::unique_ptr<sqlite::Database> db);

  Status Initialize();  // storage layout, migrations, bookkeeping read back

  // Entries of one record, in key order.
  Result<std::vector<Entry>> LoadRecord(const std::string& collection, const std::string& record);
  Result<std::vector<Entry>> LoadField(const std::string& collection, const std::string& record,
                                       const std::string& field);
  // Merges one operation into the entries; true when something changed.
  Result<bool> ApplyOperation(const Operation& op);

  // Local changes: builds the operation (seq, stamp, refs), merges it and queues it in the outbox.
  Status ApplyLocal(Operation op);
  Status AppendToOutbox(const Operation& op);

  // Entry rows (store_sync.cc). FindEntry fills only key, kind and liveness.
  Result<std::optional<Entry>> FindEntry(const EntryKey& key);
  Status PutEntry(const Entry& entry);
  // Removes the entry row whose key (element as stored) is `key`.
  Status DeleteEntry(const EntryKey& key);
  // Inserts an entry whose key is not stored yet; false (and nothing written) if it is.
  Result<bool> InsertEntryIfAbsent(const Entry& entry);
  // Queues a change for the observers; repeats of the last one are dropped, so that a pulled
  // batch announces each field it changed once, not once per entry.
  void NoteChange(Change change);
  // A record and, for a participant, every record whose participant field names them.
  Result<std::vector<std::pair<std::string, std::string>>> RecordsToForget(
      const std::string& collection, const std::string& id);
  Status ForgetRecords(const std::string& collection, const std::string& id);

  Status BeginTransaction();
  Status CommitTransaction(std::vector<Change>* changes);  // hands back the changes to announce
  void RollbackTransaction();
  Status Savepoint();
  Status ReleaseSavepoint(bool keep);

  Status PutMeta(const std::string& key, const std::string& value);
  Result<std::optional<std::string>> GetMeta(const std::string& key);

  Result<Record> BuildRecord(const std::string& collection, const std::string& id,
                             const std::vector<Entry>& entries, bool* deleted);

  void Notify(const std::vector<Change>& changes);

  // --- Encryption at rest and the offline lease (store_keys.cc, core/ENCRYPTION.md) ---

  // How the values of a field are kept in the file.
  enum class Protection { kClear, kStoreKey, kParticipantKey };
  Protection ProtectionOf(const std::string& collection, const std::string& field) const;

  Status InitializeKeys();  // master key, store key, lease; after the layout is in place
  // The operation or entry as stored: values of classes S and H sealed, their set elements
  // sealed deterministically. The stamp must be final: it is part of the value's place.
  Status Seal(Operation* op);
  Status Seal(Entry* entry);
  // Back in clear. False when the entry was sealed with a participant key since erased: it
  // reads as absent. kCorruption when it does not open.
  Result<bool> Unseal(Entry* entry);
  // As Unseal, whatever the class of the entry's field: the entry must be sealed.
  Result<bool> OpenSealed(Entry* entry);
  // After an app update: opens the values the previous version sealed as a newer app's (their
  // class was unknown to it) that this schema keeps in clear (store_reclass.cc).
  Status OpenNowClear();
  Status Unseal(Operation* op);
  // A stored value of the entry `from`, sealed anew for the same place at stamp `to`.
  Result<std::optional<std::string>> Reseal(const EntryKey& from, const Stamp& to,
                                            const std::optional<std::string>& value);
  // The participant whose health key seals a record's class H values: the record itself for
  // participants, the winner of the participant field otherwise (none while it has none).
  Result<std::optional<std::string>> ParticipantOf(const std::string& collection,
                                                   const std::string& record);
  Status EraseParticipantKey(const std::string& participant);
  // kLeaseExpired once the offline lease has run out; kDeviceRevoked once wiped.
  Status CheckLease();
  // Rewrites the file and empties the WAL: nothing deleted stays readable in them.
  Status Scrub();
  // kDeviceRevoked once the store was wiped (Store::Wipe, store_wipe.cc).
  Status RefuseIfWiped() const;
  Status RenewLease();
  int64_t LeaseNowMs() const;
  // Forgets the keys a transaction made, beyond the first `keep`, when it is rolled back.
  void DropKeysMade(size_t keep);

  StoreOptions options_;
  const Schema* schema_;
  std::unique_ptr<sqlite::Database> db_;
  HybridClock clock_;
  std::recursive_mutex mutex_;

  uint64_t next_seq_ = 1;            // in the open transaction
  uint64_t committed_next_seq_ = 1;  // as last committed, restored on rollback
  uint64_t savepoint_next_seq_ = 1;
  std::vector<Change> pending_changes_;
  size_t savepoint_changes_ = 0;

  std::mutex observers_mutex_;
  std::vector<std::pair<ObserverId, Observer>> observers_;
  ObserverId next_observer_ = 1;

  int opened_layout_ = 0;  // the file's layout version when opened; 0 for a new file

  // Encryption at rest: the data keys, wrapped (all of them, read at open) and unwrapped (those
  // used so far); the ids of keys erased.
  bool encrypted_ = false;
  crypto::SecretKey master_key_;
  std::string store_key_id_;
  struct KeyRow {
    std::string id;
    std::string wrapped;
  };
  std::map<std::string, KeyRow> key_rows_;          // the table data_keys, by participant
  std::map<std::string, std::string> key_owners_;   // key id -> participant
  std::set<std::string> erased_key_ids_;
  std::map<std::string, crypto::DataKey> keys_by_id_;  // unwrapped so far
  std::vector<std::pair<std::string, std::string>> keys_made_;  // (participant, id), this txn
  size_t savepoint_keys_made_ = 0;
  struct Lease {
    int64_t contact_ms = 0;  // the last successful sync
    int64_t seen_ms = 0;     // the latest time the store has seen since
  };
  Lease lease_;
  bool wiped_ = false;  // Store::Wipe ran: every call is refused

 private:
  Result<const crypto::DataKey*> KeyForWrite(const std::string& collection,
                                             const std::string& record, Protection protection);
  Result<const crypto::DataKey*> ParticipantKey(const std::string& participant, bool create);
  Status LoadKeyRows();
  // nullptr when the key was erased.
  Result<const crypto::DataKey*> KeyById(const std::string& id);
  // A store in clear meets its first key store: its S and H values sealed; how many.
  Result<size_t> SealExisting();
  // Scrub, if an erased key asked for one that has not been done yet.
  Status FinishScrub();
  Status OpenLease(bool sealed);
  Status WriteLease(const Lease& lease);
  Result<std::optional<Lease>> ReadLease(bool sealed);
};

}  // namespace carnet
