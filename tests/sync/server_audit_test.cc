// The audit log (sync/SECURITY.md, Audit) with real processes on 127.0.0.1: carnet-server serves
// the tablets, and its command line enrolls them, purges, prints the log and checks its chain.
// On SQLite, and on PostgreSQL under the pg label; the log is then altered behind the server's
// back, as only someone holding the database could.
#include <chrono>
#include <thread>

#include <catch2/catch.hpp>

#include "carnet/audit.h"
#include "tests/sync/audit_helpers.h"
#include "tests/sync/process_tls.h"
#include "tests/sync/server_process.h"
#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

// What an adviser writes in a note: it must reach the server and never its log.
constexpr const char* kSentence = "Mme Lefebvre confie une depression depuis son licenciement";

// carnet-server on a fresh store, with two tablets of the north enrolled through its command
// line: a (adviser-a) and b (adviser-b).
struct AuditedServer {
  TempDir dir;
  TestStore store{dir};
  std::string token_a = EnrollCli(spec(), "tab-a", "adviser-a", kNorth);
  std::string token_b = EnrollCli(spec(), "tab-b", "adviser-b", kNorth);
  ProcessTls tls{dir};
  std::unique_ptr<ServerProcess> process;
  Tablet a{dir, "tab-a", kTabletStartMs, 3};
  Tablet b{dir, "tab-b", kTabletStartMs, 5};
  ParticipantFile file;
  int64_t between_ms = 0;  // after a's sync, before b's

  AuditedServer() { Start(); }

  const std::string& spec() const { return store.spec(); }

  void Start() {
    process = std::make_unique<ServerProcess>(CARNET_SERVER_BINARY, spec(), dir.File("server.log"),
                                              tls.server());
    a.Connect(process->url(), ServerSyncOptions(token_a), 0, tls.ca_file());
    b.Connect(process->url(), ServerSyncOptions(token_b), 0, tls.ca_file());
  }
  // The SQLite store is one process's: a command that numbers changes (a purge) runs while the
  // server is stopped.
  void Stop() { process->Stop(); }

  // a makes a participant's file, with the sentence among the interview's notes, and syncs; then
  // b syncs and receives the file.
  void SyncAFile() {
    file = AddParticipant(a.store(), "adviser-a", kNorth, "w-1");
    SYNC_REQUIRE_OK(a->Append("interviews", file.interview, "notes", kSentence));
    RequireSynced(a);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    between_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    RequireSynced(b);
    REQUIRE(b.Dump().find(kSentence) != std::string::npos);
  }

  CliResult Verify(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"audit", "--store", spec(), "--verify"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(args);
  }

  // The stored rows, read through the store's interface in this process.
  std::vector<AuditRow> Rows() {
    TestEnv env(kTabletStartMs, 7);
    Result<std::unique_ptr<ServerStore>> opened = OpenServerStore(spec(), {&env});
    SYNC_REQUIRE_OK(opened);
    Result<std::vector<AuditRow>> rows = (*opened)->ReadAudit({}, 0, 100'000);
    SYNC_REQUIRE_OK(rows);
    return *rows;
  }
};

// The lines whose members include all of `want`.
AuditLines Matching(const AuditLines& lines, const std::map<std::string, std::string>& want) {
  AuditLines found;
  for (const auto& line : lines) {
    bool all = true;
    for (const auto& [name, value] : want) {
      auto it = line.find(name);
      all = all && it != line.end() && it->second == value;
    }
    if (all) found.push_back(line);
  }
  return found;
}

}  // namespace

TEST_CASE("The audit log holds who pushed and pulled which record and field, never a value",
          "[server][audit]") {
  AuditedServer s;
  s.SyncAFile();
  const ParticipantFile& f = s.file;

  std::string raw;
  const AuditLines log = AuditCli(s.spec(), {}, &raw);
  INFO(raw);
  // a's push: each field it wrote, by kind of operation, with how many operations.
  auto pushed = [&](const std::string& action, const std::string& collection,
                    const std::string& record, const std::string& field) {
    return Matching(log, {{"device", "tab-a"}, {"adviser", "adviser-a"}, {"action", action},
                          {"collection", collection}, {"record", record}, {"field", field}});
  };
  REQUIRE(pushed("write", "interviews", f.interview, "place").size() == 1);
  CHECK(pushed("write", "interviews", f.interview, "place")[0].at("count") == "1");
  REQUIRE(pushed("append", "interviews", f.interview, "notes").size() == 1);
  CHECK(pushed("append", "interviews", f.interview, "notes")[0].at("count") == "2");
  CHECK(pushed("write", "participants", f.participant, "referent").size() == 1);
  CHECK(pushed("add", "participants", f.participant, "barriers").size() == 1);
  CHECK(pushed("write", "exits", f.exit, "category").size() == 1);
  // b's pull: every record of the file, as a whole.
  for (const auto& [collection, record] : f.Records()) {
    INFO(collection << " " << record);
    AuditLines read = Matching(log, {{"device", "tab-b"}, {"adviser", "adviser-b"},
                                     {"action", "read"}, {"collection", collection},
                                     {"record", record}, {"field", ""}});
    REQUIRE(read.size() == 1);
    CHECK(std::stoi(read[0].at("count")) >= 1);
  }
  // b pushed nothing.
  CHECK(Matching(log, {{"device", "tab-b"}, {"action", "write"}}).empty());
  // Neither values nor set elements, in the printout or in the table.
  const std::string table = AuditTableText(s.spec());
  REQUIRE(!table.empty());
  for (const char* value : {kSentence, "first interview", "Camille", "Martin", "mobility",
                            "driving licence", "Boulangerie"}) {
    INFO(value);
    CHECK(raw.find(value) == std::string::npos);
    CHECK(table.find(value) == std::string::npos);
  }
}

