// What a store holds survives closing and reopening its file, after every kind of transaction;
// files that belong elsewhere are refused; observers hear of committed changes only.
#include <sqlite3.h>

#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/store.h"
#include "tests/core/store_helpers.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

// Closes and reopens the store, requires it to hold what it held before (entries, outbox,
// conflicts and the sync state under `sync_key`), then requires the next local operation to take
// `next_seq`, the number after the last one committed.
void RequireSurvivesReopen(Replica& r, uint64_t next_seq, const std::string& sync_key = "cursor") {
  const Snapshot before = Take(r.store());
  const std::string conflicts = testing::ConflictsText(r.store());
  const std::optional<std::string> sync = SyncState(r.store(), sync_key);
  r.Reopen();
  const Snapshot after = Take(r.store());
  CHECK(after.dump == before.dump);
  CHECK(after.outbox == before.outbox);
  CHECK(testing::ConflictsText(r.store()) == conflicts);
  CHECK(SyncState(r.store(), sync_key) == sync);
  CHECK(NextSeqByWriting(r.store()) == next_seq);
  // Stamps issued in a rolled-back transaction may be issued again; committed ones never.
  if (!before.outbox.empty()) CHECK(Outbox(r.store()).back().hlc > before.outbox.back().hlc);
}

void SetUserVersion(const std::string& path, int version) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  std::string sql = "PRAGMA user_version=" + std::to_string(version);
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

// Records every batch of changes an observer is told about.
struct Recorder {
  std::vector<std::vector<Change>> calls;
  Observer observer() {
    return [this](const std::vector<Change>& changes) { calls.push_back(changes); };
  }
};

}  // namespace

TEST_CASE_METHOD(OneTablet, "A local edit survives a reopen and sequence numbers continue",
                 "[core][reopen]") {
  REQUIRE_OK(a->Set("participants", "p1", "phase", "assessment"));
  REQUIRE_OK(a->Append("interviews", "i1", "notes", "Line one\nline two\ttabbed"));
  RequireSurvivesReopen(a, 3);
  RequireSurvivesReopen(a, 4);
}

TEST_CASE_METHOD(OneTablet, "A multi-call transaction survives a reopen whole", "[core][reopen]") {
  Result<Transaction> txn = a->Begin();
  REQUIRE_OK(txn);
  REQUIRE_OK(txn->Put("participants", "p1", {{"first_name", "Ana"}, {"status", "active"}}));
  REQUIRE_OK(txn->Add("participants", "p1", "barriers", "language"));
  REQUIRE_OK(txn->Append("interviews", "i1", "notes", "Interpreter needed."));
  REQUIRE_OK(txn->Commit());
  CHECK(txn->Commit().code() == StatusCode::kFailedPrecondition);
  std::vector<Operation> outbox = Outbox(a.store());
  REQUIRE(outbox.size() == 4);
  CHECK(outbox.front().seq == 1);
  CHECK(outbox.back().seq == 4);
  RequireSurvivesReopen(a, 5);
}

TEST_CASE_METHOD(OneTablet,
                 "A transaction destroyed uncommitted leaves nothing before or after a reopen",
                 "[core][reopen]") {
  REQUIRE_OK(a->Set("participants", "p1", "phase", "assessment"));
  const Snapshot committed = Take(a.store());
  {
    Result<Transaction> txn = a->Begin();
    REQUIRE_OK(txn);
    REQUIRE_OK(txn->Set("participants", "p1", "phase", "health"));
    REQUIRE_OK(txn->Add("participants", "p1", "barriers", "housing"));
    REQUIRE_OK(txn->Delete("participants", "p1"));
  }
  CHECK(Take(a.store()).dump == committed.dump);
  CHECK(Take(a.store()).outbox == committed.outbox);
  CHECK(testing::ValueOf(a.store(), "participants", "p1", "phase") == "assessment");
  RequireSurvivesReopen(a, 2);
}

TEST_CASE_METHOD(OneTablet, "A transaction may be moved and still rolls back once",
                 "[core][reopen]") {
  {
    Result<Transaction> txn = a->Begin();
    REQUIRE_OK(txn);
    Transaction moved(std::move(*txn));
    REQUIRE_OK(moved.Set("participants", "p1", "phase", "health"));
    CHECK(txn->Set("participants", "p1", "phase", "health").code() ==
          StatusCode::kFailedPrecondition);
  }
  CHECK(Outbox(a.store()).empty());
  RequireSurvivesReopen(a, 1);
}

