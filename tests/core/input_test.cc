// Bad input, local or remote, gives a clear status and writes nothing.
#include <functional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/store.h"
#include "tests/core/store_helpers.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

// A store that already holds a little of everything, so that "nothing written" means something.
struct Fixture : OneTablet {
  Fixture() {
    REQUIRE_OK(
        a->Put("participants", "p1", {{"phase", "assessment"}, {"birth_date", "1980-01-31"}}));
    REQUIRE_OK(a->Add("participants", "p1", "barriers", "mobility"));
    REQUIRE_OK(a->Append("interviews", "i1", "notes", "First meeting."));
    a.env().Advance(1'000);
    before = Take(a.store());
  }

  // Requires `status` to carry `code` and a message naming `mention`, and the store to hold what
  // it held when the fixture was set up.
  void RequireRefused(const Status& status, StatusCode code, const std::string& mention) {
    INFO(status.ToString());
    CHECK(status.code() == code);
    CHECK_THAT(status.message(), Catch::Contains(mention));
    CHECK(Take(a.store()) == before);
  }

  Snapshot before;
};

}  // namespace

TEST_CASE_METHOD(Fixture, "A write to an unknown collection is refused and writes nothing",
                 "[core][input]") {
  RequireRefused(a->Set("visits", "p1", "phase", "health"), StatusCode::kInvalidArgument,
                 "unknown collection 'visits'");
  RequireRefused(a->Delete("visits", "p1"), StatusCode::kInvalidArgument, "visits");
}

TEST_CASE_METHOD(Fixture, "A write to an unknown field is refused and writes nothing",
                 "[core][input]") {
  RequireRefused(a->Set("participants", "p1", "shoe_size", "42"), StatusCode::kInvalidArgument,
                 "unknown field 'shoe_size'");
  RequireRefused(a->Add("participants", "p1", "hobbies", "chess"), StatusCode::kInvalidArgument,
                 "hobbies");
}

TEST_CASE_METHOD(Fixture, "A call of the wrong kind for its field is refused and writes nothing",
                 "[core][input]") {
  RequireRefused(a->Add("participants", "p1", "phase", "health"), StatusCode::kInvalidArgument,
                 "is a register, not a set");
  RequireRefused(a->Set("participants", "p1", "barriers", "housing"), StatusCode::kInvalidArgument,
                 "is a set, not a register");
  RequireRefused(a->Append("participants", "p1", "phase", "text").status(),
                 StatusCode::kInvalidArgument, "is a register, not a log");
  RequireRefused(a->Set("interviews", "i1", "notes", "overwrite"), StatusCode::kInvalidArgument,
                 "is a log, not a register");
}

TEST_CASE_METHOD(Fixture, "A value of the wrong type is refused and writes nothing",
                 "[core][input]") {
  struct Case {
    const char* collection;
    const char* field;
    const char* value;
  };
  const Case cases[] = {
      {"participants", "birth_date", "31/01/1980"},
      {"participants", "birth_date", "2023-02-29"},
      {"participants", "birth_date", "2024-13-01"},
      {"participants", "phase", "holidays"},
      {"participants", "phase", "Assessment"},
      {"participants", "rural", "yes"},
      {"workshops", "capacity", "12.5"},
      {"workshops", "capacity", "twelve"},
      {"workshops", "capacity", ""},
      {"workshops", "capacity", "-"},
      {"workshops", "capacity", "99999999999999999999"},
      {"interviews", "date_time", "2025-03-01 10:00:00"},
      {"interviews", "date_time", "2025-03-01T24:00:00Z"},
      {"interviews", "participant", "not an id"},
      {"participants", "first_name", "\xff\xfe"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.collection, c.field, c.value);
    RequireRefused(a->Set(c.collection, "r1", c.field, std::string(c.value)),
                   StatusCode::kInvalidArgument, c.field);
  }
  RequireRefused(a->Add("participants", "p1", "barriers", "weather"), StatusCode::kInvalidArgument,
                 "not one of the allowed values");
}

TEST_CASE_METHOD(Fixture, "Values of the right type are accepted", "[core][input]") {
  REQUIRE_OK(a->Put("workshops", "w1",
                    {{"capacity", "-3"}, {"date_time", "2024-02-29T23:59:59Z"}, {"theme", ""}}));
  REQUIRE_OK(a->Set("participants", "p1", "birth_date", "2000-02-29"));
  REQUIRE_OK(a->Set("participants", "p1", "first_name", "Zoë 🙂"));
  REQUIRE_OK(a->Set("participants", "p1", "first_name", std::string(kMaxValueBytes, 'x')));
}

