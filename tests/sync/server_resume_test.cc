// Syncs cut anywhere: a server process killed mid-pull and started again on the same store,
// replies lost after the server applied the request. Every sync resumes where it was cut: no
// operation is applied twice, no entry is delivered twice or skipped.
#include <algorithm>
#include <filesystem>
#include <map>
#include <random>

#include <catch2/catch.hpp>

#include "carnet/sqlite.h"
#include "tests/sync/server_process.h"
#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

// What the client was given back, across every request of a test: the pushes the server
// applied (lost replies included, read before they were dropped) and the entries delivered.
struct Ledger {
  uint64_t applied = 0;
  uint64_t duplicates = 0;
  std::map<std::string, int> delivered;  // canonical line -> times delivered to the tablet

  void Read(const HttpRequest& request, const HttpReply& reply, bool lost) {
    std::optional<wire::Format> format = wire::FormatFromContentType(reply.content_type);
    if (reply.status != 200 || !format) return;
    if (request.path == "/v1/push") {
      wire::PushReply push;
      SYNC_REQUIRE_OK(wire::Decode(reply.body, *format, &push));
      applied += push.applied;
      duplicates += push.duplicates;
    } else if (request.path == "/v1/pull" && !lost) {
      wire::PullReply pull;
      SYNC_REQUIRE_OK(wire::Decode(reply.body, *format, &pull));
      for (const Entry& e : pull.entries) ++delivered[CanonicalLine(e)];
    }
  }

  // Entries delivered more than once, and live ones of the dump never delivered.
  std::string Faults(const std::string& dump) const {
    std::string faults;
    for (const auto& [line, times] : delivered) {
      if (times != 1) faults += "delivered " + std::to_string(times) + " times: " + line;
    }
    size_t start = 0;
    for (size_t end; (end = dump.find('\n', start)) != std::string::npos; start = end + 1) {
      std::string line = dump.substr(start, end + 1 - start);
      if (!delivered.count(line)) faults += "never delivered: " + line;
    }
    return faults;
  }
};

Result<HttpReply> LoseReply(const char* why) { return Status(StatusCode::kUnavailable, why); }

// Pushes a tablet's outbox straight into a server store, as if it had synced earlier.
void PushInto(ServerStore& store, const std::string& token, Tablet& tablet) {
  Result<Device> device = store.Authenticate(HashToken(token));
  SYNC_REQUIRE_OK(device);
  std::vector<Operation> ops = tablet.Outbox();
  for (size_t at = 0; at < ops.size(); at += wire::kMaxPushOps) {
    std::vector<Operation> batch(ops.begin() + at,
                                 ops.begin() + std::min(ops.size(), at + wire::kMaxPushOps));
    Result<wire::PushReply> reply =
        store.Push(*device, {wire::kProtocolVersion, device->id, "", 0, batch});
    SYNC_REQUIRE_OK(reply);
    SYNC_REQUIRE_OK(tablet->AcknowledgeOperations(reply->acknowledged_seq));
  }
}

// Tablet a pushes its outbox in batches of 20 and pulls in batches of 30, while `lose` says which
// replies the network loses after the server has acted on the request. Returns when a sync
// succeeds, with the ledger of what came back.
struct LossyRun {
  ServerFixture server;
  std::unique_ptr<Tablet> office = server.Join("tab-office", "office", {kNorth});
  std::unique_ptr<Tablet> a = server.Join("tab-a", "adviser-a", {kNorth});
  uint64_t a_ops = 0;
  Ledger ledger;
  int requests = 0;

  LossyRun() {
    for (int i = 0; i < 3; ++i) AddParticipant(office->store(), "adviser-o", kNorth, "w-1");
    RequireSynced(*office);
    for (int i = 0; i < 2; ++i) AddParticipant(a->store(), "adviser-a", kNorth, "w-1");
    a_ops = a->Pending();
  }

  void Run(const std::function<bool(int n, const HttpRequest&)>& lose) {
    auto hook = [&](int n, const HttpRequest& request, Transport& inner) -> Result<HttpReply> {
      requests = n;
      Result<HttpReply> reply = inner.Post(request);
      if (!reply.ok()) return reply;
      bool lost = lose(n, request);
      ledger.Read(request, *reply, lost);
      return lost ? LoseReply("reply lost on the way back") : reply;
    };
    SyncOptions options = ServerSyncOptions(server.Token("tab-a"));
    options.push_batch = 20;
    options.pull_batch = 30;
    SyncClient client(&a->store(), &a->env(),
                      std::make_unique<HookedTransport>(CurlTo(server.url()), hook), options);
    Status status;
    for (int attempt = 0; attempt < 20; ++attempt) {
      status = client.SyncNow();
      if (status.ok()) break;
      REQUIRE(status.code() == StatusCode::kUnavailable);
    }
    SYNC_REQUIRE_OK(status);
  }