TEST_CASE_METHOD(OneTablet, "Remote operations and their sync state survive a reopen",
                 "[core][reopen]") {
  Replica b(dir, "tab-b", testing::kStartMs + 2);
  REQUIRE_OK(a->Set("participants", "p1", "phase", "assessment"));
  REQUIRE_OK(b->Set("participants", "p1", "phase", "health"));
  REQUIRE_OK(b->Add("participants", "p1", "barriers", "digital"));
  Result<ApplyStats> stats = a->ApplyRemote(Outbox(b.store()), {{"cursor", "b:2"}, {"etag", "x"}});
  REQUIRE_OK(stats);
  CHECK(stats->applied == 2);
  CHECK(SyncState(a.store(), "cursor") == "b:2");
  RequireSurvivesReopen(a, 2);
  CHECK(SyncState(a.store(), "etag") == "x");
  CHECK(testing::ConflictsOf(a.store()).size() == 1);
}

TEST_CASE_METHOD(OneTablet, "Sync state set on its own survives a reopen", "[core][reopen]") {
  REQUIRE_OK(a->SetSyncState("cursor", "17"));
  REQUIRE_OK(a->SetSyncState("cursor", "18"));
  RequireSurvivesReopen(a, 1);
  CHECK(SyncState(a.store(), "cursor") == "18");
}

TEST_CASE_METHOD(OneTablet, "Our own operations coming back never make sequence numbers reused",
                 "[core][reopen]") {
  REQUIRE_OK(a->Set("participants", "p1", "phase", "assessment"));
  REQUIRE_OK(a->Set("participants", "p1", "phase", "health"));
  std::vector<Operation> ours = Outbox(a.store());
  // The same device's later operations, as a server would return them to a store restored from
  // an older copy.
  Operation later = ours.back();
  later.seq = 7;
  later.hlc += 10;
  later.refs = {ours.back().stamp()};
  later.value = "job_search";
  REQUIRE_OK(a->ApplyRemote({later}));
  RequireSurvivesReopen(a, 8);
}

TEST_CASE_METHOD(OneTablet,
                 "Acknowledged operations stay gone after a reopen and numbers are not reused",
                 "[core][reopen]") {
  for (const char* phase : {"assessment", "health", "job_search"}) {
    REQUIRE_OK(a->Set("participants", "p1", "phase", std::string(phase)));
  }
  REQUIRE_OK(a->AcknowledgeOperations(2));
  std::vector<Operation> outbox = Outbox(a.store());
  REQUIRE(outbox.size() == 1);
  CHECK(outbox.front().seq == 3);
  RequireSurvivesReopen(a, 4);

  REQUIRE_OK(a->AcknowledgeOperations(4));
  Result<uint64_t> count = a->PendingCount();
  REQUIRE_OK(count);
  CHECK(*count == 0);
  RequireSurvivesReopen(a, 5);
}

