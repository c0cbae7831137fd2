// Errors in Carnet: every call that can fail returns a Status or a Result<T>.
// Callers branch on the code; humans read the message. Nothing throws across the API.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace carnet {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the input is wrong; retrying the same input cannot help
  kNotFound,            // the record, field or key does not exist
  kAlreadyExists,       // the thing to create is there already
  kFailedPrecondition,  // the state forbids it now (a deleted record, a frozen record, a newer file)
  kClockSkew,           // a stamp is too far ahead of this replica's time
  kResourceExhausted,   // too large, or out of space: retry after freeing something
  kBusy,                // another process holds a lock: retry soon
  kUnavailable,         // the network or the server is not reachable: retry later
  kIoError,             // the disk failed: may succeed once the fault is gone
  kCorruption,          // stored data is unreadable
  kPermissionDenied,    // authenticated, but not allowed
  kUnauthenticated,     // no valid credential
  kUpdateNeeded,        // the peer speaks a protocol version this build cannot serve
  kInternal,            // a bug in Carnet
  kDeviceRevoked,       // the server revoked this device: it erases what it holds (a wipe)
  kLeaseExpired,        // the offline lease ran out: records open again after a successful sync
};

// Short stable name of a code ("invalid_argument"), used in logs and on the wire.
const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Whether the same call may succeed later without any change to its input.
  bool retryable() const;
  // "code_name: message", for logs.
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status FailedPrecondition(std::string message);
Status Internal(std::string message);

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design, like StatusOr
  Result(Status status) : status_(std::move(status)) {
    if (status_.ok()) status_ = Internal("Result built from an ok Status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace carnet

#define CARNET_RETURN_IF_ERROR(expr)            \
  do {                                          \
    ::carnet::Status carnet_status_ = (expr);   \
    if (!carnet_status_.ok()) return carnet_status_; \
  } while (0)
