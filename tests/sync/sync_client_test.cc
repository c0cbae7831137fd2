// The sync client against a scripted HTTP server on 127.0.0.1: the protocol's requests, and
// how the client meets each fault a network or a server can produce.
#include "carnet/sync_client.h"

#include <catch2/catch.hpp>

#include "tests/sync/sync_helpers.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

// Entries as the server would serve them: the states that `ops` make.
std::vector<Entry> EntriesOf(const std::vector<Operation>& ops) {
  std::vector<Entry> entries;
  for (const Operation& op : ops) {
    for (Entry& e : MergeOperation(op, {})) entries.push_back(std::move(e));
  }
  return entries;
}

void WriteParticipants(Tablet& tablet, int count) {
  for (int i = 0; i < count; ++i) {
    SYNC_REQUIRE_OK(tablet->Set("participants", "p" + std::to_string(i), "phase", "assessment"));
  }
}

}  // namespace

TEST_CASE_METHOD(ScriptedFixture,
                 "A sync pushes the outbox in batches with the protocol's headers, then pulls",
                 "[sync][client]") {
  server.Otherwise("/v1/push", AcknowledgePush(&tablet.env()));
  server.Otherwise("/v1/pull", PullNothing(&tablet.env()));
  SyncOptions options = TestSyncOptions();
  options.push_batch = 2;
  tablet.Connect(server.url(), options);
  WriteParticipants(tablet, 5);
  std::vector<SyncProgress> progress;
  tablet.client().OnProgress([&](const SyncProgress& p) { progress.push_back(p); });

  SYNC_REQUIRE_OK(tablet.client().SyncNow());

  std::vector<SeenRequest> pushes = server.requests("/v1/push");
  REQUIRE(pushes.size() == 3);
  uint64_t next_seq = 1;
  for (const SeenRequest& push : pushes) {
    CHECK(push.Header("Authorization") == std::string("Bearer ") + kToken);
    CHECK(push.Header("Carnet-Protocol") == "1");
    CHECK(push.Header("Content-Type") == "application/vnd.carnet.bin");
    CHECK(push.Header("Accept") == "application/vnd.carnet.bin");
    auto request = DecodeBody<wire::PushRequest>(push);
    CHECK(request.device == "tab-a");
    for (const Operation& op : request.ops) CHECK(op.seq == next_seq++);
  }
  CHECK(next_seq == 6);
  CHECK(server.requests("/v1/pull").size() == 1);
  CHECK(tablet.Pending() == 0);
  CHECK(tablet.client().EverythingUploaded().value());
  REQUIRE(progress.size() == 4);
  CHECK(progress[0].pushed == 2);
  CHECK(progress[2].pushed == 5);
  CHECK(progress[2].push_total == 5);
  SyncStatus status = tablet.client().status();
  CHECK(status.state == SyncState::kIdle);
  CHECK(status.last_success_ms == tablet.env().NowMillis());
  CHECK(status.last_error.ok());
}

TEST_CASE_METHOD(ScriptedFixture, "A sync speaks JSON when asked to", "[sync][client]") {
  server.Otherwise("/v1/push", AcknowledgePush(&tablet.env()));
  server.Otherwise("/v1/pull", PullNothing(&tablet.env()));
  SyncOptions options = TestSyncOptions();
  options.format = wire::Format::kJson;
  tablet.Connect(server.url(), options);
  WriteParticipants(tablet, 1);

  SYNC_REQUIRE_OK(tablet.client().SyncNow());

  std::vector<SeenRequest> seen = server.requests();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].Header("Content-Type") == "application/json");
  CHECK(seen[0].Header("Accept") == "application/json");
  CHECK_THAT(seen[0].body, Catch::Contains("\"device\": \"tab-a\""));
}

TEST_CASE_METHOD(ScriptedFixture, "A server error is retried with backoff until the sync succeeds",
                 "[sync][client]") {
  server.Then("/v1/push", ErrorHandler(503, StatusCode::kUnavailable));
  server.Then("/v1/push", ErrorHandler(500, StatusCode::kInternal));
  server.Otherwise("/v1/push", AcknowledgePush(&tablet.env()));
  server.Then("/v1/pull", ErrorHandler(503, StatusCode::kBusy));
  server.Otherwise("/v1/pull", PullNothing(&tablet.env()));
  tablet.Connect(server.url());
  WriteParticipants(tablet, 3);
  int64_t before = tablet.env().NowMillis();

  SYNC_REQUIRE_OK(tablet.client().SyncNow());

  CHECK(server.requests("/v1/push").size() == 3);
  CHECK(server.requests("/v1/pull").size() == 2);
  CHECK(tablet.Pending() == 0);
  // Full jitter: each wait is drawn below its doubling ceiling (500, then 1000 ms).
  CHECK(tablet.env().NowMillis() - before <= 500 + 1000 + 500);
}

