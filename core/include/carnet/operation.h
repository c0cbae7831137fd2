// Operations: every change to a record is one, on one field of one record, stamped with the
// hybrid logical clock and the id of the device that made it. Replicas exchange operations, never
// states; applying the same set of operations in any order, with duplicates, gives one state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "carnet/hlc.h"
#include "carnet/schema.h"

namespace carnet {

enum class OpKind : uint8_t {
  kWrite = 1,   // register: value (or none, to clear); refs = the writes it replaces
  kAdd = 2,     // set: add `element`; the op's stamp tags this addition
  kRemove = 3,  // set: remove `element`; refs = the addition tags the remover had seen
  kAppend = 4,  // log: new entry with text `value`; refs = [the entry it revises], if any
  kRedact = 5,  // log: refs = [the entry whose text is removed]
  kDelete = 6,  // record: tombstone; refs = per device, the greatest stamp the deleter had seen
  kRestore = 7, // record: refs = the delete tombstones it cancels
};

const char* OpKindName(OpKind kind);
std::optional<OpKind> OpKindFromName(std::string_view name);
// Whether the op's refs name entries it ends (supersedes, removes, redacts, cancels), as opposed
// to refs that only inform (a revision's original, a delete's view of the record).
bool OpRefsEndEntries(OpKind kind);
bool IsRecordOp(OpKind kind);
FieldKind FieldKindOf(OpKind kind);

struct Operation {
  // Id: (device, seq). seq counts from 1 on each device, without gaps.
  std::string device;
  uint64_t seq = 0;
  Hlc hlc = 0;
  OpKind kind = OpKind::kWrite;
  std::string collection;
  std::string record;
  std::string field;    // empty for record operations (delete, restore)
  std::string element;  // set operations only
  std::optional<std::string> value;
  std::vector<Stamp> refs;

  Stamp stamp() const { return Stamp{hlc, device}; }
  friend bool operator==(const Operation&, const Operation&) = default;
};

constexpr size_t kMaxRefs = 4096;

// Structural and schema checks of an operation received from elsewhere. Collections, fields and
// enum values the schema does not know are accepted (a newer app's are kept and passed on, never
// dropped); known fields must match their kind and type. An operation kind this build does not
// know is refused with kUpdateNeeded: its merge rule cannot be guessed.
Status ValidateOperation(const Schema& schema, const Operation& op);

}  // namespace carnet
