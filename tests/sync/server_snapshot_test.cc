// A tablet's first pull as a snapshot: its scope in key order, in pages it can resume, with what
// changes meanwhile following by sequence (sync/PROTOCOL.md, Snapshot).
#include <algorithm>
#include <mutex>

#include <catch2/catch.hpp>

#include "tests/sync/hooked_transport.h"
#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

// What the hooked tablet asked and was answered, pull by pull. Filled on the client's threads
// (a page is fetched while the previous one is written), where Catch's macros must not run.
struct PullLog {
  std::vector<Status> failures;
  std::mutex mutex;
  std::vector<std::string> asked;  // the snapshot field of each pull request
  bool pages_in_key_order = true;
  size_t snapshot_pages = 0;
};

}  // namespace

TEST_CASE("A first pull is a snapshot in key order that resumes where a cut left it, and what "
          "changed meanwhile follows",
          "[sync][server][snapshot]") {
  ServerFixture server;
  auto office = server.Join("tab-office", "office", {kNorth, kSouth});
  std::vector<ParticipantFile> files;
  for (int i = 0; i < 8; ++i) {
    files.push_back(AddParticipant(office->store(), "adviser-b", i % 2 ? kNorth : kSouth, "w-1"));
  }
  RequireSynced(*office);

  const std::string token = server.Enroll("tab-b", "adviser-b", {kSouth});
  TempDir elsewhere;
  Tablet b(elsewhere, "tab-b", server.env().NowMillis(), 7);
  PullLog log;
  auto hook = [&](int n, const HttpRequest& request, Transport& inner) -> Result<HttpReply> {
    if (request.path == "/v1/pull") {
      wire::PullRequest pull;
      std::lock_guard<std::mutex> lock(log.mutex);
      log.failures.push_back(wire::Decode(request.body, wire::Format::kBinary, &pull));
      log.asked.push_back(pull.snapshot);
      // The third page: meanwhile, the office hands one participant over and edits another.
      if (log.asked.size() == 3) {
        log.failures.push_back(office->store().Put(
            "participants", files[0].participant,
            {{"referent", "adviser-a"}, {"territory", kNorth}}));
        log.failures.push_back(office->store()
                                   .Append("interviews", files[1].interview, "notes",
                                           "written during the snapshot")
                                   .status());
        log.failures.push_back(office->client().SyncNow());
      }
      // The fifth: the network goes.
      if (log.asked.size() == 5) return Status(StatusCode::kUnavailable, "network cut");
    }
    Result<HttpReply> reply = inner.Post(request);
    if (request.path == "/v1/pull" && reply.ok() && reply->status == 200) {
      wire::PullReply page;
      std::lock_guard<std::mutex> lock(log.mutex);
      log.failures.push_back(wire::Decode(reply->body, wire::Format::kBinary, &page));
      if (!page.snapshot.empty()) ++log.snapshot_pages;
      log.pages_in_key_order =
          log.pages_in_key_order &&
          std::is_sorted(page.entries.begin(), page.entries.end(),
                         [](const Entry& x, const Entry& y) { return x.key < y.key; });
    }
    (void)n;
    return reply;
  };
  SyncOptions options = ServerSyncOptions(token);
  options.pull_batch = 25;
  options.max_attempts = 1;
  SyncClient client(&b.store(), &b.env(),
                    std::make_unique<HookedTransport>(CurlTo(server.url()), hook), options);

  Status cut = client.SyncNow();
  CHECK(cut.code() == StatusCode::kUnavailable);
  Result<std::optional<std::string>> saved = b->GetSyncState("pull_snapshot");
  SYNC_REQUIRE_OK(saved);
  REQUIRE(saved->has_value());
  REQUIRE_FALSE((*saved)->empty());

  SYNC_REQUIRE_OK(client.SyncNow());

  std::lock_guard<std::mutex> lock(log.mutex);
  for (const Status& status : log.failures) SYNC_REQUIRE_OK(status);
  CHECK(log.asked.front() == wire::kSnapshotBegin);
  // The pull after the cut goes on from the page saved last, not from the beginning.
  REQUIRE(log.asked.size() > 5);
  CHECK(log.asked[5] == **saved);
  CHECK(log.snapshot_pages >= 4);
  CHECK(log.pages_in_key_order);
  // Nothing missed, nothing kept that left the scope: the hand-over and the note included.
  CHECK_IN_SCOPE(server, b);
  CHECK_FALSE(Holds(b, "participants", files[0].participant));
  CHECK(NotesOf(b, files[1].interview).back() == "written during the snapshot");
}

TEST_CASE("A snapshot token the server did not make is refused", "[sync][server][snapshot]") {
  ServerFixture server;
  server.Enroll("tab-b", "adviser-b", {kSouth});
  for (const char* token : {"", "2.5.e", "1.x.f.0", "1.5.e.zz", "1.5.f", "1.5.e.00.00.00.00"}) {
    INFO(token);
    Result<wire::PullReply> reply = server.store().PullSnapshot(server.DeviceRow("tab-b"), token, 10);
    CHECK(reply.status().code() == StatusCode::kInvalidArgument);
  }
}
