// Encryption at rest (core/ENCRYPTION.md) and the offline lease: what a lost tablet's files hold,
// what a store opens with, what erasing a participant's key takes away.
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "tests/core/store_helpers.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

constexpr int64_t kDayMs = 86'400'000;

// Sentences an adviser may type, each found nowhere else in a store.
const char* const kNote = "Madame Arnaud craint de perdre son logement avant l'hiver";
const char* const kHealthNote = "Suivi psychiatrique au CMP de Quimper depuis mars";
const char* const kRevision = "Traitement contre la dépression, arrêt de travail prolongé";
const char* const kPulledNote = "Son fils est placé en foyer depuis la rentrée";
const char* const kPulledHealth = "Diabète de type 1 découvert lors de l'hospitalisation";
// Answers and elements of class H: distinctive enough to search for in raw bytes.
const char* const kAnswer = "declined";
const char* const kBarrier = "childcare";

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Every file of the store (the database, its WAL and shared memory, a rollback journal), by
// name, with its bytes.
std::map<std::string, std::string> StoreFiles(const std::string& db_path) {
  std::map<std::string, std::string> files;
  const std::filesystem::path db(db_path);
  for (const auto& file : std::filesystem::directory_iterator(db.parent_path())) {
    const std::string name = file.path().filename().string();
    if (name.rfind(db.filename().string(), 0) == 0) files[name] = ReadFile(file.path());
  }
  return files;
}

// The files (and sentences) in which a sentence appears: empty when none holds any.
std::string Leaks(const std::string& db_path, const std::vector<std::string>& sentences) {
  std::string leaks;
  for (const auto& [name, bytes] : StoreFiles(db_path)) {
    for (const std::string& sentence : sentences) {
      if (bytes.find(sentence) != std::string::npos) leaks += name + ": " + sentence + "\n";
    }
  }
  return leaks;
}

// Runs SQL on the store's file through a connection of the test's own.
void RawSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  INFO(sql << " -> " << message);
  REQUIRE(rc == SQLITE_OK);
}

std::string RawValue(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::string value;
  if (sqlite3_step(st) == SQLITE_ROW) {
    const void* data = sqlite3_column_blob(st, 0);
    value.assign(static_cast<const char*>(data), sqlite3_column_bytes(st, 0));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return value;
}

// A participant with an interview (a note, a health note and its revision), an entry
// situation with a health answer, and a health barrier: every kind of sealed value.
void WriteCaseload(Store& store, const std::string& p) {
  REQUIRE_OK(store.Put("participants", p, {{"first_name", "Lucie"}, {"phase", "job_search"}}));
  REQUIRE_OK(store.Add("participants", p, "barriers", kBarrier));
  REQUIRE_OK(store.Put("interviews", "i-" + p, {{"participant", p}, {"place", "office"}}));
  REQUIRE_OK(store.Append("interviews", "i-" + p, "notes", kNote));
  Result<Stamp> health = store.Append("interviews", "i-" + p, "health_notes", kHealthNote);
  REQUIRE_OK(health);
  REQUIRE_OK(store.Append("interviews", "i-" + p, "health_notes", kRevision, *health));
  // The health answer before the participant: the store writes the participant first.
  REQUIRE_OK(store.Put("entry_situations", "e-" + p,
                       {{"disability", kAnswer}, {"participant", p}, {"age_band", "25_54"}}));
}

void CheckCaseload(Store& store, const std::string& p) {
  Record participant = GetRecord(store, "participants", p);
  CHECK(participant.fields["barriers"].elements == std::vector<std::string>{kBarrier});
  Record interview = GetRecord(store, "interviews", "i-" + p);
  REQUIRE(interview.fields["notes"].entries.size() == 1);
  CHECK(interview.fields["notes"].entries[0].text == kNote);
  REQUIRE(interview.fields["health_notes"].entries.size() == 2);
  CHECK(interview.fields["health_notes"].entries[0].text == kHealthNote);
  CHECK(interview.fields["health_notes"].entries[1].text == kRevision);
  CHECK(interview.fields["health_notes"].entries[1].revises ==
        interview.fields["health_notes"].entries[0].stamp);
  CHECK(ValueOf(store, "entry_situations", "e-" + p, "disability") == kAnswer);
}

const std::vector<std::string> kLocalSentences = {kNote, kHealthNote, kRevision, kAnswer,
                                                  kBarrier};

}  // namespace

