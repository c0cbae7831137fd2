#include "carnet/server.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>

#include "carnet/loopback.h"
#include "carnet/schema.h"
#include "carnet/wire.h"
#include "sync/server/http_server.h"

namespace carnet {
namespace {

// An enrollment is a device id (64 bytes at most), a code and the protocol version: a few hundred
// bytes in either format; 4 KiB leaves room and keeps the decoding of a stranger's body small.
constexpr size_t kMaxEnrollBytes = 4096;
// Requests other than a push carry a few fields: a code, a cursor, a device id.
constexpr size_t kSmallBodyBytes = 64 * 1024;

// TLS 1.2: ephemeral ECDH key exchange (forward secrecy) and AEAD ciphers only, no CBC, no RSA
// key exchange; for RSA and ECDSA certificates alike. Every TLS 1.3 suite is of that kind.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kGroups = "X25519:P-256:P-384";

// OpenSSL's reasons for the last failure, oldest first, and an empty queue.
std::string OpensslErrors() {
  std::string text;
  while (unsigned long error = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(error);
    std::string line = reason != nullptr ? reason : "error " + std::to_string(error);
    if (text.find(line) == std::string::npos) text += (text.empty() ? "" : ", ") + line;
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

std::string Unreadable(const std::string& what, const std::string& path) {
  std::unique_ptr<FILE, decltype(&fclose)> file(std::fopen(path.c_str(), "r"), &fclose);
  return file ? "" : "cannot read the TLS " + what + " '" + path + "': " + std::strerror(errno);
}

// Sets `ctx` up for carnet-server: protocol versions, ciphers, certificate and key. Every
// setting is explicit, so that a host whose OpenSSL configuration lowers the defaults (an old
// MinProtocol, a security level of 0) does not lower the server's. Returns what went wrong, or
// "" when `ctx` is ready.
std::string ConfigureTls(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file) {
  ERR_clear_error();
  SSL_CTX_set_security_level(ctx, 2);  // keys of 112 bits of strength at least: RSA 2048, P-256
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, 0) != 1) {  // 0: the newest OpenSSL has, TLS 1.3
    return "cannot set the TLS versions: " + OpensslErrors();
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1 ||
      SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
    return "cannot set the TLS ciphers: " + OpensslErrors();
  }
  if (std::string error = Unreadable("certificate", cert_file); !error.empty()) return error;
  if (std::string error = Unreadable("key", key_file); !error.empty()) return error;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return "cannot use the TLS certificate '" + cert_file +
           "' (a PEM certificate chain, the server's own first): " + OpensslErrors();
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return "cannot use the TLS key '" + key_file + "' (an unencrypted PEM private key): " +
           OpensslErrors();
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return "the TLS key '" + key_file + "' is not the key of the certificate '" + cert_file +
           "': " + OpensslErrors();
  }
  return "";
}

}  // namespace

class SyncServer::Impl {
 public:
  struct Negotiated {
    wire::Format request = wire::Format::kJson;
    wire::Format reply = wire::Format::kJson;
  };

  explicit Impl(ServerOptions options) : options_(std::move(options)) {}

  Status Start();
  void Stop();
  int port() const { return http_ ? http_->port() : 0; }

 private:
  // Writes `status` as an ErrorReply in the negotiated format.
  void Fail(ServerResponse& res, wire::Format format, const Status& status);
  template <typename Message>
  void Reply(ServerResponse& res, wire::Format format, const Message& message);
  // Checks protocol and formats; on failure the response is written already.
  bool AdmitRequest(const ServerRequest& req, ServerResponse& res, Negotiated* formats);
  // AdmitRequest, then the device token. A revoked device is refused with device_revoked (it
  // must wipe), unless `revoked_welcome` (its wipe confirmation).
  bool Admit(const ServerRequest& req, ServerResponse& res, Device* device, Negotiated* formats,
             bool revoked_welcome = false);
  // Decodes a request naming its device, which must be the one the token is for; on failure
  // the response is written already.
  template <typename Message>
  bool DecodeFromDevice(const ServerRequest& req, ServerResponse& res, const Device& device,
                        const Negotiated& formats, const char* what, Message* message);
  void HandleEnroll(const ServerRequest& req, ServerResponse& res);
  void HandleToken(const ServerRequest& req, ServerResponse& res);
  void HandleWiped(const ServerRequest& req, ServerResponse& res);
  // A new token for the device, valid for options_.token_lifetime_ms from now.
  wire::TokenReply NewToken();
  void HandlePush(const ServerRequest& req, ServerResponse& res);
  void HandlePull(const ServerRequest& req, ServerResponse& res);
  void HandleStatus(const ServerRequest& req, ServerResponse& res);
  void MaybePurge();
  void HandleMetrics(const ServerRequest& req, ServerResponse& res);
  // Counts a request once its reply is made (HttpHooks::answered).
  void Count(const ServerRequest& req, const ServerResponse& res);
  // Whether the request carries the operator's token (ServerOptions::metrics_token).
  bool IsOperator(const ServerRequest& req) const;
  void MaybeApplyRetention();

