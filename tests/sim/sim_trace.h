// The last events of a run, printed with a failure so that a seed's story can be read without
// replaying it under a debugger.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

namespace carnet::sim {

class Trace {
 public:
  explicit Trace(size_t keep = 80) : keep_(keep) {}

  void Add(int64_t now_ms, std::string event) {
    if (events_.size() == keep_) events_.pop_front();
    events_.push_back("t+" + std::to_string((now_ms - origin_ms_) / 1000) + "s " + std::move(event));
  }
  void set_origin(int64_t origin_ms) { origin_ms_ = origin_ms; }

  std::string Text() const {
    std::string out;
    for (const std::string& e : events_) out += "  " + e + "\n";
    return out;
  }

 private:
  size_t keep_;
  int64_t origin_ms_ = 0;
  std::deque<std::string> events_;
};

}  // namespace carnet::sim
