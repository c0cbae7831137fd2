// Erasure (GDPR art. 17; sync/PROTOCOL.md, Erasure) with real processes on 127.0.0.1:
// carnet-server serves the tablets while its command line erases a participant from the same
// store; the tablets carry out the order on their next sync and confirm it; a tablet that was
// offline pushes edits of the erased participant, which are dropped and counted. On SQLite, and
// on PostgreSQL under the pg label.
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

// What an adviser knows of the participant, typed on a tablet: none of it may stay anywhere.
constexpr const char* kSentence = "Mme Quintard-Lefebvre confie des dettes de loyer";
constexpr const char* kLastName = "Quintard-Lefebvre";
constexpr const char* kLateSentence = "Rappel: Mme Q. a obtenu un echeancier";
constexpr const char* kLateInterview = "Entretien tenu hors ligne avec Mme Q.";

// The tables allowed to name an erased participant: the erasure list itself (its id, to drop
// late pushes), and the audit log, which keeps ids without content and is never rewritten.
const std::set<std::string> kErasureTables = {"erasures", "erased_records", "erasure_orders",
                                              "audit", "audit_head"};

// carnet-server serving a fresh store; four tablets enrolled through its command line: a and d
// (adviser-a, north), b (adviser-b, north), c (adviser-c, south).
struct ErasureWorld {
  TempDir dir;
  TestStore store{dir};
  std::vector<std::string> tokens = {
      EnrollWithCommand(dir, spec(), "tab-a", "adviser-a", kNorth),
      EnrollWithCommand(dir, spec(), "tab-b", "adviser-b", kNorth),
      EnrollWithCommand(dir, spec(), "tab-c", "adviser-c", kSouth),
      EnrollWithCommand(dir, spec(), "tab-d", "adviser-a", kNorth)};
  ProcessTls tls{dir};
  ServerProcess process{CARNET_SERVER_BINARY, spec(), dir.File("server.log"), tls.server()};
  Tablet a{dir, "tab-a", kTabletStartMs, 3};
  Tablet b{dir, "tab-b", kTabletStartMs, 5};
  Tablet c{dir, "tab-c", kTabletStartMs, 7};
  Tablet d{dir, "tab-d", kTabletStartMs, 11};
  TestEnv env{kTabletStartMs, 13};
  std::string workshop;
  ParticipantFile x, y;  // x is erased, y stays

  ErasureWorld() {
    Tablet* tablets[] = {&a, &b, &c, &d};
    for (size_t i = 0; i < 4; ++i) {
      tablets[i]->Connect(process.url(), ServerSyncOptions(tokens[i]), 0, tls.ca_file());
    }
  }

  const std::string& spec() const { return store.spec(); }

  // a records x's file (their name, a note, a workshop registration) and y's, and syncs.
  void RecordFiles() {
    workshop = AddWorkshop(a.store(), kNorth);
    x = AddParticipant(a.store(), "adviser-a", kNorth, workshop);
    SYNC_REQUIRE_OK(a->Set("participants", x.participant, "last_name", kLastName));
    SYNC_REQUIRE_OK(a->Append("interviews", x.interview, "notes", kSentence));
    SYNC_REQUIRE_OK(a->Add("workshops", workshop, "registered", x.participant));
    y = AddParticipant(a.store(), "adviser-a", kNorth, workshop);
    SYNC_REQUIRE_OK(a->Add("workshops", workshop, "registered", y.participant));
    RequireSynced(a);
  }

  CommandResult Command(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--store", spec()});
    return RunServerCommand(dir, args);
  }
  void EraseX() {
    CommandResult erased = Command({"erase", "--participant", x.participant, "--by", "dpo"});
    INFO(erased.out);
    REQUIRE(erased.exit_code == 0);
    CHECK(HasBytes(erased.out, "erased participant " + x.participant + ": 8 records"));
    CHECK(HasBytes(erased.out, "erasure order sent to 4 tablets"));
  }
  std::string StatusText() {
    CommandResult status = Command({"erasure-status", "--participant", x.participant});
    INFO(status.out);
    REQUIRE(status.exit_code == 0);
    return status.out;
  }

