// Retention (sync/PROTOCOL.md, Retention): a participant with nothing recorded about them for
// longer than the server's policy leaves the tablets, one with a recent interview stays; the
// central records keep both. Applied by the server's maintenance (in process, its clock moved
// two years on; and carnet-server serve with the real clock) and by `carnet-server retention`.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/sync/erasure_helpers.h"
#include "tests/sync/process_tls.h"
#include "tests/sync/server_process.h"
#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

constexpr int64_t kDayMs = 24 * 60 * 60 * 1000;

int64_t RealNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool HoldsFile(Tablet& tablet, const ParticipantFile& file) {
  for (const auto& [collection, id] : file.Records()) {
    if (!Holds(tablet, collection, id)) return false;
  }
  return true;
}

bool HoldsNothingOf(Tablet& tablet, const ParticipantFile& file) {
  for (const auto& [collection, id] : file.Records()) {
    if (Holds(tablet, collection, id)) return false;
  }
  return true;
}

void RecordInterview(Tablet& tablet, const std::string& participant) {
  const std::string interview = tablet->NewId();
  SYNC_REQUIRE_OK(tablet->Put("interviews", interview,
                              {{"participant", participant},
                               {"adviser", "adviser-a"},
                               {"date_time", "2028-01-10T10:00:00Z"},
                               {"place", "office"}}));
  SYNC_REQUIRE_OK(tablet->Append("interviews", interview, "notes", "point d'etape"));
}

// Tablets of one département on carnet-server, the process, with the real clock: a and c
// (adviser-a, north), b (adviser-b, north). `old` was last seen three years ago, on a, before it
// first synced; `recent` has an interview of today.
struct ProcessWorld {
  explicit ProcessWorld(std::vector<std::string> serve_options = {})
      : process(CARNET_SERVER_BINARY, store.spec(), dir.File("server.log"), tls.server(),
                std::move(serve_options)) {
    a.Connect(process.url(), ServerSyncOptions(token_a), 0, tls.ca_file());
    b.Connect(process.url(), ServerSyncOptions(token_b), 0, tls.ca_file());
    c.Connect(process.url(), ServerSyncOptions(token_c), 0, tls.ca_file());
    const std::string workshop = AddWorkshop(a.store(), kNorth);
    old = AddParticipant(a.store(), "adviser-a", kNorth, workshop);
    a.env().SetNow(RealNowMs());
    recent = AddParticipant(a.store(), "adviser-a", kNorth, workshop);
  }

  CommandResult Command(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--store", store.spec()});
    return RunServerCommand(dir, args);
  }
  std::string ScopeDump(const std::string& device) {
    Result<std::unique_ptr<ServerStore>> opened = OpenServerStore(store.spec(), {&env});
    SYNC_REQUIRE_OK(opened);
    Result<std::string> dump = (*opened)->ScopeDump(device);
    SYNC_REQUIRE_OK(dump);
    return *dump;
  }

  TempDir dir;
  TestStore store{dir};
  TestEnv env{kTabletStartMs, 17};
  std::string token_a = EnrollWithCommand(dir, store.spec(), "tab-a", "adviser-a", kNorth);
  std::string token_b = EnrollWithCommand(dir, store.spec(), "tab-b", "adviser-b", kNorth);
  std::string token_c = EnrollWithCommand(dir, store.spec(), "tab-c", "adviser-a", kNorth);
  ProcessTls tls{dir};
  ServerProcess process;
  Tablet a{dir, "tab-a", RealNowMs() - 3 * 365 * kDayMs, 3};
  Tablet b{dir, "tab-b", RealNowMs(), 5};
  Tablet c{dir, "tab-c", RealNowMs(), 7};
  ParticipantFile old, recent;
};

}  // namespace

TEST_CASE("The server's maintenance retires a participant without contact for two years from "
          "the tablets, and keeps one with a recent interview",
          "[server][retention]") {
  ServerFixture server;
  server.tune_server = [](ServerOptions* options) {
    options->retention = RetentionPolicy{730, RetentionAction::kForget};
  };
  server.Restart();
  auto a = server.Join("tab-a", "adviser-a", {kNorth});
  auto b = server.Join("tab-b", "adviser-b", {kNorth});
  const std::string workshop = AddWorkshop(a->store(), kNorth);
  ParticipantFile old = AddParticipant(a->store(), "adviser-a", kNorth, workshop);
  ParticipantFile recent = AddParticipant(a->store(), "adviser-a", kNorth, workshop);
  RequireSynced(*a);
  RequireSynced(*b);
  REQUIRE(HoldsFile(*b, old));

  // 700 days on: nobody has left yet.
  for (TestEnv* env : {&server.env(), &a->env(), &b->env()}) env->Advance(700 * kDayMs);
  RecordInterview(*a, recent.participant);
  RequireSynced(*a);
  RequireSynced(*a);
  CHECK(HoldsFile(*a, old));

  // 100 days more: `old` has had nothing for 800 days, `recent` for 100.
  for (TestEnv* env : {&server.env(), &a->env(), &b->env()}) env->Advance(100 * kDayMs);
  RequireSynced(*a);  // its pull sets the maintenance off
  RequireSynced(*a);  // and the next one carries the forget
  RequireSynced(*b);
  std::vector<std::string> logs = server.env().logs();
  std::erase_if(logs, [](const std::string& line) { return !HasBytes(line, "retention"); });
  INFO(::Catch::Detail::stringify(logs));
  for (Tablet* t : {a.get(), b.get()}) {
    CHECK(HoldsNothingOf(*t, old));
    CHECK(HoldsFile(*t, recent));
    CHECK_IN_SCOPE(server, *t);
  }
  // The central records keep them.
  CHECK(HasBytes(server.ScopeDump(""), old.interview));
  CHECK(std::any_of(logs.begin(), logs.end(), [](const std::string& line) {
    return HasBytes(line, "retention (730 days): 1 participants left the tablets");
  }));

  // A tablet joining later never receives them.
  auto c = server.Join("tab-c", "adviser-a", {kNorth});
  RequireSynced(*c);
  CHECK(HoldsNothingOf(*c, old));
  CHECK(HoldsFile(*c, recent));
}

