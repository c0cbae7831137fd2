// The private side of carnet::Store, shared by the files that implement it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "carnet/merge.h"
#include "carnet/store.h"
#include "carnet/sqlite.h"

namespace carnet {

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
};

}  // namespace carnet