  // The store, read through its interface in this process, beside the server.
  std::string ScopeDump(const std::string& device) {
    Result<std::unique_ptr<ServerStore>> opened = OpenServerStore(spec(), {&env});
    SYNC_REQUIRE_OK(opened);
    Result<std::string> dump = (*opened)->ScopeDump(device);
    SYNC_REQUIRE_OK(dump);
    return *dump;
  }
  std::string Files(Tablet& tablet) {
    const std::string path = dir.File(tablet.store().device_id() + ".db");
    return FileBytes({path, path + "-wal"});
  }
  // Nothing of the erased participant left in the tablet, its files included.
  void CheckErasedFrom(Tablet& tablet, const std::vector<std::string>& texts) {
    INFO(tablet.store().device_id());
    for (const auto& [collection, id] : x.Records()) CHECK(!Holds(tablet, collection, id));
    CHECK(!HasBytes(tablet.Dump(), x.participant));
    const std::string files = Files(tablet);
    INFO("tables naming the participant: " << ::Catch::Detail::stringify(TablesMentioning(
             "sqlite:" + dir.File(tablet.store().device_id() + ".db"), x.participant, {})));
    CHECK(!HasBytes(files, x.participant));
    for (const std::string& text : texts) CHECK(!HasBytes(files, text));
    CHECK(DumpDiff(tablet.Dump(), ScopeDump(tablet.store().device_id())) == "");
  }
  // Nothing of it in the store but its entry on the erasure list.
  void CheckErasedFromServer(const std::vector<std::string>& texts) {
    CHECK(!HasBytes(ScopeDump(""), x.participant));
    for (const std::string& text : texts) {
      INFO(text);
      CHECK(TablesMentioning(spec(), text, kErasureTables).empty());
    }
    if (!TestingPostgres()) {
      // The rows are gone from the file and its WAL too, not only from the tables.
      const std::string path = spec().substr(7);
      const std::string files = FileBytes({path, path + "-wal"});
      CHECK(!HasBytes(files, kSentence));
      CHECK(!HasBytes(files, kLastName));
    }
  }
};

}  // namespace

TEST_CASE("An erased participant leaves the server and every tablet that held them, and "
          "erasure-status shows which tablets confirmed",
          "[server][erasure]") {
  ErasureWorld w;
  w.RecordFiles();
  RequireSynced(w.b);
  RequireSynced(w.d);
  REQUIRE(Holds(w.b, "interviews", w.x.interview));
  REQUIRE(HasBytes(w.Files(w.b), kLastName));
  REQUIRE(HasBytes(w.Files(w.b), w.x.participant));

  w.EraseX();
  std::string owed = w.StatusText();
  CHECK(HasBytes(owed, w.x.participant + " erased "));
  CHECK(HasBytes(owed, "by dpo: 8 records; 0 of 4 tablets confirmed"));
  CHECK(HasBytes(owed, "  tab-a owed\n"));
  w.CheckErasedFromServer({w.x.participant, kSentence, kLastName, w.x.interview, w.x.attendance});

  RequireSynced(w.a);
  RequireSynced(w.b);
  RequireSynced(w.c);  // its first sync, a snapshot: the order comes with its first page
  w.CheckErasedFrom(w.a, {kSentence, kLastName});
  w.CheckErasedFrom(w.b, {kSentence, kLastName});
  w.CheckErasedFrom(w.c, {});
  for (Tablet* t : {&w.a, &w.b}) {
    for (const auto& [collection, id] : w.y.Records()) CHECK(Holds(*t, collection, id));
    Result<Record> session = (*t)->Get("workshops", w.workshop);
    SYNC_REQUIRE_OK(session);
    CHECK(session->fields["registered"].elements == std::vector<std::string>{w.y.participant});
  }

  std::string status = w.StatusText();
  INFO(status);
  CHECK(HasBytes(status, "3 of 4 tablets confirmed"));
  CHECK(HasBytes(status, "  tab-a confirmed "));
  CHECK(HasBytes(status, "  tab-b confirmed "));
  CHECK(HasBytes(status, "  tab-c confirmed "));
  CHECK(HasBytes(status, "  tab-d owed\n"));
  CHECK(HasBytes(w.Command({"erasure-status"}).out, w.x.participant + " erased "));
  w.CheckErasedFromServer({w.x.participant, kSentence, kLastName, w.x.interview});
}

