// Which tablet receives what: a real server and real tablets, the scope of a device (its
// adviser's caseload and its territories), and participants handed from one adviser to another.
#include <catch2/catch.hpp>

#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

// Three territories, an office tablet covering them all, and two advisers' tablets:
// a (north) and b (south). The office records four participants:
//   p1  referent a, north   -> tablet a (both ways)
//   p2  referent a, south   -> tablet a (referent) and tablet b (territory)
//   p3  referent b, east    -> tablet b (referent)
//   p4  referent c, east    -> neither
struct Department {
  ServerFixture server;
  std::unique_ptr<Tablet> office = server.Join("tab-office", "office", {kNorth, kSouth, kEast});
  std::unique_ptr<Tablet> a = server.Join("tab-a", "adviser-a", {kNorth});
  std::unique_ptr<Tablet> b = server.Join("tab-b", "adviser-b", {kSouth});
  std::string north_workshop = AddWorkshop(office->store(), kNorth);
  std::string south_workshop = AddWorkshop(office->store(), kSouth);
  std::string east_workshop = AddWorkshop(office->store(), kEast);
  ParticipantFile p1 = AddParticipant(office->store(), "adviser-a", kNorth, north_workshop);
  ParticipantFile p2 = AddParticipant(office->store(), "adviser-a", kSouth, south_workshop);
  ParticipantFile p3 = AddParticipant(office->store(), "adviser-b", kEast, east_workshop);
  ParticipantFile p4 = AddParticipant(office->store(), "adviser-c", kEast, north_workshop);

  void SyncAll() {
    RequireSynced(*office);
    RequireSynced(*a);
    RequireSynced(*b);
  }

  // The office hands a participant over to adviser b, in the south.
  void HandToB(const std::string& participant) {
    SYNC_REQUIRE_OK(office->store().Put("participants", participant,
                                        {{"referent", "adviser-b"}, {"territory", kSouth}}));
  }

  void CheckAdvisersInScope() {
    CHECK_IN_SCOPE(server, *a);
    CHECK_IN_SCOPE(server, *b);
  }
};

// Whether the tablet holds the participant's whole file; fails when it holds only part of it.
bool HoldsFile(Tablet& tablet, const ParticipantFile& file) {
  size_t count = 0;
  for (const auto& [collection, id] : file.Records()) count += Holds(tablet, collection, id);
  INFO(file.participant << " is held in part: " << count << " of " << file.Records().size());
  REQUIRE((count == 0 || count == file.Records().size()));
  return count != 0;
}

// Which of the files a tablet holds, e.g. "p1 p2" (named by their place in the list, from 1).
std::string FilesHeld(Tablet& tablet, const std::vector<const ParticipantFile*>& files) {
  std::string held;
  for (size_t i = 0; i < files.size(); ++i) {
    if (HoldsFile(tablet, *files[i])) held += (held.empty() ? "p" : " p") + std::to_string(i + 1);
  }
  return held;
}

}  // namespace

TEST_CASE(
    "A device pulls the participants of its adviser or its territories with all their records",
    "[sync][server][scope]") {
  Department d;
  d.SyncAll();

  std::vector<const ParticipantFile*> files = {&d.p1, &d.p2, &d.p3, &d.p4};
  CHECK(FilesHeld(*d.a, files) == "p1 p2");
  CHECK(FilesHeld(*d.b, files) == "p2 p3");
  CHECK(FilesHeld(*d.office, files) == "p1 p2 p3 p4");
}

TEST_CASE("A device pulls the workshops of its territories only", "[sync][server][scope]") {
  Department d;
  d.SyncAll();

  CHECK(Holds(*d.a, "workshops", d.north_workshop));
  CHECK_FALSE(Holds(*d.a, "workshops", d.south_workshop));
  CHECK_FALSE(Holds(*d.a, "workshops", d.east_workshop));
  CHECK(Holds(*d.b, "workshops", d.south_workshop));
  CHECK_FALSE(Holds(*d.b, "workshops", d.north_workshop));
  CHECK_FALSE(Holds(*d.b, "workshops", d.east_workshop));
}

TEST_CASE("After a sync a tablet holds exactly the server's view of its scope",
          "[sync][server][scope]") {
  Department d;
  d.SyncAll();
  // Edits after the first round travel the same way.
  SYNC_REQUIRE_OK(d.a->store().Append("interviews", d.p2.interview, "notes", "second interview"));
  SYNC_REQUIRE_OK(d.b->store().Set("participants", d.p2.participant, "phase", "job_search"));
  d.SyncAll();
  d.SyncAll();  // the office and a pull what came after their first turn

  for (Tablet* tablet : {d.a.get(), d.b.get(), d.office.get()}) {
    INFO(tablet->store().device_id());
    CHECK_FALSE(tablet->Dump().empty());
    CHECK_IN_SCOPE(d.server, *tablet);
  }
  CHECK(NotesOf(*d.b, d.p2.interview) ==
        std::vector<std::string>{"first interview", "second interview"});
}

