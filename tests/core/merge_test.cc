// The laws of MergeOperation, without storage: the state reached from a set of operations does
// not depend on their order, their grouping or their repetition.
#include "carnet/merge.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using namespace carnet;

namespace {

using State = std::map<EntryKey, Entry>;

// What a store does with an operation: find the entries it touches, write what the merge returns.
size_t Apply(State& state, const Operation& op) {
  std::vector<Entry> existing;
  for (const EntryKey& key : KeysTouchedBy(op)) {
    auto it = state.find(key);
    if (it != state.end()) existing.push_back(it->second);
  }
  std::vector<Entry> changes = MergeOperation(op, existing);
  for (const Entry& e : changes) state[e.key] = e;
  return changes.size();
}

State ApplyInOrder(const std::vector<Operation>& ops, const std::vector<size_t>& order) {
  State state;
  for (size_t i : order) Apply(state, ops[i]);
  return state;
}

std::string Describe(const State& state) {
  std::ostringstream out;
  for (const auto& [key, e] : state) {
    out << key.collection << "/" << key.record << "/" << key.field << "/" << key.element << " "
        << StampToString(key.stamp) << " " << FieldKindName(e.kind) << " "
        << (e.live ? "live" : "dead") << " " << e.value.value_or("-");
    for (const Stamp& ref : e.refs) out << " ref " << StampToString(ref);
    out << "\n";
  }
  return out.str();
}

std::string OrderText(const std::vector<size_t>& order) {
  std::string text;
  for (size_t i : order) text += std::to_string(i) + " ";
  return text;
}

// Applies `ops` in every order (a duplicate among them makes some orders equal) and requires one
// final state, which it returns. Applying everything a second time must change nothing.
State RequireOneStateForEveryOrder(const std::vector<Operation>& ops) {
  std::vector<size_t> order(ops.size());
  std::iota(order.begin(), order.end(), 0);
  const State expected = ApplyInOrder(ops, order);
  const std::string expected_text = Describe(expected);
  size_t orders = 0;
  do {
    State state = ApplyInOrder(ops, order);
    if (state != expected) {
      INFO("order " << OrderText(order));
      REQUIRE(Describe(state) == expected_text);
    }
    for (const Operation& op : ops) {
      if (Apply(state, op) != 0) {
        INFO("order " << OrderText(order) << ", reapplied " << op.device << "#" << op.seq);
        FAIL("a second application changed the state");
      }
    }
    ++orders;
  } while (std::next_permutation(order.begin(), order.end()));
  CHECK(orders > 0);
  return expected;
}

Stamp At(int64_t ms, const std::string& device) { return Stamp{MakeHlc(1'000 + ms, 0), device}; }

Operation Op(OpKind kind, const Stamp& stamp, uint64_t seq, std::vector<Stamp> refs = {}) {
  Operation op;
  op.device = stamp.device;
  op.seq = seq;
  op.hlc = stamp.hlc;
  op.kind = kind;
  op.collection = "interviews";
  op.record = "i1";
  op.refs = std::move(refs);
  return op;
}

Operation Write(const Stamp& stamp, uint64_t seq, std::optional<std::string> value,
                std::vector<Stamp> refs = {}) {
  Operation op = Op(OpKind::kWrite, stamp, seq, std::move(refs));
  op.field = "phase";
  op.value = std::move(value);
  return op;
}

Operation SetOp(OpKind kind, const Stamp& stamp, uint64_t seq, const std::string& element,
                std::vector<Stamp> refs = {}) {
  Operation op = Op(kind, stamp, seq, std::move(refs));
  op.collection = "participants";
  op.field = "barriers";
  op.element = element;
  return op;
}

Operation Append(const Stamp& stamp, uint64_t seq, const std::string& text,
                 std::vector<Stamp> revises = {}) {
  Operation op = Op(OpKind::kAppend, stamp, seq, std::move(revises));
  op.field = "notes";
  op.value = text;
  return op;
}

Operation Redact(const Stamp& stamp, uint64_t seq, const Stamp& entry) {
  Operation op = Op(OpKind::kRedact, stamp, seq, {entry});
  op.field = "notes";
  return op;
}

const Entry& EntryAt(const State& state, const std::string& field, const std::string& element,
                     const Stamp& stamp) {
  const std::string collection = field == "barriers" ? "participants" : "interviews";
  auto it = state.find(EntryKey{collection, "i1", field, element, stamp});
  REQUIRE(it != state.end());
  return it->second;
}

std::vector<Entry> LiveEntries(const State& state, const std::string& field) {
  std::vector<Entry> live;
  for (const auto& [key, e] : state) {
    if (key.field == field && e.live) live.push_back(e);
  }
  return live;
}

}  // namespace

TEST_CASE("Register writes reach one state in every order whether concurrent or sequential",
          "[core][merge]") {
  const Stamp a1 = At(1, "tab-a"), b2 = At(2, "tab-b"), c2 = At(2, "tab-c"), a3 = At(3, "tab-a"),
              b4 = At(4, "tab-b");
  const std::vector<Operation> ops = {
      Write(a1, 1, "assessment"),          // A writes first
      Write(b2, 1, "health", {a1}),        // B saw A's write
      Write(c2, 1, "job_search", {a1}),    // C too, without seeing B's
      Write(a3, 2, "life_project", {b2}),  // A saw B's, not C's
      Write(b4, 2, std::nullopt, {c2}),    // B clears over C's, without seeing A's second
      Write(c2, 1, "job_search", {a1}),    // a duplicate
  };
  State state = RequireOneStateForEveryOrder(ops);

  CHECK_FALSE(EntryAt(state, "phase", "", a1).live);
  CHECK_FALSE(EntryAt(state, "phase", "", b2).live);
  CHECK_FALSE(EntryAt(state, "phase", "", c2).live);
  std::vector<Entry> heads = LiveEntries(state, "phase");
  REQUIRE(heads.size() == 2);
  const Entry& winner = RegisterWinner(nullptr, heads);
  CHECK(winner.key.stamp == b4);
  CHECK_FALSE(winner.value.has_value());
}

TEST_CASE("A write that resolves every head leaves one head in every order", "[core][merge]") {
  const Stamp a1 = At(1, "tab-a"), b1 = At(1, "tab-b"), c1 = At(1, "tab-c"), a2 = At(2, "tab-a");
  const std::vector<Operation> ops = {
      Write(a1, 1, "assessment"),            // three concurrent writes...
      Write(b1, 1, "health"),                //
      Write(c1, 1, "job_search"),            //
      Write(a2, 2, "health", {a1, b1, c1}),  // ...resolved by A
      Write(b1, 1, "health"),                // a duplicate
  };
  State state = RequireOneStateForEveryOrder(ops);
  std::vector<Entry> heads = LiveEntries(state, "phase");
  REQUIRE(heads.size() == 1);
  CHECK(heads.front().key.stamp == a2);
  CHECK(heads.front().value == "health");
}

TEST_CASE("Set additions and removals reach one state in every order with concurrent adds winning",
          "[core][merge]") {
  const Stamp a1 = At(1, "tab-a"), b2 = At(2, "tab-b"), c3 = At(3, "tab-c"), a4 = At(4, "tab-a"),
              b5 = At(5, "tab-b");
  const std::vector<Operation> ops = {
      SetOp(OpKind::kAdd, a1, 1, "mobility"),           // A adds
      SetOp(OpKind::kAdd, b2, 1, "mobility"),           // B adds concurrently with C's removal
      SetOp(OpKind::kRemove, c3, 1, "mobility", {a1}),  // C saw A's addition only
      SetOp(OpKind::kAdd, a4, 2, "housing"),            // A adds another
      SetOp(OpKind::kRemove, b5, 2, "housing", {a4}),   // B saw it: housing goes
      SetOp(OpKind::kRemove, c3, 1, "mobility", {a1}),  // a duplicate
  };
  State state = RequireOneStateForEveryOrder(ops);

  std::vector<Entry> live = LiveEntries(state, "barriers");
  REQUIRE(live.size() == 1);
  CHECK(live.front().key.element == "mobility");
  CHECK(live.front().key.stamp == b2);
  CHECK_FALSE(EntryAt(state, "barriers", "mobility", a1).live);
  CHECK_FALSE(EntryAt(state, "barriers", "housing", a4).live);
}

TEST_CASE("Log appends and redactions and revisions reach one state in every order",
          "[core][merge]") {
  const Stamp a1 = At(1, "tab-a"), b2 = At(2, "tab-b"), c3 = At(3, "tab-c"), a4 = At(4, "tab-a"),
              b5 = At(5, "tab-b");
  const std::vector<Operation> ops = {
      Append(a1, 1, "first"),                       // A appends
      Append(b2, 1, "second"),                      // B appends
      Redact(c3, 1, a1),                            // C redacts A's entry
      Append(a4, 2, "second, revised by A", {b2}),  // A revises B's entry
      Append(b5, 2, "second, revised by B", {b2}),  // B too, concurrently: both are kept
      Redact(c3, 1, a1),                            // a duplicate
  };
  State state = RequireOneStateForEveryOrder(ops);

  const Entry& redacted = EntryAt(state, "notes", "", a1);
  CHECK_FALSE(redacted.live);
  CHECK_FALSE(redacted.value.has_value());
  CHECK(EntryAt(state, "notes", "", b2).value == "second");
  const Entry& by_a = EntryAt(state, "notes", "", a4);
  const Entry& by_b = EntryAt(state, "notes", "", b5);
  CHECK(by_a.live);
  CHECK(by_b.live);
  CHECK(by_a.refs == std::vector<Stamp>{b2});
  CHECK(by_b.refs == std::vector<Stamp>{b2});
}

TEST_CASE("Deletes and restores reach one state in every order", "[core][merge]") {
  const Stamp a1 = At(1, "tab-a"), b2 = At(2, "tab-b"), c3 = At(3, "tab-c"), a4 = At(4, "tab-a"),
              c5 = At(5, "tab-c");
  const std::vector<Operation> ops = {
      Write(a1, 1, "assessment"),            // A writes
      Op(OpKind::kDelete, b2, 1, {a1}),      // B deletes, having seen A's write
      Write(c3, 1, "health", {a1}),          // C edits concurrently
      Op(OpKind::kRestore, a4, 2, {b2}),     // A restores B's delete
      Op(OpKind::kDelete, c5, 2, {a1, c3}),  // C deletes without seeing B's delete or A's restore
      Op(OpKind::kDelete, b2, 1, {a1}),      // a duplicate
  };
  State state = RequireOneStateForEveryOrder(ops);

  const Entry& restored = EntryAt(state, "", "", b2);
  CHECK_FALSE(restored.live);
  CHECK(restored.kind == FieldKind::kSet);
  const Entry& tombstone = EntryAt(state, "", "", c5);
  CHECK(tombstone.live);
  CHECK(tombstone.refs == std::vector<Stamp>{a1, c3});
  CHECK(DeleteHadSeen(tombstone.refs, c3));
  CHECK(EntryAt(state, "phase", "", c3).live);
}

TEST_CASE("An operation applied twice changes nothing the second time", "[core][merge]") {
  State state;
  Operation write = Write(At(1, "tab-a"), 1, "health");
  CHECK(Apply(state, write) == 1);
  CHECK(MergeOperation(write, {state.begin()->second}).empty());
  Operation remove = SetOp(OpKind::kRemove, At(2, "tab-b"), 1, "mobility", {At(1, "tab-a")});
  CHECK(Apply(state, remove) == 1);
  CHECK(Apply(state, remove) == 0);
}

TEST_CASE("A replacement that arrives before the write it replaces still wins", "[core][merge]") {
  const Stamp a1 = At(1, "tab-a"), b2 = At(2, "tab-b");
  State state;
  Apply(state, Write(b2, 1, "health", {a1}));
  const Entry& early = EntryAt(state, "phase", "", a1);
  CHECK_FALSE(early.live);
  CHECK(early.kind == FieldKind::kRegister);
  Apply(state, Write(a1, 1, "assessment"));
  CHECK_FALSE(EntryAt(state, "phase", "", a1).live);
  std::vector<Entry> heads = LiveEntries(state, "phase");
  REQUIRE(heads.size() == 1);
  CHECK(heads.front().value == "health");
}

TEST_CASE("A random mix of every kind of operation reaches one state in any order",
          "[core][merge]") {
  const Stamp a1 = At(1, "tab-a"), b1 = At(1, "tab-b"), c2 = At(2, "tab-c"), a3 = At(3, "tab-a"),
              b4 = At(4, "tab-b"), c5 = At(5, "tab-c"), a6 = At(6, "tab-a"), b7 = At(7, "tab-b"),
              c8 = At(8, "tab-c"), a9 = At(9, "tab-a");
  std::vector<Operation> ops = {
      Write(a1, 1, "assessment"),                       // 0: concurrent writes
      Write(b1, 1, "health"),                           // 1
      Write(c2, 1, "job_search", {a1, b1}),             // 2: C resolves them
      SetOp(OpKind::kAdd, a3, 2, "mobility"),           // 3: concurrent additions
      SetOp(OpKind::kAdd, b4, 2, "mobility"),           // 4
      SetOp(OpKind::kRemove, c5, 2, "mobility", {a3}),  // 5: C saw one of them
      Append(a6, 3, "note"),                            // 6
      Redact(b7, 3, a6),                                // 7
      Append(c8, 3, "note, again", {a6}),               // 8: a revision of the redacted note
      Op(OpKind::kDelete, a9, 4, {a6, b7, c5}),         // 9
      Op(OpKind::kRestore, At(10, "tab-b"), 4, {a9}),   // 10
      Write(At(11, "tab-c"), 4, "health", {c2}),        // 11
  };
  ops.push_back(ops[5]);
  ops.push_back(ops[10]);
  std::vector<size_t> order(ops.size());
  std::iota(order.begin(), order.end(), 0);
  const std::string expected = Describe(ApplyInOrder(ops, order));
  std::mt19937_64 rng(20261123);
  for (int round = 0; round < 2'000; ++round) {
    std::shuffle(order.begin(), order.end(), rng);
    State state = ApplyInOrder(ops, order);
    if (Describe(state) != expected) {
      INFO("order " << OrderText(order));
      REQUIRE(Describe(state) == expected);
    }
  }
}

TEST_CASE("A forward-only register's winner is its highest state whatever the clocks say",
          "[core][merge]") {
  FieldSpec validation;
  validation.name = "validation";
  validation.type = FieldType::kEnum;
  validation.values = {"draft", "validated", "exported"};
  validation.forward_only = true;
  auto head = [](const Stamp& stamp, const std::string& value) {
    return Entry{
        EntryKey{"exits", "e1", "validation", "", stamp}, FieldKind::kRegister, true, value, {}};
  };
  std::vector<Entry> heads = {head(At(1, "tab-a"), "validated"), head(At(9, "tab-b"), "draft"),
                              head(At(5, "tab-c"), "validated")};
  CHECK(RegisterWinner(&validation, heads).key.stamp == At(5, "tab-c"));
  CHECK(RegisterWinner(nullptr, heads).key.stamp == At(9, "tab-b"));
}

TEST_CASE("A delete has seen every stamp of a device up to the one in its view", "[core][merge]") {
  std::vector<Stamp> view = {At(5, "tab-a"), At(2, "tab-b")};
  CHECK(DeleteHadSeen(view, At(5, "tab-a")));
  CHECK(DeleteHadSeen(view, At(1, "tab-a")));
  CHECK_FALSE(DeleteHadSeen(view, At(6, "tab-a")));
  CHECK_FALSE(DeleteHadSeen(view, At(3, "tab-b")));
  CHECK_FALSE(DeleteHadSeen(view, At(1, "tab-c")));
}
