// carnet-server's HTTP face: authenticates devices, decodes requests, hands them to a
// ServerStore, encodes the replies (sync/PROTOCOL.md).
//
// Threads: the server runs its own listener and worker threads, started by Start() and joined
// by Stop() or the destructor. The ServerStore must be safe to call from several threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "carnet/env.h"
#include "carnet/erasure.h"
#include "carnet/server_store.h"
#include "carnet/status.h"

namespace carnet {

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
  // Requests are served by a pool of threads, each holding one connection while it is in use
  // and up to a second idle after (keep-alive): a sync ties one down from its first request to
  // a second past its last. A night of hundreds of tablets syncing at once needs more than
  // httplib's default (8 on this machine); tablets beyond the pool wait in the listen queue, and
  // past their transfer timeout they retry (tests/bench/load_bench.cc, sync/SCALING.md).
  int worker_threads = 64;
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