  void CheckConverged() {
    CHECK(a->Pending() == 0);
    CHECK(ledger.applied == a_ops);
    CHECK(ledger.Faults(a->Dump()) == "");
    CHECK_IN_SCOPE(server, *a);
    RequireSynced(*office);
    CHECK_IN_SCOPE(server, *office);
    CHECK(office->Dump() == a->Dump());
  }
};

// A copy of a server's store file, taken while it is stopped (the tablets' connections closed
// first), that Restore() puts back in place of the store, as IT would after a disk failure.
class ServerBackup {
 public:
  ServerBackup(ServerFixture& server, std::vector<Tablet*> tablets)
      : server_(server), tablets_(std::move(tablets)), path_(server.dir().File("backup.db")) {
    Restart([&](const std::string& store) { std::filesystem::copy_file(store, path_); });
  }

  void Restore() {
    Restart([&](const std::string& store) {
      for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(store + suffix);
      std::filesystem::copy_file(path_, store);
    });
  }

 private:
  void Restart(const std::function<void(const std::string&)>& offline) {
    for (Tablet* tablet : tablets_) server_.Reconnect(*tablet);
    server_.Restart(offline);
  }

  ServerFixture& server_;
  std::vector<Tablet*> tablets_;
  std::string path_;
};

}  // namespace

TEST_CASE("A reply lost after the server applied the request is retried and applies nothing twice",
          "[sync][server][resume]") {
  const int lost = GENERATE(range(1, 11));  // a sync of 4 pushes and 6 pulls
  INFO("the reply to request " << lost << " is lost");
  LossyRun run;

  run.Run([&](int n, const HttpRequest&) { return n == lost; });

  REQUIRE(run.requests > lost);
  run.CheckConverged();
}

TEST_CASE("Replies lost at random points of a sync converge with nothing applied twice",
          "[sync][server][resume]") {
  const uint64_t seed = GENERATE(range(1, 9));
  INFO("seed " << seed << " (replay: the same seed loses the same replies)");
  std::mt19937_64 random(seed);
  LossyRun run;

  run.Run([&](int, const HttpRequest&) { return random() % 3 == 0; });

  run.CheckConverged();
}

TEST_CASE(
    "A server process killed mid-pull and restarted on its store resumes with no duplicate "
    "and no gap",
    "[sync][server][resume]") {
  const uint64_t seed = GENERATE(1, 2);
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir dir;
  TestStore test_store(dir);
  const std::string store_path = test_store.spec();
  TestEnv env(kTabletStartMs, 7);
  std::string office_token = NewDeviceToken(&env), reader_token = NewDeviceToken(&env);
  Tablet office(dir, "tab-office", kTabletStartMs, 11);
  {
    // 120 participants' files, pushed before the binary serves them: about 4,000 entries.
    Result<std::unique_ptr<ServerStore>> store = OpenServerStore(store_path, {&env});
    SYNC_REQUIRE_OK(store);
    SYNC_REQUIRE_OK((*store)->Enroll({"tab-office", "office", {kNorth}}, HashToken(office_token)));
    SYNC_REQUIRE_OK(
        (*store)->Enroll({"tab-reader", "adviser-r", {kNorth}}, HashToken(reader_token)));
    for (int i = 0; i < 120; ++i) AddParticipant(office.store(), "adviser-o", kNorth, "w-1");
    PushInto(**store, office_token, office);
  }
  Tablet reader(dir, "tab-reader", kTabletStartMs, 13);
  Ledger ledger;
  auto server =
      std::make_unique<ServerProcess>(CARNET_SERVER_BINARY, store_path, dir.File("server.log"));

  // Four times, the server dies at a random request of the sync, before the request reaches it
  // or after it answered (the answer lost with it); a new process then serves the same file.
  for (int kill = 0; kill <= 4; ++kill) {
    const int at = kill < 4 ? 1 + static_cast<int>(random() % 15) : 0;
    const bool after_reply = random() % 2 == 1;
    INFO("kill " << kill << " at request " << at << (after_reply ? " after" : " before")
                 << " the reply");
    auto hook = [&](int n, const HttpRequest& request, Transport& inner) -> Result<HttpReply> {
      if (n == at && !after_reply) server->Kill();
      Result<HttpReply> reply = inner.Post(request);
      bool lost = n == at && after_reply;
      if (reply.ok()) ledger.Read(request, *reply, lost);
      if (!lost) return reply;
      server->Kill();
      return LoseReply("server killed before its reply arrived");
    };
    SyncOptions options = ServerSyncOptions(reader_token);
    options.pull_batch = 50;
    options.max_attempts = 2;
    SyncClient client(&reader.store(), &reader.env(),
                      std::make_unique<HookedTransport>(CurlTo(server->url()), hook), options);
    Status status = client.SyncNow();
    if (at == 0) {
      SYNC_REQUIRE_OK(status);
      break;
    }
    REQUIRE(status.code() == StatusCode::kUnavailable);
    server =
        std::make_unique<ServerProcess>(CARNET_SERVER_BINARY, store_path, dir.File("server.log"));
  }
  server->Stop();

  Result<std::unique_ptr<ServerStore>> store = OpenServerStore(store_path, {&env});
  SYNC_REQUIRE_OK(store);
  Result<std::string> scope = (*store)->ScopeDump("tab-reader");
  SYNC_REQUIRE_OK(scope);
  CHECK(ledger.Faults(reader.Dump()) == "");
  CHECK(DumpDiff(reader.Dump(), *scope) == "");
  CHECK(reader.Dump() == office.Dump());
}

