// The scope of a device (sync/SECURITY.md, Scope) attacked through the wire protocol, against a
// carnet-server process on 127.0.0.1: a tablet that moves its own record into a colleague's file,
// and a tablet that takes back a participant it handed over. Each attack beside the legitimate
// case next to it, which must keep working: a hand-over, a referent changed by the
// coordinator's tablet, what a tablet wrote offline before it heard of a hand-over.
#include <catch2/catch.hpp>

#include "tests/sync/audit_helpers.h"
#include "tests/sync/server_process.h"
#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

// What adviser b writes about a participant; adviser a must never read it once they left a.
constexpr const char* kSecret = "Suivi addictologie en cours, ne pas divulguer";

// carnet-server on a fresh store, and three tablets enrolled through its command line:
// a (adviser-a, north), b (adviser-b, south), and the coordinator's (both territories).
struct Department {
  TempDir dir;
  TestStore store{dir};
  std::string token_a = EnrollCli(spec(), "tab-a", "adviser-a", kNorth);
  std::string token_b = EnrollCli(spec(), "tab-b", "adviser-b", kSouth);
  std::string token_coord = EnrollCoordinator();
  ServerProcess process{CARNET_SERVER_BINARY, spec(), dir.File("server.log")};
  Tablet a{dir, "tab-a", kTabletStartMs, 3};
  Tablet b{dir, "tab-b", kTabletStartMs, 5};
  Tablet coord{dir, "tab-coord", kTabletStartMs, 7};

  Department() {
    a.Connect(process.url(), ServerSyncOptions(token_a));
    b.Connect(process.url(), ServerSyncOptions(token_b));
    coord.Connect(process.url(), ServerSyncOptions(token_coord));
  }

  const std::string& spec() const { return store.spec(); }

  // `by` gives the participant to `referent` in `territory`, then it and the advisers sync once.
  void Move(Tablet& by, const std::string& participant, const std::string& referent,
            const std::string& territory) {
    SYNC_REQUIRE_OK(
        by->Put("participants", participant, {{"referent", referent}, {"territory", territory}}));
    RequireSynced(by);
    for (Tablet* t : {&a, &b}) {
      if (t != &by) RequireSynced(*t);
    }
  }

  std::string EnrollCoordinator() {
    CliResult run = RunCli({"enroll", "--token", "--store", spec(), "--device", "tab-coord",
                            "--adviser", "coordinator", "--territory", kNorth, "--territory",
                            kSouth});
    INFO(run.err);
    REQUIRE(run.exit_code == 0);
    return run.out.substr(0, run.out.find('\n'));
  }

  // What the server serves the device from the start: a pull from cursor 0, written by hand.
  std::string PulledFromStart(const std::string& token) {
    RawClient raw(process.port(), token);
    std::string served;
    uint64_t cursor = 0;
    for (bool more = true; more;) {
      RawReply reply = raw.Send("/v1/pull", wire::PullRequest{1, cursor, 1000, ""});
      INFO(reply.body);
      REQUIRE(reply.status == 200);
      wire::PullReply pulled = DecodeReply<wire::PullReply>(reply);
      for (const Entry& e : pulled.entries) {
        served += e.key.collection + " " + e.key.record + " " + e.key.field + " " +
                  e.value.value_or("") + "\n";
      }
      cursor = pulled.next_cursor;
      more = pulled.more;
    }
    return served;
  }

  // The rows of the audit log that say the device was refused something.
  AuditLines Refusals(const std::string& device) {
    AuditLines refused;
    for (const auto& line : AuditCli(spec(), {"--device", device})) {
      if (line.at("action") == "refused") refused.push_back(line);
    }
    return refused;
  }
};

// Whether the tablet holds every record of the file.
bool HoldsFile(Tablet& tablet, const ParticipantFile& file) {
  for (const auto& [collection, id] : file.Records()) {
    if (!Holds(tablet, collection, id)) return false;
  }
  return true;
}

bool Served(const std::string& pulled, const std::string& text) {
  return pulled.find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("A tablet cannot move its own interview into another adviser's participant",
          "[security][scope]") {
  Department d;
  ParticipantFile mine = AddParticipant(d.a.store(), "adviser-a", kNorth, "w-north");
  ParticipantFile theirs = AddParticipant(d.b.store(), "adviser-b", kSouth, "w-south");
  RequireSynced(d.a);
  RequireSynced(d.b);

  // In a second push, a's own interview, with a health note, is pointed at b's participant.
  SYNC_REQUIRE_OK(d.a->Append("interviews", mine.interview, "health_notes", kSecret));
  SYNC_REQUIRE_OK(d.a->Set("interviews", mine.interview, "participant", theirs.participant));
  Status pushed = Sync(d.a);

  INFO(pushed.ToString());
  CHECK(pushed.code() == StatusCode::kPermissionDenied);
  CHECK(pushed.message().find(mine.interview) != std::string::npos);
  RequireSynced(d.b);
  CHECK_FALSE(Holds(d.b, "interviews", mine.interview));
  CHECK_FALSE(Served(d.PulledFromStart(d.token_b), mine.interview));
  CHECK_FALSE(Served(d.PulledFromStart(d.token_b), kSecret));
  AuditLines refused = d.Refusals("tab-a");
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].at("collection") == "interviews");
  CHECK(refused[0].at("record") == mine.interview);
}

