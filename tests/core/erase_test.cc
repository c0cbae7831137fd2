// Store::Erase and the erasures of a pulled batch (sync/PROTOCOL.md, Erasure): every row of the
// participant and of their records gone, references to them too, and no byte of them left in the
// store's file or its WAL. The stores here keep their values in clear, so that a sentence typed
// about the participant can be looked for in the files.
#include <filesystem>
#include <fstream>
#include <iterator>

#include <catch2/catch.hpp>

#include "tests/core/store_helpers.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

constexpr const char* kSentence = "Mme Quintard-Lefebvre parle de ses dettes de loyer";
constexpr const char* kLastName = "Quintard-Lefebvre";

// A store in clear (no key store): what is typed is in the file as typed.
struct ClearStore {
  ClearStore(const TempDir& dir, const std::string& device, uint64_t seed)
      : env(kStartMs, seed), path(dir.File(device + ".db")) {
    StoreOptions options;
    options.path = path;
    options.device_id = device;
    options.env = &env;
    store = OpenStore(options);
  }
  Store* operator->() { return store.get(); }

  // The store's file and its WAL, as bytes on the disk.
  std::string Files() const {
    std::string bytes;
    for (const std::string& file : {path, path + "-wal"}) {
      std::ifstream in(file, std::ios::binary);
      bytes.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    return bytes;
  }
  void AcknowledgeAll() {
    std::vector<Operation> ops = Outbox(*store);
    if (!ops.empty()) REQUIRE_OK(store->AcknowledgeOperations(ops.back().seq));
  }

  TestEnv env;
  std::string path;
  std::unique_ptr<Store> store;
};

bool Contains(const std::string& bytes, const std::string& what) {
  return bytes.find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("Erase removes a participant, their records, history and conflicts, and every "
          "reference to them, and leaves no byte of them in the file or the WAL",
          "[erase]") {
  TempDir dir;
  ClearStore a(dir, "tab-a", 1), b(dir, "tab-b", 2);
  const std::string p = "p-erased", q = "p-kept", workshop = "w-1";
  const std::string interview = "i-of-p", action = "a-of-p", shared = "i-disputed";
  REQUIRE_OK(a->Put("participants", p,
                    {{"first_name", "Nadia"}, {"last_name", kLastName}, {"referent", "adviser-a"}}));
  REQUIRE_OK(a->Put("participants", q, {{"first_name", "Paul"}, {"last_name", "Durand"}}));
  REQUIRE_OK(a->Put("interviews", interview, {{"participant", p}, {"place", "home"}}));
  Result<Stamp> note = a->Append("interviews", interview, "notes", kSentence);
  REQUIRE_OK(note);
  REQUIRE_OK(a->Append("interviews", interview, "notes", std::string(kSentence) + " (bis)", *note));
  REQUIRE_OK(a->Redact("interviews", interview, "notes", *note));  // history: a dead entry
  REQUIRE_OK(a->Put("actions", action, {{"participant", p}, {"label", "dossier FSL"}}));
  REQUIRE_OK(a->Put("workshops", workshop, {{"theme", "budget"}, {"territory", "nord"}}));
  REQUIRE_OK(a->Add("workshops", workshop, "registered", p));
  REQUIRE_OK(a->Add("workshops", workshop, "registered", q));
  REQUIRE_OK(a->Put("attendance", AttendanceId(workshop, p), {{"session", workshop}, {"participant", p}}));
  REQUIRE_OK(a->Set("participants", p, "phone", "0600000001"));
  REQUIRE_OK(a->Set("participants", p, "phone", "0600000002"));  // history: an overwritten value
  // An interview two tablets gave to different participants at once: q's wins, p's is kept as a
  // conflict, a reference to p in q's record.
  REQUIRE_OK(b->Put("interviews", shared, {{"participant", p}, {"place", "office"}}));
  b.env.Advance(10);
  a.env.Advance(20);
  REQUIRE_OK(a->Put("interviews", shared, {{"participant", q}}));
  Deliver(*b.store, *a.store);
  REQUIRE(ValueOf(*a.store, "interviews", shared, "participant") == q);
  REQUIRE(ConflictsText(*a.store).find(p) != std::string::npos);
  a.AcknowledgeAll();

  std::string before = a.Files();
  REQUIRE(Contains(before, kSentence));
  REQUIRE(Contains(before, kLastName));
  REQUIRE(Contains(before, p));

  REQUIRE_OK(a->Erase(p));

  CHECK(a->Get("participants", p).status().code() == StatusCode::kNotFound);
  CHECK(a->Get("interviews", interview).status().code() == StatusCode::kNotFound);
  CHECK(a->Get("actions", action).status().code() == StatusCode::kNotFound);
  CHECK(a->Get("attendance", AttendanceId(workshop, p)).status().code() == StatusCode::kNotFound);
  Record w = GetRecord(*a.store, "workshops", workshop);
  CHECK(w.fields["registered"].elements == std::vector<std::string>{q});
  CHECK(ValueOf(*a.store, "interviews", shared, "participant") == q);
  CHECK(ConflictsText(*a.store).find(p) == std::string::npos);
  CHECK(GetRecord(*a.store, "participants", q).fields["last_name"].value == "Durand");
  Result<std::string> dump = a->CanonicalDump();
  REQUIRE_OK(dump);
  CHECK(!Contains(*dump, p));
  CHECK(Outbox(*a.store).empty());  // no operation: the erasure is the server's, not an edit

  std::string after = a.Files();
  CHECK(!Contains(after, kSentence));
  CHECK(!Contains(after, kLastName));
  CHECK(!Contains(after, p));
  CHECK(std::filesystem::file_size(a.path + "-wal") == 0);  // checkpointed and truncated
}

TEST_CASE("Erase is refused while the outbox holds a change to the participant, and removes "
          "nothing",
          "[erase]") {
  TempDir dir;
  ClearStore a(dir, "tab-a", 1);
  REQUIRE_OK(a->Put("participants", "p-1", {{"last_name", kLastName}}));
  REQUIRE_OK(a->Put("interviews", "i-1", {{"participant", "p-1"}}));
  a.AcknowledgeAll();
  REQUIRE_OK(a->Append("interviews", "i-1", "notes", kSentence));  // not pushed yet

  Status refused = a->Erase("p-1");
  CHECK(refused.code() == StatusCode::kFailedPrecondition);
  CHECK(GetRecord(*a.store, "interviews", "i-1").fields["notes"].entries.size() == 1);

  a.AcknowledgeAll();  // pushed: the server dropped it
  REQUIRE_OK(a->Erase("p-1"));
  CHECK(a->Get("interviews", "i-1").status().code() == StatusCode::kNotFound);
}

TEST_CASE("The erasures of a pulled batch are carried out in the transaction that saves its "
          "cursor, records the server lists included",
          "[erase]") {
  TempDir dir;
  ClearStore a(dir, "tab-a", 1);
  REQUIRE_OK(a->Put("participants", "p-1", {{"last_name", kLastName}}));
  // An interview this tablet holds under another participant: the server had it as p-1's.
  REQUIRE_OK(a->Put("interviews", "i-moved", {{"participant", "p-2"}}));
  REQUIRE_OK(a->Put("participants", "p-2", {{"last_name", "Durand"}}));
  a.AcknowledgeAll();

  Erasure order{"p-1", {{"interviews", "i-moved"}, {"exits", "x-never-seen"}}};
  REQUIRE_OK(a->ApplyPulled({}, {}, {{"pull_cursor", "42"}}, {order}));
  CHECK(a->Get("participants", "p-1").status().code() == StatusCode::kNotFound);
  CHECK(a->Get("interviews", "i-moved").status().code() == StatusCode::kNotFound);
  CHECK(a->Get("participants", "p-2").ok());
  CHECK(SyncState(*a.store, "pull_cursor") == "42");

  // Refused by a change not pushed yet: nothing of the batch is saved, its cursor included.
  REQUIRE_OK(a->Put("participants", "p-3", {{"last_name", "Martin"}}));
  Result<ApplyStats> refused =
      a->ApplyPulled({}, {}, {{"pull_cursor", "43"}}, {Erasure{"p-3", {}}});
  CHECK(refused.status().code() == StatusCode::kFailedPrecondition);
  CHECK(SyncState(*a.store, "pull_cursor") == "42");
  CHECK(a->Get("participants", "p-3").ok());
}
