// The Env of a POSIX host (Linux, Android, macOS, iOS): the system clock, the kernel's random
// source, logs on standard error.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "carnet/env.h"

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
  explicit PosixEnv(PosixEnvOptions options = {});

  int64_t NowMillis() override;
  uint64_t RandomU64() override;  // getrandom(2): cryptographically secure
  void Log(LogLevel level, std::string_view message) override;
  std::string DataDirectory() override;
  void SleepForMillis(int64_t ms) override;

 private:
  PosixEnvOptions options_;
  std::mutex log_mutex_;
};

}  // namespace carnet