TEST_CASE_METHOD(ScriptedFixture,
                 "A server that stays unavailable leaves the tablet offline after max_attempts",
                 "[sync][client]") {
  server.Otherwise("/v1/push", ErrorHandler(503, StatusCode::kUnavailable));
  SyncOptions options = TestSyncOptions();
  options.max_attempts = 3;
  options.backoff_initial_ms = 1000;
  options.backoff_max_ms = 1500;
  tablet.Connect(server.url(), options);
  WriteParticipants(tablet, 2);
  int64_t before = tablet.env().NowMillis();

  Status status = tablet.client().SyncNow();

  CHECK(status.code() == StatusCode::kUnavailable);
  CHECK(server.requests("/v1/push").size() == 3);
  CHECK(tablet.env().NowMillis() - before <= 1000 + 1500);
  CHECK(tablet.Pending() == 2);
  SyncStatus sync_status = tablet.client().status();
  CHECK(sync_status.state == SyncState::kOffline);
  CHECK(sync_status.last_error.code() == StatusCode::kUnavailable);
  CHECK(sync_status.last_success_ms == 0);
  CHECK(sync_status.pending == 2);
}

TEST_CASE("A refused connection is retried, then reported offline", "[sync][client]") {
  TempDir dir;
  Tablet tablet(dir, "tab-a");
  std::string url;
  {
    ScriptedServer gone;
    url = gone.url();
  }
  tablet.Connect(url);
  WriteParticipants(tablet, 1);
  std::vector<carnet::SyncState> states;
  tablet.client().OnStatus([&](const SyncStatus& s) { states.push_back(s.state); });

  Status status = tablet.client().SyncNow();

  CHECK(status.code() == StatusCode::kUnavailable);
  CHECK(states == std::vector<carnet::SyncState>{SyncState::kSyncing, SyncState::kOffline});
  CHECK(tablet.Pending() == 1);
}

TEST_CASE_METHOD(ScriptedFixture, "A reply lost mid-way or too slow is retried", "[sync][client]") {
  server.Then("/v1/push", CutHandler());
  server.Then("/v1/push", SlowHandler(400, AcknowledgePush(&tablet.env())));
  server.Otherwise("/v1/push", AcknowledgePush(&tablet.env()));
  server.Otherwise("/v1/pull", PullNothing(&tablet.env()));
  tablet.Connect(server.url(), TestSyncOptions(), /*total_timeout_ms=*/150);
  WriteParticipants(tablet, 2);

  SYNC_REQUIRE_OK(tablet.client().SyncNow());

  std::vector<SeenRequest> pushes = server.requests("/v1/push");
  REQUIRE(pushes.size() == 3);
  // The same operations each time: the server skips what it already holds.
  CHECK(pushes[0].body == pushes[1].body);
  CHECK(pushes[1].body == pushes[2].body);
  CHECK(tablet.Pending() == 0);
}

TEST_CASE_METHOD(ScriptedFixture,
                 "A clock_skew refusal adopts the server's time and keeps the operations",
                 "[sync][client]") {
  const int64_t ahead_ms = 20 * 60'000;
  int64_t server_time = tablet.env().NowMillis() + ahead_ms;
  server.Otherwise("/v1/push", ErrorHandler(422, StatusCode::kClockSkew, server_time));
  tablet.Connect(server.url());
  WriteParticipants(tablet, 2);

  Status status = tablet.client().SyncNow();

  CHECK(status.code() == StatusCode::kClockSkew);
  CHECK(server.requests("/v1/push").size() == 1);
  CHECK(server.requests("/v1/pull").empty());
  CHECK(tablet.Pending() == 2);
  SyncStatus sync_status = tablet.client().status();
  CHECK(sync_status.state == SyncState::kError);
  CHECK(sync_status.clock_offset_ms == ahead_ms);
  // Stamps made from now on are in the server's time.
  SYNC_REQUIRE_OK(tablet->Set("participants", "p9", "phase", "job_search"));
  CHECK(HlcPhysicalMs(tablet.Outbox().back().hlc) >= server_time);
}

