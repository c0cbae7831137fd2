// Store::RestampAhead: the outbox's operations stamped by a clock set years ahead get fresh
// stamps at the right time, and the store reads exactly as before, relabelled.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/store.h"
#include "tests/core/store_helpers.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kYearMs = 365LL * 24 * 60 * kMinuteMs;
constexpr int64_t kBoundMs = 15 * kMinuteMs;

// The dump's lines, sorted, with every stamp renamed as `renames` says.
std::vector<std::string> Relabelled(const std::string& dump,
                                    const std::map<std::string, std::string>& renames) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end; (end = dump.find('\n', start)) != std::string::npos; start = end + 1) {
    std::string line = dump.substr(start, end - start);
    for (const auto& [from, to] : renames) {
      for (size_t at; (at = line.find(from)) != std::string::npos;) line.replace(at, from.size(), to);
    }
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

std::vector<std::string> SortedLines(const std::string& dump) { return Relabelled(dump, {}); }

// A tablet that wrote at the right time, took in a colleague's write stamped ten minutes ahead of
// the true time, then made changes of every kind while its clock was set three years ahead.
struct YearsAhead {
  TempDir dir;
  Replica a{dir, "tab-a", kStartMs, 1};
  Replica b{dir, "tab-b", kStartMs + 70 * kMinuteMs, 2};
  size_t far_ops = 0;
  Stamp colleague;  // tab-b's write, the greatest stamp tab-a holds from others

  YearsAhead() {
    REQUIRE_OK(a->Put("participants", "p1", {{"first_name", "Ana"}, {"phase", "assessment"}}));
    REQUIRE_OK(b->Set("participants", "p2", "phase", "assessment"));
    colleague = Outbox(b.store()).back().stamp();
    const size_t before = Outbox(a.store()).size();

    a.env().SetNow(kStartMs + 3 * kYearMs);
    Deliver(b.store(), a.store());
    // Overwrites of what is not ahead: its own write, the colleague's.
    REQUIRE_OK(a->Set("participants", "p1", "phase", "job_search"));
    REQUIRE_OK(a->Set("participants", "p2", "phase", "health"));
    // A far-future write, overwritten by another.
    REQUIRE_OK(a->Set("participants", "p1", "status", "active"));
    REQUIRE_OK(a->Set("participants", "p1", "status", "suspended"));
    // A note and its revision, another redacted.
    Result<Stamp> draft = a->Append("interviews", "i1", "notes", "draft");
    REQUIRE_OK(draft);
    REQUIRE_OK(a->Append("interviews", "i1", "notes", "final", *draft));
    Result<Stamp> slip = a->Append("interviews", "i1", "notes", "wrong participant");
    REQUIRE_OK(slip);
    REQUIRE_OK(a->Redact("interviews", "i1", "notes", *slip));
    // A set element added then removed, another added.
    REQUIRE_OK(a->Add("participants", "p1", "barriers", "mobility"));
    REQUIRE_OK(a->Remove("participants", "p1", "barriers", "mobility"));
    REQUIRE_OK(a->Add("participants", "p1", "barriers", "housing"));
    // A record deleted and restored, then deleted again.
    REQUIRE_OK(a->Put("workshops", "w1", {{"theme", "CV"}}));
    REQUIRE_OK(a->Delete("workshops", "w1"));
    REQUIRE_OK(a->Restore("workshops", "w1"));
    REQUIRE_OK(a->Set("workshops", "w1", "capacity", "12"));
    REQUIRE_OK(a->Delete("workshops", "w1"));
    far_ops = Outbox(a.store()).size() - before;

    // The clock is set right; the server's offset would say as much.
    a.env().SetNow(kStartMs + 60 * kMinuteMs);
  }
};

}  // namespace