  ServerOptions options_;
  std::unique_ptr<HttpServer> http_;
  std::atomic<int64_t> last_purge_ms_{0};
  // What /metrics reports (sync/OPERATIONS.md), since this process started.
  std::mutex metrics_mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (path, HTTP status) -> count
  std::atomic<uint64_t> operations_applied_{0};
  std::atomic<uint64_t> operations_duplicate_{0};
  std::atomic<uint64_t> entries_served_{0};
  std::atomic<uint64_t> forgets_served_{0};
  // The conflict count reads the store's registers with several heads: counted at most once a
  // minute, however often /metrics is scraped.
  std::atomic<int64_t> conflicts_counted_ms_{0};
  std::atomic<uint64_t> conflicts_{0};
  std::atomic<int64_t> last_retention_ms_{0};
};

void SyncServer::Impl::Fail(ServerResponse& res, wire::Format format, const Status& status) {
  wire::ErrorReply error{StatusCodeName(status.code()), status.message(), status.retryable(),
                         options_.env->NowMillis()};
  Result<std::string> body = wire::Encode(error, format);
  res.status = wire::HttpStatusFor(status.code());
  res.SetContent(body.ok() ? body.value() : status.ToString(),
                 body.ok() ? wire::ContentType(format) : "text/plain");
}

template <typename Message>
void SyncServer::Impl::Reply(ServerResponse& res, wire::Format format, const Message& message) {
  Result<std::string> body = wire::Encode(message, format);
  if (!body.ok()) return Fail(res, format, body.status());
  res.status = 200;
  res.SetContent(body.value(), wire::ContentType(format));
}

bool SyncServer::Impl::AdmitRequest(const ServerRequest& req, ServerResponse& res,
                                    Negotiated* formats) {
  std::optional<wire::Format> request_format =
      wire::FormatFromContentType(req.Header("Content-Type"));
  std::optional<wire::Format> reply_format = wire::FormatFromContentType(req.Header("Accept"));
  formats->request = request_format.value_or(wire::Format::kJson);
  formats->reply = reply_format.value_or(formats->request);
  if (!request_format && req.method == "POST") {
    Fail(res, formats->reply,
         InvalidArgument("unsupported content type '" + req.Header("Content-Type") +
                         "': use application/json or application/vnd.carnet.bin"));
    res.status = 415;
    return false;
  }
  std::string protocol = req.Header("Carnet-Protocol");
  uint32_t version = 0;
  try {
    version = static_cast<uint32_t>(std::stoul(protocol));
  } catch (const std::exception&) {
    version = 0;
  }
  if (version < wire::kMinProtocolVersion || version > wire::kMaxProtocolVersion) {
    Fail(res, formats->reply,
         Status(StatusCode::kUpdateNeeded,
                "protocol version '" + protocol + "' is not served here (versions " +
                    std::to_string(wire::kMinProtocolVersion) + " to " +
                    std::to_string(wire::kMaxProtocolVersion) + "): update the app"));
    return false;
  }
  return true;
}

bool SyncServer::Impl::Admit(const ServerRequest& req, ServerResponse& res, Device* device,
                             Negotiated* formats, bool revoked_welcome) {
  if (!AdmitRequest(req, res, formats)) return false;
  const std::string authorization = req.Header("Authorization");
  const std::string prefix = "Bearer ";
  if (authorization.rfind(prefix, 0) != 0 || authorization.size() == prefix.size()) {
    Fail(res, formats->reply, Status(StatusCode::kUnauthenticated, "missing bearer token"));
    return false;
  }
  Result<Device> found = options_.store->Authenticate(HashToken(authorization.substr(prefix.size())));
  if (!found.ok()) {
    Fail(res, formats->reply, found.status());
    return false;
  }
  if (found->revoked && !revoked_welcome) {
    Fail(res, formats->reply,
         Status(StatusCode::kDeviceRevoked,
                "device '" + found->id + "' is revoked: erase what this tablet holds, then "
                "confirm (POST /v1/wiped)"));
    return false;
  }
  *device = std::move(found.value());
  return true;
}