TEST_CASE_METHOD(ScriptedFixture, "Refusals a retry cannot fix end the sync at once",
                 "[sync][client]") {
  auto [http, code] = GENERATE(table<int, StatusCode>({
      {400, StatusCode::kInvalidArgument},
      {401, StatusCode::kUnauthenticated},
      {403, StatusCode::kPermissionDenied},
      {409, StatusCode::kFailedPrecondition},
      {426, StatusCode::kUpdateNeeded},
  }));
  server.Otherwise("/v1/push", ErrorHandler(http, code, tablet.env().NowMillis()));
  tablet.Connect(server.url());
  WriteParticipants(tablet, 1);

  Status status = tablet.client().SyncNow();

  INFO("HTTP " << http << ": " << status.ToString());
  CHECK(status.code() == code);
  CHECK_THAT(status.message(), Catch::Contains("scripted"));
  CHECK(server.requests().size() == 1);
  CHECK(tablet.client().status().state == SyncState::kError);
  CHECK(tablet.client().status().last_error.code() == code);
  CHECK(tablet.Pending() == 1);
}

TEST_CASE_METHOD(ScriptedFixture,
                 "An error reply without a readable body is read from its HTTP status",
                 "[sync][client]") {
  server.Then("/v1/push", TextHandler(502, "<html>bad gateway</html>"));
  server.Otherwise("/v1/push", TextHandler(401, "<html>who are you</html>"));
  tablet.Connect(server.url());
  WriteParticipants(tablet, 1);

  Status status = tablet.client().SyncNow();

  CHECK(status.code() == StatusCode::kUnauthenticated);
  CHECK(server.requests("/v1/push").size() == 2);  // the 502 was retried, the 401 was not
}

TEST_CASE_METHOD(ScriptedFixture, "A reply that is not from a Carnet server counts as offline",
                 "[sync][client]") {
  server.Otherwise("/v1/push", TextHandler(200, "<html>Welcome to the hotel wifi</html>"));
  tablet.Connect(server.url());
  WriteParticipants(tablet, 1);

  Status status = tablet.client().SyncNow();

  CHECK(status.code() == StatusCode::kUnavailable);
  CHECK(tablet.client().status().state == SyncState::kOffline);
  CHECK(tablet.Pending() == 1);
}

TEST_CASE_METHOD(ScriptedFixture, "A push too large for the server is split until it passes",
                 "[sync][client]") {
  Handler acknowledge = AcknowledgePush(&tablet.env());
  Handler too_large = ErrorHandler(413, StatusCode::kResourceExhausted);
  server.Otherwise("/v1/push", [&](const httplib::Request& req, httplib::Response& res) {
    wire::PushRequest push;
    if (!Parse(req, &push)) return BadRequest(res);
    if (push.ops.size() > 2) return too_large(req, res);
    acknowledge(req, res);
  });
  server.Otherwise("/v1/pull", PullNothing(&tablet.env()));
  SyncOptions options = TestSyncOptions();
  options.push_batch = 8;
  tablet.Connect(server.url(), options);
  WriteParticipants(tablet, 7);

  SYNC_REQUIRE_OK(tablet.client().SyncNow());

  std::vector<size_t> sizes;
  for (const SeenRequest& push : server.requests("/v1/push")) {
    sizes.push_back(DecodeBody<wire::PushRequest>(push).ops.size());
  }
  CHECK(sizes == std::vector<size_t>{7, 4, 2, 2, 2, 1});
  CHECK(tablet.Pending() == 0);
}

