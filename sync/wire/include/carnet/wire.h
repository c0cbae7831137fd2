// The sync protocol's messages (sync/PROTOCOL.md), defined once. They are serialised with
// cereal: JSON for readability, portable binary then deflate for bulk transfer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carnet/merge.h"
#include "carnet/operation.h"
#include "carnet/status.h"

namespace carnet::wire {

constexpr uint32_t kProtocolVersion = 1;
constexpr uint32_t kMinProtocolVersion = 1;  // the oldest version this build serves
constexpr uint32_t kMaxProtocolVersion = 1;

constexpr size_t kMaxPushOps = 5000;
constexpr size_t kMaxPullEntries = 5000;
constexpr size_t kMaxWireBytes = 8 * 1024 * 1024;   // a body as sent
constexpr size_t kMaxBodyBytes = 16 * 1024 * 1024;  // a body once inflated

enum class Format { kJson, kBinary };
const char* ContentType(Format format);
// Accepts a Content-Type header value (parameters ignored); nullopt when unknown.
std::optional<Format> FormatFromContentType(std::string_view content_type);

// The longest store incarnation a push may name (PROTOCOL.md, Push).
constexpr size_t kMaxIncarnationBytes = 64;

struct PushRequest {
  uint32_t protocol = kProtocolVersion;
  std::string device;
  // The life of the tablet's store that made `ops` (a random id it draws once), and the highest
  // sequence number that store has given an operation. Together they tell a push delivered late
  // (its operations acknowledged already) from a store restored from a backup (which counts
  // again from an older number). Empty: operations are known as duplicates by content only.
  std::string incarnation;
  uint64_t last_seq = 0;
  std::vector<Operation> ops;
};

struct PushReply {
  uint64_t acknowledged_seq = 0;
  uint32_t applied = 0;
  uint32_t duplicates = 0;
  int64_t server_time_ms = 0;
  // Nothing was applied: the server has acknowledged operations of this incarnation past
  // `last_seq`, so the store is a copy restored from a backup, and its sequence numbers from
  // there on name operations the server has already. The tablet draws a new incarnation and
  // pushes again.
  bool stale_incarnation = false;
  // Operations acknowledged but dropped, not applied: they touched a participant erased from
  // the server (PROTOCOL.md, Erasure), and would have brought them back.
  uint32_t erased = 0;
};

// The value of PullRequest::snapshot that asks for a first pull in key order (PROTOCOL.md,
// Snapshot).
inline constexpr const char* kSnapshotBegin = "begin";

struct PullRequest {
  uint32_t protocol = kProtocolVersion;
  uint64_t cursor = 0;
  uint32_t limit = 1000;
  // Empty: entries changed after `cursor`, in sequence order. kSnapshotBegin, or the token of
  // the previous reply: the device's whole scope in key order (cursor 0 only).
  std::string snapshot;
};

struct RecordRef {
  std::string collection;
  std::string record;
  friend bool operator==(const RecordRef&, const RecordRef&) = default;
};

// An erasure order (PROTOCOL.md, Erasure): the tablet erases the participant, the records that
// belong to them by its own copy, and the records listed, which the server erased with them.
struct ErasureOrder {
  std::string participant;
  std::vector<RecordRef> records;
  friend bool operator==(const ErasureOrder&, const ErasureOrder&) = default;
};

// The most records one erasure order lists: far more than one person's file.
constexpr size_t kMaxErasedRecords = 100'000;

struct PullReply {
  std::vector<Entry> entries;
  std::vector<RecordRef> forget;
  uint64_t next_cursor = 0;
  bool more = false;
  int64_t server_time_ms = 0;
  // Non-empty while a snapshot goes on: the token to send with the next pull.
  std::string snapshot;
  // Erasures the tablet carries out in the transaction that saves next_cursor; a later pull from
  // that cursor confirms them.
  std::vector<ErasureOrder> erase;
  // The device token has lived half its life: the tablet asks for a new one (POST /v1/token).
  bool rotate_token = false;
};

// Devices (PROTOCOL.md, Devices): a tablet exchanges a one-time enrollment code for its token
// (POST /v1/enroll, without a token), renews the token (POST /v1/token), and confirms a wipe
// (POST /v1/wiped, answered with a StatusReply).
struct EnrollRequest {
  uint32_t protocol = kProtocolVersion;
  std::string device;
  std::string code;  // as printed by carnet-server enroll; case, dashes and spaces do not count
};

struct TokenRequest {
  uint32_t protocol = kProtocolVersion;
  std::string device;
};

struct TokenReply {
  std::string token;
  int64_t token_expires_ms = 0;  // 0: never
  int64_t server_time_ms = 0;
};

struct WipeConfirmation {
  uint32_t protocol = kProtocolVersion;
  std::string device;
};

struct StatusReply {
  std::string device;
  std::string adviser;
  std::vector<std::string> territories;
  uint64_t cursor = 0;
  uint64_t acknowledged_seq = 0;
  int64_t server_time_ms = 0;
};

struct ErrorReply {
  std::string code;  // StatusCodeName()
  std::string message;
  bool retryable = false;
  int64_t server_time_ms = 0;
};

// Serialises a message. Fails only on a body larger than kMaxWireBytes.
template <typename Message>
Result<std::string> Encode(const Message& message, Format format);

// Parses a message; a malformed, truncated or too deeply nested body gives kInvalidArgument, a
// body past the size limits or a list past kMaxPushOps / kMaxPullEntries kResourceExhausted;
// never an exception or a crash.
template <typename Message>
Status Decode(std::string_view body, Format format, Message* message);

// The HTTP status for a Status code, and back (for replies without a readable body).
int HttpStatusFor(StatusCode code);
StatusCode StatusCodeFromName(std::string_view name);

}  // namespace carnet::wire