TEST_CASE("carnet-server retention says who would leave, retires them, and brings back one a "
          "tablet recorded something about since; the limit is the policy's",
          "[server][retention]") {
  ProcessWorld w;  // its serve applies no policy: only the command does
  RequireSynced(w.a);
  RequireSynced(w.c);
  REQUIRE(HoldsFile(w.c, w.old));

  CommandResult lenient = w.Command({"retention", "--days", "5000", "--dry-run"});
  INFO(lenient.out);
  CHECK(lenient.exit_code == 0);
  CHECK(HasBytes(lenient.out, "0 participants would retire"));
  CommandResult dry = w.Command({"retention", "--dry-run"});
  INFO(dry.out);
  CHECK(HasBytes(dry.out, "would retire " + w.old.participant + " (last contact "));
  CHECK(!HasBytes(dry.out, w.recent.participant));
  RequireSynced(w.a);
  CHECK(HoldsFile(w.a, w.old));  // a dry run changes nothing

  CommandResult retired = w.Command({"retention", "--days", "730"});
  INFO(retired.out);
  CHECK(retired.exit_code == 0);
  CHECK(HasBytes(retired.out, "retired " + w.old.participant));
  CHECK(HasBytes(retired.out, "1 participants retired after 730 days without contact"));
  RequireSynced(w.a);
  RequireSynced(w.b);
  for (Tablet* t : {&w.a, &w.b}) {
    CHECK(HoldsNothingOf(*t, w.old));
    CHECK(HoldsFile(*t, w.recent));
    CHECK(DumpDiff(t->Dump(), w.ScopeDump(t->store().device_id())) == "");
  }
  CHECK(HasBytes(w.ScopeDump(""), w.old.interview));
  CHECK(HasBytes(w.Command({"retention"}).out, "0 participants retired"));

  // c was offline, still holds them, and sees them again: its interview is a contact.
  RecordInterview(w.c, w.old.participant);
  RequireSynced(w.c);  // pushed, then the forget that waited for it
  CHECK(HoldsNothingOf(w.c, w.old));
  CommandResult back = w.Command({"retention"});
  INFO(back.out);
  CHECK(HasBytes(back.out, "brought back " + w.old.participant));
  RequireSynced(w.a);
  RequireSynced(w.c);
  CHECK(HoldsFile(w.a, w.old));
  CHECK(HoldsFile(w.c, w.old));
  CHECK(DumpDiff(w.a.Dump(), w.ScopeDump("tab-a")) == "");

  CHECK(w.Command({"retention", "--days", "0"}).exit_code == 2);
  CHECK(w.Command({"retention", "--action", "shred"}).exit_code == 2);
}

TEST_CASE("carnet-server serve applies its retention policy on its own, by default two years, "
          "and erases when the policy says so",
          "[server][retention]") {
  SECTION("by default, the participant leaves the tablets") {
    ProcessWorld w({"--retention-days", "730"});
    RequireSynced(w.a);  // its pull sets the maintenance off
    RequireSynced(w.a);
    CHECK(HoldsNothingOf(w.a, w.old));
    CHECK(HoldsFile(w.a, w.recent));
    CHECK(HasBytes(w.ScopeDump(""), w.old.interview));
  }
  SECTION("a longer limit keeps them") {
    ProcessWorld w({"--retention-days", "2000"});
    RequireSynced(w.a);
    RequireSynced(w.a);
    CHECK(HoldsFile(w.a, w.old));
  }
  SECTION("erase: gone from the server too, on the erasure list") {
    ProcessWorld w({"--retention-days", "730", "--retention-action", "erase"});
    RequireSynced(w.a);
    RequireSynced(w.a);
    CHECK(HoldsNothingOf(w.a, w.old));
    CHECK(HoldsFile(w.a, w.recent));
    CHECK(!HasBytes(w.ScopeDump(""), w.old.participant));
    CommandResult status = w.Command({"erasure-status"});
    INFO(status.out);
    CHECK(HasBytes(status.out, w.old.participant + " erased "));
    CHECK(HasBytes(status.out, "by retention policy (no contact for 730 days)"));
    CHECK(HasBytes(status.out, "  tab-a confirmed "));
  }
}