TEST_CASE_METHOD(Fixture, "A value over the size limit is refused and writes nothing",
                 "[core][input]") {
  const std::string oversized(kMaxValueBytes + 1, 'x');
  RequireRefused(a->Set("participants", "p1", "first_name", oversized),
                 StatusCode::kInvalidArgument, "exceeds the limit");
  RequireRefused(a->Append("interviews", "i1", "notes", oversized).status(),
                 StatusCode::kInvalidArgument, "exceeds the limit");
}

TEST_CASE_METHOD(Fixture, "An invalid record id is refused and writes nothing", "[core][input]") {
  const std::string ids[] = {"", "has space", "slash/id", "é",
                             std::string(kMaxRecordIdBytes + 1, 'a')};
  for (const std::string& id : ids) {
    CAPTURE(id);
    RequireRefused(a->Set("participants", id, "phase", "health"), StatusCode::kInvalidArgument,
                   "invalid record id");
    RequireRefused(a->Add("participants", id, "barriers", "debt"), StatusCode::kInvalidArgument,
                   "invalid record id");
  }
  REQUIRE_OK(a->Set("participants", std::string(kMaxRecordIdBytes, 'a'), "phase", "health"));
}

TEST_CASE_METHOD(Fixture, "A failed call inside a transaction leaves the calls before it to commit",
                 "[core][input]") {
  Result<Transaction> txn = a->Begin();
  REQUIRE_OK(txn);
  REQUIRE_OK(txn->Set("participants", "p2", "phase", "health"));
  CHECK(txn->Put("participants", "p2", {{"status", "active"}, {"gender", "robot"}}).code() ==
        StatusCode::kInvalidArgument);
  REQUIRE_OK(txn->Add("participants", "p2", "barriers", "debt"));
  REQUIRE_OK(txn->Commit());
  std::vector<Operation> outbox = Outbox(a.store());
  REQUIRE(outbox.size() == 6);  // the fixture made four
  CHECK(outbox[4].field == "phase");
  CHECK(outbox[4].seq == 5);
  CHECK(outbox[5].field == "barriers");
  CHECK(outbox[5].seq == 6);
  Record p2 = testing::GetRecord(a.store(), "participants", "p2");
  CHECK(p2.fields.count("status") == 0);
}

namespace {

// Three good operations from another tablet, and a place to spoil one of them.
struct RemoteBatch : Fixture {
  Replica b{dir, "tab-b"};
  std::vector<Operation> good;

  RemoteBatch() {
    REQUIRE_OK(b->Set("participants", "p1", "phase", "job_search"));
    REQUIRE_OK(b->Add("participants", "p1", "barriers", "housing"));
    REQUIRE_OK(b->Append("interviews", "i1", "notes", "From B."));
    good = Outbox(b.store());
    REQUIRE(good.size() == 3);
  }

  // Applies the batch with its middle operation replaced by `bad`: the whole batch must be
  // refused with a message naming the bad operation, and nothing of it kept.
  void RequireBatchRefused(const Operation& bad, const std::string& why) {
    std::vector<Operation> batch = good;
    batch[1] = bad;
    Result<ApplyStats> result = a->ApplyRemote(batch, {{"cursor", "3"}});
    RequireRefused(result.status(), StatusCode::kInvalidArgument, why);
    CHECK_FALSE(SyncState(a.store(), "cursor").has_value());
    Result<ApplyStats> alone = a->ApplyRemote(good);
    REQUIRE_OK(alone);
    CHECK(alone->applied == 3);
  }
};

}  // namespace