TEST_CASE("carnet-server audit prints the rows of a device, of a record, or since a time",
          "[server][audit]") {
  AuditedServer s;
  s.SyncAFile();
  const AuditLines log = AuditCli(s.spec());
  REQUIRE(!log.empty());

  const AuditLines of_b = AuditCli(s.spec(), {"--device", "tab-b"});
  CHECK(of_b.size() == Matching(log, {{"device", "tab-b"}}).size());
  CHECK(Matching(of_b, {{"device", "tab-b"}}).size() == of_b.size());

  const AuditLines of_interview = AuditCli(s.spec(), {"--record", s.file.interview});
  CHECK(of_interview.size() == Matching(log, {{"record", s.file.interview}}).size());
  CHECK_FALSE(Matching(of_interview, {{"device", "tab-a"}}).empty());
  CHECK_FALSE(Matching(of_interview, {{"device", "tab-b"}}).empty());

  // Only b's pull came after a's sync.
  const AuditLines since = AuditCli(s.spec(), {"--since", std::to_string(s.between_ms)});
  CHECK(since.size() == of_b.size());
  CHECK(Matching(since, {{"device", "tab-b"}}).size() == since.size());
  CHECK(AuditCli(s.spec(), {"--since", "2999-01-01"}).empty());
  CHECK(AuditCli(s.spec(), {"--since", "2000-01-01T00:00:00Z"}).size() == log.size());
  // Ids follow one another from 1.
  for (size_t i = 0; i < log.size(); ++i) CHECK(log[i].at("id") == std::to_string(i + 1));
}

TEST_CASE("carnet-server audit --verify passes on an intact log and names the row altered",
          "[server][audit]") {
  AuditedServer s;
  s.SyncAFile();
  const size_t rows = AuditCli(s.spec()).size();
  REQUIRE(rows > 10);
  CliResult intact = s.Verify();
  INFO(intact.out << intact.err);
  REQUIRE(intact.exit_code == 0);
  CHECK(intact.out.find("audit log intact: " + std::to_string(rows) + " rows; head " +
                        std::to_string(rows) + ":") != std::string::npos);

  SECTION("a row's content") {
    Tamper(s.spec(), "UPDATE audit SET device = 'tab-b' WHERE id = 4");
    CliResult broken = s.Verify();
    INFO(broken.out << broken.err);
    CHECK(broken.exit_code == 3);
    CHECK(broken.err.find("audit log broken at row 4: row 4 does not match its hash") !=
          std::string::npos);
  }
  SECTION("a row's content and its hash: the next row no longer follows it") {
    std::vector<AuditRow> stored = s.Rows();
    AuditRow row = stored[3];
    row.record = s.file.exit;
    const std::string forged = AuditHash(stored[2].hash, row);
    Tamper(s.spec(), "UPDATE audit SET record = '" + row.record + "', hash = '" + forged +
                         "' WHERE id = 4");
    CliResult broken = s.Verify();
    INFO(broken.out << broken.err);
    CHECK(broken.exit_code == 3);
    CHECK(broken.err.find("audit log broken at row 5:") != std::string::npos);
  }
  SECTION("a row removed") {
    Tamper(s.spec(), "DELETE FROM audit WHERE id = 2");
    CliResult broken = s.Verify();
    INFO(broken.out << broken.err);
    CHECK(broken.exit_code == 3);
    CHECK(broken.err.find("audit log broken at row 2: row 2 is missing") != std::string::npos);
  }
  SECTION("the last rows removed") {
    Tamper(s.spec(), "DELETE FROM audit WHERE id > " + std::to_string(rows - 2));
    CliResult broken = s.Verify();
    INFO(broken.out << broken.err);
    CHECK(broken.exit_code == 3);
    CHECK(broken.err.find("audit log broken at row " + std::to_string(rows - 1) + ": rows " +
                          std::to_string(rows - 1) + " to " + std::to_string(rows) +
                          " are missing: the log was cut") != std::string::npos);
  }
  SECTION("the last row rewritten with its hash and the head: only an anchor tells") {
    const size_t head = intact.out.find("head ") + 5;
    const std::string anchor = intact.out.substr(head, intact.out.find('\n') - head);
    std::vector<AuditRow> stored = s.Rows();
    AuditRow row = stored.back();
    row.device = "tab-x";
    row.adviser = "adviser-x";
    const std::string forged = AuditHash(stored[stored.size() - 2].hash, row);
    Tamper(s.spec(), "UPDATE audit SET device = 'tab-x', adviser = 'adviser-x', hash = '" +
                         forged + "' WHERE id = " + std::to_string(row.id) +
                         "; UPDATE audit_head SET hash = '" + forged + "'");
    CliResult fooled = s.Verify();
    INFO(fooled.out << fooled.err);
    CHECK(fooled.exit_code == 0);
    CliResult anchored = s.Verify({"--anchor", anchor});
    INFO(anchored.out << anchored.err);
    CHECK(anchored.exit_code == 3);
    CHECK(anchored.err.find("audit log broken at row " + std::to_string(rows) + ": row " +
                            std::to_string(rows) + " no longer holds the anchor's hash") !=
          std::string::npos);
  }
}