wire::TokenReply SyncServer::Impl::NewToken() {
  wire::TokenReply reply;
  reply.token = NewDeviceToken(options_.env);
  reply.server_time_ms = options_.env->NowMillis();
  if (options_.token_lifetime_ms > 0) {
    reply.token_expires_ms = reply.server_time_ms + options_.token_lifetime_ms;
  }
  return reply;
}

void SyncServer::Impl::HandleEnroll(const ServerRequest& req, ServerResponse& res) {
  Negotiated formats;
  if (!AdmitRequest(req, res, &formats)) return;
  // The one route without a token: bounded before it is decoded, its id checked before it is
  // logged or echoed (sync/SECURITY.md, Devices).
  if (req.body.size() > kMaxEnrollBytes) {
    return Fail(res, formats.reply,
                Status(StatusCode::kResourceExhausted, "an enrollment request is at most " +
                                                           std::to_string(kMaxEnrollBytes) +
                                                           " bytes"));
  }
  wire::EnrollRequest enroll;
  Status decoded = wire::Decode(req.body, formats.request, &enroll);
  if (!decoded.ok()) return Fail(res, formats.reply, decoded);
  if (!IsValidDeviceId(enroll.device)) {
    return Fail(res, formats.reply,
                InvalidArgument("a device id is 1 to 64 letters, digits, '.', '_', ':' or '-'"));
  }
  const std::string code = NormalizeEnrollmentCode(enroll.code);
  if (code.empty()) {
    return Fail(res, formats.reply,
                InvalidArgument("an enrollment code is 20 letters and digits, as printed by "
                                "carnet-server enroll"));
  }
  wire::TokenReply reply = NewToken();
  Result<Device> device = options_.store->RedeemEnrollmentCode(
      enroll.device, HashToken(code), HashToken(reply.token), reply.token_expires_ms);
  if (!device.ok()) {
    options_.env->Log(LogLevel::kWarning, "enrollment of " + enroll.device + " refused: " +
                                              device.status().ToString());
    return Fail(res, formats.reply, device.status());
  }
  options_.env->Log(LogLevel::kInfo, "device " + device->id + " enrolled");
  Reply(res, formats.reply, reply);
}

template <typename Message>
bool SyncServer::Impl::DecodeFromDevice(const ServerRequest& req, ServerResponse& res,
                                        const Device& device, const Negotiated& formats,
                                        const char* what, Message* message) {
  Status decoded = wire::Decode(req.body, formats.request, message);
  if (!decoded.ok()) {
    Fail(res, formats.reply, decoded);
    return false;
  }
  if (message->device != device.id) {
    Fail(res, formats.reply,
         Status(StatusCode::kPermissionDenied, std::string(what) + " for device '" +
                                                   message->device + "' with the token of '" +
                                                   device.id + "'"));
    return false;
  }
  return true;
}

void SyncServer::Impl::HandleToken(const ServerRequest& req, ServerResponse& res) {
  Device device;
  Negotiated formats;
  wire::TokenRequest request;
  if (!Admit(req, res, &device, &formats) ||
      !DecodeFromDevice(req, res, device, formats, "token", &request)) {
    return;
  }
  wire::TokenReply reply = NewToken();
  Status saved =
      options_.store->SetNextToken(device.id, HashToken(reply.token), reply.token_expires_ms);
  if (!saved.ok()) return Fail(res, formats.reply, saved);
  Reply(res, formats.reply, reply);
}

void SyncServer::Impl::HandleWiped(const ServerRequest& req, ServerResponse& res) {
  Device device;
  Negotiated formats;
  wire::WipeConfirmation confirmation;
  if (!Admit(req, res, &device, &formats, /*revoked_welcome=*/true) ||
      !DecodeFromDevice(req, res, device, formats, "wipe confirmation", &confirmation)) {
    return;
  }
  Status confirmed = options_.store->ConfirmWipe(device.id);
  if (!confirmed.ok()) return Fail(res, formats.reply, confirmed);
  options_.env->Log(LogLevel::kWarning, "device " + device.id + " confirmed its wipe");
  wire::StatusReply reply{device.id,     device.adviser,          device.territories,
                          device.cursor, device.acknowledged_seq, options_.env->NowMillis()};
  Reply(res, formats.reply, reply);
}