TEST_CASE("A pull cursor stays good across restarts of the server and other openings of its store",
          "[sync][server][resume]") {
  ServerFixture server;
  auto office = server.Join("tab-office", "office", {kNorth});
  auto a = server.Join("tab-a", "adviser-a", {kNorth});
  AddParticipant(office->store(), "adviser-a", kNorth, "w-1");
  // Before anyone pulls, the store is opened beside the server (carnet-server devices, say).
  {
    Result<std::unique_ptr<ServerStore>> beside =
        OpenServerStore(server.store_spec(), {&server.env()});
    SYNC_REQUIRE_OK(beside);
  }
  RequireSynced(*office);
  RequireSynced(*a);
  server.Reconnect(*a);
  server.Reconnect(*office);
  server.Restart();

  uint64_t pulled = 0;
  a->client().OnProgress([&](const SyncProgress& progress) { pulled = progress.pulled; });
  RequireSynced(*a);

  // Up to date: nothing to pull again.
  CHECK(pulled == 0);
  CHECK_IN_SCOPE(server, *a);
}

TEST_CASE(
    "After the server is restored from a backup, a tablet ahead of it pulls from the start and "
    "pushes on",
    "[sync][server][resume][sqlite]") {
  ServerFixture server;
  auto office = server.Join("tab-office", "office", {kNorth, kSouth});
  auto a = server.Join("tab-a", "adviser-a", {kNorth});
  RequireSynced(*office);
  RequireSynced(*a);
  ServerBackup backup(server, {a.get(), office.get()});

  // After the backup, the office records participants in the south, outside tablet a's scope:
  // a's next pull moves its cursor past them, well past what one participant's file numbers.
  for (int i = 0; i < 6; ++i) AddParticipant(office->store(), "adviser-s", kSouth, "w-2");
  RequireSynced(*office);
  RequireSynced(*a);

  // The backup comes back: the server's sequence is behind a's cursor again. The office records
  // a participant for adviser a: its operations continue the office's sequence past what the
  // restored server holds, and its entries take numbers a's cursor has already passed.
  backup.Restore();
  ParticipantFile for_a = AddParticipant(office->store(), "adviser-a", kNorth, "w-1");
  Status office_status = Sync(*office);
  Status a_status = Sync(*a);

  INFO("office: " << office_status.ToString() << "; tablet a: " << a_status.ToString());
  CHECK(office_status.ok());
  CHECK(a_status.ok());
  CHECK(office->Pending() == 0);
  for (const auto& [collection, id] : for_a.Records()) CHECK(Holds(*a, collection, id));
  CHECK_IN_SCOPE(server, *a);
}

