// The audit log with two carnet-server nodes on one PostgreSQL (sync/SECURITY.md, Audit): pushes
// append under the store-wide lock, pulls beside them on either node, and every append must
// chain on the one committed before it. Tablets syncing at once through both nodes; at the end
// the chain checks out, and the log holds every operation pushed and every entry served, by
// device, no more and no less.
#include <atomic>
#include <map>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/support/temp_dir.h"
#include "tests/sync/audit_helpers.h"
#include "tests/sync/hooked_transport.h"
#include "tests/sync/server_process.h"
#include "tests/sync/sync_fixture.h"
#include "tests/sync/test_store.h"

namespace carnet::testing {
namespace {

constexpr int kWriters = 4;
constexpr int kReaders = 2;
constexpr int kRounds = 5;

// What a tablet's requests carried, read off the wire: the ops it pushed, the entries and
// forgets it was served, and the server's failures (retried by the client). Atomic: the client
// may fetch a snapshot's next page on a second thread.
struct Served {
  std::atomic<uint64_t> ops{0}, entries{0}, forgets{0}, failures{0};
};

Result<HttpReply> Tally(Served* served, const HttpRequest& request, Transport& inner) {
  Result<HttpReply> reply = inner.Post(request);
  if (reply.ok() && reply->status >= 500) ++served->failures;
  if (!reply.ok() || reply->status != 200) return reply;
  std::optional<wire::Format> format = wire::FormatFromContentType(reply->content_type);
  if (!format) return reply;
  if (request.path == "/v1/push") {
    std::string content_type;
    for (const auto& [name, value] : request.headers) {
      if (name == "Content-Type") content_type = value;
    }
    std::optional<wire::Format> sent = wire::FormatFromContentType(content_type);
    wire::PushRequest push;
    if (sent && wire::Decode(request.body, *sent, &push).ok()) served->ops += push.ops.size();
  } else if (request.path == "/v1/pull") {
    wire::PullReply pull;
    if (wire::Decode(reply->body, *format, &pull).ok()) {
      served->entries += pull.entries.size();
      served->forgets += pull.forget.size();
    }
  }
  return reply;
}

}  // namespace

TEST_CASE("Two server nodes pushing and pulling at once keep one audit chain, whole",
          "[pg][nodes][audit]") {
  REQUIRE(TestingPostgres());
  TempDir dir;
  PostgresDatabase db;
  const std::string spec = db.url();
  std::vector<std::string> devices;
  for (int i = 0; i < kWriters; ++i) devices.push_back("tab-w" + std::to_string(i));
  for (int i = 0; i < kReaders; ++i) devices.push_back("tab-r" + std::to_string(i));
  std::map<std::string, std::string> tokens;
  for (const std::string& id : devices) {
    tokens[id] = EnrollCli(spec, id, "adviser-" + id.substr(4), kNorth);
  }
  ServerProcess node_a(CARNET_SERVER_BINARY, spec, dir.File("node-a.log"));
  ServerProcess node_b(CARNET_SERVER_BINARY, spec, dir.File("node-b.log"));
  const std::string urls[2] = {node_a.url(), node_b.url()};

  std::vector<std::unique_ptr<Served>> served;
  std::vector<std::unique_ptr<Tablet>> tablets;
  std::vector<std::unique_ptr<SyncClient>> clients;  // declared last: they go first
  for (size_t i = 0; i < devices.size(); ++i) {
    served.push_back(std::make_unique<Served>());
    tablets.push_back(std::make_unique<Tablet>(dir, devices[i], kTabletStartMs, 41 + i));
    Served* tally = served.back().get();
    auto hook = [tally](int, const HttpRequest& request, Transport& inner) {
      return Tally(tally, request, inner);
    };
    clients.push_back(std::make_unique<SyncClient>(
        &tablets[i]->store(), &tablets[i]->env(),
        std::make_unique<HookedTransport>(CurlTo(urls[i % 2]), hook),
        ServerSyncOptions(tokens[devices[i]])));
  }
  std::vector<ParticipantFile> files;
  for (int w = 0; w < kWriters; ++w) {
    for (int n = 0; n < 2; ++n) {
      files.push_back(AddParticipant(tablets[w]->store(), "adviser-w" + std::to_string(w), kNorth,
                                     "w-1"));
    }
  }

  std::atomic<int> writing{kWriters};
  std::vector<Status> failures(devices.size());
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      Tablet& tablet = *tablets[w];
      for (int round = 0; round < kRounds && failures[w].ok(); ++round) {
        failures[w] = clients[w]->SyncNow();
        for (const ParticipantFile& f : files) {
          if (!failures[w].ok()) break;
          Result<Record> held = tablet->Get("interviews", f.interview);
          if (!held.ok()) continue;  // not pulled yet
          Status s = tablet->Set("participants", f.participant, "phase",
                                 (round + w) % 2 ? "job_search" : "assessment");
          if (s.ok()) s = tablet->Append("interviews", f.interview, "notes", devices[w]).status();
          if (!s.ok()) failures[w] = s;
        }
      }
      --writing;
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      const size_t i = kWriters + r;
      while (writing > 0 && failures[i].ok()) failures[i] = clients[i]->SyncNow();
    });
  }
  for (std::thread& t : threads) t.join();
  for (const Status& s : failures) {
    INFO(s.ToString());
    CHECK(s.ok());
  }
  for (int pass = 0; pass < 2; ++pass) {
    for (auto& client : clients) SYNC_REQUIRE_OK(client->SyncNow());
  }

  CliResult check = RunCli({"audit", "--store", spec, "--verify"});
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
  const AuditLines log = AuditCli(spec);
  std::map<std::string, uint64_t> pushed, read, forgotten;
  for (const auto& line : log) {
    const uint64_t count = std::stoull(line.at("count"));
    const std::string& action = line.at("action");
    (action == "read" ? read : action == "forget" ? forgotten : pushed)[line.at("device")] += count;
  }
  uint64_t total_ops = 0;
  for (size_t i = 0; i < devices.size(); ++i) {
    INFO(devices[i]);
    CHECK(pushed[devices[i]] == served[i]->ops);
    CHECK(read[devices[i]] == served[i]->entries);
    CHECK(forgotten[devices[i]] == served[i]->forgets);
    // Two appends at once wait for each other: neither fails on the other's row ids.
    CHECK(served[i]->failures == 0);
    total_ops += served[i]->ops;
  }
  CHECK(total_ops > 300);
  for (size_t i = kWriters; i < devices.size(); ++i) CHECK(served[i]->entries > 0);
}

}  // namespace carnet::testing