void SyncServer::Impl::HandlePush(const ServerRequest& req, ServerResponse& res) {
  Device device;
  Negotiated formats;
  wire::PushRequest push;
  if (!Admit(req, res, &device, &formats) ||
      !DecodeFromDevice(req, res, device, formats, "push", &push)) {
    return;
  }
  Result<wire::PushReply> reply = options_.store->Push(device, push);
  if (!reply.ok()) {
    options_.env->Log(LogLevel::kWarning, "push from " + device.id + " refused: " +
                                              reply.status().ToString());
    return Fail(res, formats.reply, reply.status());
  }
  operations_applied_ += reply->applied;
  operations_duplicate_ += reply->duplicates;
  Reply(res, formats.reply, reply.value());
}

void SyncServer::Impl::HandlePull(const ServerRequest& req, ServerResponse& res) {
  Device device;
  Negotiated formats;
  if (!Admit(req, res, &device, &formats)) return;
  wire::PullRequest pull;
  Status decoded = wire::Decode(req.body, formats.request, &pull);
  if (!decoded.ok()) return Fail(res, formats.reply, decoded);
  if (!pull.snapshot.empty() && pull.cursor != 0) {
    return Fail(res, formats.reply, InvalidArgument("a snapshot pull starts from cursor 0"));
  }
  Result<wire::PullReply> reply =
      !pull.snapshot.empty() && options_.store->ServesSnapshots()
          ? options_.store->PullSnapshot(device, pull.snapshot, pull.limit)
          : options_.store->Pull(device, pull.cursor, pull.limit);
  if (!reply.ok()) return Fail(res, formats.reply, reply.status());
  // Past half its life, at every pull until the tablet has a new one.
  reply->rotate_token =
      device.token_expires_ms != 0 &&
      options_.env->NowMillis() >=
          device.token_issued_ms + (device.token_expires_ms - device.token_issued_ms) / 2;
  entries_served_ += reply->entries.size();
  forgets_served_ += reply->forget.size();
  Reply(res, formats.reply, reply.value());
  MaybePurge();
  MaybeApplyRetention();
}

void SyncServer::Impl::HandleStatus(const ServerRequest& req, ServerResponse& res) {
  Device device;
  Negotiated formats;
  if (!Admit(req, res, &device, &formats)) return;
  wire::StatusReply reply{device.id,     device.adviser,          device.territories,
                          device.cursor, device.acknowledged_seq, options_.env->NowMillis()};
  Reply(res, formats.reply, reply);
}

