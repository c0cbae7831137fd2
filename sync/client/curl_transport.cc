#include <curl/curl.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "carnet/transport.h"
#include "carnet/wire.h"

namespace carnet {
namespace {

// A reply is one protocol message at most, plus room for headers or an error page around it.
constexpr size_t kMaxReplyBytes = wire::kMaxWireBytes + 1024 * 1024;

Status GlobalInit() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK) {
    return Internal(std::string("curl_global_init failed: ") + curl_easy_strerror(result));
  }
  return Status::Ok();
}

// The design keeps TLS on wherever the network is not loopback: a device token sent in clear
// over a field network would let anyone impersonate the tablet.
Status CheckBaseUrl(const std::string& base_url, std::string* scheme_out) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> url(curl_url(), &curl_url_cleanup);
  if (!url) return Status(StatusCode::kResourceExhausted, "out of memory parsing the URL");
  if (curl_url_set(url.get(), CURLUPART_URL, base_url.c_str(), 0) != CURLUE_OK) {
    return InvalidArgument("malformed server URL '" + base_url + "'");
  }
  char* scheme = nullptr;
  char* host = nullptr;
  curl_url_get(url.get(), CURLUPART_SCHEME, &scheme, 0);
  curl_url_get(url.get(), CURLUPART_HOST, &host, 0);
  std::string scheme_text = scheme ? scheme : "";
  std::string host_text = host ? host : "";
  curl_free(scheme);
  curl_free(host);
  *scheme_out = scheme_text;
  if (scheme_text == "https") return Status::Ok();
  if (scheme_text == "http" && IsLoopbackHost(host_text)) return Status::Ok();
  if (scheme_text == "http") {
    return InvalidArgument("plain http is allowed to a loopback address only, not to '" +
                           host_text + "': use https");
  }
  return InvalidArgument("server URL scheme must be https (or http on loopback): '" + base_url +
                         "'");
}

// libcurl would take a malformed pin for a file name and fail only at the first request; the
// form is checked here so that a typo in an app's configuration shows at once.
Status CheckPins(const std::string& pins) {
  const std::string prefix = "sha256//";
  size_t start = 0;
  for (;;) {
    size_t end = pins.find(';', start);
    std::string pin = pins.substr(start, end == std::string::npos ? end : end - start);
    std::string hash = pin.rfind(prefix, 0) == 0 ? pin.substr(prefix.size()) : "";
    // The base64 of 32 bytes: 43 characters and one '='.
    bool base64 = hash.size() == 44 && hash.back() == '=';
    for (size_t i = 0; base64 && i + 1 < hash.size(); ++i) {
      char c = hash[i];
      base64 = std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
    }
    if (!base64) {
      return InvalidArgument("malformed public-key pin '" + pin +
                             "': expected sha256// then the base64 SHA-256 of the key's "
                             "SubjectPublicKeyInfo, several separated by ';'");
    }
    if (end == std::string::npos) return Status::Ok();
    start = end + 1;
  }
}

Status CheckCaFile(const std::string& ca_file) {
  std::unique_ptr<FILE, decltype(&fclose)> file(std::fopen(ca_file.c_str(), "r"), &fclose);
  if (!file) {
    return InvalidArgument("cannot read the CA file '" + ca_file + "': " + std::strerror(errno));
  }
  return Status::Ok();
}

StatusCode CodeForCurlError(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    // A certificate that does not verify, or a key that is not the pinned one, is most often a
    // captive portal or an intercepting proxy on the field network: the real server may be
    // reachable from the next network.
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return StatusCode::kUnavailable;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FILESIZE_EXCEEDED:
      return StatusCode::kResourceExhausted;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_SSL_CACERT_BADFILE:
      return StatusCode::kInvalidArgument;
    default:
      return StatusCode::kInternal;
  }
}

class CurlTransport : public Transport {
 public:
  CurlTransport(CurlOptions options, CURL* curl) : options_(std::move(options)), curl_(curl) {
    while (!options_.base_url.empty() && options_.base_url.back() == '/') {
      options_.base_url.pop_back();
    }
  }
  ~CurlTransport() override { curl_easy_cleanup(curl_); }

  Status Configure();
  Result<HttpReply> Post(const HttpRequest& request) override;

 private:
  static size_t OnBody(char* data, size_t size, size_t count, void* self);
  Result<HttpReply> Finish(CURLcode code, const std::string& url);
  std::string Explain(CURLcode code) const;

  CurlOptions options_;
  CURL* curl_;
  std::string body_;
  bool body_too_large_ = false;
  char error_[CURL_ERROR_SIZE] = {};
};

