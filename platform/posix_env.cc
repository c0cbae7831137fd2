#include "carnet/posix_env.h"

#include <sodium.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>

namespace carnet {

PosixEnv::PosixEnv(PosixEnvOptions options) : options_(std::move(options)) {
  // Thread-safe and idempotent. It fails only where the system has no random source at all.
  if (sodium_init() < 0) {
    ready_ = Internal("libsodium failed to initialise: this system offers no random source");
  }
}

int64_t PosixEnv::NowMillis() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

uint64_t PosixEnv::RandomU64() {
  // libsodium's generator, unlike getrandom(2), exists on iOS and on Android before API 28, and
  // cannot fail once sodium_init has succeeded: there is no error to hand back, and no abort.
  uint64_t value = 0;
  randombytes_buf(&value, sizeof value);
  return value;
}

namespace {

// A JSON string, quotes included.
std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace

void PosixEnv::Log(LogLevel level, std::string_view message) {
  if (level < options_.min_level) return;
  if (options_.json_lines) {
    const int64_t now = NowMillis();
    const time_t seconds = static_cast<time_t>(now / 1000);
    tm utc{};
    gmtime_r(&seconds, &utc);
    char time[64];
    std::snprintf(time, sizeof time, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  static_cast<int>(now % 1000));
    const std::string line = std::string("{\"time\":\"") + time + "\",\"level\":\"" +
                             LogLevelName(level) + "\",\"message\":" + JsonString(message) + "}\n";
    std::lock_guard<std::mutex> lock(log_mutex_);
    std::fwrite(line.data(), 1, line.size(), stderr);
    return;
  }
  std::lock_guard<std::mutex> lock(log_mutex_);
  std::fprintf(stderr, "carnet %s: %.*s\n", LogLevelName(level), static_cast<int>(message.size()),
               message.data());
}

std::string PosixEnv::DataDirectory() {
  if (!options_.data_directory.empty()) return options_.data_directory;
  if (const char* dir = std::getenv("CARNET_DATA_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg)
    return std::string(xdg) + "/carnet";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.local/share/carnet";
  return ".";
}

void PosixEnv::SleepForMillis(int64_t ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace carnet
