// A tablet on the previous schema beside tablets on a newer one (core/README.md, Mixed
// versions): it keeps and merges what it does not know, shows what it knows, and loses nothing.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/store.h"
#include "tests/core/store_helpers.h"
#include "tests/support/newer_schema.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

// Two tablets: `newer` on the newer release's schema, `older` on Schema::Programme().
struct TwoVersions {
  TempDir dir;
  Replica newer{dir, "tab-new", kStartMs, 1};
  Replica older{dir, "tab-old", kStartMs, 2};

  TwoVersions() {
    newer.options().schema = &NewerSchema();
    newer.Reopen();
  }

  // What the newer app writes: each thing the older schema does not know, beside known fields.
  void WriteNewerThings() {
    REQUIRE_OK(newer->Put("participants", "p1",
                          {{"first_name", "Nadia"},
                           {"territory", "nord"},
                           {"phase", "post_exit"},
                           {"preferred_language", "occitan"}}));
    REQUIRE_OK(newer->Add("participants", "p1", "barriers", "transport"));
    REQUIRE_OK(newer->Add("participants", "p1", "barriers", "housing"));
    REQUIRE_OK(
        newer->Put("job_fairs", "e1",
                   {{"name", "Forum emploi Lille"}, {"territory", "nord"}, {"sector", "retail"}}));
    REQUIRE(newer->Append("job_fairs", "e1", "contacts", "Met the owner.").ok());
    newer.env().Advance(1'000);
    older.env().Advance(1'000);
  }
};

Entry LiveEntry(std::string collection, std::string record, std::string field, Hlc hlc,
                std::optional<std::string> value, FieldKind kind = FieldKind::kRegister,
                std::string element = "") {
  return Entry{EntryKey{std::move(collection), std::move(record), std::move(field),
                        std::move(element), Stamp{hlc, "tab-new"}},
               kind,
               true,
               std::move(value),
               {}};
}

}  // namespace

TEST_CASE_METHOD(TwoVersions,
                 "An older tablet keeps a newer app's collection, field and enum values and reads "
                 "what it knows",
                 "[core][versions]") {
  WriteNewerThings();
  ApplyStats stats = Deliver(newer.store(), older.store());
  CHECK(stats.applied == Outbox(newer.store()).size());

  Record p1 = GetRecord(older.store(), "participants", "p1");
  CHECK(p1.fields.at("first_name").value == "Nadia");
  CHECK_FALSE(p1.fields.at("first_name").unknown);
  CHECK(p1.fields.at("phase").value == "post_exit");
  CHECK(p1.fields.at("phase").unknown);
  CHECK(p1.fields.at("preferred_language").value == "occitan");
  CHECK(p1.fields.at("preferred_language").unknown);
  CHECK(p1.fields.at("barriers").elements == std::vector<std::string>{"housing", "transport"});
  CHECK(p1.fields.at("barriers").unknown);
  // The newer tablet knows them all.
  for (const auto& [name, field] : GetRecord(newer.store(), "participants", "p1").fields) {
    INFO(name);
    CHECK_FALSE(field.unknown);
  }

  Record e1 = GetRecord(older.store(), "job_fairs", "e1");
  CHECK(e1.fields.at("name").value == "Forum emploi Lille");
  CHECK(e1.fields.at("name").unknown);
  REQUIRE(e1.fields.at("contacts").entries.size() == 1);
  CHECK(e1.fields.at("contacts").entries[0].text == "Met the owner.");
  CHECK(e1.fields.at("contacts").kind == FieldKind::kLog);
  Result<std::vector<Record>> fairs = older->List("job_fairs");
  REQUIRE_OK(fairs);
  CHECK(fairs->size() == 1);
  // A collection neither known nor held is still a typo.
  CHECK(older->List("job_fair").status().code() == StatusCode::kInvalidArgument);
  CHECK(older->Get("visits", "e1").status().code() == StatusCode::kInvalidArgument);

  // Nothing lost: the same entries on both, and after a reopen.
  CHECK(Dump(older.store()) == Dump(newer.store()));
  older.Reopen();
  CHECK(Dump(older.store()) == Dump(newer.store()));
}

TEST_CASE_METHOD(TwoVersions,
                 "What an older tablet does not know merges by its kind as on the newer tablet",
                 "[core][versions]") {
  WriteNewerThings();
  Deliver(newer.store(), older.store());
  REQUIRE_OK(newer->AcknowledgeOperations(Outbox(newer.store()).back().seq));
  // Concurrent: the older tablet sets a known phase, the newer one an unknown value again.
  REQUIRE_OK(older->Set("participants", "p1", "phase", "job_search"));
  REQUIRE_OK(newer->Set("participants", "p1", "phase", "post_exit"));
  REQUIRE_OK(newer->Remove("participants", "p1", "barriers", "transport"));
  REQUIRE_OK(newer->Set("job_fairs", "e1", "sector", "care"));
  ExchangeAll({&older.store(), &newer.store()});

  CHECK(Dump(older.store()) == Dump(newer.store()));
  CHECK(ConflictsText(older.store()) == ConflictsText(newer.store()));
  CHECK(ConflictsOf(older.store()).size() == 1);
  Record on_older = GetRecord(older.store(), "participants", "p1");
  Record on_newer = GetRecord(newer.store(), "participants", "p1");
  CHECK(on_older.fields.at("phase").value == on_newer.fields.at("phase").value);
  CHECK(on_older.fields.at("phase").in_conflict);
  CHECK(on_older.fields.at("barriers").elements == std::vector<std::string>{"housing"});
  CHECK_FALSE(on_older.fields.at("barriers").unknown);
  CHECK(GetRecord(older.store(), "job_fairs", "e1").fields.at("sector").value == "care");

  // The older tablet resolves with a value it knows; the newer one agrees.
  REQUIRE_OK(older->Resolve("participants", "p1", "phase", "job_search"));
  Deliver(older.store(), newer.store());
  CHECK(GetRecord(newer.store(), "participants", "p1").fields.at("phase").value == "job_search");
  CHECK_FALSE(GetRecord(older.store(), "participants", "p1").fields.at("phase").unknown);
}

TEST_CASE_METHOD(TwoVersions,
                 "An older tablet refuses a local write it cannot serve and writes nothing",
                 "[core][versions]") {
  WriteNewerThings();
  Deliver(newer.store(), older.store());
  const std::string before = Dump(older.store());
  auto refused = [&](const Status& status, const std::string& says) {
    INFO(status.ToString());
    CHECK(status.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(status.message(), Catch::Contains(says));
  };
  refused(older->Set("participants", "p1", "preferred_language", "breton"),
          "unknown field 'preferred_language'");
  refused(older->Set("participants", "p1", "phase", "post_exit"), "not one of the allowed values");
  refused(older->Add("participants", "p1", "barriers", "transport"),
          "not one of the allowed values");
  refused(older->Set("job_fairs", "e1", "name", "Martin"), "unknown collection 'job_fairs'");
  refused(older->Delete("job_fairs", "e1"), "unknown collection 'job_fairs'");
  CHECK(Dump(older.store()) == before);
  CHECK(Outbox(older.store()).empty());
  // Known fields of the same record stay writable.
  REQUIRE_OK(older->Set("participants", "p1", "first_name", "Nadia-Rose"));
}

TEST_CASE_METHOD(TwoVersions,
                 "A forward-only state an older tablet does not know ranks after the known ones",
                 "[core][versions]") {
  REQUIRE_OK(newer->Put("exits", "x1", {{"participant", "p1"}, {"category", "training"}}));
  REQUIRE_OK(newer->Set("exits", "x1", "validation", "validated"));
  REQUIRE_OK(newer->Set("exits", "x1", "validation", "archived"));
  Deliver(newer.store(), older.store());
  Record x1 = GetRecord(older.store(), "exits", "x1");
  CHECK(x1.fields.at("validation").value == "archived");
  CHECK(x1.fields.at("validation").unknown);
  // Still frozen here, and no step back.
  CHECK(older->Set("exits", "x1", "category", "other").code() == StatusCode::kFailedPrecondition);
  CHECK(older->Set("exits", "x1", "validation", "exported").code() != StatusCode::kOk);
}

TEST_CASE_METHOD(TwoVersions,
                 "A pulled batch with an unknown enum value is applied whole, cursor included",
                 "[core][versions]") {
  const Hlc hlc = older->LastHlc() + 1;
  std::vector<Entry> batch = {
      LiveEntry("participants", "p2", "first_name", hlc, "Karim"),
      LiveEntry("participants", "p2", "phase", hlc + 1, "post_exit"),
      LiveEntry("participants", "p2", "territory", hlc + 2, "nord"),
      LiveEntry("interviews", "i2", "participant", hlc + 3, "p2"),
      LiveEntry("interviews", "i2", "phase", hlc + 4, "post_exit"),
      LiveEntry("participants", "p2", "barriers", hlc + 5, std::nullopt, FieldKind::kSet,
                "transport"),
      LiveEntry("job_fairs", "e2", "name", hlc + 6, "Forum emploi Nîmes"),
  };
  Result<ApplyStats> applied = older->ApplyPulled(batch, {}, {{"cursor", "7"}});
  REQUIRE_OK(applied);
  CHECK(applied->applied == batch.size());
  CHECK(SyncState(older.store(), "cursor") == "7");
  Record p2 = GetRecord(older.store(), "participants", "p2");
  CHECK(p2.fields.at("first_name").value == "Karim");
  CHECK(p2.fields.at("phase").value == "post_exit");
  CHECK(p2.fields.at("territory").value == "nord");
  CHECK(GetRecord(older.store(), "interviews", "i2").fields.at("participant").value == "p2");
  CHECK(GetRecord(older.store(), "job_fairs", "e2").fields.at("name").value ==
        "Forum emploi Nîmes");

  // The server's forget of a record of a collection unknown here removes it like any other.
  REQUIRE_OK(older->ApplyPulled({}, {{"job_fairs", "e2"}}, {{"cursor", "8"}}));
  CHECK(older->Get("job_fairs", "e2").status().code() != StatusCode::kOk);
}

TEST_CASE_METHOD(TwoVersions,
                 "What a newer version made with a merge rule unknown here refuses its batch as "
                 "update needed",
                 "[core][versions]") {
  const std::string before = Dump(older.store());
  const Hlc hlc = older->LastHlc() + 1;
  Entry strange = LiveEntry("participants", "p3", "scores", hlc + 1, "12");
  strange.kind = static_cast<FieldKind>(3);
  Result<ApplyStats> pulled = older->ApplyPulled(
      {LiveEntry("participants", "p3", "first_name", hlc, "Lou"), strange}, {}, {{"cursor", "9"}});
  INFO(pulled.status().ToString());
  CHECK(pulled.status().code() == StatusCode::kUpdateNeeded);
  CHECK_THAT(pulled.status().message(), Catch::Contains("update the app"));
  CHECK_FALSE(SyncState(older.store(), "cursor").has_value());

  REQUIRE_OK(newer->Set("participants", "p3", "first_name", "Lou"));
  std::vector<Operation> ops = Outbox(newer.store());
  ops[0].kind = static_cast<OpKind>(9);
  Result<ApplyStats> remote = older->ApplyRemote(ops);
  CHECK(remote.status().code() == StatusCode::kUpdateNeeded);
  CHECK(Dump(older.store()) == before);
}

TEST_CASE_METHOD(TwoVersions,
                 "Once updated, a tablet reads what its previous version kept as the newer "
                 "schema's",
                 "[core][versions]") {
  WriteNewerThings();
  Deliver(newer.store(), older.store());
  older.options().schema = &NewerSchema();
  older.Reopen();
  Record p1 = GetRecord(older.store(), "participants", "p1");
  CHECK(p1.fields.at("preferred_language").value == "occitan");
  CHECK_FALSE(p1.fields.at("preferred_language").unknown);
  CHECK_FALSE(p1.fields.at("phase").unknown);
  Record e1 = GetRecord(older.store(), "job_fairs", "e1");
  CHECK(e1.fields.at("name").value == "Forum emploi Lille");
  CHECK(e1.fields.at("contacts").entries.at(0).text == "Met the owner.");
  CHECK(Dump(older.store()) == Dump(newer.store()));
}

TEST_CASE_METHOD(TwoVersions,
                 "An erasure on an older tablet takes the participant out of a newer app's fields "
                 "too",
                 "[core][versions]") {
  REQUIRE_OK(newer->Put("participants", "p1", {{"first_name", "Nadia"}}));
  REQUIRE_OK(newer->Put("job_fairs", "j1", {{"name", "Forum emploi Lille"}, {"speaker", "p1"}}));
  REQUIRE_OK(newer->Add("job_fairs", "j1", "attendees", "p1"));
  REQUIRE_OK(newer->Add("job_fairs", "j1", "attendees", "p2"));
  Deliver(newer.store(), older.store());

  REQUIRE_OK(older->Erase("p1"));

  Record j1 = GetRecord(older.store(), "job_fairs", "j1");
  CHECK(j1.fields.at("attendees").elements == std::vector<std::string>{"p2"});
  CHECK(j1.fields.count("speaker") == 0);
  CHECK(j1.fields.at("name").value == "Forum emploi Lille");
  CHECK_THAT(Dump(older.store()), !Catch::Contains("p1"));
}