TEST_CASE("A tablet offline during an erasure has its edits of the participant dropped and "
          "counted, never brought back, and erases them on its return",
          "[server][erasure]") {
  ErasureWorld w;
  w.RecordFiles();
  RequireSynced(w.d);
  REQUIRE(Holds(w.d, "interviews", w.x.interview));

  w.EraseX();
  // Offline, d goes on with the participant: a note, a new phone, an interview of its own.
  SYNC_REQUIRE_OK(w.d->Append("interviews", w.x.interview, "notes", kLateSentence));
  SYNC_REQUIRE_OK(w.d->Set("participants", w.x.participant, "phone", "06 11 22 33 44"));
  const std::string late = w.d->NewId();
  SYNC_REQUIRE_OK(w.d->Put("interviews", late, {{"participant", w.x.participant}, {"place", "home"}}));
  SYNC_REQUIRE_OK(w.d->Append("interviews", late, "notes", kLateInterview));
  const size_t edits = w.d.Outbox().size();
  REQUIRE(edits == 5);

  RequireSynced(w.d);
  CHECK(w.d.Pending() == 0);  // acknowledged, hence out of the outbox
  std::vector<std::string> logs = w.d.env().logs();
  CHECK(std::any_of(logs.begin(), logs.end(), [&](const std::string& line) {
    return HasBytes(line, "the server dropped " + std::to_string(edits) + " operations");
  }));
  CHECK(HasBytes(FileBytes({w.dir.File("server.log")}),
                 "push from tab-d: 5 operations on erased participants dropped"));
  w.CheckErasedFrom(w.d, {kSentence, kLastName, kLateSentence, kLateInterview, late});
  CHECK(!Holds(w.d, "interviews", late));
  w.CheckErasedFromServer({w.x.participant, kSentence, kLastName, kLateSentence, kLateInterview,
                           late});
  CHECK(HasBytes(w.StatusText(), "  tab-d confirmed "));

  // Nothing comes back, to anyone, however often they sync.
  RequireSynced(w.d);
  RequireSynced(w.a);
  RequireSynced(w.b);
  w.CheckErasedFrom(w.a, {kLateSentence, kLateInterview});
  w.CheckErasedFrom(w.b, {kLateSentence, kLateInterview});
  CHECK(!HasBytes(w.ScopeDump(""), late));
}

TEST_CASE("erase is kept once, and refuses an id that is not one or an erasure nobody ordered",
          "[server][erasure]") {
  ErasureWorld w;
  w.RecordFiles();
  w.EraseX();
  CommandResult again = w.Command({"erase", "--participant", w.x.participant, "--by", "dpo"});
  CHECK(again.exit_code == 0);
  CHECK(HasBytes(again.out, "was erased already"));
  CHECK(HasBytes(w.StatusText(), "by dpo: 8 records; 0 of 4 tablets confirmed"));

  CommandResult nobody = w.Command({"erase", "--participant", w.y.participant});
  CHECK(nobody.exit_code == 2);
  CHECK(HasBytes(nobody.out, "--by"));
  CommandResult malformed = w.Command({"erase", "--participant", "p 1; DROP", "--by", "dpo"});
  CHECK(malformed.exit_code == 2);
  CommandResult unknown = w.Command({"erasure-status", "--participant", w.y.participant});
  CHECK(unknown.exit_code == 1);
  CHECK(HasBytes(unknown.out, "is not erased"));
  RequireSynced(w.a);
  CHECK(Holds(w.a, "participants", w.y.participant));
}