TEST_CASE_METHOD(OneTablet, "Notes, health notes and health answers typed on a tablet are in no file of its store",
                 "[core][crypto]") {
  WriteCaseload(a.store(), "p1");
  CheckCaseload(a.store(), "p1");

  // Not checkpointed: the WAL holds the pages written.
  REQUIRE(std::filesystem::file_size(a.options().path + "-wal") > 0);
  CHECK(Leaks(a.options().path, kLocalSentences) == "");
  // The outbox holds them too, sealed, and gives them back in clear for the push.
  std::vector<Operation> outbox = Outbox(a.store());
  CHECK(std::any_of(outbox.begin(), outbox.end(),
                    [](const Operation& op) { return op.value == kHealthNote; }));
  CHECK(std::any_of(outbox.begin(), outbox.end(),
                    [](const Operation& op) { return op.element == kBarrier; }));

  // Checkpointed into the database file, the store still open; then closed (the last
  // connection checkpoints and deletes the WAL).
  RawSql(a.options().path, "PRAGMA wal_checkpoint(TRUNCATE)");
  CHECK(Leaks(a.options().path, kLocalSentences) == "");
  a.Close();
  CHECK(!std::filesystem::exists(a.options().path + "-wal"));
  CHECK(Leaks(a.options().path, kLocalSentences) == "");

  // The data survives a reopen with the key store.
  a.Reopen();
  CheckCaseload(a.store(), "p1");
}

TEST_CASE("Without a key store the same sentences are in the file: the search finds them",
          "[core][crypto]") {
  TempDir dir;
  TestEnv env;
  StoreOptions options;
  options.path = dir.File("clear.db");
  options.device_id = "tab-clear";
  options.env = &env;
  std::unique_ptr<Store> store = OpenStore(options);
  WriteCaseload(*store, "p1");
  CHECK(Leaks(options.path, {kNote}) != "");
  CHECK(Leaks(options.path, {kHealthNote}) != "");
  CHECK(Leaks(options.path, {kAnswer}) != "");
  CHECK(Leaks(options.path, {kBarrier}) != "");
}

