// Several server nodes on one PostgreSQL (sync/SCALING.md): concurrent conflicting pushes through
// different nodes converge, and no pull ever passes an entry that commits after it. The classic
// trap is a plain sequence: a push transaction draws numbers, another draws greater ones and
// commits first, a pull passes them, and the first commits behind the puller's cursor. Built with
// -DCARNET_PG_NAIVE_SEQUENCE=ON (numbers from a plain sequence), these tests fail.
#include <atomic>
#include <map>
#include <thread>

#include <catch2/catch.hpp>

#include "carnet/merge.h"
#include "carnet/server_store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_env.h"
#include "tests/sync/server_process.h"
#include "tests/sync/sync_fixture.h"
#include "tests/sync/test_store.h"

namespace carnet::testing {
namespace {

constexpr int kWriters = 4;
constexpr int kRounds = 12;
constexpr int kShared = 8;  // participants every writer edits

// A replica that only pulls: what a tablet would hold, joined entry by entry.
class PullingReplica {
 public:
  explicit PullingReplica(Device device) : device_(std::move(device)) {}

  // One pull; false once nothing more is waiting.
  Status PullOnce(ServerStore& node, bool* more) {
    Result<wire::PullReply> reply = node.Pull(device_, cursor_, 40);
    if (!reply.ok()) return reply.status();
    for (const Entry& e : reply->entries) {
      auto found = entries_.find(e.key);
      std::optional<Entry> joined = MergeEntry(e, found == entries_.end() ? nullptr : &found->second);
      if (joined) entries_[e.key] = std::move(*joined);
    }
    cursor_ = reply->next_cursor;
    *more = reply->more;
    ++pulls_;
    return Status::Ok();
  }

  std::string Dump() const {
    std::string dump;
    for (const auto& [key, e] : entries_) {
      if (e.live) dump += CanonicalLine(e);
    }
    return dump;
  }
  int pulls() const { return pulls_; }

 private:
  Device device_;
  uint64_t cursor_ = 0;
  int pulls_ = 0;
  std::map<EntryKey, Entry> entries_;
};

// Pushes the tablet's operations made since the last call, through `node`.
Status PushNew(ServerStore& node, const Device& device, Tablet& tablet, uint64_t* pushed) {
  Result<std::vector<Operation>> ops = tablet->PendingOperations(*pushed, 1'000'000);
  if (!ops.ok()) return ops.status();
  if (ops->empty()) return Status::Ok();
  Result<wire::PushReply> reply =
      node.Push(device, wire::PushRequest{wire::kProtocolVersion, device.id, "", 0, *ops});
  if (!reply.ok()) return reply.status();
  *pushed = ops->back().seq;
  return Status::Ok();
}

}  // namespace

TEST_CASE("Pushes through two store nodes at once never let a concurrent pull skip an entry",
          "[pg][nodes]") {
  REQUIRE(TestingPostgres());
  TempDir dir;
  PostgresDatabase db;
  TestEnv env(kTabletStartMs + 60'000, 3);
  // Two nodes: two stores, each with its own pool, on one database.
  std::vector<std::unique_ptr<ServerStore>> nodes;
  for (int i = 0; i < 2; ++i) {
    Result<std::unique_ptr<ServerStore>> store = OpenServerStore(db.url(), {&env});
    SYNC_REQUIRE_OK(store);
    nodes.push_back(std::move(store.value()));
  }
  std::vector<Device> writers;
  for (int i = 0; i < kWriters; ++i) {
    writers.push_back(Device{"tab-w" + std::to_string(i), "adviser-a", {kNorth}});
    SYNC_REQUIRE_OK(nodes[0]->Enroll(writers.back(), HashToken("token-w" + std::to_string(i))));
  }
  const Device reader{"tab-reader", "adviser-r", {kNorth}};
  SYNC_REQUIRE_OK(nodes[1]->Enroll(reader, HashToken("token-reader")));

  std::vector<std::unique_ptr<Tablet>> tablets;
  for (int i = 0; i < kWriters; ++i) {
    tablets.push_back(std::make_unique<Tablet>(dir, writers[i].id, kTabletStartMs, 17 + i));
  }
  // The shared participants, created by the first writer.
  std::vector<ParticipantFile> shared;
  for (int i = 0; i < kShared; ++i) {
    shared.push_back(AddParticipant(tablets[0]->store(), "adviser-a", kNorth, "w-1"));
  }
  std::vector<uint64_t> pushed(kWriters, 0);
  SYNC_REQUIRE_OK(PushNew(*nodes[0], writers[0], *tablets[0], &pushed[0]));

  // Every writer edits the same fields of the same participants and pushes, through node
  // (writer + round) % 2, while the reader pulls through the other node as fast as it can.
  std::atomic<int> writing{kWriters};
  std::vector<Status> failures(kWriters + 1);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      Tablet& tablet = *tablets[w];
      for (int round = 0; round < kRounds && failures[w].ok(); ++round) {
        for (const ParticipantFile& f : shared) {
          Status s = tablet->Put("participants", f.participant,
                                 {{"status", round % 2 ? "suspended" : "active"},
                                  {"phase", round % 3 ? "job_search" : "life_project"}});
          if (s.ok()) {
            s = tablet->Append("interviews", f.interview, "notes",
                               writers[w].id + " round " + std::to_string(round))
                    .status();
          }
          if (!s.ok()) failures[w] = s;
        }
        if (failures[w].ok()) {
          failures[w] = PushNew(*nodes[(w + round) % 2], writers[w], tablet, &pushed[w]);
        }
      }
      --writing;
    });
  }
  PullingReplica replica(reader);
  threads.emplace_back([&] {
    // Until a pull that began once every push had committed finds nothing more.
    for (int n = 0; failures[kWriters].ok(); ++n) {
      const bool pushes_done = writing == 0;
      bool more = false;
      failures[kWriters] = replica.PullOnce(*nodes[n % 2], &more);
      if (pushes_done && !more) break;
    }
  });
  for (std::thread& t : threads) t.join();
  for (const Status& s : failures) {
    INFO(s.ToString());
    CHECK(s.ok());
  }

  // A pull that passed an entry committed later never gets it: the replica must hold exactly
  // the server's view of its scope.
  Result<std::string> scope = nodes[0]->ScopeDump(reader.id);
  SYNC_REQUIRE_OK(scope);
  INFO(replica.pulls() << " pulls");
  CHECK(DumpDiff(replica.Dump(), *scope) == "");
  CHECK(scope->find("round " + std::to_string(kRounds - 1)) != std::string::npos);
}

