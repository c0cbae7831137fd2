#include "carnet/reachability.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Polls `done` for up to two seconds: the monitor reports from its own thread.
template <typename Predicate>
bool Eventually(Predicate done) {
  for (int i = 0; i < 200 && !done(); ++i) std::this_thread::sleep_for(10ms);
  return done();
}

}  // namespace

TEST_CASE("The reachability monitor reports the state at start, then each change once",
          "[platform][reachability]") {
  std::atomic<bool> network{false};
  std::mutex mutex;
  std::vector<bool> reported;
  auto snapshot = [&] {
    std::lock_guard<std::mutex> lock(mutex);
    return reported;
  };
  carnet::ReachabilityMonitor monitor(
      [&](bool online) {
        std::lock_guard<std::mutex> lock(mutex);
        reported.push_back(online);
      },
      5ms, [&] { return network.load(); });
  monitor.Start();
  REQUIRE(Eventually([&] { return snapshot().size() == 1; }));
  std::this_thread::sleep_for(30ms);  // polls without a change report nothing
  network = true;
  REQUIRE(Eventually([&] { return snapshot().size() == 2; }));
  network = false;
  REQUIRE(Eventually([&] { return snapshot().size() == 3; }));
  monitor.Stop();
  CHECK(snapshot() == std::vector<bool>{false, true, false});
}

TEST_CASE("Stopping the reachability monitor returns promptly despite a long interval",
          "[platform][reachability]") {
  carnet::ReachabilityMonitor monitor([](bool) {}, 1h, [] { return true; });
  monitor.Start();
  auto start = std::chrono::steady_clock::now();
  monitor.Stop();
  CHECK(std::chrono::steady_clock::now() - start < 1s);
}
