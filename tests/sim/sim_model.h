// The oracles' side of a run: the ledger of every operation the tablets made, and the state those
// operations must give, computed from the operations alone by the rules of core/README.md, not
// with the core's merge code, so that a bug there shows as a difference.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "carnet/merge.h"
#include "carnet/operation.h"
#include "carnet/schema.h"
#include "carnet/store.h"

namespace carnet::sim {

using RecordKey = std::pair<std::string, std::string>;  // (collection, record)

// Every operation the tablets made, by (device, seq).
class Ledger {
 public:
  // Records an operation found in a tablet's outbox. Empty when new or seen before unchanged;
  // otherwise what is wrong (the same id for another operation: a sequence number reused).
  std::string Record(const Operation& op);
  // Replaces an operation by its re-stamped self (Store::RestampAhead); the oracles have judged
  // that this is all that changed.
  void Restamp(const Operation& op) { ops_[{op.device, op.seq}] = op; }
  const Operation* Find(const std::string& device, uint64_t seq) const;
  // The operations of each device up to its acknowledged sequence number.
  std::vector<const Operation*> UpTo(const std::map<std::string, uint64_t>& acknowledged) const;
  size_t size() const { return ops_.size(); }

 private:
  std::map<std::pair<std::string, uint64_t>, Operation> ops_;
};

// The state a set of operations gives: an entry lives if an operation made it and no operation's
// refs ended it (entries only move absent -> live -> dead, whatever the order of arrival).
class Model {
 public:
  Model(const std::vector<const Operation*>& ops, const Schema& schema);

  std::vector<RecordKey> Records() const;
  bool Deleted(const RecordKey& record) const;
  // The record's live entries as canonical lines (CanonicalLine), in key order.
  std::vector<std::string> Lines(const RecordKey& record) const;
  // What the app must read of the record (see ReadingOf), for a record not deleted.
  std::string Reading(const RecordKey& record) const;
  // The conflicts the app must be shown for the record (see ConflictText).
  std::set<std::string> Conflicts(const RecordKey& record) const;
  // Whether an operation ended the entry (it can never live again).
  bool Ended(const EntryKey& key) const { return ended_.count(key) > 0; }
  // Whether some operation restored the record after a delete.
  bool Restored(const RecordKey& record) const { return restored_.count(record) > 0; }

 private:
  const FieldSpec* Spec(const std::string& collection, const std::string& field) const;
  // The live register entries of each field that has some, winner first.
  std::map<std::string, std::vector<const Entry*>> Registers(const RecordKey& record) const;

  const Schema& schema_;
  std::map<RecordKey, std::map<EntryKey, Entry>> live_;  // by record, then by key
  std::set<EntryKey> ended_;
  std::set<RecordKey> restored_;
};

// A record as Store::Get returns it, one line a field: register winner (and whether other values
// are kept in conflict), set elements, log entries that are not redacted (text, revision of).
// Redacted entries are left out: a replica that receives the record after the server purged
// the dead entries has no trace of them, by design.
std::string ReadingOf(const Record& record);
// The key of a canonical line (CanonicalLine); nothing when it cannot be read.
std::optional<EntryKey> KeyOfLine(const std::string& line);
std::string ConflictText(const Conflict& conflict);

}  // namespace carnet::sim
