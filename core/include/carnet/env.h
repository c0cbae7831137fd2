// How the core sees the world. The core never reads the system clock, draws randomness or
// writes logs by itself: it asks the Env it was given. The platform layer provides the POSIX
// implementation (carnet/posix_env.h); tests provide one whose clock they move.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace carnet {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

const char* LogLevelName(LogLevel level);

class Env {
 public:
  virtual ~Env() = default;

  // Wall-clock time in milliseconds since the Unix epoch. May jump in either direction; the
  // hybrid logical clock built on it never goes backwards.
  virtual int64_t NowMillis() = 0;

  // Uniformly distributed random bits. Record ids are drawn from here, so production
  // implementations must use a cryptographically secure source.
  virtual uint64_t RandomU64() = 0;

  // One log line. Implementations must be safe to call from any thread. Messages never hold
  // record content, only ids and counts.
  virtual void Log(LogLevel level, std::string_view message) = 0;

  // Folder where stores live when the app gives a bare file name.
  virtual std::string DataDirectory() = 0;

  // Blocks the calling thread for `ms` milliseconds (retry backoff). A test Env advances its
  // clock instead of sleeping.
  virtual void SleepForMillis(int64_t ms) = 0;
};

}  // namespace carnet
