// carnet-server's HTTP/1.1 transport, on Boost.Beast and Boost.Asio: routes run only on
// requests already bounded in size and time (sync/SECURITY.md, The HTTP face). Connections are
// served by a few reactor threads, without a thread each, so idle and slow ones cost memory
// only; routes, which may block on the store, run on a pool of worker threads.
//
// Threads: Start() starts the reactor and worker threads; Stop() (or the destructor) stops
// accepting, closes idle connections, lets requests in flight finish and be answered, and joins
// every thread. Handlers are called from worker threads, several at once; hooks from the
// connection threads, and must not block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <openssl/ssl.h>

#include "carnet/server.h"  // HttpLimits
#include "carnet/status.h"

namespace carnet {

struct ServerRequest {
  std::string method;  // "GET", "POST"...
  std::string path;    // the target without its query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The first header named `name` (case-insensitive); "" when there is none.
  std::string Header(std::string_view name) const;
};

struct ServerResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // beyond type and length

  void SetContent(std::string content, std::string type) {
    body = std::move(content);
    content_type = std::move(type);
  }
};

using HttpHandler = std::function<void(const ServerRequest&, ServerResponse&)>;

struct HttpRoute {
  std::string method;
  std::string path;
  size_t body_limit = 0;  // bytes, after any transfer coding (chunked included)
  HttpHandler handler;
};

struct HttpHooks {
  // Called once the header fields are read, before the body: returns true when it has written
  // the response (the body is then not read, and the connection is closed after the reply).
  std::function<bool(const ServerRequest&, ServerResponse&)> screen;
  // Writes the response for a request refused by the transport itself: `status` is 400, 404,
  // 413, 431, 500 (a handler threw) or 503 (HttpLimits::bodies_bytes), `message` says why.
  std::function<void(int status, const std::string& message, ServerResponse&)> refuse;
  // Called with every response, before it is written (counting, logging).
  std::function<void(const ServerRequest&, const ServerResponse&)> answered;
};

class HttpServer {
 public:
  // Routes run on `worker_threads` threads.
  HttpServer(std::vector<HttpRoute> routes, HttpLimits limits, int worker_threads, HttpHooks hooks);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds `host`:`port` (0: any free port) and serves. `configure_tls`, when set, serves HTTPS:
  // it is given the SSL_CTX to set up and returns what went wrong, or "" when it is ready.
  // kInvalidArgument for a TLS set-up that failed, kUnavailable when the address cannot be bound.
  Status Start(const std::string& host, int port,
               const std::function<std::string(SSL_CTX*)>& configure_tls);
  void Stop();
  int port() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace carnet