// Pulls move acknowledgements forward; purging after one, at most once a minute, keeps the
// central records bounded without a scheduler of its own.
void SyncServer::Impl::MaybePurge() {
  int64_t now = options_.env->NowMillis();
  int64_t last = last_purge_ms_.load();
  if (now - last < 60'000 || !last_purge_ms_.compare_exchange_strong(last, now)) return;
  Result<uint64_t> purged = options_.store->Purge();
  if (!purged.ok()) {
    options_.env->Log(LogLevel::kWarning, "purge failed: " + purged.status().ToString());
  }
  // An erasure a reader of the file held back is scrubbed here once the reader is gone: one try,
  // no wait (sync/OPERATIONS.md, Erasure).
  if (Result<bool> scrubbed = options_.store->ScrubErasures(0); !scrubbed.ok()) {
    options_.env->Log(LogLevel::kWarning, "erasure scrub failed: " + scrubbed.status().ToString());
  }
}

// Retention moves slowly (days): once an hour is often enough, and the pass reads every
// participant's last contact.
void SyncServer::Impl::MaybeApplyRetention() {
  if (!options_.retention) return;
  int64_t now = options_.env->NowMillis();
  int64_t last = last_retention_ms_.load();
  if ((last != 0 && now - last < options_.retention_every_ms) ||
      !last_retention_ms_.compare_exchange_strong(last, now)) {
    return;
  }
  Result<RetentionReport> applied = options_.store->ApplyRetention(*options_.retention, false);
  if (!applied.ok()) {
    options_.env->Log(LogLevel::kWarning, "retention failed: " + applied.status().ToString());
  }
}

void SyncServer::Impl::Count(const ServerRequest& req, const ServerResponse& res) {
  // Known paths only: a scanner's thousand made-up paths must not grow the table.
  static const char* const kPaths[] = {"/v1/push",  "/v1/pull",   "/v1/status", "/v1/enroll",
                                       "/v1/token", "/v1/wiped",  "/healthz",   "/metrics"};
  std::string path = "other";
  for (const char* known : kPaths) {
    if (req.path == known) path = known;
  }
  std::lock_guard<std::mutex> lock(metrics_mutex_);
  ++requests_[{path, res.status}];
}

bool SyncServer::Impl::IsOperator(const ServerRequest& req) const {
  const std::string authorization = req.Header("Authorization");
  const std::string prefix = "Bearer ";
  if (options_.metrics_token.empty() || authorization.rfind(prefix, 0) != 0) return false;
  // Digests of equal length compared in constant time: the time taken says nothing of how much
  // of the token was right, nor of its length.
  const std::string presented = HashToken(authorization.substr(prefix.size()));
  const std::string expected = HashToken(options_.metrics_token);
  return presented.size() == expected.size() &&
         CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
}

// Prometheus text format (version 0.0.4). Device ids and last contacts are for the operator
// only: the scraper presents the operator's token (sync/OPERATIONS.md), whatever its address,
// since a proxy on this machine makes every client look local.
void SyncServer::Impl::HandleMetrics(const ServerRequest& req, ServerResponse& res) {
  if (!IsOperator(req)) {
    res.status = 401;
    res.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"carnet-metrics\"");
    res.SetContent(options_.metrics_token.empty()
                       ? "metrics are off: start carnet-server serve with --metrics-token-file\n"
                       : "metrics need the operator's token: Authorization: Bearer TOKEN\n",
                   "text/plain");
    return;
  }
  std::string text =
      "# HELP carnet_requests_total Requests answered, by path and HTTP status.\n"
      "# TYPE carnet_requests_total counter\n";
  uint64_t errors = 0;
  {
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    for (const auto& [key, count] : requests_) {
      text += "carnet_requests_total{path=\"" + key.first + "\",code=\"" +
              std::to_string(key.second) + "\"} " + std::to_string(count) + "\n";
      if (key.second >= 400) errors += count;
    }
  }
  auto counter = [&](const char* name, const char* help, uint64_t value) {
    text += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name +
            " " + std::to_string(value) + "\n";
  };
  counter("carnet_errors_total", "Requests answered with an error (HTTP 4xx and 5xx).", errors);
  counter("carnet_operations_applied_total", "Pushed operations that changed the records.",
          operations_applied_.load());
  counter("carnet_operations_duplicate_total",
          "Pushed operations the server held already (retries, late deliveries).",
          operations_duplicate_.load());
  counter("carnet_entries_served_total", "Entries sent to tablets by pulls.",
          entries_served_.load());
  counter("carnet_forgets_served_total", "Records tablets were told to forget.",
          forgets_served_.load());
  const int64_t now = options_.env->NowMillis();
  int64_t counted = conflicts_counted_ms_.load();
  if ((counted == 0 || now - counted >= 60'000) &&
      conflicts_counted_ms_.compare_exchange_strong(counted, now)) {
    Result<uint64_t> conflicts = options_.store->CountConflicts();
    if (conflicts.ok()) {
      conflicts_ = *conflicts;
    } else {
      options_.env->Log(LogLevel::kWarning,
                        "metrics: cannot count conflicts: " + conflicts.status().ToString());
    }
  }
  text +=
      "# HELP carnet_register_conflicts Fields holding a concurrent value kept for review "
      "(counted at most once a minute).\n"
      "# TYPE carnet_register_conflicts gauge\n"
      "carnet_register_conflicts " + std::to_string(conflicts_.load()) + "\n";
  Result<std::vector<Device>> devices = options_.store->Devices();
  if (devices.ok()) {
    text +=
        "# HELP carnet_device_last_contact_seconds When each enrolled device last pushed or "
        "pulled (Unix time; 0: never).\n"
        "# TYPE carnet_device_last_contact_seconds gauge\n";
    for (const Device& d : *devices) {
      // Device ids are [A-Za-z0-9._:-]: nothing to escape in a label.
      text += "carnet_device_last_contact_seconds{device=\"" + d.id + "\",revoked=\"" +
              (d.revoked ? "true" : "false") + "\"} " +
              std::to_string(d.last_contact_ms / 1000) + "\n";
    }
  } else {
    options_.env->Log(LogLevel::kWarning,
                      "metrics: cannot list devices: " + devices.status().ToString());
  }
  res.SetContent(text, "text/plain; version=0.0.4");
}

Status SyncServer::Impl::Start() {
  if (options_.env == nullptr || options_.store == nullptr) {
    return InvalidArgument("ServerOptions.env and .store are required");
  }
  const bool tls = !options_.tls_cert_file.empty() || !options_.tls_key_file.empty();
  if (tls && (options_.tls_cert_file.empty() || options_.tls_key_file.empty())) {
    return InvalidArgument("HTTPS needs both a TLS certificate and its key");
  }
  // A device token in clear must not cross a network: plain HTTP stays on this machine.
  if (!tls && !IsLoopbackHost(options_.host)) {
    return InvalidArgument("plain HTTP is served on a loopback address only (127.0.0.0/8, ::1, "
                           "localhost), not on '" + options_.host +
                           "': serve HTTPS with a TLS certificate and key");
  }
  auto route = [this](const char* method, const char* path, size_t body_limit,
                      void (Impl::*handle)(const ServerRequest&, ServerResponse&)) {
    return HttpRoute{method, path, body_limit,
                     [this, handle](const ServerRequest& req, ServerResponse& res) {
                       (this->*handle)(req, res);
                     }};
  };
  std::vector<HttpRoute> routes = {
      route("POST", "/v1/push", wire::kMaxWireBytes, &Impl::HandlePush),
      route("POST", "/v1/pull", kSmallBodyBytes, &Impl::HandlePull),
      route("POST", "/v1/enroll", kSmallBodyBytes, &Impl::HandleEnroll),
      route("POST", "/v1/token", kSmallBodyBytes, &Impl::HandleToken),
      route("POST", "/v1/wiped", kSmallBodyBytes, &Impl::HandleWiped),
      route("GET", "/v1/status", kSmallBodyBytes, &Impl::HandleStatus),
      route("GET", "/metrics", kSmallBodyBytes, &Impl::HandleMetrics),
      HttpRoute{
          "GET", "/healthz", kSmallBodyBytes,
          [](const ServerRequest&, ServerResponse& res) { res.SetContent("ok\n", "text/plain"); }},
  };
  HttpHooks hooks;
  // HTTP-level decompression would inflate a small body without bound before any limit could
  // apply: bodies are compressed by the binary format itself (PROTOCOL.md).
  hooks.screen = [this](const ServerRequest& req, ServerResponse& res) {
    const std::string encoding = req.Header("Content-Encoding");
    if (encoding.empty() || encoding == "identity") return false;
    Fail(res, wire::Format::kJson,
         InvalidArgument("Content-Encoding '" + encoding + "' is not accepted"));
    res.status = 415;
    return true;
  };
  hooks.refuse = [this](int status, const std::string& message, ServerResponse& res) {
    Fail(res, wire::Format::kJson,
         status == 404   ? Status(StatusCode::kNotFound, message)
         : status == 413 ? Status(StatusCode::kResourceExhausted, message)
         : status == 503 ? Status(StatusCode::kUnavailable, message)
         : status >= 500 ? Internal(message)
                         : InvalidArgument(message));
    res.status = status;
  };
  hooks.answered = [this](const ServerRequest& req, const ServerResponse& res) { Count(req, res); };
  http_ = std::make_unique<HttpServer>(std::move(routes), options_.limits, options_.worker_threads,
                                       std::move(hooks));
  std::function<std::string(SSL_CTX*)> configure_tls;
  if (tls) {
    configure_tls = [this](SSL_CTX* ctx) {
      return ConfigureTls(ctx, options_.tls_cert_file, options_.tls_key_file);
    };
  }
  Status started = http_->Start(options_.host, options_.port, configure_tls);
  if (!started.ok()) http_.reset();
  return started;
}

void SyncServer::Impl::Stop() {
  if (http_) http_->Stop();
}

SyncServer::SyncServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
SyncServer::~SyncServer() { impl_->Stop(); }
Status SyncServer::Start() { return impl_->Start(); }
void SyncServer::Stop() { impl_->Stop(); }
int SyncServer::port() const { return impl_->port(); }

}  // namespace carnet