TEST_CASE(
    "A participant handed to another adviser reaches their tablet whole and leaves the former one",
    "[sync][server][scope]") {
  Department d;
  d.SyncAll();
  REQUIRE_FALSE(HoldsFile(*d.b, d.p1));

  d.HandToB(d.p1.participant);
  d.SyncAll();

  CHECK(HoldsFile(*d.b, d.p1));
  CHECK_FALSE(HoldsFile(*d.a, d.p1));
  d.CheckAdvisersInScope();
}

TEST_CASE("A participant moved to another territory follows the territory, not the former one",
          "[sync][server][scope]") {
  Department d;
  d.SyncAll();

  // p2 stays with adviser a (referent) but leaves the south for the east: b loses it.
  SYNC_REQUIRE_OK(d.office->store().Set("participants", d.p2.participant, "territory", kEast));
  d.SyncAll();

  CHECK(HoldsFile(*d.a, d.p2));
  CHECK_FALSE(HoldsFile(*d.b, d.p2));
  d.CheckAdvisersInScope();
}

TEST_CASE("An edit made offline on the former referent's tablet is pushed before the forget",
          "[sync][server][scope]") {
  Department d;
  d.SyncAll();

  // Adviser a, offline, writes a note; meanwhile the office hands p1 over to adviser b.
  SYNC_REQUIRE_OK(d.a->store().Append("interviews", d.p1.interview, "notes", "written offline"));
  d.HandToB(d.p1.participant);
  RequireSynced(*d.office);
  RequireSynced(*d.a);
  RequireSynced(*d.b);

  CHECK(d.a->Pending() == 0);
  CHECK_FALSE(HoldsFile(*d.a, d.p1));
  CHECK(NotesOf(*d.b, d.p1.interview) ==
        std::vector<std::string>{"first interview", "written offline"});
  d.CheckAdvisersInScope();
}

TEST_CASE("An edit made while the forget is on its way is pushed, then the forget applies",
          "[sync][server][scope]") {
  Department d;
  d.SyncAll();
  d.HandToB(d.p1.participant);
  RequireSynced(*d.office);

  // The adviser types a note after the push and before the pull that brings the forget: the
  // forget is refused by the store, the client pushes the note and pulls again.
  Store* store = &d.a->store();
  std::string interview = d.p1.interview;
  bool typed = false;
  std::string paths;
  auto hook = [&](int, const HttpRequest& request, Transport& inner) -> Result<HttpReply> {
    paths += request.path + " ";
    Result<HttpReply> reply = inner.Post(request);
    if (request.path == "/v1/pull" && !typed) {
      typed = true;
      SYNC_REQUIRE_OK(store->Append("interviews", interview, "notes", "typed during the sync"));
    }
    return reply;
  };
  SyncClient client(store, &d.a->env(),
                    std::make_unique<HookedTransport>(CurlTo(d.server.url()), hook),
                    ServerSyncOptions(d.server.Token("tab-a")));
  SYNC_REQUIRE_OK(client.SyncNow());
  RequireSynced(*d.b);

  CHECK(typed);
  // Nothing to push at first; the refused forget makes the client push the note, then pull again.
  CHECK(paths == "/v1/pull /v1/push /v1/pull ");
  CHECK(d.a->Pending() == 0);
  CHECK_FALSE(HoldsFile(*d.a, d.p1));
  CHECK(NotesOf(*d.b, d.p1.interview) ==
        std::vector<std::string>{"first interview", "typed during the sync"});
}

TEST_CASE("A participant created and handed over before the first sync reaches the new referent",
          "[sync][server][scope]") {
  Department d;
  d.SyncAll();

  // Adviser a records a participant in the field, then hands them over to adviser b, all
  // before the tablet sees a network: one push holds both.
  ParticipantFile p5 = AddParticipant(d.a->store(), "adviser-a", kNorth, d.north_workshop);
  SYNC_REQUIRE_OK(d.a->store().Put("participants", p5.participant,
                                   {{"referent", "adviser-b"}, {"territory", kSouth}}));
  Status pushed = Sync(*d.a);
  INFO(pushed.ToString());
  CHECK(pushed.ok());
  RequireSynced(*d.b);

  CHECK(d.a->Pending() == 0);
  CHECK(HoldsFile(*d.b, p5));
  CHECK_FALSE(HoldsFile(*d.a, p5));
}

