// Simulated time and the Env of each simulated machine. One clock moves for the whole world,
// only when the simulation says so (or when a client sleeps its backoff); each tablet reads it
// through its own error, the skew, which the simulation sets wrong on purpose.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "carnet/env.h"
#include "tests/sim/sim_random.h"

namespace carnet::sim {

struct SimClock {
  int64_t now_ms = 0;
};

class SimEnv : public Env {
 public:
  SimEnv(SimClock* clock, uint64_t seed) : clock_(clock), rng_(seed) {}

  int64_t NowMillis() override { return clock_->now_ms + skew_ms_; }
  uint64_t RandomU64() override { return rng_.Next(); }
  void Log(LogLevel level, std::string_view message) override {
    if (logs_.size() == kKeptLogs) logs_.pop_front();
    logs_.push_back(std::string(LogLevelName(level)) + ": " + std::string(message));
  }
  std::string DataDirectory() override { return "."; }
  // Time passes for everyone while a client waits: the world is single-threaded.
  void SleepForMillis(int64_t ms) override { clock_->now_ms += ms; }

  int64_t skew_ms() const { return skew_ms_; }
  void set_skew_ms(int64_t skew_ms) { skew_ms_ = skew_ms; }
  const std::deque<std::string>& logs() const { return logs_; }

 private:
  static constexpr size_t kKeptLogs = 12;
  SimClock* clock_;
  Rng rng_;
  int64_t skew_ms_ = 0;
  std::deque<std::string> logs_;
};

}  // namespace carnet::sim
