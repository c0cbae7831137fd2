// Last-writer-plus-merge as pure functions, independent of any storage, so that a tablet's
// SQLite store and the server's stores apply the very same code.
//
// The state of every field of every record is a set of entries, each keyed by
// (collection, record, field, element, stamp):
//   register  one entry per write; live entries are the heads (writes nobody has replaced).
//             The winner is the greatest head; the other heads are the conflicts kept for review.
//   set       one entry per addition (element, tag = stamp); live while no remove has seen it.
//             An element is present while any of its additions is live: additions a remover did
//             not see survive it (add wins).
//   log       one entry per appended text; a redaction kills it. Ordered by stamp.
//   record    (field "") one entry per delete tombstone; a restore kills it. A record with a live
//             tombstone is deleted.
// A dead entry keeps only its key. An operation creates its own entry (live) if it is not there
// yet, and kills (or creates dead) the entries its refs end, so that a replacement arriving
// before the write it replaces still wins. Both effects only move "absent -> live -> dead", hence
// the state is a function of the set of operations seen: commutative, associative, idempotent.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "carnet/hlc.h"
#include "carnet/operation.h"
#include "carnet/schema.h"

namespace carnet {

struct EntryKey {
  std::string collection;
  std::string record;
  std::string field;
  std::string element;
  Stamp stamp;

  friend bool operator==(const EntryKey&, const EntryKey&) = default;
  friend auto operator<=>(const EntryKey&, const EntryKey&) = default;
};

struct Entry {
  EntryKey key;
  FieldKind kind = FieldKind::kRegister;  // kSet for record tombstones
  bool live = false;
  std::optional<std::string> value;  // register value, log text; none when dead
  std::vector<Stamp> refs;           // informative refs (revision of, delete's view); none when dead

  friend bool operator==(const Entry&, const Entry&) = default;
};

// The keys an operation may touch: its own entry first, then one per ref it ends.
std::vector<EntryKey> KeysTouchedBy(const Operation& op);

// Given the existing entries among KeysTouchedBy(op) (absent ones omitted), returns the entries
// to write (insert or replace). Empty when the operation changes nothing (a duplicate).
std::vector<Entry> MergeOperation(const Operation& op, const std::vector<Entry>& existing);

// Joins an entry state received from another replica (a server pull) with the local one:
// absent < live < dead. Returns the entry to write, or nothing when the local state already
// includes it.
std::optional<Entry> MergeEntry(const Entry& incoming, const Entry* existing);

// Structural and schema checks of an entry received from elsewhere, as for operations
// (ValidateOperation): a newer app's collections, fields and enum values pass; a field kind this
// build does not know is refused with kUpdateNeeded.
Status ValidateEntry(const Schema& schema, const Entry& entry);

// The winner among the live heads of a register, by (rank, stamp) for forward-only fields and by
// stamp otherwise. `heads` must not be empty.
const Entry& RegisterWinner(const FieldSpec* field, const std::vector<Entry>& heads);

// The heads that lost to `winner` and are kept for review. Not losses: a head holding the
// winner's very value (two tablets typed the same thing), and on a forward-only field a lower
// state (the state moved on).
std::vector<const Entry*> RegisterLosers(const FieldSpec* field, const std::vector<Entry>& heads,
                                         const Entry& winner);

// The position of `value` among the field's allowed values; -1 for none. A value the schema does
// not know (a newer app's) ranks after every known one: a newer schema adds forward-only states
// after those it keeps, so the state moved on, and a record it freezes stays frozen here.
int ValueRank(const FieldSpec& field, const std::optional<std::string>& value);

// One line describing an entry (tab-separated, escaped, newline-terminated): the unit of the
// canonical dumps that replicas compare.
std::string CanonicalLine(const Entry& entry);

// Whether a delete tombstone whose refs are `view` (per device, the greatest stamp seen) had seen
// the entry stamped `stamp`.
bool DeleteHadSeen(const std::vector<Stamp>& view, const Stamp& stamp);

}  // namespace carnet
