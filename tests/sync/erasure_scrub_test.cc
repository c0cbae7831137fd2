// An erasure is done only when the store's files no longer hold what it removed
// (sync/SECURITY.md, Erasure): on SQLite, a reader holding the WAL (a backup) keeps the old pages
// in the main file until a checkpoint gets past it. carnet-server says so and exits 4; a later
// erasure-status scrubs and shows it. Real processes on 127.0.0.1, SQLite only.
#include <sqlite3.h>

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

constexpr const char* kLastName = "Quintard-Lefebvre";
constexpr const char* kHealthNote = "Mme Q. suit un traitement pour une hepatite C";

// A connection of its own on the server's file holding a read transaction open, as a backup
// reading the file page by page does.
class HeldReader {
 public:
  explicit HeldReader(const std::string& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    // What the tablet pushed goes from the WAL to the main file, as it would have by the time
    // of an erasure ordered days later.
    REQUIRE(Exec("PRAGMA wal_checkpoint(TRUNCATE)"));
    REQUIRE(Exec("BEGIN"));
    REQUIRE(Exec("SELECT count(*) FROM entries"));  // the snapshot starts at the first read
  }
  ~HeldReader() { Close(); }
  void Close() {
    if (db_ == nullptr) return;
    Exec("COMMIT");
    sqlite3_close(db_);
    db_ = nullptr;
  }

 private:
  bool Exec(const char* sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) return false;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE;
  }
  sqlite3* db_ = nullptr;
};

}  // namespace

TEST_CASE("An erasure blocked by a reader of the SQLite file is reported not yet scrubbed, and "
          "erasure-status scrubs it once the reader is gone",
          "[server][erasure][security][sqlite]") {
  if (TestingPostgres()) return;  // PostgreSQL: VACUUM, sync/SECURITY.md
  TempDir dir;
  TestStore store{dir};
  const std::string token = EnrollWithCommand(dir, store.spec(), "tab-a", "adviser-a", kNorth);
  ProcessTls tls{dir};
  ServerProcess process{CARNET_SERVER_BINARY, store.spec(), dir.File("server.log"), tls.server()};
  Tablet a{dir, "tab-a", kTabletStartMs, 3};
  a.Connect(process.url(), ServerSyncOptions(token), 0, tls.ca_file());
  const std::string workshop = AddWorkshop(a.store(), kNorth);
  const ParticipantFile x = AddParticipant(a.store(), "adviser-a", kNorth, workshop);
  SYNC_REQUIRE_OK(a->Set("participants", x.participant, "last_name", kLastName));
  SYNC_REQUIRE_OK(a->Append("interviews", x.interview, "notes", kHealthNote));
  RequireSynced(a);

  const std::string path = store.spec().substr(7);
  auto files = [&] { return FileBytes({path, path + "-wal"}); };
  auto command = [&](std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--store", store.spec()});
    return RunServerCommand(dir, args);
  };
  HeldReader backup(path);
  REQUIRE(HasBytes(FileBytes({path}), kLastName));

  // The default wait, 10 seconds, passes with the reader still there.
  CommandResult erased = command({"erase", "--participant", x.participant, "--by", "dpo"});
  INFO(erased.out);
  CHECK(erased.exit_code == 4);
  CHECK(HasBytes(erased.out, "recorded but not yet scrubbed"));
  // The honest answer: the name is still in the file while the reader holds it.
  CHECK(HasBytes(files(), kLastName));
  CommandResult pending = command({"erasure-status", "--participant", x.participant});
  INFO(pending.out);
  CHECK(pending.exit_code == 0);
  CHECK(HasBytes(pending.out, "not yet scrubbed"));

  backup.Close();
  CommandResult status = command({"erasure-status", "--participant", x.participant});
  INFO(status.out);
  CHECK(status.exit_code == 0);
  CHECK(HasBytes(status.out, "  scrubbed "));
  CHECK(!HasBytes(status.out, "not yet scrubbed"));
  const std::string bytes = files();
  CHECK(!HasBytes(bytes, kLastName));
  CHECK(!HasBytes(bytes, kHealthNote));
}