TEST_CASE("A participant created in one transaction is accepted whatever the push batch size",
          "[sync][server][scope]") {
  ServerFixture server;
  auto a = server.Join("tab-a", "adviser-a", {kNorth},
                       [](SyncOptions* options) { options->push_batch = 2; });
  auto b = server.Join("tab-b", "adviser-b", {kNorth});

  // The participant's Put writes six fields, names first: the first batch of two holds only
  // the names, the referent and territory come in the next one.
  ParticipantFile p = AddParticipant(a->store(), "adviser-a", kNorth, "workshop-1");
  Status pushed = Sync(*a);
  INFO(pushed.ToString());
  CHECK(pushed.ok());
  CHECK(a->Pending() == 0);
  RequireSynced(*b);
  CHECK(Holds(*b, "participants", p.participant));
}

TEST_CASE("A record whose participant is in conflict stays where its winning participant is",
          "[sync][server][scope]") {
  Department d;
  ParticipantFile p5 = AddParticipant(d.office->store(), "adviser-a", kNorth, d.north_workshop);
  d.SyncAll();
  // Concurrently, the office confirms p1 as the interview's participant while adviser a moves the
  // interview to p5, later: both writes stay heads, p5's wins, the interview is in a's scope.
  SYNC_REQUIRE_OK(
      d.office->store().Set("interviews", d.p1.interview, "participant", d.p1.participant));
  d.a->env().Advance(1000);
  SYNC_REQUIRE_OK(d.a->store().Set("interviews", d.p1.interview, "participant", p5.participant));
  d.SyncAll();
  d.SyncAll();
  Result<std::vector<Conflict>> conflicts = d.a->store().Conflicts();
  SYNC_REQUIRE_OK(conflicts);
  REQUIRE(conflicts->size() == 1);

  // p1 leaves adviser a: a forgets p1's file, but not the interview that now belongs to p5.
  d.HandToB(d.p1.participant);
  d.SyncAll();

  CHECK(Holds(*d.a, "interviews", d.p1.interview));
  CHECK_IN_SCOPE(d.server, *d.a);
}

TEST_CASE("A participant created for another adviser is accepted wherever the batches cut it",
          "[sync][server][scope]") {
  // The office records a participant for adviser c in the north. In batches of three, the first
  // holds the names and the referent: adviser c's, not the office's, with no territory yet.
  ServerFixture server;
  auto office = server.Join("tab-office", "office", {kNorth},
                            [](SyncOptions* options) { options->push_batch = 3; });
  ParticipantFile p = AddParticipant(office->store(), "adviser-c", kNorth, "workshop-1");

  Status pushed = Sync(*office);

  INFO(pushed.ToString());
  CHECK(pushed.ok());
  CHECK(office->Pending() == 0);
  CHECK(HoldsFile(*office, p));
  CHECK_IN_SCOPE(server, *office);
}

TEST_CASE("A record of another adviser's participant cannot be moved into one's own scope",
          "[sync][server][scope]") {
  Department d;
  d.SyncAll();
  std::string before = d.server.ScopeDump("");

  // Tablet a points p3's interview (adviser b's) at p1, a participant of its own.
  SYNC_REQUIRE_OK(
      d.a->store().Set("interviews", d.p3.interview, "participant", d.p1.participant));
  Status pushed = Sync(*d.a);

  CHECK(pushed.code() == StatusCode::kPermissionDenied);
  CHECK(d.server.ScopeDump("") == before);
  RequireSynced(*d.b);
  CHECK(HoldsFile(*d.b, d.p3));
}

