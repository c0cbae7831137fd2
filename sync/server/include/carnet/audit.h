// The server's audit log (sync/SECURITY.md, Audit): who (device, adviser) changed or was served
// which record and field, when, never what. Append-only and hash-chained: each row holds
// SHA-256(previous row's hash || AuditEncode(row)), so that the log can be checked from the store
// alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "carnet/status.h"

namespace carnet {

class ServerStore;

struct AuditRow {
  uint64_t id = 0;     // 1, 2, 3... without gaps: the row's place in the chain
  int64_t at_ms = 0;   // the server's time
  std::string device;
  std::string adviser;  // the device's adviser
  // A push: the kind of the operations ("write", "add", "remove", "append", "redact", "delete",
  // "restore"). A pull: "read" (entries of the record served to the device) or "forget" (the
  // device told to drop the record).
  std::string action;
  std::string collection;
  std::string record;
  std::string field;   // "" for a record as a whole (a read, a forget, a delete, a restore)
  uint32_t count = 0;  // operations of that kind on that field in the push; entries served
  std::string hash;    // 64 hex digits
};

// What the store keeps beside the log: its last row's id and hash (0 and "" while empty). Only
// moves forward; a log cut at its end no longer reaches it.
struct AuditHead {
  uint64_t last_id = 0;
  std::string hash;
};

// Which rows to read; empty or zero members match everything.
struct AuditFilter {
  std::string device;
  std::string record;
  int64_t since_ms = 0;  // rows at or after
};

// The bytes hashed for a row: every member but the hash, each as its decimal length, ':', its
// bytes, after a version tag. Unambiguous: no two rows encode alike.
std::string AuditEncode(const AuditRow& row);
// The hash row `row` must hold when it follows a row holding `previous_hash` ("" before the
// first row): hex of SHA-256(previous hash's 32 bytes, or 32 zero bytes || AuditEncode(row)).
std::string AuditHash(const std::string& previous_hash, const AuditRow& row);

struct AuditCheck {
  bool intact = false;
  uint64_t rows = 0;   // rows checked, up to the head read when the check began
  AuditHead head;      // as read when the check began
  uint64_t broken_at = 0;  // the first row found wrong (or missing) when not intact
  std::string problem;     // what is wrong, naming the row
};

// Checks the whole chain, up to the head read when it begins (rows appended meanwhile are left
// for the next check): ids without gaps from 1, each hash, the head. With `anchor` (a row's id
// and hash saved elsewhere, e.g. the head of an earlier check), also that this row still holds
// that hash: a log rewritten from some row on, hashes and head recomputed, passes the chain but
// not an anchor taken before. An error only when the store cannot be read.
Result<AuditCheck> VerifyAudit(ServerStore& store, const std::optional<AuditHead>& anchor);

}  // namespace carnet