TEST_CASE("A push touching an erased participant is dropped and counted in its reply, and so is "
          "a record given to them in a later batch, with what the server held of it",
          "[server][erasure]") {
  ServerFixture server;
  auto a = server.Join("tab-a", "adviser-a", {kNorth});
  const std::string workshop = AddWorkshop(a->store(), kNorth);
  ParticipantFile x = AddParticipant(a->store(), "adviser-a", kNorth, workshop);
  ParticipantFile y = AddParticipant(a->store(), "adviser-a", kNorth, workshop);
  RequireSynced(*a);
  Result<ErasureReport> erased = server.store().Erase(x.participant, "dpo");
  SYNC_REQUIRE_OK(erased);
  CHECK(erased->records == 8);
  CHECK(erased->devices == std::vector<std::string>{"tab-a"});

  RawClient raw(server.port(), server.Token("tab-a"));
  uint64_t seq = server.DeviceRow("tab-a").acknowledged_seq;
  int64_t now = server.env().NowMillis();
  auto op = [&](OpKind kind, const std::string& collection, const std::string& record,
                const std::string& field, std::optional<std::string> value) {
    Operation o;
    o.device = "tab-a";
    o.seq = ++seq;
    o.hlc = MakeHlc(now, static_cast<uint32_t>(seq));
    o.kind = kind;
    o.collection = collection;
    o.record = record;
    o.field = field;
    o.value = std::move(value);
    return o;
  };
  auto push = [&](std::vector<Operation> ops) {
    wire::PushRequest request{wire::kProtocolVersion, "tab-a", "", ops.back().seq, std::move(ops)};
    RawReply reply = raw.Send("/v1/push", request);
    INFO(reply.body);
    REQUIRE(reply.status == 200);
    return DecodeReply<wire::PushReply>(reply);
  };

  // On the participant and on their interview: dropped; on another participant: applied.
  wire::PushReply first = push({op(OpKind::kAppend, "interviews", x.interview, "notes", "late"),
                                op(OpKind::kWrite, "participants", x.participant, "phone", "0611"),
                                op(OpKind::kWrite, "participants", y.participant, "phone", "0622")});
  CHECK(first.erased == 2);
  CHECK(first.applied == 1);
  CHECK(first.acknowledged_seq == seq);
  // An interview whose participant field comes in a later batch: applied, owner unknown...
  wire::PushReply orphan = push({op(OpKind::kAppend, "interviews", "i-late", "notes", "orphan")});
  CHECK(orphan.erased == 0);
  CHECK(orphan.applied == 1);
  CHECK(HasBytes(server.ScopeDump(""), "orphan"));
  // ...until it names the erased participant: it is theirs, and goes, what came before too.
  wire::PushReply named =
      push({op(OpKind::kWrite, "interviews", "i-late", "participant", x.participant)});
  CHECK(named.erased == 1);
  CHECK(named.applied == 0);
  CHECK(!HasBytes(server.ScopeDump(""), "i-late"));
  wire::PushReply later = push({op(OpKind::kAppend, "interviews", "i-late", "notes", "again")});
  CHECK(later.erased == 1);
  CHECK(!HasBytes(server.ScopeDump(""), "i-late"));
  // A reference to them in another record: dropped too.
  wire::PushReply reference = push({[&] {
    Operation o = op(OpKind::kAdd, "workshops", workshop, "registered", std::nullopt);
    o.element = x.participant;
    return o;
  }()});
  CHECK(reference.erased == 1);
  CHECK(!HasBytes(server.ScopeDump(""), x.participant));

  Result<std::vector<ErasureState>> list = server.store().Erasures();
  SYNC_REQUIRE_OK(list);
  REQUIRE(list->size() == 1);
  CHECK(list->front().records == 9);  // the eight erased with them, and the late interview
}
