// Tablets syncing through the real carnet-server (SyncServer on a SQLite ServerStore) over
// HTTP on 127.0.0.1.
#include <algorithm>

#include <catch2/catch.hpp>

#include "carnet/server.h"
#include "carnet/server_store.h"
#include "carnet/sync_client.h"
#include "tests/sync/sync_helpers.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

class CentralServer {
 public:
  explicit CentralServer(const TempDir& dir) : env_(kTabletStartMs, 7) {
    ServerStoreOptions options;
    options.env = &env_;
    Result<std::unique_ptr<ServerStore>> store =
        OpenServerStore("sqlite:" + dir.File("central.db"), options);
    SYNC_REQUIRE_OK(store);
    store_ = std::move(store.value());
    ServerOptions server_options;
    server_options.env = &env_;
    server_options.store = store_.get();
    server_ = std::make_unique<SyncServer>(server_options);
    SYNC_REQUIRE_OK(server_->Start());
  }

  // Enrolls a tablet; returns its token.
  std::string Enroll(const std::string& device, const std::string& adviser = "adv-1",
                     const std::string& territory = "nord") {
    Device d;
    d.id = device;
    d.adviser = adviser;
    d.territories = {territory};
    std::string token = NewDeviceToken(&env_);
    SYNC_REQUIRE_OK(store_->Enroll(d, HashToken(token)));
    return token;
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  ServerStore& store() { return *store_; }
  TestEnv& env() { return env_; }
  std::string ScopeDump(const std::string& device) {
    Result<std::string> dump = store_->ScopeDump(device);
    SYNC_REQUIRE_OK(dump);
    return *dump;
  }

 private:
  TestEnv env_;
  std::unique_ptr<ServerStore> store_;
  std::unique_ptr<SyncServer> server_;
};

// The real transport, with the replies of the first `lose` pushes lost on the way back: the
// server applied them, the tablet never heard.
class LosingTransport : public Transport {
 public:
  LosingTransport(std::unique_ptr<Transport> inner, int lose)
      : inner_(std::move(inner)), lose_(lose) {}

  Result<HttpReply> Post(const HttpRequest& request) override {
    Result<HttpReply> reply = inner_->Post(request);
    paths_.push_back(request.path);
    if (reply.ok() && request.path == "/v1/push") push_replies_.push_back(*reply);
    if (request.path == "/v1/push" && lose_ > 0) {
      --lose_;
      return Status(StatusCode::kUnavailable, "reply lost on the way back");
    }
    return reply;
  }

  std::vector<std::string>* paths() { return &paths_; }
  std::vector<HttpReply>* push_replies() { return &push_replies_; }

 private:
  std::unique_ptr<Transport> inner_;
  int lose_;
  std::vector<std::string> paths_;
  std::vector<HttpReply> push_replies_;
};

// Two tablets of adviser adv-1 in territory "nord", and their server.
struct CentralFixture {
  TempDir dir;
  CentralServer central{dir};  // outlives the tablets: their connections close first
  Tablet a{dir, "tab-a", kTabletStartMs, 1};
  Tablet b{dir, "tab-b", kTabletStartMs, 2};
};

std::vector<std::pair<std::string, std::optional<std::string>>> NewParticipant(
    const std::string& referent = "adv-1", const std::string& territory = "nord") {
  return {{"first_name", "Léa"},
          {"referent", referent},
          {"territory", territory},
          {"phase", "assessment"}};
}

FieldValue FieldOf(Tablet& tablet, const std::string& id, const std::string& field,
                   const std::string& collection = "participants") {
  Result<Record> record = tablet->Get(collection, id);
  SYNC_REQUIRE_OK(record);
  REQUIRE(record->fields.count(field) == 1);
  return record->fields.at(field);
}

}  // namespace