TEST_CASE("The store refuses to change or remove a row of its audit log", "[server][audit]") {
  AuditedServer s;
  s.SyncAFile();
  const size_t rows = AuditCli(s.spec()).size();

  for (const char* sql :
       {"UPDATE audit SET device = 'tab-b' WHERE id = 1", "UPDATE audit SET hash = '' WHERE id = 1",
        "DELETE FROM audit WHERE id = 1", "DELETE FROM audit", "UPDATE audit_head SET last_id = 1",
        "DELETE FROM audit_head"}) {
    INFO(sql);
    const std::string error = TrySql(s.spec(), sql);
    CHECK(error.find("audit log") != std::string::npos);
  }
  if (!IsSqliteSpec(s.spec())) {
    CHECK(TrySql(s.spec(), "TRUNCATE audit").find("append-only") != std::string::npos);
    CHECK(TrySql(s.spec(), "TRUNCATE audit_head").find("append-only") != std::string::npos);
  }
  CHECK(AuditCli(s.spec()).size() == rows);
  CliResult intact = s.Verify();
  INFO(intact.out << intact.err);
  CHECK(intact.exit_code == 0);
}

TEST_CASE("A guard dropped or disabled behind the server's back is back when the store opens",
          "[server][audit]") {
  AuditedServer s;
  s.SyncAFile();
  const std::string update = "UPDATE audit SET device = 'tab-b' WHERE id = 1";
  const std::string off = IsSqliteSpec(s.spec())
                              ? "DROP TRIGGER audit_no_update"
                              : "ALTER TABLE audit DISABLE TRIGGER audit_append_only";
  REQUIRE(TrySql(s.spec(), off) == "");
  REQUIRE(RunCli({"devices", "--store", s.spec()}).exit_code == 0);  // opens the store

  CHECK(TrySql(s.spec(), update).find("append-only") != std::string::npos);
}

TEST_CASE("The purge erases a deleted record and keeps its audit rows", "[server][audit]") {
  AuditedServer s;
  s.SyncAFile();
  const std::string interview = s.file.interview;
  SYNC_REQUIRE_OK(s.a->Delete("interviews", interview));
  bool erased = false;
  for (int round = 0; round < 6 && !erased; ++round) {
    for (Tablet* t : {&s.a, &s.b}) RequireSynced(*t);
    s.Stop();
    CliResult purge = RunCli({"purge", "--store", s.spec()});
    INFO(purge.err);
    REQUIRE(purge.exit_code == 0);
    s.Start();
    CliResult dump = RunCli({"dump", "--store", s.spec()});
    REQUIRE(dump.exit_code == 0);
    erased = dump.out.find(interview) == std::string::npos;
  }
  REQUIRE(erased);
  for (Tablet* t : {&s.a, &s.b}) RequireSynced(*t);

  const AuditLines log = AuditCli(s.spec(), {"--record", interview});
  CHECK(Matching(log, {{"device", "tab-a"}, {"action", "write"}, {"field", "place"}}).size() == 1);
  CHECK(Matching(log, {{"device", "tab-a"}, {"action", "delete"}, {"field", ""}}).size() == 1);
  CHECK_FALSE(Matching(log, {{"device", "tab-b"}, {"action", "read"}}).empty());
  CHECK_FALSE(Matching(log, {{"device", "tab-b"}, {"action", "forget"}}).empty());
  CliResult intact = s.Verify();
  INFO(intact.out << intact.err);
  CHECK(intact.exit_code == 0);
}

TEST_CASE("carnet-server audit refuses a filter with --verify and a malformed --since",
          "[server][audit]") {
  TempDir dir;
  TestStore store(dir);
  CHECK(RunCli({"audit", "--store", store.spec(), "--verify", "--device", "tab-a"}).exit_code ==
        2);
  CHECK(RunCli({"audit", "--store", store.spec(), "--since", "yesterday"}).exit_code == 2);
  CHECK(RunCli({"audit", "--store", store.spec(), "--anchor", "3:abc"}).exit_code == 2);
  CliResult empty = RunCli({"audit", "--store", store.spec(), "--verify"});
  INFO(empty.err);
  CHECK(empty.exit_code == 0);
  CHECK(empty.out == "audit log intact: 0 rows; head 0:\n");
}
