// carnet-server's HTTP face: authenticates devices, decodes requests, hands them to a
// ServerStore, encodes the replies (sync/PROTOCOL.md).
//
// Threads: the server runs its own listener and worker threads, started by Start() and joined
// by Stop() or the destructor. The ServerStore must be safe to call from several threads.
#pragma once

#include <memory>
#include <string>

#include "carnet/env.h"
#include "carnet/server_store.h"
#include "carnet/status.h"

namespace carnet {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port, see SyncServer::port()
  Env* env = nullptr;            // not owned
  ServerStore* store = nullptr;  // not owned
};

class SyncServer {
 public:
  explicit SyncServer(ServerOptions options);
  ~SyncServer();
  SyncServer(const SyncServer&) = delete;
  SyncServer& operator=(const SyncServer&) = delete;

  // Binds and starts serving in the background.
  Status Start();
  // Stops accepting, lets requests in flight finish, joins the threads.
  void Stop();
  int port() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace carnet
