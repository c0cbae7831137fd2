// An Env for tests: a clock the test moves, seeded randomness, logs kept in memory.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "carnet/env.h"

namespace carnet::testing {

class TestEnv : public Env {
 public:
  explicit TestEnv(int64_t start_ms = 1'763'900'000'000, uint64_t seed = 1)
      : now_ms_(start_ms), random_state_(seed ? seed : 1) {}

  int64_t NowMillis() override { return now_ms_; }
  uint64_t RandomU64() override {
    // xorshift64*: deterministic for a seed, good enough for ids in tests.
    random_state_ ^= random_state_ >> 12;
    random_state_ ^= random_state_ << 25;
    random_state_ ^= random_state_ >> 27;
    return random_state_ * 2685821657736338717ull;
  }
  void Log(LogLevel level, std::string_view message) override {
    std::lock_guard<std::mutex> lock(mutex_);
    logs_.push_back(std::string(LogLevelName(level)) + ": " + std::string(message));
  }
  std::string DataDirectory() override { return data_directory_; }
  void SleepForMillis(int64_t ms) override { now_ms_ += ms; }

  void SetNow(int64_t ms) { now_ms_ = ms; }
  void Advance(int64_t ms) { now_ms_ += ms; }
  void SetDataDirectory(std::string dir) { data_directory_ = std::move(dir); }
  std::vector<std::string> logs() {
    std::lock_guard<std::mutex> lock(mutex_);
    return logs_;
  }

 private:
  std::atomic<int64_t> now_ms_;
  uint64_t random_state_;
  std::string data_directory_ = ".";
  std::mutex mutex_;
  std::vector<std::string> logs_;
};

}  // namespace carnet::testing
