// Conflicts between replicas: concurrent register writes, deletes against edits, and the
// forward-only validation state of ESF records.
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/store.h"
#include "tests/core/store_helpers.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

// Two tablets whose clocks differ by a few milliseconds.
struct TwoTablets : testing::OneTablet {
  Replica b{dir, "tab-b", testing::kStartMs + 5};

  void Exchange() { ExchangeAll({&a.store(), &b.store()}); }
  void RequireSameState() {
    REQUIRE(Dump(a.store()) == Dump(b.store()));
    REQUIRE(ConflictsText(a.store()) == ConflictsText(b.store()));
  }

  // An interview that both tablets hold: written on A, synced to B.
  void ShareInterview() {
    REQUIRE_OK(a->Put("interviews", "i1", {{"place", "office"}, {"phase", "assessment"}}));
    Exchange();
    a.env().Advance(1'000);
    b.env().Advance(1'000);
  }

  // A deletes the shared interview while B, unaware, moves it home; then they sync.
  void DeleteAgainstEdit() {
    ShareInterview();
    REQUIRE_OK(a->Delete("interviews", "i1"));
    REQUIRE_OK(b->Set("interviews", "i1", "place", "home"));
    Exchange();
    REQUIRE(ConflictsOf(a.store()).size() == 1);
    a.env().Advance(1'000);
    b.env().Advance(1'000);
  }
};

}  // namespace

TEST_CASE_METHOD(
    TwoTablets,
    "Concurrent register writes keep the loser as a conflict with both values and stamps",
    "[core][conflict]") {
  REQUIRE_OK(a->Set("participants", "p1", "phase", "health"));
  REQUIRE_OK(b->Set("participants", "p1", "phase", "job_search"));
  const Stamp a_stamp = StampOf(a.store(), "participants", "p1", "phase");
  const Stamp b_stamp = StampOf(b.store(), "participants", "p1", "phase");
  REQUIRE(a_stamp < b_stamp);
  Exchange();
  RequireSameState();

  for (Replica* r : {&a, &b}) {
    FieldValue phase = GetRecord(r->store(), "participants", "p1").fields.at("phase");
    CHECK(phase.value == "job_search");
    CHECK(phase.stamp == b_stamp);
    CHECK(phase.in_conflict);
    std::vector<Conflict> conflicts = ConflictsOf(r->store());
    REQUIRE(conflicts.size() == 1);
    const Conflict& c = conflicts.front();
    CHECK(c.kind == ConflictKind::kConcurrentWrite);
    CHECK(c.collection == "participants");
    CHECK(c.record == "p1");
    CHECK(c.field == "phase");
    CHECK(c.kept_value == "job_search");
    CHECK(c.kept_stamp == b_stamp);
    CHECK(c.losing_value == "health");
    CHECK(c.losing_stamp == a_stamp);
  }
}

TEST_CASE_METHOD(OneTablet, "Equal clocks on two devices are ordered by device id",
                 "[core][conflict]") {
  Replica b(dir, "tab-b");  // the same clock as A
  REQUIRE_OK(a->Set("participants", "p1", "phase", "health"));
  REQUIRE_OK(b->Set("participants", "p1", "phase", "job_search"));
  REQUIRE(StampOf(a.store(), "participants", "p1", "phase").hlc ==
          StampOf(b.store(), "participants", "p1", "phase").hlc);
  ExchangeAll({&a.store(), &b.store()});
  CHECK(ValueOf(a.store(), "participants", "p1", "phase") == "job_search");
  CHECK(ValueOf(b.store(), "participants", "p1", "phase") == "job_search");
}

TEST_CASE_METHOD(TwoTablets, "A write made after seeing the previous one creates no conflict",
                 "[core][conflict]") {
  REQUIRE_OK(a->Set("participants", "p1", "phase", "health"));
  Exchange();
  b.env().Advance(1'000);
  REQUIRE_OK(b->Set("participants", "p1", "phase", "job_search"));
  Exchange();
  RequireSameState();
  CHECK(ConflictsOf(a.store()).empty());
  FieldValue phase = GetRecord(a.store(), "participants", "p1").fields.at("phase");
  CHECK(phase.value == "job_search");
  CHECK_FALSE(phase.in_conflict);
}

TEST_CASE_METHOD(TwoTablets, "A later write by one side does not end a conflict it did not resolve",
                 "[core][conflict]") {
  REQUIRE_OK(a->Set("participants", "p1", "phase", "health"));
  REQUIRE_OK(b->Set("participants", "p1", "phase", "job_search"));
  Exchange();
  a.env().Advance(1'000);
  REQUIRE_OK(a->Set("participants", "p1", "phase", "life_project"));
  Exchange();
  RequireSameState();
  std::vector<Conflict> conflicts = ConflictsOf(a.store());
  REQUIRE(conflicts.size() == 1);
  CHECK(conflicts.front().kept_value == "life_project");
  CHECK(conflicts.front().losing_value == "health");
}

TEST_CASE_METHOD(
    OneTablet, "Resolve clears the conflict on every replica once the resolving write is exchanged",
    "[core][conflict]") {
  Replica b(dir, "tab-b", testing::kStartMs + 3);
  Replica c(dir, "tab-c", testing::kStartMs + 7);
  REQUIRE_OK(a->Set("interviews", "i1", "place", "office"));
  REQUIRE_OK(b->Set("interviews", "i1", "place", "home"));
  REQUIRE_OK(c->Set("interviews", "i1", "place", "company"));
  ExchangeAll({&a.store(), &b.store(), &c.store()});
  REQUIRE(ConflictsOf(c.store()).size() == 2);
  CHECK(a->Resolve("interviews", "i1", "phase", "health").code() ==
        StatusCode::kFailedPrecondition);

  a.env().Advance(1'000);
  REQUIRE_OK(a->Resolve("interviews", "i1", "place", "home"));
  CHECK(ConflictsOf(a.store()).empty());
  CHECK(ConflictsOf(b.store()).size() == 2);
  ExchangeAll({&a.store(), &b.store(), &c.store()});
  for (Replica* r : {&a, &b, &c}) {
    CHECK(ConflictsOf(r->store()).empty());
    FieldValue place = GetRecord(r->store(), "interviews", "i1").fields.at("place");
    CHECK(place.value == "home");
    CHECK_FALSE(place.in_conflict);
  }
  CHECK(Dump(a.store()) == Dump(c.store()));
}

TEST_CASE_METHOD(TwoTablets,
                 "A delete against a concurrent edit shows the edit as edited while deleted",
                 "[core][conflict]") {
  ShareInterview();
  const Stamp office = StampOf(a.store(), "interviews", "i1", "place");
  REQUIRE_OK(a->Delete("interviews", "i1"));
  REQUIRE_OK(b->Set("interviews", "i1", "place", "home"));
  REQUIRE_OK(b->Append("interviews", "i1", "notes", "Came with her daughter."));
  const Stamp home = StampOf(b.store(), "interviews", "i1", "place");
  Exchange();
  RequireSameState();

  CHECK(b->Get("interviews", "i1").status().code() == StatusCode::kNotFound);
  std::vector<Conflict> conflicts = ConflictsOf(b.store());
  REQUIRE(conflicts.size() == 2);
  for (const Conflict& c : conflicts) {
    CHECK(c.kind == ConflictKind::kEditedWhileDeleted);
    CHECK(c.record == "i1");
    CHECK_FALSE(c.kept_value.has_value());
    CHECK(c.kept_stamp.device == "tab-a");
    CHECK(c.losing_stamp.device == "tab-b");
  }
  CHECK(conflicts[0].field == "notes");
  CHECK(conflicts[0].losing_value == "Came with her daughter.");
  CHECK(conflicts[1].field == "place");
  CHECK(conflicts[1].losing_value == "home");
  CHECK(conflicts[1].losing_stamp == home);
  CHECK(office < home);
}

TEST_CASE_METHOD(TwoTablets, "Edits the deleter had seen are not conflicts", "[core][conflict]") {
  ShareInterview();
  REQUIRE_OK(b->Delete("interviews", "i1"));
  Exchange();
  RequireSameState();
  CHECK(ConflictsOf(a.store()).empty());
  CHECK(a->Get("interviews", "i1").status().code() == StatusCode::kNotFound);
}

TEST_CASE_METHOD(TwoTablets,
                 "Keeping a record deleted ends its edited-while-deleted conflicts everywhere",
                 "[core][conflict]") {
  DeleteAgainstEdit();
  CHECK(a->ResolveDeleted("interviews", "i2", true).code() == StatusCode::kNotFound);
  REQUIRE_OK(a->ResolveDeleted("interviews", "i1", /*keep_deleted=*/true));
  Exchange();
  RequireSameState();
  CHECK(ConflictsOf(b.store()).empty());
  CHECK(b->Get("interviews", "i1").status().code() == StatusCode::kNotFound);
}

TEST_CASE_METHOD(TwoTablets,
                 "Restoring a record deleted against an edit brings it back with the edit",
                 "[core][conflict]") {
  DeleteAgainstEdit();
  REQUIRE_OK(b->ResolveDeleted("interviews", "i1", /*keep_deleted=*/false));
  Exchange();
  RequireSameState();
  CHECK(ConflictsOf(a.store()).empty());
  CHECK(ValueOf(a.store(), "interviews", "i1", "place") == "home");
  CHECK(ValueOf(a.store(), "interviews", "i1", "phase") == "assessment");
  CHECK(a->ResolveDeleted("interviews", "i1", false).code() == StatusCode::kFailedPrecondition);
}

TEST_CASE_METHOD(OneTablet, "A restore does not cancel a concurrent delete it had not seen",
                 "[core][conflict]") {
  Replica b(dir, "tab-b", testing::kStartMs + 3);
  Replica c(dir, "tab-c", testing::kStartMs + 7);
  REQUIRE_OK(a->Set("interviews", "i1", "place", "office"));
  ExchangeAll({&a.store(), &b.store(), &c.store()});
  REQUIRE_OK(a->Delete("interviews", "i1"));
  Deliver(a.store(), b.store());
  REQUIRE_OK(c->Delete("interviews", "i1"));
  b.env().Advance(1'000);
  REQUIRE_OK(b->Restore("interviews", "i1"));
  ExchangeAll({&a.store(), &b.store(), &c.store()});
  for (Replica* r : {&a, &b, &c}) {
    CHECK(r->store().Get("interviews", "i1").status().code() == StatusCode::kNotFound);
  }
  CHECK(Dump(a.store()) == Dump(c.store()));
}

TEST_CASE_METHOD(OneTablet, "A forward-only validation state never goes back", "[core][conflict]") {
  REQUIRE_OK(a->Set("exits", "x1", "validation", "draft"));
  REQUIRE_OK(a->Set("exits", "x1", "validation", "validated"));
  CHECK(a->Set("exits", "x1", "validation", "draft").code() == StatusCode::kFailedPrecondition);
  CHECK(a->Set("exits", "x1", "validation", std::nullopt).code() ==
        StatusCode::kFailedPrecondition);
  REQUIRE_OK(a->Set("exits", "x1", "validation", "exported"));
  CHECK(a->Set("exits", "x1", "validation", "validated").code() == StatusCode::kFailedPrecondition);
  CHECK(ValueOf(a.store(), "exits", "x1", "validation") == "exported");
}

TEST_CASE_METHOD(TwoTablets,
                 "A concurrent lower validation state loses whatever its clock and is no conflict",
                 "[core][conflict]") {
  REQUIRE_OK(a->Set("entry_situations", "s1", "validation", "draft"));
  Exchange();
  REQUIRE_OK(a->Set("entry_situations", "s1", "validation", "validated"));
  b.env().Advance(60'000);  // B's write is far later by the clock
  REQUIRE_OK(b->Set("entry_situations", "s1", "validation", "draft"));
  REQUIRE(StampOf(a.store(), "entry_situations", "s1", "validation") <
          StampOf(b.store(), "entry_situations", "s1", "validation"));
  Exchange();
  RequireSameState();
  for (Replica* r : {&a, &b}) {
    FieldValue validation = GetRecord(r->store(), "entry_situations", "s1").fields.at("validation");
    CHECK(validation.value == "validated");
    CHECK_FALSE(validation.in_conflict);
    CHECK(ConflictsOf(r->store()).empty());
  }
}

TEST_CASE_METHOD(TwoTablets, "A validated record is frozen against local edits of its other fields",
                 "[core][conflict]") {
  REQUIRE_OK(
      a->Put("entry_situations", "s1", {{"labour_status", "unemployed"}, {"validation", "draft"}}));
  REQUIRE_OK(a->Set("entry_situations", "s1", "age_band", "25_54"));
  REQUIRE_OK(a->Set("entry_situations", "s1", "validation", "validated"));
  const std::string before = Dump(a.store());
  CHECK(a->Set("entry_situations", "s1", "labour_status", "employed").code() ==
        StatusCode::kFailedPrecondition);
  CHECK(a->Put("entry_situations", "s1", {{"age_band", "over_54"}}).code() ==
        StatusCode::kFailedPrecondition);
  CHECK(Dump(a.store()) == before);

  // The freeze travels: the other tablet refuses local edits once it has the validation.
  Exchange();
  CHECK(b->Set("entry_situations", "s1", "labour_status", "employed").code() ==
        StatusCode::kFailedPrecondition);
  CHECK(ValueOf(b.store(), "entry_situations", "s1", "labour_status") == "unemployed");
}

TEST_CASE_METHOD(TwoTablets, "Resolve cannot take a forward-only validation state back",
                 "[core][conflict]") {
  REQUIRE_OK(a->Set("exits", "x1", "validation", "draft"));
  Exchange();
  REQUIRE_OK(a->Set("exits", "x1", "validation", "validated"));
  REQUIRE_OK(b->Set("exits", "x1", "category", "training"));  // B writes on, still a draft
  REQUIRE_OK(b->Set("exits", "x1", "validation", "draft"));
  Exchange();
  REQUIRE(ValueOf(b.store(), "exits", "x1", "validation") == "validated");
  REQUIRE(ConflictsOf(b.store()).empty());

  // No conflict is listed, so there is none to resolve; and resolving to a lower state would be
  // a step back.
  Status resolved = b->Resolve("exits", "x1", "validation", "draft");
  CHECK(resolved.code() == StatusCode::kFailedPrecondition);
  Exchange();
  for (Replica* r : {&a, &b}) {
    CHECK(ValueOf(r->store(), "exits", "x1", "validation") == "validated");
    CHECK(r->store().Set("exits", "x1", "category", "other").code() ==
          StatusCode::kFailedPrecondition);
  }
}

TEST_CASE_METHOD(OneTablet, "A validated record cannot be deleted, only a draft can",
                 "[core][conflict]") {
  REQUIRE_OK(a->Put("exits", "x1", {{"category", "training"}, {"validation", "draft"}}));
  REQUIRE_OK(a->Put("exits", "x2", {{"category", "training"}, {"validation", "validated"}}));
  REQUIRE_OK(a->Delete("exits", "x1"));
  CHECK(a->Delete("exits", "x2").code() == StatusCode::kFailedPrecondition);
  CHECK(ValueOf(a.store(), "exits", "x2", "category") == "training");
}

TEST_CASE_METHOD(OneTablet, "One Put can complete a record and validate it, whatever the order",
                 "[core][conflict]") {
  REQUIRE_OK(a->Put("exits", "x1",
                    {{"validation", "validated"}, {"category", "training"}, {"exit_date", "2026-11-30"}}));
  Record exit = GetRecord(a.store(), "exits", "x1");
  CHECK(exit.fields.at("category").value == "training");
  CHECK(exit.fields.at("validation").value == "validated");
  // Frozen from then on.
  CHECK(a->Set("exits", "x1", "category", "other").code() == StatusCode::kFailedPrecondition);
}

TEST_CASE_METHOD(TwoTablets, "Two tablets typing the same value concurrently make no conflict",
                 "[core][conflict]") {
  REQUIRE_OK(a->Set("participants", "p1", "phase", "job_search"));
  REQUIRE_OK(b->Set("participants", "p1", "phase", "job_search"));
  Exchange();
  RequireSameState();
  CHECK(ConflictsOf(a.store()).empty());
  CHECK_FALSE(GetRecord(a.store(), "participants", "p1").fields.at("phase").in_conflict);
  CHECK(a->Resolve("participants", "p1", "phase", "job_search").code() ==
        StatusCode::kFailedPrecondition);

  // A later write replaces both copies: the older one does not surface as a conflict.
  a.env().Advance(1'000);
  REQUIRE_OK(a->Set("participants", "p1", "phase", "in_work_followup"));
  Exchange();
  RequireSameState();
  CHECK(ConflictsOf(b.store()).empty());
  CHECK(ValueOf(b.store(), "participants", "p1", "phase") == "in_work_followup");
}

TEST_CASE_METHOD(OneTablet, "Revising a log entry that is not there is not found",
                 "[core][store]") {
  Result<Stamp> first = a->Append("interviews", "i1", "notes", "first");
  REQUIRE_OK(first);
  Stamp missing = *first;
  missing.device = "tab-z";
  CHECK(StatusOf(a->Append("interviews", "i1", "notes", "revised", missing)).code() ==
        StatusCode::kNotFound);
  REQUIRE_OK(a->Redact("interviews", "i1", "notes", *first));
  CHECK(StatusOf(a->Append("interviews", "i1", "notes", "revised", *first)).code() ==
        StatusCode::kNotFound);
}

TEST_CASE_METHOD(TwoTablets,
                 "Forgetting a participant takes along the records their winning value names only",
                 "[core][scope]") {
  REQUIRE_OK(a->Put("interviews", "i1", {{"participant", "p1"}, {"place", "office"}}));
  REQUIRE_OK(a->Put("interviews", "i2", {{"participant", "p1"}, {"place", "home"}}));
  Exchange();
  // Concurrently: A confirms i1 for p1, B moves it to p5, later. p5 wins, p1 is kept for review.
  REQUIRE_OK(a->Set("interviews", "i1", "participant", "p1"));
  b.env().Advance(1'000);
  REQUIRE_OK(b->Set("interviews", "i1", "participant", "p5"));
  Exchange();
  REQUIRE(ValueOf(a.store(), "interviews", "i1", "participant") == "p5");
  REQUIRE(ConflictsOf(a.store()).size() == 1);
  // Everything pushed: nothing pending stops the forget.
  REQUIRE_OK(a->AcknowledgeOperations(NextSeqByWriting(a.store())));

  REQUIRE_OK(a->Forget("participants", "p1"));
  CHECK(StatusOf(a->Get("interviews", "i2")).code() == StatusCode::kNotFound);
  CHECK(ValueOf(a.store(), "interviews", "i1", "participant") == "p5");
}
