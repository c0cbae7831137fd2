// carnet-server's HTTP face: authenticates devices, decodes requests, hands them to a
// ServerStore, encodes the replies (sync/PROTOCOL.md).
//
// Threads: the server runs its own connection and worker threads, started by Start() and
// joined by Stop() or the destructor. The ServerStore must be safe to call from several threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "carnet/env.h"
#include "carnet/erasure.h"
#include "carnet/server_store.h"
#include "carnet/status.h"

namespace carnet {

// What a connection may cost before a route runs; the defaults are carnet-server's. Requests
// past a limit are refused (413 for a body, 431 for header fields, 400 when malformed) or, when
// too slow, their connection is closed.
struct HttpLimits {
  size_t header_bytes = 16 * 1024;  // request line and header fields together
  // From a request's first byte to the end of its header fields (and for a TLS handshake).
  int64_t header_timeout_ms = 10'000;
  // A body may take this long; past it, it must have come at body_min_bytes_per_s on average.
  // No single read of it waits longer than this either.
  int64_t body_grace_ms = 10'000;
  size_t body_min_bytes_per_s = 1024;
  // Request bodies held at once, all connections together (each is also bounded by its route's
  // limit); a request whose body would go past it is refused with 503, to retry.
  size_t bodies_bytes = 256 * 1024 * 1024;
  int64_t write_timeout_ms = 60'000;  // to send a reply
  // How long a connection is kept open between requests; the announced Keep-Alive timeout.
  int64_t keep_alive_ms = 1'000;
  int max_requests_per_connection = 1000;
  // Past it, new connections wait in the kernel's listen queue until one closes.
  int max_connections = 10'000;
  int io_threads = 2;  // the threads serving connections: TLS, parsing, timers
};

struct ServerOptions {
  ServerOptions() = default;
  // Plain HTTP on `host` (a loopback one); set the TLS files below to serve HTTPS.
  ServerOptions(std::string host, int port, Env* env, ServerStore* store)
      : host(std::move(host)), port(port), env(env), store(store) {}

  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port, see SyncServer::port()
  Env* env = nullptr;            // not owned
  ServerStore* store = nullptr;  // not owned
  // HTTPS: the server's certificate chain (PEM, its own certificate first, then the
  // intermediates) and its unencrypted private key (PEM). TLS 1.2 at least, 1.3 preferred,
  // ECDHE key exchange and AEAD ciphers only (sync/SECURITY.md). Both empty: plain HTTP, which
  // Start() refuses unless IsLoopbackHost(host) (carnet/loopback.h).
  std::string tls_cert_file;
  std::string tls_key_file;
  // Routes run on a pool of this many threads, which may all wait on the store at once; the
  // connections themselves are served by `limits.io_threads` threads, idle ones costing memory
  // only (sync/SCALING.md, tests/bench/load_bench.cc).
  int worker_threads = 64;
  // What a request may cost before its route runs (sync/SECURITY.md, The HTTP face).
  HttpLimits limits;
  // The operator's credential for GET /metrics (Authorization: Bearer TOKEN). Empty: /metrics
  // is refused to every client.
  std::string metrics_token;
  // The retention policy the server applies on its own (ServerStore::ApplyRetention; PROTOCOL.md,
  // Retention): after a pull, at most once every `retention_every_ms`, on the Env's clock. None:
  // never (carnet-server serve applies 730 days unless told otherwise).
  std::optional<RetentionPolicy> retention;
  int64_t retention_every_ms = 60 * 60 * 1000;
  // How long a device token issued here (by an enrollment code, or renewed) is valid
  // (PROTOCOL.md, Devices). A tablet is asked to renew its token at its first sync past half
  // this; one offline longer than all of it must be enrolled again. 0: tokens do not expire.
  int64_t token_lifetime_ms = int64_t{90} * 24 * 60 * 60 * 1000;
};

class SyncServer {
 public:
  explicit SyncServer(ServerOptions options);
  ~SyncServer();
  SyncServer(const SyncServer&) = delete;
  SyncServer& operator=(const SyncServer&) = delete;

  // Loads the certificate and key, binds and starts serving in the background. kInvalidArgument
  // for plain HTTP beyond loopback, or a certificate or key that cannot be used (the message
  // says which and why); kUnavailable when the address cannot be bound.
  Status Start();
  // Stops accepting, lets requests in flight finish, joins the threads.
  void Stop();
  int port() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace carnet
