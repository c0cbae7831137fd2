// How the sync client reaches the server. The client speaks to this interface; CurlTransport
// is the real one (HTTP and HTTPS through libcurl), and tests may wrap it to inject faults.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "carnet/loopback.h"
#include "carnet/status.h"

namespace carnet {

struct HttpRequest {
  std::string path;  // "/v1/push"
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // POSTs `request` to the server. A reply with any HTTP status is a success of the transport;
  // kUnavailable means no reply (no route, refused, reset, timed out).
  virtual Result<HttpReply> Post(const HttpRequest& request) = 0;
};

struct CurlOptions {
  std::string base_url;  // "https://records.example:8443"
  int connect_timeout_ms = 10'000;
  // A transfer slower than low_speed_bytes per second for low_speed_time_ms is abandoned, so a
  // stalled connection ends without capping a long but moving first sync.
  int low_speed_bytes = 1024;
  int low_speed_time_ms = 30'000;
  int total_timeout_ms = 0;  // 0: none
  // Over https the server's certificate chain and host name are always verified, and TLS 1.2
  // is the oldest version spoken (1.3 when the server has it).
  std::string ca_file;  // PEM bundle to verify the server against; empty: system default
  // Public-key pinning, on top of the CA: "sha256//BASE64" where BASE64 is the SHA-256 of the
  // server key's DER SubjectPublicKeyInfo, several separated by ';' (the current key and the
  // next one, for a rotation). Empty: no pin. Only with an https base_url.
  std::string pinned_public_key;
};

// One libcurl easy handle, reused across requests (keep-alive). Not thread-safe. kInvalidArgument
// for a URL that is not https (or plain http to a loopback host), a malformed pin, or a CA file
// that cannot be read.
Result<std::unique_ptr<Transport>> MakeCurlTransport(const CurlOptions& options);

}  // namespace carnet
