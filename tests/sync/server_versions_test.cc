// Tablets and servers on two schema versions syncing together (sync/PROTOCOL.md, Versions;
// core/README.md, Mixed versions): the real carnet-server on the previous schema with tablets on
// the newer one, a server on the newer schema with a tablet on the previous one, and what
// neither can keep answered as "update needed".
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/newer_schema.h"
#include "tests/sync/erasure_helpers.h"
#include "tests/sync/hooked_transport.h"
#include "tests/sync/server_process.h"
#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

// What the newer app records: a participant with a new phase, field and barrier, their interview
// in the new phase, and a job fair in each territory.
struct NewerRecords {
  std::string participant, interview, fair_north, fair_south;

  explicit NewerRecords(Store& store, const std::string& referent) {
    participant = store.NewId();
    interview = store.NewId();
    fair_north = store.NewId();
    fair_south = store.NewId();
    SYNC_REQUIRE_OK(store.Put("participants", participant,
                              {{"first_name", "Nadia"},
                               {"referent", referent},
                               {"territory", kNorth},
                               {"phase", "post_exit"},
                               {"preferred_language", "occitan"}}));
    SYNC_REQUIRE_OK(store.Add("participants", participant, "barriers", "transport"));
    SYNC_REQUIRE_OK(
        store.Put("interviews", interview, {{"participant", participant}, {"phase", "post_exit"}}));
    SYNC_REQUIRE_OK(
        store.Put("job_fairs", fair_north,
                  {{"name", "Forum emploi Lille"}, {"territory", kNorth}, {"sector", "retail"}}));
    SYNC_REQUIRE_OK(store.Put("job_fairs", fair_south,
                              {{"name", "Forum emploi Nîmes"}, {"territory", kSouth}}));
  }
};

FieldValue FieldOf(Tablet& tablet, const std::string& collection, const std::string& id,
                   const std::string& field) {
  Result<Record> record = tablet->Get(collection, id);
  SYNC_REQUIRE_OK(record);
  REQUIRE(record->fields.count(field) == 1);
  return record->fields.at(field);
}

}  // namespace

TEST_CASE(
    "Tablets on a newer schema sync through carnet-server on the previous one, an older "
    "tablet with them",
    "[server][versions][process]") {
  TempDir dir;
  TestStore store{dir};
  const std::vector<std::string> tokens = {
      EnrollWithCommand(dir, store.spec(), "tab-new", "adviser-a", kNorth),
      EnrollWithCommand(dir, store.spec(), "tab-new2", "adviser-b", kNorth),
      EnrollWithCommand(dir, store.spec(), "tab-old", "adviser-c", kNorth),
      EnrollWithCommand(dir, store.spec(), "tab-south", "adviser-d", kSouth)};
  ServerProcess server{CARNET_SERVER_BINARY, store.spec(), dir.File("server.log")};
  Tablet newer{dir, "tab-new", kTabletStartMs, 3, 0, &NewerSchema()};
  Tablet newer2{dir, "tab-new2", kTabletStartMs, 5, 0, &NewerSchema()};
  Tablet older{dir, "tab-old", kTabletStartMs, 7};
  Tablet south{dir, "tab-south", kTabletStartMs, 11, 0, &NewerSchema()};
  Tablet* tablets[] = {&newer, &newer2, &older, &south};
  for (size_t i = 0; i < 4; ++i) {
    tablets[i]->Connect(server.url(), ServerSyncOptions(tokens[i]));
  }

  NewerRecords made(newer.store(), "adviser-a");
  RequireSynced(newer);
  CHECK(newer.Pending() == 0);

  // The older tablet receives all of it in its territory, applied whole.
  RequireSynced(older);
  FieldValue phase = FieldOf(older, "participants", made.participant, "phase");
  CHECK(phase.value == "post_exit");
  CHECK(phase.unknown);
  CHECK(FieldOf(older, "participants", made.participant, "preferred_language").value == "occitan");
  CHECK(FieldOf(older, "participants", made.participant, "barriers").elements ==
        std::vector<std::string>{"transport"});
  CHECK(FieldOf(older, "interviews", made.interview, "phase").value == "post_exit");
  CHECK(FieldOf(older, "job_fairs", made.fair_north, "name").value == "Forum emploi Lille");
  CHECK_FALSE(Holds(older, "job_fairs", made.fair_south));
  // It goes on with what it knows, beside what it does not.
  SYNC_REQUIRE_OK(older->Set("participants", made.participant, "first_name", "Nadia-Rose"));
  SYNC_REQUIRE_OK(older->Set("interviews", made.interview, "place", "company"));
  RequireSynced(older);

  RequireSynced(newer2);
  RequireSynced(newer);
  RequireSynced(south);
  CHECK(newer2.Dump() == newer.Dump());
  CHECK(older.Dump() == newer.Dump());
  CHECK(FieldOf(newer2, "participants", made.participant, "first_name").value == "Nadia-Rose");
  Result<Record> on_newer2 = newer2->Get("participants", made.participant);
  SYNC_REQUIRE_OK(on_newer2);
  for (const auto& [name, field] : on_newer2->fields) {
    INFO(name);
    CHECK_FALSE(field.unknown);
  }
  CHECK(FieldOf(newer2, "interviews", made.interview, "place").value == "company");
  CHECK(FieldOf(newer2, "job_fairs", made.fair_north, "sector").value == "retail");
  // The server, not knowing job fairs, scopes them by their territory.
  CHECK(Holds(south, "job_fairs", made.fair_south));
  CHECK_FALSE(Holds(south, "job_fairs", made.fair_north));
  CHECK_FALSE(Holds(south, "participants", made.participant));
}

