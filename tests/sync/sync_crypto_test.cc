// Encryption at rest and the offline lease through a real sync (core/ENCRYPTION.md): values
// travel in clear to and from carnet-server, which keeps them in clear, and are sealed on the
// tablet that receives them; a successful sync renews the lease, a failed one does not.
#include <filesystem>
#include <fstream>
#include <iterator>

#include <catch2/catch.hpp>

#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

constexpr int64_t kDayMs = 86'400'000;
const char* const kNote = "Il dort dans sa voiture depuis trois semaines";
const char* const kHealthNote = "Hospitalisé deux semaines pour une décompensation";
const char* const kBarrier = "childcare";
const char* const kAnswer = "declined";

// The sentences found in the files of the store at `db_path` (the file, its WAL, a journal).
std::string Leaks(const std::string& db_path, const std::vector<std::string>& sentences) {
  const std::filesystem::path db(db_path);
  std::string leaks;
  for (const auto& file : std::filesystem::directory_iterator(db.parent_path())) {
    const std::string name = file.path().filename().string();
    if (name.rfind(db.filename().string(), 0) != 0) continue;
    std::ifstream in(file.path(), std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    for (const std::string& s : sentences) {
      if (bytes.find(s) != std::string::npos) leaks += name + ": " + s + "\n";
    }
  }
  return leaks;
}

bool LeaseExpired(const Status& status) {
  return status.code() == StatusCode::kLeaseExpired &&
         status.message().find("offline lease expired: sync to continue") != std::string::npos;
}

}  // namespace

TEST_CASE("Notes and health data pulled from the server are sealed on the tablet that receives them",
          "[sync][crypto]") {
  ServerFixture server;
  auto a = server.Join("tab-a", "adviser-a", {kNorth});
  auto b = server.Join("tab-b", "adviser-a", {kNorth});
  ParticipantFile f = AddParticipant(a->store(), "adviser-a", kNorth, AddWorkshop(a->store(), kNorth));
  SYNC_REQUIRE_OK((*a)->Append("interviews", f.interview, "notes", kNote));
  SYNC_REQUIRE_OK((*a)->Append("interviews", f.interview, "health_notes", kHealthNote));
  SYNC_REQUIRE_OK((*a)->Add("participants", f.participant, "barriers", kBarrier));
  SYNC_REQUIRE_OK((*a)->Set("entry_situations", f.entry_situation, "disability", kAnswer));
  RequireSynced(*a);
  RequireSynced(*b);

  const std::vector<std::string> sentences = {kNote, kHealthNote, kBarrier, kAnswer};
  Result<Record> interview = (*b)->Get("interviews", f.interview);
  SYNC_REQUIRE_OK(interview);
  REQUIRE(interview->fields["health_notes"].entries.size() == 1);
  CHECK(interview->fields["health_notes"].entries[0].text == kHealthNote);
  CHECK(NotesOf(*b, f.interview) == std::vector<std::string>{"first interview", kNote});
  Result<Record> participant = (*b)->Get("participants", f.participant);
  SYNC_REQUIRE_OK(participant);
  CHECK(participant->fields["barriers"].elements ==
        std::vector<std::string>{kBarrier, "mobility"});
  Result<Record> situation = (*b)->Get("entry_situations", f.entry_situation);
  SYNC_REQUIRE_OK(situation);
  CHECK(situation->fields["disability"].value == kAnswer);
  CHECK_IN_SCOPE(server, *b);

  const std::string b_path = server.dir().File("tab-b.db");
  CHECK(Leaks(b_path, sentences) == "");
  CHECK(Leaks(server.dir().File("tab-a.db"), sentences) == "");
  if (!TestingPostgres()) {
    // The central records keep them in clear: the département protects them there.
    CHECK(Leaks(server.dir().File("server.db"), {kHealthNote}) != "");
  }
}

TEST_CASE("A tablet past its offline lease goes dark until a sync with the server renews it",
          "[sync][crypto][lease]") {
  ServerFixture server;
  auto a = server.Join("tab-a", "adviser-a", {kNorth});
  const std::string token = server.Enroll("tab-lease", "adviser-a", {kNorth});
  TestEnv env(server.env().NowMillis(), 5);
  StoreOptions options;
  options.path = server.dir().File("tab-lease.db");
  options.device_id = "tab-lease";
  options.env = &env;
  options.key_store = &ProcessKeyStore();
  options.lease_days = 2;
  Result<std::unique_ptr<Store>> opened = Store::Open(options);
  SYNC_REQUIRE_OK(opened);
  std::unique_ptr<Store> store = std::move(opened.value());

  ParticipantFile f = AddParticipant(*store, "adviser-a", kNorth, AddWorkshop(*store, kNorth));
  {
    SyncClient client(store.get(), &env, CurlTo(server.url()), ServerSyncOptions(token));
    SYNC_REQUIRE_OK(client.SyncNow());
  }
  // Written, not pushed; then three days without a sync, everyone's clock moving on.
  SYNC_REQUIRE_OK(store->Append("interviews", f.interview, "health_notes", kHealthNote));
  for (TestEnv* clock : {&env, &server.env(), &a->env()}) clock->Advance(3 * kDayMs);
  RequireSynced(*a);
  SYNC_REQUIRE_OK((*a)->Append("interviews", f.interview, "notes", kNote));
  RequireSynced(*a);

  CHECK(LeaseExpired(store->Get("interviews", f.interview).status()));
  CHECK(LeaseExpired(store->List("participants").status()));
  CHECK(LeaseExpired(store->Append("interviews", f.interview, "notes", "refused").status()));

  // A sync the server refuses (a revoked or wrong token) renews nothing.
  {
    SyncClient refused(store.get(), &env, CurlTo(server.url()), ServerSyncOptions("not-a-token"));
    CHECK(refused.SyncNow().code() == StatusCode::kUnauthenticated);
  }
  CHECK(LeaseExpired(store->Get("interviews", f.interview).status()));

  // A successful one pushes what was waiting, pulls, and renews the lease.
  SyncClient client(store.get(), &env, CurlTo(server.url()), ServerSyncOptions(token));
  SYNC_REQUIRE_OK(client.SyncNow());
  Result<Record> interview = store->Get("interviews", f.interview);
  SYNC_REQUIRE_OK(interview);
  CHECK(interview->fields["health_notes"].entries.size() == 1);
  std::vector<std::string> notes;
  for (const LogEntry& e : interview->fields["notes"].entries) notes.push_back(e.text);
  CHECK(notes == std::vector<std::string>{"first interview", kNote});
  CHECK(store->LeaseExpiresAtMs() == env.NowMillis() + client.status().clock_offset_ms + 2 * kDayMs);
  RequireSynced(*a);
  Result<Record> on_a = (*a)->Get("interviews", f.interview);
  SYNC_REQUIRE_OK(on_a);
  CHECK(on_a->fields["health_notes"].entries.size() == 1);
}
