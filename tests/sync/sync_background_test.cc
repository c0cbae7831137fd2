// The sync client's background thread, and how syncs share the store with local edits.
#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <catch2/catch.hpp>

#include "carnet/sync_client.h"
#include "tests/sync/sync_helpers.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

constexpr int64_t kDayMs = 24 * 3600 * 1000;
constexpr int64_t kMinuteMs = 60 * 1000;
// Real time given to the background thread to show it does not sync.
constexpr auto kQuiet = std::chrono::milliseconds(150);

int64_t StartOfDay(int64_t ms) { return ms - ms % kDayMs; }

void ServeEverything(ScriptedServer& server, Env* env) {
  server.Otherwise("/v1/push", AcknowledgePush(env));
  server.Otherwise("/v1/pull", PullNothing(env));
}

SyncOptions WithoutNightly() {
  SyncOptions options = TestSyncOptions();
  options.nightly_length_minutes = 0;
  return options;
}

// Has the thread look at the clock again: SetOnline(true) while online changes nothing else.
void Nudge(SyncClient& client) { client.SetOnline(true); }

}  // namespace

TEST_CASE_METHOD(ScriptedFixture, "Background sync runs when asked and when the network comes back",
                 "[sync][client]") {
  ServeEverything(server, &tablet.env());
  tablet.Connect(server.url(), WithoutNightly());
  SyncEnds ends(tablet.client());
  tablet.client().Start();

  std::this_thread::sleep_for(kQuiet);
  CHECK(ends.ends() == 0);
  tablet.client().RequestSync();
  REQUIRE(ends.WaitFor(1));
  tablet.client().SetOnline(false);
  tablet.client().SetOnline(true);
  REQUIRE(ends.WaitFor(2));
  Nudge(tablet.client());
  std::this_thread::sleep_for(kQuiet);
  CHECK(ends.ends() == 2);

  tablet.client().Stop();
  CHECK(server.requests("/v1/pull").size() == 2);
}

TEST_CASE_METHOD(ScriptedFixture, "Background sync runs once in each nightly window",
                 "[sync][client]") {
  int64_t day = StartOfDay(tablet.env().NowMillis());
  tablet.env().SetNow(day + 118 * kMinuteMs);  // 01:58 UTC; the window opens at 02:00
  ServeEverything(server, &tablet.env());
  tablet.Connect(server.url());
  SyncEnds ends(tablet.client());
  tablet.client().Start();

  Nudge(tablet.client());
  std::this_thread::sleep_for(kQuiet);
  CHECK(ends.ends() == 0);

  tablet.env().SetNow(day + 121 * kMinuteMs);
  Nudge(tablet.client());
  REQUIRE(ends.WaitFor(1));
  tablet.env().SetNow(day + 200 * kMinuteMs);
  Nudge(tablet.client());
  std::this_thread::sleep_for(kQuiet);
  CHECK(ends.ends() == 1);

  tablet.env().SetNow(day + 301 * kMinuteMs);  // 05:01, the window has closed
  Nudge(tablet.client());
  std::this_thread::sleep_for(kQuiet);
  CHECK(ends.ends() == 1);

  tablet.env().SetNow(day + kDayMs + 150 * kMinuteMs);
  Nudge(tablet.client());
  REQUIRE(ends.WaitFor(2));
  tablet.client().Stop();
}

TEST_CASE_METHOD(
    ScriptedFixture,
    "A failed background sync is tried again after retry_after_failure_ms while online",
    "[sync][client]") {
  server.Otherwise("/v1/push", ErrorHandler(401, StatusCode::kUnauthenticated));
  server.Otherwise("/v1/pull", ErrorHandler(401, StatusCode::kUnauthenticated));
  SyncOptions options = WithoutNightly();
  options.retry_after_failure_ms = 15 * kMinuteMs;
  tablet.Connect(server.url(), options);
  SyncEnds ends(tablet.client());
  tablet.client().Start();
  tablet.client().RequestSync();
  REQUIRE(ends.WaitFor(1));
  CHECK(tablet.client().status().state == SyncState::kError);

  tablet.env().Advance(14 * kMinuteMs);
  Nudge(tablet.client());
  std::this_thread::sleep_for(kQuiet);
  CHECK(ends.ends() == 1);
  tablet.env().Advance(1 * kMinuteMs);
  Nudge(tablet.client());
  REQUIRE(ends.WaitFor(2));

  SECTION("but not while offline") {
    tablet.client().SetOnline(false);
    tablet.env().Advance(60 * kMinuteMs);
    tablet.client().SetOnline(false);
    std::this_thread::sleep_for(kQuiet);
    CHECK(ends.ends() == 2);
  }
  tablet.client().Stop();
}