// A tablet's store file comes back from a backup (a repaired tablet, the adviser's own copy): it
// numbers its operations again from where the copy stood, numbers the server has acknowledged to
// this store already. Its new work must not pass for those (PROTOCOL.md, Push): the server says
// the incarnation is stale, and the tablet pushes under a new one.
TEST_CASE("A tablet store restored from its backup pushes its new work under a new incarnation",
          "[sync][server][resume]") {
  ServerFixture server;
  auto a = server.Join("tab-a", "adviser-a", {kNorth});
  ParticipantFile file = AddParticipant(a->store(), "adviser-a", kNorth, "w-1");
  RequireSynced(*a);
  TempDir backup_dir;
  {
    Result<std::unique_ptr<sqlite::Database>> live =
        sqlite::Database::Open(server.dir().File("tab-a.db"), 1000);
    SYNC_REQUIRE_OK(live);
    SYNC_REQUIRE_OK((*live)->Exec("VACUUM INTO '" + backup_dir.File("tab-a.db") + "'"));
  }
  // After the copy, the adviser works on and syncs: the server acknowledges these numbers.
  for (const char* phone : {"0600000001", "0600000002", "0600000003"}) {
    SYNC_REQUIRE_OK(a->store().Set("participants", file.participant, "phone", phone));
  }
  SYNC_REQUIRE_OK(a->store().Append("interviews", file.interview, "notes", "before the loss"));
  RequireSynced(*a);
  a.reset();

  // The copy comes back, on a clock that went on; the adviser types again.
  Tablet restored(backup_dir, "tab-a", server.env().NowMillis() + 60'000, 7);
  restored.Connect(server.url(), ServerSyncOptions(server.Token("tab-a")));
  SYNC_REQUIRE_OK(restored->Set("participants", file.participant, "phone", "0611111111"));
  SYNC_REQUIRE_OK(restored->Append("interviews", file.interview, "notes", "after the restore"));
  RequireSynced(restored);
  RequireSynced(restored);

  CHECK(restored.Pending() == 0);
  Result<Record> participant = restored->Get("participants", file.participant);
  SYNC_REQUIRE_OK(participant);
  // The restored copy wrote the phone without having seen the numbers typed after the copy: a
  // concurrent write, which the later stamp wins and the other value kept for review.
  CHECK(participant->fields["phone"].value == "0611111111");
  CHECK(participant->fields["phone"].in_conflict);
  std::vector<std::string> notes = NotesOf(restored, file.interview);
  CHECK(std::count(notes.begin(), notes.end(), "before the loss") == 1);
  CHECK(std::count(notes.begin(), notes.end(), "after the restore") == 1);
  CHECK_IN_SCOPE(server, restored);
}

// Fails today: the restored server lacks what the tablets pushed after the backup, and they no
// longer hold it as operations (acknowledged, gone from the outbox), only as entry states. Sending
// those again needs the local store to list its entries (a core API: Store has none yet) and a
// push of entry states; until then PROTOCOL.md, Restoring the server, says what IT must do.
TEST_CASE("After the server is restored from a backup, tablets send and pull again what it lost",
          "[sync][server][resume][sqlite][!mayfail]") {
  ServerFixture server;
  auto office = server.Join("tab-office", "office", {kNorth});
  auto a = server.Join("tab-a", "adviser-a", {kNorth});
  AddParticipant(a->store(), "adviser-a", kNorth, "w-1");
  RequireSynced(*a);
  RequireSynced(*office);
  ServerBackup backup(server, {a.get(), office.get()});

  // After the nightly backup, both tablets go on working and syncing.
  ParticipantFile after_backup = AddParticipant(a->store(), "adviser-a", kNorth, "w-1");
  ParticipantFile office_after = AddParticipant(office->store(), "adviser-a", kNorth, "w-1");
  RequireSynced(*a);
  RequireSynced(*office);
  RequireSynced(*a);

  // The disk dies; IT restores last night's backup.
  backup.Restore();
  SYNC_REQUIRE_OK(a->store().Append("interviews", after_backup.interview, "notes", "next day"));
  Status a_status = Sync(*a);
  Status office_status = Sync(*office);

  INFO("tablet a: " << a_status.ToString() << "; office: " << office_status.ToString());
  CHECK(a_status.ok());
  CHECK(office_status.ok());
  // What the backup missed is on the server again, and every tablet holds its scope.
  CHECK(server.ScopeDump("").find(after_backup.participant) != std::string::npos);
  CHECK(server.ScopeDump("").find(office_after.participant) != std::string::npos);
  CHECK_IN_SCOPE(server, *a);
  CHECK_IN_SCOPE(server, *office);
}