namespace {

enum Base {
  kFromWrite,
  kFromAdd,
  kFromAppend
};  // which of the good operations a malformation starts from

struct Malformation {
  const char* name;
  Base base;
  std::function<void(Operation&)> spoil;
  const char* why;  // what the refusal must say
};

const std::vector<Malformation>& Malformations() {
  static const std::vector<Malformation> all = {
      {"sequence number 0", kFromAdd, [](Operation& op) { op.seq = 0; },
       "sequence numbers start at 1"},
      {"missing clock stamp", kFromAdd, [](Operation& op) { op.hlc = 0; }, "missing clock stamp"},
      {"bad device id", kFromAdd, [](Operation& op) { op.device = "tab b"; }, "invalid device id"},
      {"empty device id", kFromAdd, [](Operation& op) { op.device = ""; }, "invalid device id"},
      {"invalid collection name", kFromAdd, [](Operation& op) { op.collection = "Visits"; },
       "invalid collection name"},
      {"invalid record id", kFromAdd, [](Operation& op) { op.record = "p 1"; },
       "invalid record id"},
      {"invalid field name", kFromAdd, [](Operation& op) { op.field = "Barriers"; },
       "invalid field name"},
      {"set operation with a value", kFromAdd, [](Operation& op) { op.value = "housing"; },
       "not a value"},
      {"element neither in the enum nor a name", kFromAdd,
       [](Operation& op) { op.element = "Bad weather"; },
       "neither one of the allowed values nor a newer one's name"},
      {"addition on a register", kFromAdd,
       [](Operation& op) {
         op.field = "phase";
         op.element = "health";
       },
       "a add on register field 'phase'"},
      {"ref newer than the op", kFromWrite,
       [](Operation& op) {
         op.refs = {Stamp{op.hlc + 1, "tab-a"}};
       },
       "ref not older than the op"},
      {"ref equal to the op", kFromWrite, [](Operation& op) { op.refs = {op.stamp()}; },
       "ref not older than the op"},
      {"ref without a clock", kFromWrite,
       [](Operation& op) {
         op.refs = {Stamp{0, "tab-a"}};
       },
       "malformed ref"},
      {"write of an enum value that is not a name", kFromWrite,
       [](Operation& op) { op.value = "Holidays!"; },
       "neither one of the allowed values nor a newer one's name"},
      {"write with an element", kFromWrite, [](Operation& op) { op.element = "x"; },
       "only set operations carry an element"},
      {"oversized value", kFromWrite,
       [](Operation& op) {
         op.field = "first_name";
         op.value = std::string(kMaxValueBytes + 1, 'x');
       },
       "exceeds the limit"},
      {"append without text", kFromAppend, [](Operation& op) { op.value.reset(); },
       "append without text"},
      {"redaction of two entries", kFromAppend,
       [](Operation& op) {
         op.kind = OpKind::kRedact;
         op.value.reset();
         op.refs = {Stamp{1, "tab-a"}, Stamp{2, "tab-a"}};
       },
       "a redaction names one entry"},
      {"delete with a field", kFromWrite,
       [](Operation& op) {
         op.kind = OpKind::kDelete;
         op.value.reset();
       },
       "a record operation carries no field"},
  };
  return all;
}

}  // namespace

TEST_CASE_METHOD(RemoteBatch,
                 "A malformed operation refuses its whole batch and nothing of it is applied",
                 "[core][input]") {
  for (const Malformation& m : Malformations()) {
    DYNAMIC_SECTION(m.name) {
      Operation bad = good[m.base];
      m.spoil(bad);
      RequireBatchRefused(bad, m.why);
    }
  }
}

TEST_CASE_METHOD(RemoteBatch,
                 "A remote operation on a field the schema does not know is accepted and kept",
                 "[core][input]") {
  std::vector<Operation> future = {good[0], good[1]};
  future[0].field = "preferred_language";
  future[0].value = "occitan";
  future[1].field = "languages";
  future[1].element = "breton";
  for (size_t i = 0; i < future.size(); ++i) {
    future[i].seq = 10 + i;
    future[i].hlc = good.back().hlc + 1 + i;
  }
  Result<ApplyStats> applied = a->ApplyRemote(future);
  REQUIRE_OK(applied);
  CHECK(applied->applied == 2);

  Record p1 = testing::GetRecord(a.store(), "participants", "p1");
  REQUIRE(p1.fields.count("preferred_language") == 1);
  CHECK(p1.fields.at("preferred_language").value == "occitan");
  REQUIRE(p1.fields.count("languages") == 1);
  CHECK(p1.fields.at("languages").elements == std::vector<std::string>{"breton"});
  CHECK_THAT(testing::Dump(a.store()), Catch::Contains("preferred_language") &&
                                           Catch::Contains("occitan") && Catch::Contains("breton"));
  // Still there, and still the same, after the rest of the batch and a reopen.
  REQUIRE_OK(a->ApplyRemote(good));
  const std::string dump = testing::Dump(a.store());
  a.Reopen();
  CHECK(testing::Dump(a.store()) == dump);
}