TEST_CASE_METHOD(ScriptedFixture, "Stop interrupts a sync waiting out its backoff",
                 "[sync][client]") {
  // A clock that really sleeps: the backoff is a real wait here.
  class SleepingEnv : public TestEnv {
   public:
    void SleepForMillis(int64_t ms) override {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      TestEnv::SleepForMillis(ms);
    }
  };
  SleepingEnv env;
  StoreOptions store_options;
  store_options.path = dir.File("tab-s.db");
  store_options.device_id = "tab-s";
  store_options.env = &env;
  Result<std::unique_ptr<Store>> store = Store::Open(store_options);
  SYNC_REQUIRE_OK(store);
  server.Otherwise("/v1/pull", ErrorHandler(503, StatusCode::kUnavailable));
  SyncOptions options = WithoutNightly();
  options.backoff_initial_ms = 60'000;
  options.backoff_max_ms = 60'000;
  options.max_attempts = 10;
  SyncClient client(store->get(), &env, CurlTo(server.url()), options);
  client.Start();
  client.RequestSync();
  while (server.requests().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));

  auto before = std::chrono::steady_clock::now();
  client.Stop();
  auto took = std::chrono::steady_clock::now() - before;

  CHECK(took < std::chrono::seconds(2));
  CHECK(server.requests().size() < 3);
  CHECK(client.status().state == SyncState::kOffline);
}

TEST_CASE_METHOD(ScriptedFixture, "Local edits do not wait for a sync in flight",
                 "[sync][client]") {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> holding{false};
  Handler acknowledge = AcknowledgePush(&tablet.env());
  server.Then("/v1/push", [&](const httplib::Request& req, httplib::Response& res) {
    holding = true;
    released.wait();
    acknowledge(req, res);
  });
  ServeEverything(server, &tablet.env());
  tablet.Connect(server.url());
  SYNC_REQUIRE_OK(tablet->Set("participants", "p1", "phase", "assessment"));
  std::future<Status> sync =
      std::async(std::launch::async, [&] { return tablet.client().SyncNow(); });
  while (!holding) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  auto before = std::chrono::steady_clock::now();
  Status edit = tablet->Set("participants", "p1", "phase", "job_search");
  auto took = std::chrono::steady_clock::now() - before;
  SyncStatus during = tablet.client().status();
  release.set_value();

  CHECK(edit.ok());
  CHECK(took < std::chrono::milliseconds(500));
  CHECK(during.state == SyncState::kSyncing);
  CHECK(during.pending == 2);
  SYNC_REQUIRE_OK(sync.get());
  CHECK(tablet.Pending() == 0);  // the edit made during the push went with the next batch
}

TEST_CASE_METHOD(ScriptedFixture, "SyncNow and the background thread never sync at the same time",
                 "[sync][client]") {
  std::atomic<int> in_flight{0};
  std::atomic<int> most{0};
  Handler pull = PullNothing(&tablet.env());
  server.Otherwise("/v1/pull", [&](const httplib::Request& req, httplib::Response& res) {
    int now = ++in_flight;
    most = std::max(most.load(), now);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    --in_flight;
    pull(req, res);
  });
  tablet.Connect(server.url(), WithoutNightly());
  SyncEnds ends(tablet.client());
  tablet.client().Start();

  for (int i = 0; i < 5; ++i) {
    tablet.client().RequestSync();
    SYNC_REQUIRE_OK(tablet.client().SyncNow());
  }
  tablet.client().Stop();

  CHECK(most == 1);
  CHECK(server.requests().size() >= 5);
}
