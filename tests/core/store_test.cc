// The local store's basic API: writing and reading records of every field kind.
#include "carnet/store.h"

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/core/store_helpers.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_env.h"

using namespace carnet;
using namespace carnet::testing;

TEST_CASE("A register written locally reads back", "[core][store]") {
  testing::TempDir dir;
  testing::TestEnv env;
  StoreOptions options;
  options.path = dir.File("a.db");
  options.device_id = "tab-a";
  options.env = &env;
  auto store = Store::Open(options);
  REQUIRE(store.ok());
  REQUIRE((*store)->Set("participants", "p1", "phase", "assessment").ok());
  auto record = (*store)->Get("participants", "p1");
  REQUIRE(record.ok());
  CHECK(record->fields.at("phase").value == "assessment");
}

TEST_CASE_METHOD(OneTablet, "Put writes several registers that Get reads back with their stamp",
                 "[core][store]") {
  REQUIRE_OK(a->Put("participants", "p1",
                    {{"first_name", "Léa"}, {"birth_date", "1990-02-28"}, {"rural", "true"}}));
  Record record = GetRecord(a.store(), "participants", "p1");
  CHECK(record.collection == "participants");
  CHECK(record.id == "p1");
  CHECK(record.fields.size() == 3);
  const FieldValue& name = record.fields.at("first_name");
  CHECK(name.kind == FieldKind::kRegister);
  CHECK(name.value == "Léa");
  REQUIRE(name.stamp.has_value());
  CHECK(name.stamp->device == "tab-a");
  CHECK_FALSE(name.in_conflict);
  CHECK(record.fields.at("birth_date").value == "1990-02-28");
  CHECK(record.fields.at("rural").value == "true");
}

TEST_CASE_METHOD(OneTablet, "A later write replaces a register and a cleared register is gone",
                 "[core][store]") {
  REQUIRE_OK(a->Set("participants", "p1", "phase", "assessment"));
  REQUIRE_OK(a->Set("participants", "p1", "phase", "job_search"));
  CHECK(ValueOf(a.store(), "participants", "p1", "phase") == "job_search");
  REQUIRE_OK(a->Set("participants", "p1", "phase", std::nullopt));
  CHECK_FALSE(ValueOf(a.store(), "participants", "p1", "phase").has_value());
  CHECK(testing::ConflictsOf(a.store()).empty());
}