TEST_CASE_METHOD(OneTablet, "A store file opened with another device id is refused",
                 "[core][reopen]") {
  REQUIRE_OK(a->Set("participants", "p1", "phase", "assessment"));
  const std::string dump = testing::Dump(a.store());
  a.Close();
  StoreOptions other = a.options();
  other.device_id = "tab-b";
  Result<std::unique_ptr<Store>> refused = Store::Open(other);
  CHECK(refused.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(refused.status().message(), Catch::Contains("tab-a"));
  a.Reopen();
  CHECK(testing::Dump(a.store()) == dump);
}

TEST_CASE_METHOD(OneTablet, "A store file of a newer layout is refused", "[core][reopen]") {
  REQUIRE_OK(a->Set("participants", "p1", "phase", "assessment"));
  a.Close();
  SetUserVersion(a.options().path, 99);
  Result<std::unique_ptr<Store>> refused = Store::Open(a.options());
  CHECK(refused.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(refused.status().message(), Catch::Contains("99"));
}

TEST_CASE("Opening a store needs an env and a valid device id and a path", "[core][reopen]") {
  TempDir dir;
  testing::TestEnv env;
  StoreOptions options;
  options.path = dir.File("x.db");
  options.device_id = "tab-x";
  CHECK(Store::Open(options).status().code() == StatusCode::kInvalidArgument);
  options.env = &env;
  options.device_id = "tab x";
  CHECK(Store::Open(options).status().code() == StatusCode::kInvalidArgument);
  options.device_id = "tab-x";
  options.path = "";
  CHECK(Store::Open(options).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("A bare file name opens in the env's data directory", "[core][reopen]") {
  TempDir dir;
  testing::TestEnv env;
  env.SetDataDirectory(dir.path().string());
  StoreOptions options;
  options.path = "bare.db";
  options.device_id = "tab-x";
  options.env = &env;
  std::unique_ptr<Store> store = testing::OpenStore(options);
  REQUIRE_OK(store->Set("participants", "p1", "phase", "health"));
  CHECK(std::filesystem::exists(dir.path() / "bare.db"));
}

TEST_CASE_METHOD(OneTablet, "Observers hear of committed local changes after the commit",
                 "[core][reopen]") {
  Recorder recorder;
  std::optional<std::string> seen_by_observer;
  a->AddObserver(recorder.observer());
  ObserverId reader = a->AddObserver([&](const std::vector<Change>&) {
    // Called without the lock: the observer may read the committed state.
    seen_by_observer = testing::ValueOf(a.store(), "participants", "p1", "phase");
  });

  Result<Transaction> txn = a->Begin();
  REQUIRE_OK(txn);
  REQUIRE_OK(txn->Set("participants", "p1", "phase", "health"));
  REQUIRE_OK(txn->Add("participants", "p1", "barriers", "debt"));
  CHECK(recorder.calls.empty());
  REQUIRE_OK(txn->Commit());

  REQUIRE(recorder.calls.size() == 1);
  const std::vector<Change>& changes = recorder.calls.front();
  REQUIRE(changes.size() == 2);
  CHECK(changes[0].collection == "participants");
  CHECK(changes[0].record == "p1");
  CHECK(changes[0].field == "phase");
  CHECK_FALSE(changes[0].remote);
  CHECK(changes[1].field == "barriers");
  CHECK(seen_by_observer == "health");
  a->RemoveObserver(reader);

  REQUIRE_OK(a->Delete("participants", "p1"));
  REQUIRE(recorder.calls.size() == 2);
  REQUIRE(recorder.calls.back().size() == 1);
  CHECK(recorder.calls.back().front().field.empty());
}

TEST_CASE_METHOD(OneTablet, "Observers hear nothing of a rolled-back transaction or a failed call",
                 "[core][reopen]") {
  Recorder recorder;
  a->AddObserver(recorder.observer());
  {
    Result<Transaction> txn = a->Begin();
    REQUIRE_OK(txn);
    REQUIRE_OK(txn->Set("participants", "p1", "phase", "health"));
  }
  CHECK(a->Set("participants", "p1", "phase", "holidays").code() == StatusCode::kInvalidArgument);
  CHECK(recorder.calls.empty());

  // Only the successful calls of a transaction are announced.
  Result<Transaction> txn = a->Begin();
  REQUIRE_OK(txn);
  REQUIRE_OK(txn->Set("participants", "p1", "phase", "health"));
  CHECK(txn->Set("participants", "p1", "gender", "robot").code() == StatusCode::kInvalidArgument);
  REQUIRE_OK(txn->Commit());
  REQUIRE(recorder.calls.size() == 1);
  REQUIRE(recorder.calls.front().size() == 1);
  CHECK(recorder.calls.front().front().field == "phase");
}

TEST_CASE_METHOD(OneTablet,
                 "Observers hear of remote changes that changed something and marked remote",
                 "[core][reopen]") {
  Replica b(dir, "tab-b");
  Recorder recorder;
  ObserverId id = a->AddObserver(recorder.observer());
  REQUIRE_OK(b->Set("interviews", "i1", "place", "home"));
  REQUIRE_OK(b->Delete("interviews", "i1"));
  Deliver(b.store(), a.store());
  REQUIRE(recorder.calls.size() == 1);
  const std::vector<Change>& changes = recorder.calls.front();
  REQUIRE(changes.size() == 2);
  CHECK(changes[0].record == "i1");
  CHECK(changes[0].field == "place");
  CHECK(changes[0].remote);
  CHECK(changes[1].field.empty());
  CHECK(changes[1].remote);

  Deliver(b.store(), a.store());  // only duplicates: nothing changed, nothing to announce
  CHECK(recorder.calls.size() == 1);
  CHECK(a->ApplyRemote({}, {{"cursor", "1"}}).ok());
  CHECK(recorder.calls.size() == 1);

  a->RemoveObserver(id);
  REQUIRE_OK(b->Restore("interviews", "i1"));
  Deliver(b.store(), a.store());
  CHECK(recorder.calls.size() == 1);
}
