// The field-day demo's child processes: carnet-server commands run to completion, and the
// server itself, started, killed and restarted like the real one in a département.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "carnet/status.h"

namespace field_day {

// Runs `argv` (argv[0] a path, or a name looked up in PATH) with its standard error appended to
// `log_path`, and returns its standard output. Fails unless it exits with status 0 within
// `timeout_ms`.
carnet::Result<std::string> RunProgram(const std::vector<std::string>& argv,
                                       const std::string& log_path, int timeout_ms = 30'000);

// `carnet-server serve` on 127.0.0.1. The destructor stops it, so that no path of the demo leaves
// a server behind; on Linux the server also dies with the demo if the demo is killed.
class ServerProcess {
 public:
  // `serve_options` say how it serves: {"--tls-cert", FILE, "--tls-key", FILE} for HTTPS, or
  // plain HTTP, which carnet-server serves on loopback only and only when asked.
  ServerProcess(std::string binary, std::string store_spec, std::string log_path,
                std::vector<std::string> serve_options = {"--plain-http"});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts serving on `port` (0: a free port chosen by the server) and returns once the server
  // says it listens. kUnavailable if it exits or stays silent instead (the port may be taken).
  carnet::Status Start(int port);
  // SIGKILL, then reaps it: a crash, or the network cut in the middle of a sync.
  void Kill();
  // SIGTERM (the server finishes requests in flight), then waits; SIGKILL after `timeout_ms`.
  // Fails if the server did not exit cleanly.
  carnet::Status Stop(int timeout_ms = 10'000);

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }

 private:
  void Close();

  const std::string binary_;
  const std::string store_spec_;
  const std::string log_path_;
  const std::vector<std::string> serve_options_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
};

}  // namespace field_day