TEST_CASE_METHOD(OneTablet, "Get of a record never written is not found", "[core][store]") {
  CHECK(a->Get("participants", "nobody").status().code() == StatusCode::kNotFound);
  CHECK(a->Get("no_such_collection", "p1").status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE_METHOD(OneTablet,
                 "List returns the records of a collection by id and Query filters on a register",
                 "[core][store]") {
  REQUIRE_OK(a->Put("interviews", "i2", {{"place", "home"}, {"participant", "p1"}}));
  REQUIRE_OK(a->Put("interviews", "i1", {{"place", "office"}, {"participant", "p1"}}));
  REQUIRE_OK(a->Put("interviews", "i3", {{"place", "home"}, {"participant", "p2"}}));
  REQUIRE_OK(a->Set("participants", "p1", "phase", "health"));

  Result<std::vector<Record>> all = a->List("interviews");
  REQUIRE_OK(all);
  REQUIRE(all->size() == 3);
  CHECK((*all)[0].id == "i1");
  CHECK((*all)[1].id == "i2");
  CHECK((*all)[2].id == "i3");

  Result<std::vector<Record>> at_home = a->Query("interviews", "place", "home");
  REQUIRE_OK(at_home);
  REQUIRE(at_home->size() == 2);
  CHECK((*at_home)[0].id == "i2");
  CHECK((*at_home)[1].id == "i3");
  Result<std::vector<Record>> none = a->Query("interviews", "place", "phone");
  REQUIRE_OK(none);
  CHECK(none->empty());
  CHECK(a->Query("interviews", "notes", "x").status().code() == StatusCode::kInvalidArgument);
  CHECK(a->List("no_such_collection").status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE_METHOD(OneTablet, "Set elements are added then listed sorted once each and removed",
                 "[core][store]") {
  REQUIRE_OK(a->Add("participants", "p1", "barriers", "mobility"));
  REQUIRE_OK(a->Add("participants", "p1", "barriers", "childcare"));
  REQUIRE_OK(a->Add("participants", "p1", "barriers", "mobility"));
  FieldValue barriers = GetRecord(a.store(), "participants", "p1").fields.at("barriers");
  CHECK(barriers.kind == FieldKind::kSet);
  CHECK(barriers.elements == std::vector<std::string>{"childcare", "mobility"});

  REQUIRE_OK(a->Remove("participants", "p1", "barriers", "mobility"));
  barriers = GetRecord(a.store(), "participants", "p1").fields.at("barriers");
  CHECK(barriers.elements == std::vector<std::string>{"childcare"});
  CHECK(a->Remove("participants", "p1", "barriers", "mobility").code() == StatusCode::kNotFound);
}

TEST_CASE_METHOD(OneTablet, "Log entries are appended in order and redacted but kept and revised",
                 "[core][store]") {
  Result<Stamp> first = a->Append("interviews", "i1", "notes", "Met at the office.");
  REQUIRE_OK(first);
  a.env().Advance(10);
  Result<Stamp> second = a->Append("interviews", "i1", "notes", "Wants to drive.");
  REQUIRE_OK(second);
  CHECK(*first < *second);
  a.env().Advance(10);
  Result<Stamp> revision =
      a->Append("interviews", "i1", "notes", "Wants a driving licence.", *second);
  REQUIRE_OK(revision);
  REQUIRE_OK(a->Redact("interviews", "i1", "notes", *first));

  std::vector<LogEntry> notes = GetRecord(a.store(), "interviews", "i1").fields.at("notes").entries;
  REQUIRE(notes.size() == 3);
  CHECK(notes[0].stamp == *first);
  CHECK(notes[0].redacted);
  CHECK(notes[0].text.empty());
  CHECK(notes[1].text == "Wants to drive.");
  CHECK_FALSE(notes[1].redacted);
  CHECK(notes[2].text == "Wants a driving licence.");
  CHECK(notes[2].revises == *second);
  CHECK(a->Redact("interviews", "i1", "notes", *first).code() == StatusCode::kNotFound);
}

TEST_CASE_METHOD(OneTablet, "A deleted record is not found nor listed and comes back when restored",
                 "[core][store]") {
  REQUIRE_OK(a->Put("interviews", "i1", {{"place", "office"}}));
  REQUIRE_OK(a->Put("interviews", "i2", {{"place", "home"}}));
  REQUIRE_OK(a->Delete("interviews", "i1"));

  CHECK(a->Get("interviews", "i1").status().code() == StatusCode::kNotFound);
  Result<std::vector<Record>> listed = a->List("interviews");
  REQUIRE_OK(listed);
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().id == "i2");
  CHECK(a->Set("interviews", "i1", "place", "home").code() == StatusCode::kFailedPrecondition);
  CHECK(a->Delete("interviews", "i1").code() == StatusCode::kFailedPrecondition);

  REQUIRE_OK(a->Restore("interviews", "i1"));
  CHECK(ValueOf(a.store(), "interviews", "i1", "place") == "office");
  CHECK(a->Restore("interviews", "i1").code() == StatusCode::kFailedPrecondition);
}

TEST_CASE_METHOD(OneTablet, "Deleting a record that was never written is not found",
                 "[core][store]") {
  CHECK(a->Delete("interviews", "nothing").code() == StatusCode::kNotFound);
  CHECK(testing::Outbox(a.store()).empty());
}

TEST_CASE_METHOD(OneTablet, "NewId returns distinct ids of 32 lowercase hex digits",
                 "[core][store]") {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = a->NewId();
    REQUIRE(id.size() == 32);
    REQUIRE(std::all_of(id.begin(), id.end(),
                        [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }));
    CHECK(IsValidRecordId(id));
    ids.insert(id);
  }
  CHECK(ids.size() == 1000);
}

TEST_CASE_METHOD(OneTablet,
                 "Every local change is queued in the outbox with consecutive sequence numbers",
                 "[core][store]") {
  REQUIRE_OK(a->Set("participants", "p1", "phase", "assessment"));
  REQUIRE_OK(a->Add("participants", "p1", "barriers", "housing"));
  REQUIRE_OK(a->Append("interviews", "i1", "notes", "text"));
  std::vector<Operation> outbox = testing::Outbox(a.store());
  REQUIRE(outbox.size() == 3);
  for (size_t i = 0; i < outbox.size(); ++i) {
    CHECK(outbox[i].seq == i + 1);
    CHECK(outbox[i].device == "tab-a");
    if (i > 0) CHECK(outbox[i].hlc > outbox[i - 1].hlc);
  }
  CHECK(outbox[0].kind == OpKind::kWrite);
  CHECK(outbox[1].kind == OpKind::kAdd);
  CHECK(outbox[1].element == "housing");
  CHECK(outbox[2].kind == OpKind::kAppend);
  Result<uint64_t> count = a->PendingCount();
  REQUIRE_OK(count);
  CHECK(*count == 3);
  Result<std::vector<Operation>> after_one = a->PendingOperations(1, 1);
  REQUIRE_OK(after_one);
  REQUIRE(after_one->size() == 1);
  CHECK(after_one->front().seq == 2);
}

TEST_CASE_METHOD(OneTablet,
                 "Acknowledged operations leave the outbox and unmade ones cannot be acknowledged",
                 "[core][store]") {
  REQUIRE_OK(a->Set("participants", "p1", "phase", "assessment"));
  REQUIRE_OK(a->Set("participants", "p1", "phase", "health"));
  REQUIRE_OK(a->AcknowledgeOperations(1));
  std::vector<Operation> outbox = testing::Outbox(a.store());
  REQUIRE(outbox.size() == 1);
  CHECK(outbox.front().seq == 2);
  CHECK(a->AcknowledgeOperations(3).code() == StatusCode::kInvalidArgument);
  CHECK(testing::Outbox(a.store()).size() == 1);
}

TEST_CASE_METHOD(OneTablet, "Operations from another replica are merged and counted",
                 "[core][store]") {
  Replica b(dir, "tab-b");
  REQUIRE_OK(a->Set("participants", "p1", "phase", "assessment"));
  REQUIRE_OK(a->Add("participants", "p1", "barriers", "debt"));
  ApplyStats first = testing::Deliver(a.store(), b.store());
  CHECK(first.applied == 2);
  CHECK(first.duplicates == 0);
  ApplyStats again = testing::Deliver(a.store(), b.store());
  CHECK(again.applied == 0);
  CHECK(again.duplicates == 2);
  CHECK(ValueOf(b.store(), "participants", "p1", "phase") == "assessment");
  CHECK(testing::Dump(a.store()) == testing::Dump(b.store()));
  CHECK(testing::Outbox(b.store()).empty());
}

TEST_CASE_METHOD(OneTablet,
                 "Threads sharing a store all get their changes in and numbered without gaps",
                 "[core][store]") {
  constexpr int kThreads = 4, kWrites = 50;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string id = "p" + std::to_string(t);
      for (int i = 0; i < kWrites; ++i) {
        if (i % 10 == 0) {
          Result<Transaction> txn = a->Begin();
          if (!txn.ok() || !txn->Add("participants", id, "barriers", "debt").ok() ||
              !txn->Set("participants", id, "first_name", std::to_string(i)).ok() ||
              !txn->Commit().ok())
            ++failures;
        } else if (!a->Set("participants", id, "first_name", std::to_string(i)).ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(failures == 0);
  std::vector<Operation> outbox = testing::Outbox(a.store());
  REQUIRE(outbox.size() == kThreads * (kWrites + kWrites / 10));
  for (size_t i = 0; i < outbox.size(); ++i) CHECK(outbox[i].seq == i + 1);
  for (int t = 0; t < kThreads; ++t) {
    CHECK(ValueOf(a.store(), "participants", "p" + std::to_string(t), "first_name") ==
          std::to_string(kWrites - 1));
  }
}