TEST_CASE_METHOD(YearsAhead,
                 "Operations stamped years ahead are stamped anew and the store reads the same",
                 "[core][restamp]") {
  const std::vector<Operation> before = Outbox(a.store());
  const std::string dump_before = Dump(a.store());
  const int64_t now = a.env().NowMillis();
  std::vector<std::vector<Change>> told;
  a->AddObserver([&](const std::vector<Change>& changes) { told.push_back(changes); });

  Result<size_t> moved = a->RestampAhead(kBoundMs);

  REQUIRE_OK(moved);
  CHECK(*moved == far_ops);
  const std::vector<Operation> after = Outbox(a.store());
  REQUIRE(after.size() == before.size());
  std::map<Stamp, Stamp> renames;
  for (size_t i = 0; i < before.size(); ++i) {
    if (before[i].hlc != after[i].hlc) renames[before[i].stamp()] = after[i].stamp();
  }
  REQUIRE(renames.size() == far_ops);
  std::map<std::string, std::string> texts;
  for (const auto& [from, to] : renames) texts[StampToString(from)] = StampToString(to);
  Hlc previous = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    INFO("operation #" << before[i].seq << " " << OpKindName(before[i].kind));
    const Operation& op = after[i];
    CHECK(ValidateOperation(Schema::Programme(), op).ok());
    CHECK(op.hlc > previous);
    previous = op.hlc;
    // The operations not ahead are left as they were.
    if (i < before.size() - far_ops) {
      CHECK(op == before[i]);
      continue;
    }
    CHECK(HlcPhysicalMs(op.hlc) <= now + kBoundMs);
    CHECK(op.stamp() > colleague);
    // Everything but the stamps, and the refs that named the stamps that moved.
    Operation expected = before[i];
    expected.hlc = op.hlc;
    for (Stamp& ref : expected.refs) {
      if (renames.count(ref)) ref = renames.at(ref);
    }
    CHECK(op == expected);
  }
  // The same entries, relabelled: same winners, same conflicts (none).
  CHECK(SortedLines(Dump(a.store())) == Relabelled(dump_before, texts));
  CHECK(ConflictsText(a.store()) == "");
  CHECK(ValueOf(a.store(), "participants", "p1", "phase") == "job_search");
  CHECK(ValueOf(a.store(), "participants", "p1", "status") == "suspended");
  CHECK(ValueOf(a.store(), "participants", "p2", "phase") == "health");
  CHECK_FALSE(GetRecord(a.store(), "participants", "p1").fields["status"].in_conflict);
  CHECK(GetRecord(a.store(), "participants", "p1").fields["barriers"].elements ==
        std::vector<std::string>{"housing"});
  std::vector<LogEntry> notes = GetRecord(a.store(), "interviews", "i1").fields["notes"].entries;
  REQUIRE(notes.size() == 3);
  CHECK(notes[1].text == "final");
  CHECK(notes[1].revises == notes[0].stamp);
  CHECK(notes[2].redacted);
  CHECK(a->Get("workshops", "w1").status().code() == StatusCode::kNotFound);
  // The clock is back at the right time, above the colleague's stamp.
  CHECK(a->LastHlc() == after.back().hlc);
  REQUIRE_OK(a->Set("participants", "p1", "phase", "in_work_followup"));
  Operation next = Outbox(a.store()).back();
  CHECK(next.stamp() > after.back().stamp());
  CHECK(HlcPhysicalMs(next.hlc) <= now + kBoundMs);
  CHECK(next.refs == std::vector<Stamp>{renames.at(before[before.size() - far_ops].stamp())});
  // Observers heard of the fields whose stamps changed.
  REQUIRE(told.size() == 2);
  std::set<std::string> fields;
  for (const Change& c : told[0]) fields.insert(c.collection + "/" + c.record + "/" + c.field);
  CHECK(fields == std::set<std::string>{"participants/p1/phase", "participants/p2/phase",
                                        "participants/p1/status", "interviews/i1/notes",
                                        "participants/p1/barriers", "workshops/w1/",
                                        "workshops/w1/theme", "workshops/w1/capacity"});
}

TEST_CASE_METHOD(YearsAhead, "Re-stamped operations survive a reopen, clock included",
                 "[core][restamp]") {
  REQUIRE_OK(a->RestampAhead(kBoundMs));
  const Snapshot restamped = Take(a.store());
  a.Reopen();
  CHECK(Take(a.store()) == restamped);
  REQUIRE_OK(a->Set("participants", "p1", "phase", "health"));
  CHECK(HlcPhysicalMs(a->LastHlc()) <= a.env().NowMillis() + kBoundMs);
  CHECK(a->LastHlc() > restamped.last_hlc);
}

TEST_CASE_METHOD(YearsAhead, "Another replica that takes the re-stamped operations holds the same",
                 "[core][restamp]") {
  REQUIRE_OK(a->RestampAhead(kBoundMs));
  Replica c(dir, "tab-c", a.env().NowMillis(), 3);
  Deliver(b.store(), c.store());
  Deliver(a.store(), c.store());
  CHECK(Dump(c.store()) == Dump(a.store()));
  CHECK(ConflictsText(c.store()) == "");
}

TEST_CASE_METHOD(YearsAhead, "A second re-stamp finds nothing ahead and changes nothing",
                 "[core][restamp]") {
  REQUIRE_OK(a->RestampAhead(kBoundMs));
  const Snapshot once = Take(a.store());
  Result<size_t> again = a->RestampAhead(kBoundMs);
  REQUIRE_OK(again);
  CHECK(*again == 0);
  CHECK(Take(a.store()) == once);
}

TEST_CASE_METHOD(OneTablet, "Operations within the bound are not re-stamped", "[core][restamp]") {
  REQUIRE_OK(a->Set("participants", "p1", "phase", "assessment"));
  a.env().Advance(10 * kMinuteMs);
  REQUIRE_OK(a->Set("participants", "p1", "phase", "job_search"));
  a.env().Advance(-10 * kMinuteMs);  // the last one is ten minutes ahead now
  const Snapshot before = Take(a.store());
  Result<size_t> moved = a->RestampAhead(kBoundMs);
  REQUIRE_OK(moved);
  CHECK(*moved == 0);
  CHECK(Take(a.store()) == before);
}

TEST_CASE("A stamp from another replica as far ahead keeps the operations as they are",
          "[core][restamp]") {
  TempDir dir;
  Replica a(dir, "tab-a", kStartMs + 2 * kYearMs, 1);
  Replica b(dir, "tab-b", kStartMs + 2 * kYearMs, 2);
  REQUIRE_OK(b->Set("participants", "p1", "phase", "assessment"));
  Deliver(b.store(), a.store());
  REQUIRE_OK(a->Set("participants", "p1", "phase", "job_search"));
  a.env().SetNow(kStartMs);
  const Snapshot before = Take(a.store());
  Result<size_t> moved = a->RestampAhead(kBoundMs);
  REQUIRE_OK(moved);
  CHECK(*moved == 0);
  CHECK(Take(a.store()) == before);
}
