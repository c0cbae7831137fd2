// Weeks offline: a tablet that stays away 40 days (test clocks) while its colleagues delete
// records and the server purges what they all acknowledged. Tombstones outside its scope go
// without waiting for it; those in its scope wait until it has pulled them.
#include <catch2/catch.hpp>

#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

constexpr int64_t kDayMs = 24 * 3600 * 1000;

bool ServerHolds(ServerFixture& server, const std::string& record) {
  return server.ScopeDump("").find(record) != std::string::npos;
}

// Adviser a works in the north; advisers d and b share the south. b's tablet goes offline for 40
// days, with edits of its own, while a deletes an interview in the north and d one in the south.
struct FortyDays {
  ServerFixture server;
  std::unique_ptr<Tablet> a = server.Join("tab-a", "adviser-a", {kNorth});
  std::unique_ptr<Tablet> d = server.Join("tab-d", "adviser-d", {kSouth});
  std::unique_ptr<Tablet> b = server.Join("tab-b", "adviser-b", {kSouth});
  ParticipantFile north = AddParticipant(a->store(), "adviser-a", kNorth, "w-n");
  ParticipantFile deleted = AddParticipant(d->store(), "adviser-d", kSouth, "w-s");
  ParticipantFile kept = AddParticipant(d->store(), "adviser-d", kSouth, "w-s");
  bool north_purged_while_offline = false;
  bool south_kept_while_offline = true;

  FortyDays() {
    SyncTwice({a.get(), d.get(), b.get()});
    // Offline from here: b writes a note, and edits the interview d is about to delete.
    SYNC_REQUIRE_OK(b->store().Append("interviews", kept.interview, "notes", "home visit"));
    SYNC_REQUIRE_OK(b->store().Set("interviews", deleted.interview, "place", "home"));
    SYNC_REQUIRE_OK(a->store().Delete("interviews", north.interview));
    SYNC_REQUIRE_OK(d->store().Delete("interviews", deleted.interview));
    // Forty days in steps of ten: a and d sync, and the server purges, at each step.
    for (int day = 10; day <= 40; day += 10) {
      Advance(10 * kDayMs);
      SyncTwice({a.get(), d.get()});
      Result<uint64_t> purged = server.store().Purge();
      SYNC_REQUIRE_OK(purged);
      if (day == 40) {
        north_purged_while_offline = !ServerHolds(server, north.interview);
        south_kept_while_offline = ServerHolds(server, deleted.interview);
      }
    }
  }

  void Advance(int64_t ms) {
    server.env().Advance(ms);
    for (Tablet* t : {a.get(), d.get(), b.get()}) t->env().Advance(ms);
  }

  // A pull acknowledges what the previous one brought: two syncs leave a tablet acknowledged.
  static void SyncTwice(const std::vector<Tablet*>& tablets) {
    for (int round = 0; round < 2; ++round) {
      for (Tablet* t : tablets) RequireSynced(*t);
    }
  }

  // b comes back; everyone syncs until the server has purged what they all acknowledged.
  void BringBackB() {
    for (int round = 0; round < 3; ++round) {
      SyncTwice({b.get(), d.get(), a.get()});
      SYNC_REQUIRE_OK(server.store().Purge());
    }
    SyncTwice({b.get(), d.get(), a.get()});
  }
};

}  // namespace

TEST_CASE("Tombstones outside an offline tablet's scope are purged without waiting for it",
          "[sync][server][purge]") {
  FortyDays f;

  CHECK(f.north_purged_while_offline);
  CHECK_FALSE(Holds(*f.a, "interviews", f.north.interview));
  CHECK(f.a->Dump().find(f.north.interview) == std::string::npos);
}

TEST_CASE("Tombstones in an offline tablet's scope are kept until it has acknowledged them",
          "[sync][server][purge]") {
  FortyDays f;
  REQUIRE(f.south_kept_while_offline);

  f.BringBackB();

  CHECK_FALSE(ServerHolds(f.server, f.deleted.interview));
  // Purged, then forgotten by every tablet that held it.
  CHECK(f.b->Dump().find(f.deleted.interview) == std::string::npos);
  CHECK(f.d->Dump().find(f.deleted.interview) == std::string::npos);
}

TEST_CASE("A tablet back after 40 days offline pushes its edits and nothing deleted comes back",
          "[sync][server][purge]") {
  FortyDays f;

  f.BringBackB();

  CHECK(f.b->Pending() == 0);
  CHECK(NotesOf(*f.d, f.kept.interview) ==
        std::vector<std::string>{"first interview", "home visit"});
  for (Tablet* t : {f.a.get(), f.b.get(), f.d.get()}) {
    INFO(t->store().device_id());
    CHECK_FALSE(Holds(*t, "interviews", f.deleted.interview));
    CHECK_FALSE(Holds(*t, "interviews", f.north.interview));
    CHECK_IN_SCOPE(f.server, *t);
  }
  CHECK_FALSE(ServerHolds(f.server, f.deleted.interview));
  CHECK_FALSE(ServerHolds(f.server, f.north.interview));
}

TEST_CASE("A push retried after its reply was lost brings back nothing the purge removed",
          "[sync][server][purge]") {
  ServerFixture server;
  auto office = server.Join("tab-office", "office", {kNorth});
  auto a = server.Join("tab-a", "adviser-a", {kNorth});
  // An interview whose participant is not known yet: in nobody's scope, held by no tablet.
  const std::string interview = office->store().NewId();
  SYNC_REQUIRE_OK(office->store().Put("interviews", interview, {{"place", "office"}}));
  RequireSynced(*office);
  // Tablet a edits it; the server applies the push, but the reply is lost on the way back.
  SYNC_REQUIRE_OK(a->store().Set("interviews", interview, "place", "home"));
  RawReply lost = RawClient(server.port(), server.Token("tab-a"))
                      .Send("/v1/push", wire::PushRequest{wire::kProtocolVersion, "tab-a", "", 0,
                                                          a->Outbox()});
  REQUIRE(lost.status == 200);
  // The office deletes it, and the server purges what everyone has acknowledged.
  SYNC_REQUIRE_OK(office->store().Delete("interviews", interview));
  RequireSynced(*office);
  RequireSynced(*office);
  SYNC_REQUIRE_OK(server.store().Purge());

  // Tablet a pushes its outbox again, then everyone syncs and the server purges again.
  for (int round = 0; round < 2; ++round) {
    RequireSynced(*a);
    RequireSynced(*office);
    SYNC_REQUIRE_OK(server.store().Purge());
  }

  CHECK(a->Pending() == 0);
  CHECK_FALSE(ServerHolds(server, interview));
}
