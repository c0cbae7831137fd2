// The Env of a POSIX host (Linux, Android, macOS, iOS): the system clock, libsodium's random
// source, logs on standard error.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "carnet/env.h"
#include "carnet/status.h"

namespace carnet {

struct PosixEnvOptions {
  LogLevel min_level = LogLevel::kWarning;
  // Where stores given as bare file names live; defaults to $CARNET_DATA_DIR, then
  // $XDG_DATA_HOME/carnet, then $HOME/.local/share/carnet, then the working directory.
  std::string data_directory;
  // Log lines as JSON objects, {"time", "level", "message"}, one a line: what a log collector
  // reads without a parser of its own (carnet-server). Otherwise "carnet LEVEL: message".
  bool json_lines = false;
};

class PosixEnv : public Env {
 public:
  // Initialises libsodium; see Ready.
  explicit PosixEnv(PosixEnvOptions options = {});

  // Not ok when libsodium could not be initialised (no random source on this system): then
  // RandomU64 must not be called, and what owns this env refuses to start with this status.
  const Status& Ready() const { return ready_; }

  int64_t NowMillis() override;
  uint64_t RandomU64() override;  // libsodium's randombytes_buf: cryptographically secure
  void Log(LogLevel level, std::string_view message) override;
  std::string DataDirectory() override;
  void SleepForMillis(int64_t ms) override;

 private:
  PosixEnvOptions options_;
  Status ready_;
  std::mutex log_mutex_;
};

}  // namespace carnet