TEST_CASE("Tablets syncing through two carnet-server processes on one PostgreSQL converge",
          "[pg][nodes]") {
  REQUIRE(TestingPostgres());
  TempDir dir;
  PostgresDatabase db;
  TestEnv env(kTabletStartMs + 60'000, 5);
  Result<std::unique_ptr<ServerStore>> store = OpenServerStore(db.url(), {&env});
  SYNC_REQUIRE_OK(store);
  std::vector<std::string> devices;
  for (int i = 0; i < kWriters; ++i) devices.push_back("tab-w" + std::to_string(i));
  devices.push_back("tab-reader");
  for (const std::string& id : devices) {
    SYNC_REQUIRE_OK((*store)->Enroll(
        Device{id, id == "tab-reader" ? "adviser-r" : "adviser-a", {kNorth}}, HashToken(id)));
  }
  ServerProcess node_a(CARNET_SERVER_BINARY, db.url(), dir.File("node-a.log"));
  ServerProcess node_b(CARNET_SERVER_BINARY, db.url(), dir.File("node-b.log"));
  const std::string urls[2] = {node_a.url(), node_b.url()};

  std::vector<std::unique_ptr<Tablet>> tablets;
  for (size_t i = 0; i < devices.size(); ++i) {
    tablets.push_back(std::make_unique<Tablet>(dir, devices[i], kTabletStartMs, 31 + i));
    tablets.back()->Connect(urls[i % 2], ServerSyncOptions(devices[i]));
  }
  std::vector<ParticipantFile> shared;
  for (int i = 0; i < kShared; ++i) {
    shared.push_back(AddParticipant(tablets[0]->store(), "adviser-a", kNorth, "w-1"));
  }
  RequireSynced(*tablets[0]);
  for (int w = 1; w < kWriters; ++w) RequireSynced(*tablets[w]);

  std::atomic<int> writing{kWriters};
  std::vector<Status> failures(devices.size());
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      Tablet& tablet = *tablets[w];
      for (int round = 0; round < kRounds / 2 && failures[w].ok(); ++round) {
        for (const ParticipantFile& f : shared) {
          Status s = tablet->Put("participants", f.participant,
                                 {{"status", (round + w) % 2 ? "suspended" : "active"}});
          if (s.ok()) s = tablet->Append("interviews", f.interview, "notes", devices[w]).status();
          if (!s.ok()) failures[w] = s;
        }
        if (failures[w].ok()) failures[w] = tablet.client().SyncNow();
      }
      --writing;
    });
  }
  threads.emplace_back([&] {
    Tablet& reader = *tablets[kWriters];
    for (int n = 0; writing > 0 && failures[kWriters].ok(); ++n) {
      failures[kWriters] = reader.client().SyncNow();
    }
  });
  for (std::thread& t : threads) t.join();
  for (const Status& s : failures) {
    INFO(s.ToString());
    CHECK(s.ok());
  }
  // Two more rounds each: everyone gets the edits pushed after their last pull.
  for (int pass = 0; pass < 2; ++pass) {
    for (auto& tablet : tablets) RequireSynced(*tablet);
  }
  for (auto& tablet : tablets) {
    Result<std::string> scope = (*store)->ScopeDump(tablet->store().device_id());
    SYNC_REQUIRE_OK(scope);
    INFO(tablet->store().device_id());
    CHECK(DumpDiff(tablet->Dump(), *scope) == "");
  }
  CHECK(tablets[0]->Dump() == tablets[kWriters]->Dump());
}

}  // namespace carnet::testing