TEST_CASE("A tablet on the previous schema syncs with a server on the newer one",
          "[server][versions]") {
  ServerStoreOptions options;
  options.schema = &NewerSchema();
  ServerFixture server(options);
  Tablet newer{server.dir(), "tab-new", server.env().NowMillis(), 3, 0, &NewerSchema()};
  Tablet older{server.dir(), "tab-old", server.env().NowMillis(), 7};
  newer.Connect(server.url(), ServerSyncOptions(server.Enroll("tab-new", "adviser-a", {kNorth})));
  older.Connect(server.url(), ServerSyncOptions(server.Enroll("tab-old", "adviser-c", {kNorth})));

  NewerRecords made(newer.store(), "adviser-a");
  RequireSynced(newer);
  RequireSynced(older);
  CHECK(FieldOf(older, "participants", made.participant, "phase").unknown);
  CHECK(FieldOf(older, "job_fairs", made.fair_north, "name").unknown);
  // Concurrent: the older tablet moves the participant to a phase it knows, the newer one keeps
  // the new phase; both read the same winner and the same conflict.
  older.env().Advance(1'000);
  newer.env().Advance(2'000);
  SYNC_REQUIRE_OK(older->Set("participants", made.participant, "phase", "job_search"));
  SYNC_REQUIRE_OK(newer->Set("participants", made.participant, "phase", "post_exit"));
  SYNC_REQUIRE_OK(newer->Add("participants", made.participant, "barriers", "housing"));
  RequireSynced(older);
  RequireSynced(newer);
  RequireSynced(older);
  CHECK(older.Dump() == newer.Dump());
  CHECK_IN_SCOPE(server, older);
  FieldValue on_older = FieldOf(older, "participants", made.participant, "phase");
  FieldValue on_newer = FieldOf(newer, "participants", made.participant, "phase");
  CHECK(on_older.value == on_newer.value);
  CHECK(on_older.in_conflict);
  CHECK(on_newer.in_conflict);
}

TEST_CASE("What the server cannot merge is refused as update needed and stays in the outbox",
          "[server][versions]") {
  ServerFixture server;
  Tablet tablet{server.dir(), "tab-new", server.env().NowMillis(), 3};
  const std::string token = server.Enroll("tab-new", "adviser-a", {kNorth});
  // A newer build's operation kind, made on the way out.
  auto hooked = std::make_unique<HookedTransport>(
      CurlTo(server.url()), [](int, const HttpRequest& request, Transport& real) {
        if (request.path != "/v1/push") return real.Post(request);
        std::optional<wire::Format> format = wire::FormatFromContentType([&] {
          for (const auto& [name, value] : request.headers) {
            if (name == "Content-Type") return value;
          }
          return std::string();
        }());
        REQUIRE(format.has_value());
        wire::PushRequest push;
        SYNC_REQUIRE_OK(wire::Decode(request.body, *format, &push));
        push.ops.front().kind = static_cast<OpKind>(9);
        Result<std::string> body = wire::Encode(push, *format);
        SYNC_REQUIRE_OK(body);
        HttpRequest changed = request;
        changed.body = *body;
        return real.Post(changed);
      });
  SyncClient client(&tablet.store(), &tablet.env(), std::move(hooked), ServerSyncOptions(token));
  SYNC_REQUIRE_OK(tablet->Set("participants", "p1", "phase", "assessment"));

  Status synced = client.SyncNow();
  INFO(synced.ToString());
  CHECK(synced.code() == StatusCode::kUpdateNeeded);
  CHECK_FALSE(synced.retryable());
  CHECK(tablet.Pending() == 1);
  CHECK(server.ScopeDump("tab-new").empty());
}

TEST_CASE_METHOD(ScriptedFixture,
                 "A pulled entry of a kind this build cannot merge stops the sync as update "
                 "needed, nothing of its batch applied",
                 "[server][versions]") {
  const Stamp stamp{MakeHlc(tablet.env().NowMillis(), 0), "tab-new"};
  Entry known{EntryKey{"participants", "p1", "first_name", "", stamp},
              FieldKind::kRegister,
              true,
              "Nadia",
              {}};
  Entry strange{EntryKey{"participants", "p1", "scores", "", stamp},
                static_cast<FieldKind>(3),
                true,
                "12",
                {}};
  server.Otherwise("/v1/push", AcknowledgePush(&tablet.env()));
  server.Otherwise("/v1/pull", PullAnswer(&tablet.env(), {known, strange}, 2));
  tablet.Connect(server.url());

  Status synced = tablet.client().SyncNow();
  INFO(synced.ToString());
  CHECK(synced.code() == StatusCode::kUpdateNeeded);
  CHECK_THAT(synced.message(), Catch::Contains("update the app"));
  CHECK_FALSE(tablet.store().GetSyncState("pull_cursor").value().has_value());
  CHECK(tablet->Get("participants", "p1").status().code() == StatusCode::kNotFound);
  CHECK(server.requests("/v1/pull").size() == 1);  // not retried: retrying cannot help
}