TEST_CASE("A tablet moves a record between participants of its own caseload",
          "[security][scope]") {
  Department d;
  ParticipantFile first = AddParticipant(d.a.store(), "adviser-a", kNorth, "w-north");
  ParticipantFile second = AddParticipant(d.a.store(), "adviser-a", kNorth, "w-north");
  RequireSynced(d.a);

  SYNC_REQUIRE_OK(d.a->Set("interviews", first.interview, "participant", second.participant));
  RequireSynced(d.a);

  CHECK(Served(d.PulledFromStart(d.token_a),
               "interviews " + first.interview + " participant " + second.participant));
  CHECK(d.Refusals("tab-a").empty());
}

TEST_CASE("A tablet that handed a participant over cannot take them back",
          "[security][scope]") {
  Department d;
  ParticipantFile p = AddParticipant(d.a.store(), "adviser-a", kNorth, "w-north");
  RequireSynced(d.a);
  d.Move(d.a, p.participant, "adviser-b", kSouth);
  REQUIRE(HoldsFile(d.b, p));
  REQUIRE_FALSE(Holds(d.a, "participants", p.participant));

  // a writes referent and territory back to itself, and b goes on writing about the participant.
  SYNC_REQUIRE_OK(
      d.a->Put("participants", p.participant, {{"referent", "adviser-a"}, {"territory", kNorth}}));
  Status pushed = Sync(d.a);
  SYNC_REQUIRE_OK(d.b->Append("interviews", p.interview, "health_notes", kSecret));
  RequireSynced(d.b);

  INFO(pushed.ToString());
  CHECK(pushed.code() == StatusCode::kPermissionDenied);
  CHECK(pushed.message().find(p.participant) != std::string::npos);
  const std::string pulled = d.PulledFromStart(d.token_a);
  CHECK_FALSE(Served(pulled, p.participant));
  CHECK_FALSE(Served(pulled, kSecret));
  CHECK(HoldsFile(d.b, p));
  CHECK(d.Refusals("tab-a").size() == 1);
}

TEST_CASE("A participant handed over reaches the new referent whole and leaves the former",
          "[security][scope]") {
  Department d;
  ParticipantFile p = AddParticipant(d.a.store(), "adviser-a", kNorth, "w-north");
  RequireSynced(d.a);

  d.Move(d.a, p.participant, "adviser-b", kSouth);
  SYNC_REQUIRE_OK(d.b->Append("interviews", p.interview, "health_notes", kSecret));
  RequireSynced(d.b);
  RequireSynced(d.a);

  CHECK(HoldsFile(d.b, p));
  CHECK_FALSE(Holds(d.a, "participants", p.participant));
  CHECK_FALSE(Served(d.PulledFromStart(d.token_a), kSecret));
  CHECK(d.Refusals("tab-a").empty());
}

TEST_CASE("The coordinator's tablet moves a participant between advisers and back",
          "[security][scope]") {
  Department d;
  ParticipantFile p = AddParticipant(d.a.store(), "adviser-a", kNorth, "w-north");
  RequireSynced(d.a);
  RequireSynced(d.coord);

  // The coordinator covers both territories: handing over from a to b, then back, keeps the
  // participant in its scope all along.
  d.Move(d.coord, p.participant, "adviser-b", kSouth);
  CHECK(HoldsFile(d.b, p));
  CHECK_FALSE(Holds(d.a, "participants", p.participant));

  d.Move(d.coord, p.participant, "adviser-a", kNorth);
  CHECK(HoldsFile(d.a, p));
  CHECK_FALSE(Holds(d.b, "participants", p.participant));
  CHECK(d.Refusals("tab-coord").empty());
}

TEST_CASE("What a tablet wrote offline before it heard of a hand-over reaches the new referent",
          "[security][scope]") {
  Department d;
  ParticipantFile p = AddParticipant(d.a.store(), "adviser-a", kNorth, "w-north");
  RequireSynced(d.a);
  RequireSynced(d.coord);

  // a, offline, writes a note and a new action; meanwhile the coordinator hands the
  // participant over to b.
  SYNC_REQUIRE_OK(d.a->Append("interviews", p.interview, "notes", "written offline"));
  const std::string action = d.a->NewId();
  SYNC_REQUIRE_OK(d.a->Put("actions", action, {{"participant", p.participant},
                                                {"label", "permis B"},
                                                {"status", "open"}}));
  SYNC_REQUIRE_OK(d.coord->Put("participants", p.participant,
                               {{"referent", "adviser-b"}, {"territory", kSouth}}));
  RequireSynced(d.coord);
  RequireSynced(d.a);
  RequireSynced(d.b);

  CHECK(d.a.Pending() == 0);
  CHECK_FALSE(Holds(d.a, "participants", p.participant));
  CHECK(NotesOf(d.b, p.interview) == std::vector<std::string>{"first interview", "written offline"});
  CHECK(Holds(d.b, "actions", action));
  CHECK(d.Refusals("tab-a").empty());
}
