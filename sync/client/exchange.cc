// One request of the sync protocol: encoding, the POST, decoding, errors and their retries, and
// the clock offset every reply tells.
#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "sync/client/sync_client_impl.h"

namespace carnet {
namespace {

// A mirror of the offset given to Store::SetClockOffsetMs, which the store does not read back.
constexpr const char* kClockOffsetKey = "clock_offset_ms";
// The store's incarnation (PROTOCOL.md, Push), drawn at its first push. It lives in the store's
// own file: a reinstalled tablet draws a new one, a restored copy keeps it until the server says.
constexpr const char* kPushIncarnationKey = "push_incarnation";
// Offsets closer than this are measurement noise (the midpoint of a round trip), not worth a
// write.
constexpr int64_t kClockOffsetTolerance = 1000;
// Backoff sleeps in slices this long, so that Stop() does not wait a whole backoff out.
constexpr int64_t kSleepSliceMs = 250;

// For error replies without a readable body (a proxy's page, a crash), sync/PROTOCOL.md's table.
StatusCode CodeForHttpStatus(int status) {
  switch (status) {
    case 400:
      return StatusCode::kInvalidArgument;
    case 401:
      return StatusCode::kUnauthenticated;
    case 403:
      return StatusCode::kPermissionDenied;
    case 404:
      return StatusCode::kNotFound;
    case 409:
      return StatusCode::kFailedPrecondition;
    case 413:
      return StatusCode::kResourceExhausted;
    case 415:
      return StatusCode::kInvalidArgument;
    case 422:
      return StatusCode::kClockSkew;
    case 426:
      return StatusCode::kUpdateNeeded;
    case 429:
      return StatusCode::kBusy;
    case 502:
    case 503:
    case 504:
      return StatusCode::kUnavailable;
    default:
      return status >= 400 && status < 500 ? StatusCode::kInvalidArgument : StatusCode::kInternal;
  }
}

template <typename Reply>
Status DecodeReply(const std::string& path, const HttpReply& http, Reply* reply) {
  std::optional<wire::Format> format = wire::FormatFromContentType(http.content_type);
  // A captive portal or a proxy answering in the server's stead: the server is not reached.
  if (!format) {
    return Status(
        StatusCode::kUnavailable,
        "POST " + path + ": reply of type '" + http.content_type + "' is not from a Carnet server");
  }
  Status decoded = wire::Decode(http.body, *format, reply);
  if (!decoded.ok()) return Internal("POST " + path + ": unreadable reply: " + decoded.message());
  return Status::Ok();
}

}  // namespace

template <typename Request, typename Reply>
Status SyncClient::Impl::Exchange(const std::string& path, const Request& request, Reply* reply) {
  Result<std::string> body = wire::Encode(request, options_.format);
  if (!body.ok()) return body.status();
  HttpRequest http_request = MakeRequest(path, *body);
  const int attempts = std::max(1, options_.max_attempts);
  for (int attempt = 1;; ++attempt) {
    int64_t start_ms = env_->NowMillis();
    Result<HttpReply> http = transport_->Post(http_request);
    int64_t end_ms = env_->NowMillis();
    Failure failure;
    if (!http.ok()) {
      failure.status = http.status();
    } else if (http->status == 200) {
      failure.status = DecodeReply(path, *http, reply);
      failure.http_status = 200;
      if (failure.status.ok()) {
        AdoptServerTime(reply->server_time_ms, start_ms, end_ms);
        return Status::Ok();
      }
    } else {
      failure = FailureFromReply(path, *http, start_ms, end_ms);
    }
    if (!ShouldRetry(failure) || attempt >= attempts) return failure.status;
    env_->Log(LogLevel::kInfo, "sync: " + failure.status.ToString() + "; attempt " +
                                   std::to_string(attempt + 1) + " of " + std::to_string(attempts) +
                                   " after a backoff");
    if (!Backoff(attempt)) return failure.status;
  }
}

template Status SyncClient::Impl::Exchange(const std::string&, const wire::PushRequest&,
                                           wire::PushReply*);
template Status SyncClient::Impl::Exchange(const std::string&, const wire::PullRequest&,
                                           wire::PullReply*);
template Status SyncClient::Impl::Exchange(const std::string&, const wire::EnrollRequest&,
                                           wire::TokenReply*);
template Status SyncClient::Impl::Exchange(const std::string&, const wire::TokenRequest&,
                                           wire::TokenReply*);
template Status SyncClient::Impl::Exchange(const std::string&, const wire::WipeConfirmation&,
                                           wire::StatusReply*);

HttpRequest SyncClient::Impl::MakeRequest(const std::string& path, const std::string& body) {
  const char* type = wire::ContentType(options_.format);
  HttpRequest request;
  request.path = path;
  request.headers = {{"Carnet-Protocol", std::to_string(wire::kProtocolVersion)},
                     {"Content-Type", type},
                     {"Accept", type}};
  // None before enrollment: the code is in the body.
  if (std::string token = Token(); !token.empty()) {
    request.headers.emplace_back("Authorization", "Bearer " + token);
  }
  request.body = body;
  return request;
}

SyncClient::Impl::Failure SyncClient::Impl::FailureFromReply(const std::string& path,
                                                             const HttpReply& reply,
                                                             int64_t start_ms, int64_t end_ms) {
  std::string prefix = "POST " + path + ": HTTP " + std::to_string(reply.status) + ": ";
  wire::ErrorReply error;
  std::optional<wire::Format> format = wire::FormatFromContentType(reply.content_type);
  if (format && wire::Decode(reply.body, *format, &error).ok()) {
    StatusCode code = wire::StatusCodeFromName(error.code);
    if (code != StatusCode::kOk) {
      AdoptServerTime(error.server_time_ms, start_ms, end_ms);
      return Failure{Status(code, prefix + error.message), reply.status};
    }
  }
  return Failure{Status(CodeForHttpStatus(reply.status), prefix + "no readable error in the reply"),
                 reply.status};
}

bool SyncClient::Impl::ShouldRetry(const Failure& failure) const {
  StatusCode code = failure.status.code();
  // A server error (5xx: internal, its disk) may pass; a reply we cannot read will not change.
  return code == StatusCode::kUnavailable || code == StatusCode::kBusy ||
         failure.http_status >= 500;
}

bool SyncClient::Impl::Backoff(int retry) {
  int64_t initial = std::max<int64_t>(1, options_.backoff_initial_ms);
  int64_t cap = std::max<int64_t>(1, options_.backoff_max_ms);
  int64_t ceiling = std::min(initial, cap);
  for (int i = 1; i < retry && ceiling < cap; ++i) ceiling = ceiling > cap / 2 ? cap : ceiling * 2;
  // Full jitter: tablets cut off together (a mast down) must not come back together.
  auto delay = static_cast<int64_t>(env_->RandomU64() % static_cast<uint64_t>(ceiling + 1));
  while (delay > 0) {
    {
      std::lock_guard<std::mutex> lock(schedule_mutex_);
      if (stopping_) return false;
    }
    int64_t slice = std::min(delay, kSleepSliceMs);
    env_->SleepForMillis(slice);
    delay -= slice;
  }
  std::lock_guard<std::mutex> lock(schedule_mutex_);
  return !stopping_;
}

void SyncClient::Impl::AdoptServerTime(int64_t server_time_ms, int64_t start_ms, int64_t end_ms) {
  if (server_time_ms <= 0) return;
  int64_t offset = server_time_ms - (start_ms + (end_ms - start_ms) / 2);
  if (std::llabs(offset - clock_offset_ms_) <= kClockOffsetTolerance) return;
  Status status = store_->SetClockOffsetMs(offset);
  if (status.ok()) status = store_->SetSyncState(kClockOffsetKey, std::to_string(offset));
  if (!status.ok()) {
    env_->Log(LogLevel::kWarning, "sync: saving the clock offset: " + status.ToString());
    return;
  }
  clock_offset_ms_ = offset;
  env_->Log(LogLevel::kInfo, "sync: clock offset now " + std::to_string(offset) + " ms");
  Publish([&](SyncStatus* s) { s->clock_offset_ms = offset; });
}

Result<std::string> SyncClient::Impl::PushIncarnation(bool renew) {
  if (!renew) {
    Result<std::optional<std::string>> stored = store_->GetSyncState(kPushIncarnationKey);
    if (!stored.ok()) return stored.status();
    if (stored->has_value()) return **stored;
  }
  std::string incarnation = store_->NewId();
  CARNET_RETURN_IF_ERROR(store_->SetSyncState(kPushIncarnationKey, incarnation));
  return incarnation;
}

int64_t SyncClient::Impl::LoadClockOffset() {
  Result<std::optional<std::string>> stored = store_->GetSyncState(kClockOffsetKey);
  if (!stored.ok() || !stored->has_value()) return 0;
  const std::string& text = **stored;
  int64_t offset = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), offset);
  return ec == std::errc() && end == text.data() + text.size() ? offset : 0;
}

}  // namespace carnet