TEST_CASE_METHOD(OneTablet, "Notes and health data received from elsewhere are sealed too",
                 "[core][crypto]") {
  TestEnv& env = a.env();
  const Hlc hlc = MakeHlc(env.NowMillis() - 60'000, 0);
  auto entry = [&](const std::string& collection, const std::string& record,
                   const std::string& field, FieldKind kind, std::optional<std::string> value,
                   std::string element, uint32_t n) {
    return Entry{EntryKey{collection, record, field, std::move(element), Stamp{hlc + n, "tab-b"}},
                 kind, true, std::move(value), {}};
  };
  // A pull: the health note sorts before the participant field in the batch.
  REQUIRE_OK(a->ApplyPulled(
      {entry("interviews", "i9", "health_notes", FieldKind::kLog, kPulledHealth, "", 1),
       entry("interviews", "i9", "notes", FieldKind::kLog, kPulledNote, "", 2),
       entry("interviews", "i9", "participant", FieldKind::kRegister, "p9", "", 3),
       entry("participants", "p9", "barriers", FieldKind::kSet, std::nullopt, kBarrier, 4),
       entry("entry_situations", "e9", "disability", FieldKind::kRegister, kAnswer, "", 5)},
      {}, {{"pull_cursor", "5"}}));
  // Operations from another replica.
  Operation op;
  op.device = "tab-c";
  op.seq = 1;
  op.hlc = hlc + 10;
  op.kind = OpKind::kAppend;
  op.collection = "followups";
  op.record = "f1";
  op.field = "month_1_notes";
  op.value = kNote;
  REQUIRE_OK(a->ApplyRemote({op}));

  Record interview = GetRecord(a.store(), "interviews", "i9");
  CHECK(interview.fields["health_notes"].entries.at(0).text == kPulledHealth);
  CHECK(interview.fields["notes"].entries.at(0).text == kPulledNote);
  CHECK(GetRecord(a.store(), "participants", "p9").fields["barriers"].elements ==
        std::vector<std::string>{kBarrier});
  CHECK(ValueOf(a.store(), "entry_situations", "e9", "disability") == kAnswer);
  CHECK(GetRecord(a.store(), "followups", "f1").fields["month_1_notes"].entries.at(0).text == kNote);

  const std::vector<std::string> sentences = {kPulledHealth, kPulledNote, kNote, kAnswer, kBarrier};
  CHECK(Leaks(a.options().path, sentences) == "");
  RawSql(a.options().path, "PRAGMA wal_checkpoint(TRUNCATE)");
  CHECK(Leaks(a.options().path, sentences) == "");
}

TEST_CASE("A sealed store reads exactly as a store in clear that saw the same operations",
          "[core][crypto]") {
  TempDir dir;
  Replica sealed(dir, "tab-a");
  TestEnv env;
  StoreOptions options;
  options.path = dir.File("clear.db");
  options.device_id = "tab-b";
  options.env = &env;
  std::unique_ptr<Store> clear = OpenStore(options);
  WriteCaseload(sealed.store(), "p1");
  WriteCaseload(sealed.store(), "p2");
  REQUIRE_OK(sealed->Remove("participants", "p2", "barriers", kBarrier));
  REQUIRE_OK(sealed->Add("participants", "p2", "barriers", "language"));
  REQUIRE_OK(sealed->Set("entry_situations", "e-p1", "disability", "yes"));
  Deliver(sealed.store(), *clear);
  CHECK(Dump(sealed.store()) == Dump(*clear));
  CHECK(ConflictsText(sealed.store()) == ConflictsText(*clear));
  // And the other way round: what the clear store made, the sealed one merges and reads alike.
  REQUIRE_OK(clear->Set("entry_situations", "e-p2", "disability", "no"));
  REQUIRE_OK(clear->Append("interviews", "i-p2", "health_notes", kPulledHealth));
  Deliver(*clear, sealed.store());
  CHECK(Dump(sealed.store()) == Dump(*clear));
}

TEST_CASE_METHOD(OneTablet, "A sealed value moved to another place does not open, and says so",
                 "[core][crypto]") {
  WriteCaseload(a.store(), "p1");
  WriteCaseload(a.store(), "p2");
  REQUIRE_OK(a->Append("interviews", "i-p1", "notes", "second note"));
  a.Close();
  const std::string path = a.options().path;
  auto value_of = [&](const std::string& where) {
    return "(SELECT value FROM entries WHERE " + where + " LIMIT 1)";
  };

  SECTION("to another record") {
    RawSql(path, "UPDATE entries SET value = " +
                     value_of("record = 'i-p1' AND field = 'notes'") +
                     " WHERE record = 'i-p2' AND field = 'notes'");
    a.Reopen();
    Result<Record> moved = a->Get("interviews", "i-p2");
    CHECK(moved.status().code() == StatusCode::kCorruption);
    CHECK_THAT(moved.status().message(), Catch::Contains("moved or altered"));
    CHECK(a->List("interviews").status().code() == StatusCode::kCorruption);
    CHECK(a->CanonicalDump().status().code() == StatusCode::kCorruption);
    CHECK(a->Get("interviews", "i-p1").ok());
  }
  SECTION("to another field of the same record") {
    RawSql(path, "UPDATE entries SET value = " +
                     value_of("record = 'i-p1' AND field = 'health_notes'") +
                     " WHERE record = 'i-p1' AND field = 'notes'");
    a.Reopen();
    CHECK(a->Get("interviews", "i-p1").status().code() == StatusCode::kCorruption);
  }
  SECTION("to another entry of the same field (a swap of two notes)") {
    RawSql(path, "UPDATE entries SET value = " +
                     value_of("record = 'i-p1' AND field = 'notes' ORDER BY stamp DESC") +
                     " WHERE record = 'i-p1' AND field = 'notes' AND stamp = (SELECT MIN(stamp) FROM entries WHERE "
                     "record = 'i-p1' AND field = 'notes')");
    a.Reopen();
    CHECK(a->Get("interviews", "i-p1").status().code() == StatusCode::kCorruption);
  }
  SECTION("a health answer to another participant's record") {
    RawSql(path, "UPDATE entries SET value = " +
                     value_of("record = 'e-p1' AND field = 'disability'") +
                     " WHERE record = 'e-p2' AND field = 'disability'");
    a.Reopen();
    CHECK(a->Get("entry_situations", "e-p2").status().code() == StatusCode::kCorruption);
  }
  SECTION("altered in place") {
    RawSql(path, "UPDATE entries SET value = CAST(value AS BLOB) || x'00' "
                 "WHERE record = 'i-p1' AND field = 'health_notes'");
    a.Reopen();
    CHECK(a->Get("interviews", "i-p1").status().code() == StatusCode::kCorruption);
  }
  SECTION("an operation's value in the outbox to another operation") {
    RawSql(path, "UPDATE outbox SET value = (SELECT value FROM outbox WHERE field = 'notes' "
                 "AND record = 'i-p1' LIMIT 1) WHERE field = 'notes' AND record = 'i-p2'");
    a.Reopen();
    CHECK(a->PendingOperations(0, 100).status().code() == StatusCode::kCorruption);
  }
}

TEST_CASE_METHOD(OneTablet, "Erasing a participant's key makes their health data unreadable, and only theirs",
                 "[core][crypto][erasure]") {
  WriteCaseload(a.store(), "p1");
  WriteCaseload(a.store(), "p2");
  // A health note written before its interview named p1, and an interview of p1 moved to p2.
  REQUIRE_OK(a->Append("interviews", "i-early", "health_notes", "written before the participant"));
  REQUIRE_OK(a->Set("interviews", "i-early", "participant", "p1"));
  REQUIRE_OK(a->Put("interviews", "i-moved", {{"participant", "p1"}}));
  REQUIRE_OK(a->Append("interviews", "i-moved", "health_notes", "belongs to p2 now"));
  REQUIRE_OK(a->Set("interviews", "i-moved", "participant", "p2"));

  // Not while the outbox holds their health changes: the server must have them first.
  Status refused = a->EraseParticipantKey("p1");
  CHECK(refused.code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(refused.message(), Catch::Contains("push"));
  CheckCaseload(a.store(), "p1");
  std::vector<Operation> outbox = Outbox(a.store());
  REQUIRE_OK(a->AcknowledgeOperations(outbox.back().seq));

  const std::string wrapped = RawValue(
      a.options().path, "SELECT wrapped FROM data_keys WHERE participant = 'p1'");
  REQUIRE(wrapped.size() > 32);
  REQUIRE_OK(a->EraseParticipantKey("p1"));

  Record interview = GetRecord(a.store(), "interviews", "i-p1");
  CHECK(interview.fields.count("health_notes") == 0);
  CHECK(interview.fields["notes"].entries.at(0).text == kNote);  // class S: the store key
  CHECK(interview.fields["place"].value == "office");
  CHECK(GetRecord(a.store(), "participants", "p1").fields.count("barriers") == 0);
  CHECK(ValueOf(a.store(), "entry_situations", "e-p1", "disability") == std::nullopt);
  CHECK(ValueOf(a.store(), "entry_situations", "e-p1", "age_band") == "25_54");
  CHECK(GetRecord(a.store(), "interviews", "i-early").fields.count("health_notes") == 0);
  CHECK(GetRecord(a.store(), "interviews", "i-moved").fields["health_notes"].entries.at(0).text ==
        "belongs to p2 now");
  CheckCaseload(a.store(), "p2");
  CHECK(Dump(a.store()).find(kHealthNote) != std::string::npos);  // p2's
  CHECK(ConflictsOf(a.store()).empty());

  // The wrapped key is gone from the files, the WAL included; a reopen does not bring it back.
  CHECK(Leaks(a.options().path, {wrapped}) == "");
  CHECK(RawValue(a.options().path, "SELECT value FROM meta WHERE key = 'scrub_pending'") == "");
  a.Reopen();
  CHECK(GetRecord(a.store(), "interviews", "i-p1").fields.count("health_notes") == 0);
  CheckCaseload(a.store(), "p2");

  // Erased twice, or never keyed: nothing to do. New health data for p1 gets a new key.
  REQUIRE_OK(a->EraseParticipantKey("p1"));
  REQUIRE_OK(a->EraseParticipantKey("p-unknown"));
  REQUIRE_OK(a->Append("interviews", "i-p1", "health_notes", "after the erasure"));
  interview = GetRecord(a.store(), "interviews", "i-p1");
  REQUIRE(interview.fields["health_notes"].entries.size() == 1);
  CHECK(interview.fields["health_notes"].entries[0].text == "after the erasure");
  CHECK(a->EraseParticipantKey("not an id").code() == StatusCode::kInvalidArgument);

  // A rebuild cut short after the erasure committed is done at the next open.
  a.Close();
  RawSql(a.options().path, "INSERT INTO meta VALUES('scrub_pending', '1')");
  a.Reopen();
  CHECK(RawValue(a.options().path, "SELECT value FROM meta WHERE key = 'scrub_pending'") == "");
}

TEST_CASE("A wrong or missing key store is refused with a clear error", "[core][crypto]") {
  TempDir dir;
  Replica a(dir, "tab-a");
  WriteCaseload(a.store(), "p1");
  a.Close();

  StoreOptions options = a.options();
  options.key_store = nullptr;
  Result<std::unique_ptr<Store>> missing = Store::Open(options);
  CHECK(missing.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(missing.status().message(), Catch::Contains("encrypted at rest"));

  MemoryKeyStore empty;
  options.key_store = &empty;
  Result<std::unique_ptr<Store>> without_key = Store::Open(options);
  CHECK(without_key.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(without_key.status().message(), Catch::Contains("no master key"));
  CHECK(empty.secrets().empty());  // nothing made up in its place

  MemoryKeyStore other;
  REQUIRE_OK(other.Put(MasterKeyName("tab-a"), std::string(32, 'k')));
  options.key_store = &other;
  Result<std::unique_ptr<Store>> wrong = Store::Open(options);
  CHECK(wrong.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(wrong.status().message(), Catch::Contains("does not open this store"));

  a.keys().SetUnavailable(true);
  Result<std::unique_ptr<Store>> locked = Store::Open(a.options());
  CHECK(locked.status().code() == StatusCode::kUnavailable);
  CHECK(locked.status().retryable());
  a.keys().SetUnavailable(false);

  a.Reopen();
  CheckCaseload(a.store(), "p1");
}

TEST_CASE("A store kept in clear is sealed at its first open with a key store", "[core][crypto]") {
  TempDir dir;
  TestEnv env;
  StoreOptions options;
  options.path = dir.File("tab-a.db");
  options.device_id = "tab-a";
  options.env = &env;
  {
    std::unique_ptr<Store> clear = OpenStore(options);
    WriteCaseload(*clear, "p1");
  }
  REQUIRE(Leaks(options.path, kLocalSentences) != "");
  MemoryKeyStore keys;
  options.key_store = &keys;
  std::unique_ptr<Store> sealed = OpenStore(options);
  CHECK(keys.secrets().count(MasterKeyName("tab-a")) == 1);
  CheckCaseload(*sealed, "p1");
  std::vector<Operation> outbox = Outbox(*sealed);
  CHECK(std::any_of(outbox.begin(), outbox.end(),
                    [](const Operation& op) { return op.value == kRevision; }));
  CHECK(Leaks(options.path, kLocalSentences) == "");
  sealed.reset();
  CHECK(Leaks(options.path, kLocalSentences) == "");
  sealed = OpenStore(options);
  CheckCaseload(*sealed, "p1");
}

TEST_CASE_METHOD(OneTablet, "Past the offline lease, records can be neither read nor changed until a sync",
                 "[core][crypto][lease]") {
  a.Close();
  a.options().lease_days = 3;
  a.Reopen();
  WriteCaseload(a.store(), "p1");
  CHECK(a->LeaseExpiresAtMs() == a.env().NowMillis() + 3 * kDayMs);
  a.env().Advance(3 * kDayMs - 60'000);
  CheckCaseload(a.store(), "p1");

  a.env().Advance(2 * 60'000);
  auto expired = [](const Status& status) {
    INFO(status.ToString());
    return status.code() == StatusCode::kLeaseExpired &&
           status.message().find("offline lease expired: sync to continue") != std::string::npos;
  };
  CHECK(expired(a->Get("interviews", "i-p1").status()));
  CHECK(expired(a->List("interviews").status()));
  CHECK(expired(a->Query("interviews", "participant", "p1").status()));
  CHECK(expired(a->Conflicts().status()));
  CHECK(expired(a->CanonicalDump().status()));
  CHECK(expired(a->Begin().status()));
  CHECK(expired(a->Set("participants", "p1", "phase", "health")));
  CHECK(expired(a->Append("interviews", "i-p1", "notes", "one more").status()));

  // Setting the clock back does not bring the records back: the store saw the expiry.
  a.env().Advance(-2 * kDayMs);
  CHECK(expired(a->Get("interviews", "i-p1").status()));
  a.Reopen();
  CHECK(expired(a->Get("interviews", "i-p1").status()));
  a.env().Advance(2 * kDayMs);

  // What sync calls keeps working: push the outbox, acknowledge it, pull, forget.
  std::vector<Operation> outbox = Outbox(a.store());
  CHECK(std::any_of(outbox.begin(), outbox.end(),
                    [](const Operation& op) { return op.value == kHealthNote; }));
  REQUIRE_OK(a->AcknowledgeOperations(outbox.back().seq));
  const Hlc hlc = MakeHlc(a.env().NowMillis() - 1000, 0);
  REQUIRE_OK(a->ApplyPulled({Entry{EntryKey{"interviews", "i-p1", "health_notes", "",
                                            Stamp{hlc, "tab-b"}},
                                   FieldKind::kLog, true, kPulledHealth, {}}},
                            {}, {{"pull_cursor", "9"}}));
  REQUIRE_OK(a->SetSyncState("push_cursor", "3"));
  REQUIRE_OK(a->Forget("participants", "p-gone"));

  // A successful sync renews the lease, for another three days.
  REQUIRE_OK(a->NoteServerContact());
  Record interview = GetRecord(a.store(), "interviews", "i-p1");
  CHECK(interview.fields["health_notes"].entries.size() == 3);
  REQUIRE_OK(a->Set("participants", "p1", "phase", "health"));
  a.Reopen();
  CHECK(ValueOf(a.store(), "participants", "p1", "phase") == "health");
  a.env().Advance(3 * kDayMs + 60'000);
  CHECK(expired(a->Get("participants", "p1").status()));
}

TEST_CASE_METHOD(OneTablet, "The lease's last contact cannot be moved forward by editing the file",
                 "[core][crypto][lease]") {
  a.Close();
  a.options().lease_days = 3;
  a.Reopen();
  a.Close();
  TestEnv other_env(a.env().NowMillis() + 10 * kDayMs);
  // Another store's lease record, sealed with another key, copied over this one's.
  TempDir other_dir;
  Replica other(other_dir, "tab-a", a.env().NowMillis() + 10 * kDayMs);
  other.Close();
  const std::string foreign =
      RawValue(other.options().path, "SELECT value FROM meta WHERE key = 'lease'");
  REQUIRE(!foreign.empty());
  RawSql(a.options().path, "UPDATE meta SET value = x'" + [&] {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : foreign) out += std::string{hex[c >> 4], hex[c & 15]};
    return out;
  }() + "' WHERE key = 'lease'");
  Result<std::unique_ptr<Store>> altered = Store::Open(a.options());
  CHECK(altered.status().code() == StatusCode::kCorruption);
}
