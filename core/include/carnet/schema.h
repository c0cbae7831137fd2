// The records Carnet holds: collections, their fields, each field's type, merge kind and
// sensitivity class. The store and the merge are generic over this description: adding a field
// is a change here, not new merge code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "carnet/status.h"

namespace carnet {

// How concurrent changes to a field merge (see ../shared/DOMAIN.md).
enum class FieldKind {
  kRegister,  // last writer wins by (HLC, device); concurrent losers kept as conflicts
  kSet,       // add-wins observed-remove set of strings
  kLog,       // append-only list ordered by HLC; entries are redacted, never overwritten
};

enum class FieldType {
  kText,      // UTF-8
  kInteger,   // decimal int64
  kBoolean,   // "true" or "false"
  kDate,      // YYYY-MM-DD
  kDateTime,  // YYYY-MM-DDTHH:MM:SSZ (UTC)
  kEnum,      // one of FieldSpec::values
  kRef,       // the id of a record
};

// GDPR sensitivity: P personal, S social appreciation, H health (special category, art. 9).
enum class Sensitivity { kNone, kPersonal, kSocial, kHealth };

const char* FieldKindName(FieldKind kind);
const char* FieldTypeName(FieldType type);
const char* SensitivityName(Sensitivity s);

struct FieldSpec {
  std::string name;
  FieldKind kind = FieldKind::kRegister;
  // For registers: the value's type. For sets: each element's type. For logs: always text.
  FieldType type = FieldType::kText;
  Sensitivity sensitivity = Sensitivity::kPersonal;
  // kEnum: the allowed values, in rank order for forward-only fields.
  std::vector<std::string> values;
  // A register whose value only moves forward through `values` (draft, validated, exported):
  // the highest rank wins, whatever the clocks say, and a local step back is refused.
  bool forward_only = false;
};

struct CollectionSpec {
  std::string name;
  std::vector<FieldSpec> fields;
  // The field holding the participant a record belongs to ("" for participants themselves, whose
  // own id is the participant, and for collections that belong to nobody, like workshops). The
  // sync scope follows it.
  std::string participant_field;
  bool belongs_to_participant = true;
  // Name of a forward-only field whose ranks >= freeze_rank freeze every other field: a
  // validated ESF record is corrected by a new record, never edited.
  std::string freeze_field;
  size_t freeze_rank = 0;

  const FieldSpec* Find(std::string_view field) const;
};

class Schema {
 public:
  // The programme's records (DOMAIN.md). Version 1.
  static const Schema& Programme();

  explicit Schema(std::vector<CollectionSpec> collections);

  const CollectionSpec* Find(std::string_view collection) const;
  const std::vector<CollectionSpec>& collections() const { return collections_; }

 private:
  std::vector<CollectionSpec> collections_;
};

// Limits on what a record holds; larger input is refused with kInvalidArgument.
constexpr size_t kMaxValueBytes = 64 * 1024;
constexpr size_t kMaxNameBytes = 64;
constexpr size_t kMaxRecordIdBytes = 96;

// Names (collections, fields, device ids): [a-z0-9_] for names, [A-Za-z0-9._:-] for ids.
bool IsValidName(std::string_view name);
bool IsValidRecordId(std::string_view id);
bool IsValidDeviceId(std::string_view id);

// Whether `value` is acceptable for `field` (type, enum membership, size): what a local change
// may write.
Status ValidateValue(const FieldSpec& field, std::string_view value);

// As ValidateValue, for a value received from another replica, whose app may be newer: an enum
// value this schema does not know is accepted when it has the form of one (a name, see
// IsValidName), to be kept and passed on untouched. Every other check holds.
Status ValidateReceivedValue(const FieldSpec& field, std::string_view value);

// Whether this schema knows `value` of `field`: false only for an enum value outside `values`
// (a newer app's).
bool IsKnownValue(const FieldSpec& field, std::string_view value);

// The id of the attendance record of one participant at one workshop session: the same on every
// tablet, so two advisers recording the same attendance offline touch the same record.
std::string AttendanceId(std::string_view session_id, std::string_view participant_id);

}  // namespace carnet