TEST_CASE_METHOD(ScriptedFixture,
                 "Pulls apply entries and save the cursor until the server has no more",
                 "[sync][client]") {
  Tablet other(dir, "tab-b");
  SYNC_REQUIRE_OK(
      other->Put("participants", "p1", {{"first_name", "Léa"}, {"phase", "assessment"}}));
  SYNC_REQUIRE_OK(other->Set("participants", "p2", "phase", "job_search"));
  std::vector<Entry> entries = EntriesOf(other.Outbox());
  REQUIRE(entries.size() == 3);
  server.Otherwise("/v1/push", AcknowledgePush(&tablet.env()));
  server.Then("/v1/pull", PullAnswer(&tablet.env(), {entries[0], entries[1]}, 2, true));
  server.Then("/v1/pull", PullAnswer(&tablet.env(), {entries[2]}, 3));
  server.Otherwise("/v1/pull", PullNothing(&tablet.env()));
  tablet.Connect(server.url());
  std::vector<SyncProgress> progress;
  tablet.client().OnProgress([&](const SyncProgress& p) { progress.push_back(p); });

  SYNC_REQUIRE_OK(tablet.client().SyncNow());

  std::vector<uint64_t> cursors;
  for (const SeenRequest& pull : server.requests("/v1/pull")) {
    cursors.push_back(DecodeBody<wire::PullRequest>(pull).cursor);
    CHECK(DecodeBody<wire::PullRequest>(pull).limit == 1000);
  }
  CHECK(cursors == std::vector<uint64_t>{0, 2});
  CHECK(tablet.store().GetSyncState("pull_cursor").value() == "3");
  CHECK(tablet.Dump() == other.Dump());
  REQUIRE(progress.size() == 2);
  CHECK(progress[0].pulled == 2);
  CHECK(progress[0].pull_more);
  CHECK(progress[1].pulled == 3);
  CHECK_FALSE(progress[1].pull_more);

  SECTION("and the next sync pulls from the saved cursor") {
    SYNC_REQUIRE_OK(tablet.client().SyncNow());
    std::vector<SeenRequest> pulls = server.requests("/v1/pull");
    REQUIRE(pulls.size() == 3);
    CHECK(DecodeBody<wire::PullRequest>(pulls[2]).cursor == 3);
  }
}

TEST_CASE_METHOD(
    ScriptedFixture,
    "A forget refused by pending changes pushes them, then pulls the same cursor again",
    "[sync][client]") {
  SYNC_REQUIRE_OK(tablet->Set("participants", "p1", "phase", "assessment"));
  server.Otherwise("/v1/push", AcknowledgePush(&tablet.env()));
  std::vector<wire::RecordRef> forget{{"participants", "p1"}};
  // An edit made while the pull is on its way: the outbox changes p1 when the forget arrives.
  Handler answer = PullAnswer(&tablet.env(), {}, 7, false, forget);
  Status edit = Internal("not made");
  server.Then("/v1/pull", [&](const httplib::Request& req, httplib::Response& res) {
    edit = tablet->Set("participants", "p1", "phase", "job_search");
    answer(req, res);
  });
  server.Otherwise("/v1/pull", answer);
  tablet.Connect(server.url());

  SYNC_REQUIRE_OK(tablet.client().SyncNow());

  SYNC_REQUIRE_OK(edit);
  std::vector<std::string> paths;
  for (const SeenRequest& r : server.requests()) paths.push_back(r.path);
  CHECK(paths == std::vector<std::string>{"/v1/push", "/v1/pull", "/v1/push", "/v1/pull"});
  std::vector<SeenRequest> pulls = server.requests("/v1/pull");
  CHECK(DecodeBody<wire::PullRequest>(pulls[1]).cursor == 0);
  CHECK(tablet.Pending() == 0);
  CHECK(tablet->Get("participants", "p1").status().code() == StatusCode::kNotFound);
  CHECK(tablet.store().GetSyncState("pull_cursor").value() == "7");
}

TEST_CASE_METHOD(ScriptedFixture,
                 "The clock offset follows the server's time when it is more than a second off",
                 "[sync][client]") {
  int64_t skew = 0;
  server.Otherwise("/v1/pull", [&](const httplib::Request& req, httplib::Response& res) {
    Send(req, res, 200, wire::PullReply{{}, {}, 0, false, tablet.env().NowMillis() + skew, "", {}});
  });
  tablet.Connect(server.url());
  auto offset_after_sync = [&](int64_t server_skew) {
    skew = server_skew;
    SYNC_REQUIRE_OK(tablet.client().SyncNow());
    return tablet.client().status().clock_offset_ms;
  };

  CHECK(offset_after_sync(400) == 0);
  CHECK(offset_after_sync(5000) == 5000);
  CHECK(offset_after_sync(5600) == 5000);
  CHECK(offset_after_sync(-3000) == -3000);

  SECTION("and a new client of the same store knows it") {
    tablet.Connect(server.url());
    CHECK(tablet.client().status().clock_offset_ms == -3000);
    CHECK(offset_after_sync(-2500) == -3000);
  }
}