TEST_CASE("What a tablet wrote offline is refused once the hand-over is older than the grace",
          "[sync][server][scope]") {
  Department d;
  d.SyncAll();
  // Adviser a writes a note and goes offline for longer than the grace; the office hands p1 to b.
  SYNC_REQUIRE_OK(d.a->store().Append("interviews", d.p1.interview, "notes", "written offline"));
  d.HandToB(d.p1.participant);
  RequireSynced(*d.office);
  d.server.env().Advance(ServerStoreOptions{}.hand_over_grace_ms + 60'000);

  Status pushed = Sync(*d.a);

  INFO(pushed.ToString());
  CHECK(pushed.code() == StatusCode::kPermissionDenied);
  CHECK(pushed.message().find(d.p1.interview) != std::string::npos);
  RequireSynced(*d.b);
  CHECK(NotesOf(*d.b, d.p1.interview) == std::vector<std::string>{"first interview"});
}

TEST_CASE("A tablet that pulled past a forget cannot reopen its grace by pulling from the start",
          "[sync][server][scope]") {
  Department d;
  d.SyncAll();
  d.HandToB(d.p1.participant);
  RequireSynced(*d.office);
  RequireSynced(*d.a);
  RequireSynced(*d.a);  // its second pull starts past the forget: acknowledged
  REQUIRE_FALSE(HoldsFile(*d.a, d.p1));

  // A pull from cursor 0, by hand, then a new action for the participant it lost.
  RawClient raw(d.server.port(), d.server.Token("tab-a"));
  REQUIRE(raw.Send("/v1/pull", wire::PullRequest{1, 0, 1000, ""}).status == 200);
  SYNC_REQUIRE_OK(d.a->store().Put("actions", d.a->store().NewId(),
                           {{"participant", d.p1.participant}, {"label", "permis B"}}));
  Status pushed = Sync(*d.a);

  INFO(pushed.ToString());
  CHECK(pushed.code() == StatusCode::kPermissionDenied);
  CHECK(pushed.message().find(d.p1.participant) != std::string::npos);
}

TEST_CASE("A participant created for a colleague cannot be taken back once they wrote about it",
          "[sync][server][scope]") {
  Department d;
  d.SyncAll();
  // Adviser a records a participant for adviser b, in one push; b writes about them.
  ParticipantFile p5 = AddParticipant(d.a->store(), "adviser-b", kSouth, d.north_workshop);
  RequireSynced(*d.a);
  RequireSynced(*d.a);
  RequireSynced(*d.b);
  SYNC_REQUIRE_OK(d.b->store().Append("interviews", p5.interview, "notes", "b's note"));
  RequireSynced(*d.b);

  SYNC_REQUIRE_OK(
      d.a->store().Put("participants", p5.participant, {{"referent", "adviser-a"}, {"territory", kNorth}}));
  Status pushed = Sync(*d.a);

  INFO(pushed.ToString());
  CHECK(pushed.code() == StatusCode::kPermissionDenied);
  CHECK(d.server.ScopeDump("tab-a").find("b's note") == std::string::npos);
  RequireSynced(*d.b);
  CHECK(HoldsFile(*d.b, p5));
}

TEST_CASE("A record of one's own participant cannot be pointed at a colleague's participant",
          "[sync][server][scope]") {
  Department d;
  d.SyncAll();
  std::string before = d.server.ScopeDump("");

  // Tablet a points p1's interview (its own) at p3, adviser b's participant in the east.
  SYNC_REQUIRE_OK(d.a->store().Set("interviews", d.p1.interview, "participant", d.p3.participant));
  Status pushed = Sync(*d.a);

  CHECK(pushed.code() == StatusCode::kPermissionDenied);
  CHECK(d.server.ScopeDump("") == before);
  RequireSynced(*d.b);
  CHECK_FALSE(Holds(*d.b, "interviews", d.p1.interview));
}

TEST_CASE("A tablet cannot register a colleague's participant to its workshop",
          "[sync][server][scope]") {
  Department d;
  d.SyncAll();

  // p3 is adviser b's, in the east: not a's to put on the attendance list of a north workshop.
  SYNC_REQUIRE_OK(d.a->store().Add("workshops", d.north_workshop, "registered", d.p3.participant));
  Status pushed = Sync(*d.a);

  CHECK(pushed.code() == StatusCode::kPermissionDenied);
  CHECK(pushed.message().find(d.north_workshop) != std::string::npos);
}

TEST_CASE("A move made offline, before the tablet heard another had moved the participant, wins",
          "[sync][server][scope]") {
  Department d;
  d.SyncAll();
  // The office hands p1 to b in the south; adviser a, offline and unaware, moves p1 to adviser c
  // within the north, later: a concurrent write that wins, and keeps p1 in a's territory.
  d.HandToB(d.p1.participant);
  RequireSynced(*d.office);
  d.a->env().Advance(60'000);
  SYNC_REQUIRE_OK(d.a->store().Put("participants", d.p1.participant,
                                   {{"referent", "adviser-c"}, {"territory", kNorth}}));

  Status pushed = Sync(*d.a);

  INFO(pushed.ToString());
  CHECK(pushed.ok());
  d.SyncAll();
  CHECK(HoldsFile(*d.a, d.p1));
  CHECK_FALSE(HoldsFile(*d.b, d.p1));
  d.CheckAdvisersInScope();
}