Status CurlTransport::Configure() {
  long low_speed_s = (options_.low_speed_time_ms + 999) / 1000;
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption option, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(curl_, option, value);
  };
  set(CURLOPT_ERRORBUFFER, error_);
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  // The oldest version spoken; the newest the server has (1.3) is negotiated above it.
  set(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout_ms));
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(options_.total_timeout_ms));
  if (options_.low_speed_bytes > 0 && low_speed_s > 0) {
    set(CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(options_.low_speed_bytes));
    set(CURLOPT_LOW_SPEED_TIME, low_speed_s);
  }
  set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxReplyBytes));
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  set(CURLOPT_WRITEFUNCTION, &CurlTransport::OnBody);
  set(CURLOPT_WRITEDATA, this);
  if (!options_.ca_file.empty()) set(CURLOPT_CAINFO, options_.ca_file.c_str());
  if (!options_.pinned_public_key.empty()) {
    set(CURLOPT_PINNEDPUBLICKEY, options_.pinned_public_key.c_str());
  }
  if (rc != CURLE_OK) {
    return Internal(std::string("configuring libcurl: ") + curl_easy_strerror(rc));
  }
  return Status::Ok();
}

size_t CurlTransport::OnBody(char* data, size_t size, size_t count, void* self) {
  auto* transport = static_cast<CurlTransport*>(self);
  size_t bytes = size * count;
  if (transport->body_.size() + bytes > kMaxReplyBytes) {
    transport->body_too_large_ = true;
    return 0;  // makes libcurl abort the transfer
  }
  transport->body_.append(data, bytes);
  return bytes;
}

Result<HttpReply> CurlTransport::Post(const HttpRequest& request) {
  std::string url = options_.base_url + request.path;
  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers) {
    headers = curl_slist_append(headers, (name + ": " + value).c_str());
  }
  // Without this, libcurl waits for a "100 Continue" before sending a larger body.
  headers = curl_slist_append(headers, "Expect:");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> owned(headers, &curl_slist_free_all);
  if (headers == nullptr) return Status(StatusCode::kResourceExhausted, "out of memory");

  body_.clear();
  body_too_large_ = false;
  error_[0] = '\0';
  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(request.body.size()));
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, request.body.data());
  Result<HttpReply> reply = Finish(curl_easy_perform(curl_), url);
  // The handle must not keep pointers to this request's buffers.
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, nullptr);
  return reply;
}

Result<HttpReply> CurlTransport::Finish(CURLcode code, const std::string& url) {
  if (body_too_large_ || code == CURLE_FILESIZE_EXCEEDED) {
    body_.clear();
    return Status(StatusCode::kResourceExhausted,
                  "reply larger than " + std::to_string(kMaxReplyBytes) + " bytes, abandoned");
  }
  if (code != CURLE_OK) {
    std::string detail = error_[0] != '\0' ? error_ : curl_easy_strerror(code);
    return Status(CodeForCurlError(code), "POST " + url + ": " + Explain(code) + detail +
                                              " (curl " + std::to_string(static_cast<int>(code)) +
                                              ")");
  }
  HttpReply reply;
  long status = 0;
  char* content_type = nullptr;
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(curl_, CURLINFO_CONTENT_TYPE, &content_type);
  reply.status = static_cast<int>(status);
  if (content_type != nullptr) reply.content_type = content_type;
  reply.body = std::move(body_);
  body_.clear();
  return reply;
}

// libcurl's text says what failed in TLS terms; this says which setting it concerns.
std::string CurlTransport::Explain(CURLcode code) const {
  const std::string trust =
      options_.ca_file.empty() ? "the system's CAs" : "the CA file '" + options_.ca_file + "'";
  switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:
      return "TLS: the server's certificate does not verify against " + trust + ": ";
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return "TLS: the server's public key is not the pinned one: ";
    case CURLE_SSL_CACERT_BADFILE:
      return "TLS: cannot use " + trust + ": ";
    case CURLE_SSL_CONNECT_ERROR:
      return "TLS handshake failed: ";
    default:
      return "";
  }
}

}  // namespace

Result<std::unique_ptr<Transport>> MakeCurlTransport(const CurlOptions& options) {
  CARNET_RETURN_IF_ERROR(GlobalInit());
  std::string scheme;
  CARNET_RETURN_IF_ERROR(CheckBaseUrl(options.base_url, &scheme));
  if (!options.pinned_public_key.empty()) {
    if (scheme != "https") {
      return InvalidArgument("a public-key pin needs an https server URL, not '" +
                             options.base_url + "'");
    }
    CARNET_RETURN_IF_ERROR(CheckPins(options.pinned_public_key));
  }
  if (!options.ca_file.empty()) CARNET_RETURN_IF_ERROR(CheckCaFile(options.ca_file));
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return Internal("curl_easy_init failed");
  auto transport = std::make_unique<CurlTransport>(options, curl);
  CARNET_RETURN_IF_ERROR(transport->Configure());
  return std::unique_ptr<Transport>(std::move(transport));
}

}  // namespace carnet