TEST_CASE_METHOD(CentralFixture, "Two tablets that edit offline converge through the server",
                 "[sync][client][e2e]") {
  a.Connect(central.url(), TestSyncOptions(central.Enroll("tab-a")));
  b.Connect(central.url(), TestSyncOptions(central.Enroll("tab-b")));
  std::string p = a->NewId();
  SYNC_REQUIRE_OK(a->Put("participants", p, NewParticipant()));
  SYNC_REQUIRE_OK(a.client().SyncNow());
  SYNC_REQUIRE_OK(b.client().SyncNow());
  REQUIRE(FieldOf(b, p, "first_name").value == "Léa");

  // A day in the field, each tablet without network.
  a.env().Advance(60'000);
  SYNC_REQUIRE_OK(a->Set("participants", p, "phase", "job_search"));
  SYNC_REQUIRE_OK(a->Add("participants", p, "barriers", "mobility"));
  b.env().Advance(120'000);
  SYNC_REQUIRE_OK(b->Set("participants", p, "phase", "professional_project"));
  SYNC_REQUIRE_OK(b->Add("participants", p, "barriers", "childcare"));
  std::string q = b->NewId();
  SYNC_REQUIRE_OK(b->Put("participants", q, NewParticipant()));
  central.env().Advance(180'000);

  SYNC_REQUIRE_OK(a.client().SyncNow());
  SYNC_REQUIRE_OK(b.client().SyncNow());
  SYNC_REQUIRE_OK(a.client().SyncNow());

  CHECK(a.Dump() == b.Dump());
  CHECK(a.Dump() == central.ScopeDump("tab-a"));
  for (Tablet* t : {&a, &b}) {
    FieldValue phase = FieldOf(*t, p, "phase");
    CHECK(phase.value == "professional_project");  // the later write wins
    CHECK(phase.in_conflict);                      // the other is kept for review
    CHECK(FieldOf(*t, p, "barriers").elements == std::vector<std::string>{"childcare", "mobility"});
    CHECK((*t)->Get("participants", q).ok());
    CHECK(t->client().EverythingUploaded().value());
    CHECK(t->client().status().state == SyncState::kIdle);
  }
}

TEST_CASE_METHOD(CentralFixture, "A push whose reply is lost is retried without duplication",
                 "[sync][client][e2e]") {
  auto losing = std::make_unique<LosingTransport>(CurlTo(central.url()), 1);
  LosingTransport* transport = losing.get();
  SyncClient client(&a.store(), &a.env(), std::move(losing),
                    TestSyncOptions(central.Enroll("tab-a")));
  b.Connect(central.url(), TestSyncOptions(central.Enroll("tab-b")));
  std::string p = a->NewId();
  SYNC_REQUIRE_OK(a->Put("participants", p, NewParticipant()));
  std::string interview = a->NewId();
  SYNC_REQUIRE_OK(a->Put("interviews", interview, {{"participant", p}, {"place", "office"}}));
  SYNC_REQUIRE_OK(a->Append("interviews", interview, "notes", "first meeting"));
  const uint64_t made = a.Pending();

  SYNC_REQUIRE_OK(client.SyncNow());

  std::vector<std::string> expected{"/v1/push", "/v1/push", "/v1/pull"};
  CHECK(*transport->paths() == expected);
  REQUIRE(transport->push_replies()->size() == 2);
  wire::PushReply first, retried;
  const HttpReply& r0 = transport->push_replies()->at(0);
  const HttpReply& r1 = transport->push_replies()->at(1);
  SYNC_REQUIRE_OK(wire::Decode(r0.body, *wire::FormatFromContentType(r0.content_type), &first));
  SYNC_REQUIRE_OK(wire::Decode(r1.body, *wire::FormatFromContentType(r1.content_type), &retried));
  CHECK(first.applied == made);
  CHECK(retried.applied == 0);
  CHECK(retried.duplicates == made);
  CHECK(retried.acknowledged_seq == first.acknowledged_seq);
  CHECK(a.Pending() == 0);

  SYNC_REQUIRE_OK(b.client().SyncNow());
  CHECK(b.Dump() == a.Dump());
  CHECK(FieldOf(b, interview, "notes", "interviews").entries.size() == 1);
}

TEST_CASE_METHOD(CentralFixture,
                 "A first sync larger than a batch goes in bounded pushes and pulls",
                 "[sync][client][e2e]") {
  SyncOptions a_options = TestSyncOptions(central.Enroll("tab-a"));
  a_options.push_batch = 16;
  a.Connect(central.url(), a_options);
  SyncOptions b_options = TestSyncOptions(central.Enroll("tab-b"));
  b_options.pull_batch = 7;
  b.Connect(central.url(), b_options);
  for (int i = 0; i < 20; ++i)
    SYNC_REQUIRE_OK(a->Put("participants", a->NewId(), NewParticipant()));
  std::vector<SyncProgress> pushes, pulls;
  a.client().OnProgress([&](const SyncProgress& p) { pushes.push_back(p); });
  b.client().OnProgress([&](const SyncProgress& p) { pulls.push_back(p); });

  SYNC_REQUIRE_OK(a.client().SyncNow());
  SYNC_REQUIRE_OK(b.client().SyncNow());

  // 80 operations in pushes of 16, then a pull with nothing new.
  REQUIRE(pushes.size() == 6);
  CHECK(pushes[4].pushed == 80);
  CHECK(pushes[4].push_total == 80);
  // 80 entries in pulls of at most 7.
  REQUIRE(pulls.size() == 12);
  CHECK(pulls[10].pull_more);
  CHECK(pulls.back().pulled == 80);
  CHECK_FALSE(pulls.back().pull_more);
  CHECK(b.Dump() == a.Dump());
  CHECK(b.Dump() == central.ScopeDump("tab-b"));
}

TEST_CASE("A tablet whose clock runs ahead is refused, adopts the server's time, and pushes later",
          "[sync][client][e2e]") {
  TempDir dir;
  CentralServer central(dir);
  // Past the server's bound (15 minutes), but not so far that the server cannot have accepted
  // them in a push whose reply was lost: the client leaves such stamps as they are.
  const int64_t ahead = 18 * 60'000;
  Tablet a(dir, "tab-a", kTabletStartMs + ahead, 1);
  a.Connect(central.url(), TestSyncOptions(central.Enroll("tab-a")));
  std::string p = a->NewId();
  SYNC_REQUIRE_OK(a->Put("participants", p, NewParticipant()));
  const std::vector<Operation> made = a.Outbox();

  Status refused = a.client().SyncNow();

  CHECK(refused.code() == StatusCode::kClockSkew);
  CHECK(a.Pending() == 4);
  CHECK(a.Outbox() == made);
  CHECK(a.client().status().clock_offset_ms == -ahead);
  CHECK(a.client().status().state == SyncState::kError);

  // The stamps already made stay ahead (the clock never goes back): they pass once the server's
  // time is within the bound of them.
  central.env().Advance(6 * 60'000);
  a.env().Advance(6 * 60'000);
  SYNC_REQUIRE_OK(a.client().SyncNow());
  CHECK(a.Pending() == 0);
  CHECK(a.client().status().clock_offset_ms == -ahead);
}

// The simulation's "Known bug: a tablet that once stamped a change years ahead never syncs
// again": refused, the changes are re-stamped at the server's time and pushed again at once,
// whether the device's clock has been set right meanwhile or still reads years ahead.
TEST_CASE_METHOD(CentralFixture,
                 "A tablet that stamped changes years ahead re-stamps them and syncs at once",
                 "[sync][client][e2e]") {
  const bool clock_set_right = GENERATE(false, true);
  auto recording = std::make_unique<LosingTransport>(CurlTo(central.url()), 0);
  LosingTransport* transport = recording.get();
  SyncClient client(&a.store(), &a.env(), std::move(recording),
                    TestSyncOptions(central.Enroll("tab-a")));
  b.Connect(central.url(), TestSyncOptions(central.Enroll("tab-b")));
  std::string p = b->NewId();
  SYNC_REQUIRE_OK(b->Put("participants", p, NewParticipant()));
  SYNC_REQUIRE_OK(b.client().SyncNow());
  SYNC_REQUIRE_OK(client.SyncNow());

  // The tablet's clock is set three years ahead, and its adviser works on: over a colleague's
  // value, over its own values stamped years ahead, a note and its revision.
  const int64_t ahead = 3 * 365LL * 24 * 3'600'000;
  a.env().Advance(ahead);
  SYNC_REQUIRE_OK(a->Set("participants", p, "phase", "job_search"));
  std::string q = a->NewId();
  SYNC_REQUIRE_OK(a->Put("participants", q, NewParticipant()));
  SYNC_REQUIRE_OK(a->Set("participants", q, "phase", "health"));
  std::string interview = a->NewId();
  SYNC_REQUIRE_OK(a->Put("interviews", interview, {{"participant", q}, {"place", "home"}}));
  Result<Stamp> note = a->Append("interviews", interview, "notes", "first visit");
  SYNC_REQUIRE_OK(note);
  SYNC_REQUIRE_OK(a->Append("interviews", interview, "notes", "first visit, at home", *note));
  const uint64_t made = a.Pending();
  if (clock_set_right) a.env().Advance(-ahead);
  central.env().Advance(60'000);
  a.env().Advance(60'000);
  transport->paths()->clear();
  transport->push_replies()->clear();

  SYNC_REQUIRE_OK(client.SyncNow());

  // Refused (422, nothing applied), re-stamped at the server's time, pushed again at once.
  std::vector<std::string> expected{"/v1/push", "/v1/push", "/v1/pull"};
  CHECK(*transport->paths() == expected);
  REQUIRE(transport->push_replies()->size() == 2);
  CHECK(transport->push_replies()->at(0).status == 422);
  CHECK(transport->push_replies()->at(1).status == 200);
  CHECK(a.Pending() == 0);
  CHECK(client.status().clock_offset_ms == (clock_set_right ? 0 : -ahead));
  const int64_t bound = central.env().NowMillis() + 15 * 60'000;
  CHECK(HlcPhysicalMs(a->LastHlc()) <= bound);
  CHECK(a.Dump() == central.ScopeDump("tab-a"));

  // The colleague receives it all, stamped at the true time, and reads what was meant.
  SYNC_REQUIRE_OK(b.client().SyncNow());
  CHECK(b.Dump() == a.Dump());
  for (Tablet* t : {&a, &b}) {
    FieldValue phase = FieldOf(*t, p, "phase");
    CHECK(phase.value == "job_search");
    CHECK_FALSE(phase.in_conflict);
    CHECK(HlcPhysicalMs(phase.stamp->hlc) <= bound);
    CHECK(FieldOf(*t, q, "phase").value == "health");
    CHECK_FALSE(FieldOf(*t, q, "phase").in_conflict);
    std::vector<LogEntry> notes = FieldOf(*t, interview, "notes", "interviews").entries;
    REQUIRE(notes.size() == 2);
    CHECK(notes[1].revises == notes[0].stamp);
    CHECK(HlcPhysicalMs(notes[1].stamp.hlc) <= bound);
    Result<std::vector<Conflict>> conflicts = (*t)->Conflicts();
    SYNC_REQUIRE_OK(conflicts);
    CHECK(conflicts->empty());
  }
  Result<std::vector<Device>> devices = central.store().Devices();
  SYNC_REQUIRE_OK(devices);
  for (const Device& d : *devices) {
    if (d.id == "tab-a") CHECK(d.acknowledged_seq >= made);
  }

  // From then on the tablet syncs as any other.
  central.env().Advance(60'000);
  a.env().Advance(60'000);
  SYNC_REQUIRE_OK(a->Set("participants", p, "phase", "in_work_followup"));
  SYNC_REQUIRE_OK(client.SyncNow());
  SYNC_REQUIRE_OK(b.client().SyncNow());
  CHECK(FieldOf(b, p, "phase").value == "in_work_followup");
  CHECK_FALSE(FieldOf(b, p, "phase").in_conflict);
  CHECK(b.Dump() == a.Dump());
}

TEST_CASE_METHOD(CentralFixture,
                 "A revoked tablet wipes its store at its next sync, and the server shows it",
                 "[sync][client][e2e]") {
  a.Connect(central.url(), TestSyncOptions(central.Enroll("tab-a")));
  std::string p = a->NewId();
  SYNC_REQUIRE_OK(a->Put("participants", p, NewParticipant()));
  SYNC_REQUIRE_OK(a.client().SyncNow());
  SYNC_REQUIRE_OK(central.store().Revoke("tab-a"));
  SYNC_REQUIRE_OK(a->Set("participants", p, "phase", "job_search"));  // never pushed

  Status status = a.client().SyncNow();

  CHECK(status.code() == StatusCode::kDeviceRevoked);
  CHECK_THAT(status.message(), Catch::Contains("server was told"));
  CHECK(a.client().status().state == SyncState::kError);
  CHECK(a->IsWiped());
  CHECK(a->Get("participants", p).status().code() == StatusCode::kDeviceRevoked);
  CHECK(a->Begin().status().code() == StatusCode::kDeviceRevoked);
  Result<std::vector<Device>> devices = central.store().Devices();
  REQUIRE(devices.ok());
  REQUIRE(devices->size() == 1);
  CHECK((*devices)[0].wipe_confirmed_ms != 0);
  // Nothing the tablet held before the wipe reached the server after it.
  CHECK(central.ScopeDump("").find("job_search") == std::string::npos);
  // Again: nothing more to do, and the server refuses the token from now on.
  CHECK(a.client().SyncNow().code() == StatusCode::kDeviceRevoked);
}

TEST_CASE_METHOD(CentralFixture,
                 "A participant handed to another adviser leaves the tablet that gave it",
                 "[sync][client][e2e]") {
  Tablet c(dir, "tab-c", kTabletStartMs, 3);
  a.Connect(central.url(), TestSyncOptions(central.Enroll("tab-a", "adv-1", "nord")));
  c.Connect(central.url(), TestSyncOptions(central.Enroll("tab-c", "adv-2", "sud")));
  std::string p = a->NewId();
  SYNC_REQUIRE_OK(a->Put("participants", p, NewParticipant()));
  std::string interview = a->NewId();
  SYNC_REQUIRE_OK(a->Put("interviews", interview, {{"participant", p}, {"place", "home"}}));
  SYNC_REQUIRE_OK(a.client().SyncNow());
  SYNC_REQUIRE_OK(c.client().SyncNow());
  CHECK(c->Get("participants", p).status().code() == StatusCode::kNotFound);

  a.env().Advance(1000);
  SYNC_REQUIRE_OK(a->Put("participants", p, {{"referent", "adv-2"}, {"territory", "sud"}}));
  SYNC_REQUIRE_OK(a.client().SyncNow());
  SYNC_REQUIRE_OK(c.client().SyncNow());

  CHECK(a->Get("participants", p).status().code() == StatusCode::kNotFound);
  CHECK(a->Get("interviews", interview).status().code() == StatusCode::kNotFound);
  CHECK(FieldOf(c, p, "referent").value == "adv-2");
  CHECK(FieldOf(c, interview, "place", "interviews").value == "home");
  CHECK(c.Dump() == central.ScopeDump("tab-c"));
  CHECK(a.Dump() == central.ScopeDump("tab-a"));
}
