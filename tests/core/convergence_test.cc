// Three tablets on real SQLite stores make thousands of random changes to the same few records
// while exchanging their operations in random batches, out of order, with duplicates. Once every
// operation has reached every tablet, the three hold byte-identical state and the same conflicts.
//
// A failure prints its seed; CARNET_SEED=<seed> replays that seed alone.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/store.h"
#include "tests/core/store_helpers.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

const std::vector<std::string> kPhases = {"assessment", "life_project",
                                          "health",     "professional_project",
                                          "job_search", "in_work_followup"};
const std::vector<std::string> kPlaces = {"office", "home", "company", "phone", "other"};
const std::vector<std::string> kBarriers = {"mobility", "childcare", "housing", "health",
                                            "language", "digital",   "debt",    "other"};
const std::vector<std::string> kAttendance = {"registered", "present", "excused", "absent"};
const std::vector<std::string> kNames = {"Léa", "Karim", "Ana", "Jean-Pierre", "Zoë", "Mamadou"};
const std::vector<std::string> kParticipants = {"p0", "p1", "p2", "p3"};
const std::vector<std::string> kInterviews = {"i0", "i1", "i2", "i3"};

const std::vector<std::string>& AttendanceIds() {
  static const std::vector<std::string> ids = [] {
    std::vector<std::string> out;
    for (const std::string& p : kParticipants) out.push_back(AttendanceId("w0", p));
    return out;
  }();
  return ids;
}

// The first line where two dumps differ, for a readable failure.
std::string FirstDifference(const std::string& a, const std::string& b) {
  std::istringstream in_a(a), in_b(b);
  std::string line_a, line_b;
  for (int line = 1;; ++line) {
    bool more_a = static_cast<bool>(std::getline(in_a, line_a));
    bool more_b = static_cast<bool>(std::getline(in_b, line_b));
    if (!more_a && !more_b) return "";
    if (!more_a || !more_b || line_a != line_b) {
      return "line " + std::to_string(line) + ":\n  " + (more_a ? line_a : "<end>") + "\n  " +
             (more_b ? line_b : "<end>");
    }
  }
}

// The records as the app sees them, one line per field.
std::string RecordsText(Store& store) {
  std::ostringstream out;
  for (const char* collection : {"participants", "interviews", "attendance"}) {
    Result<std::vector<Record>> records = store.List(collection);
    REQUIRE_OK(records);
    for (const Record& r : *records) {
      for (const auto& [name, f] : r.fields) {
        out << collection << "/" << r.id << "/" << name << " " << f.value.value_or("-")
            << (f.in_conflict ? " conflict" : "");
        for (const std::string& e : f.elements) out << " " << e;
        for (const LogEntry& e : f.entries) out << " [" << e.text << "]";
        out << "\n";
      }
    }
  }
  return out.str();
}

class Simulation {
 public:
  Simulation(uint64_t seed, int local_ops) : rng_(seed), local_ops_(local_ops) {
    const char* devices[] = {"tab-a", "tab-b", "tab-c"};
    for (int i = 0; i < 3; ++i) {
      int64_t start = testing::kStartMs + static_cast<int64_t>(Pick(4'000)) - 2'000;
      replicas_.push_back(std::make_unique<Replica>(dir_, devices[i], start, seed * 3 + i + 1));
    }
    history_.resize(3);
    delivered_.assign(3, std::vector<std::set<uint64_t>>(3));
    acked_.assign(3, 0);
  }

  void Run() {
    for (int step = 0; step < local_ops_; ++step) {
      MoveClocks();
      Store& tablet = Pick(replicas_)->store();
      Status status = LocalOp(tablet);
      if (status.ok()) {
        ++succeeded_;
      } else if (status.code() != StatusCode::kFailedPrecondition &&
                 status.code() != StatusCode::kNotFound) {
        INFO("step " << step << " on " << tablet.device_id());
        FAIL("unexpected status " << status.ToString());
      }
      if (Chance(0.3)) Exchange();
    }
    for (size_t from = 0; from < 3; ++from) {
      for (size_t to = 0; to < 3; ++to) {
        if (from != to) Send(from, to, Shuffled(Export(from)));
      }
    }
  }

  void CheckConverged() {
    CHECK(succeeded_ > local_ops_ / 2);
    const std::string dump = Dump(store(0));
    const std::string conflicts = testing::ConflictsText(store(0));
    const std::string records = RecordsText(store(0));
    for (size_t i = 1; i < 3; ++i) {
      INFO("replica " << store(i).device_id() << " against " << store(0).device_id());
      CHECK(FirstDifference(Dump(store(i)), dump) == "");
      CHECK(FirstDifference(testing::ConflictsText(store(i)), conflicts) == "");
      CHECK(FirstDifference(RecordsText(store(i)), records) == "");
    }
    // Every replica has every operation: sending all of them again changes nothing.
    for (size_t from = 0; from < 3; ++from) {
      std::vector<Operation> all;
      for (const auto& [seq, op] : history_[from]) all.push_back(op);
      for (size_t to = 0; to < 3; ++to) {
        Result<ApplyStats> again = store(to).ApplyRemote(all);
        REQUIRE_OK(again);
        CHECK(again->applied == 0);
      }
    }
  }

 private:
  Store& store(size_t i) { return replicas_[i]->store(); }

  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Pick(v.size())];
  }
  template <typename T>
  std::vector<T> Shuffled(std::vector<T> v) {
    std::shuffle(v.begin(), v.end(), rng_);
    return v;
  }

  // Clocks advance together with a little jitter; now and then one jumps a few seconds either way.
  void MoveClocks() {
    int64_t step = static_cast<int64_t>(Pick(20));
    for (auto& r : replicas_) r->env().Advance(step);
    if (Chance(0.01)) Pick(replicas_)->env().Advance(static_cast<int64_t>(Pick(10'001)) - 5'000);
  }

  Status LocalOp(Store& s) {
    switch (Pick(16)) {
      case 0:
      case 1:
        return s.Set("participants", Pick(kParticipants), "phase", Pick(kPhases));
      case 2:
        return s.Set("participants", Pick(kParticipants), "first_name", Pick(kNames));
      case 3:
        return s.Put("interviews", Pick(kInterviews),
                     {{"place", Pick(kPlaces)}, {"participant", Pick(kParticipants)}});
      case 4:
        return s.Set("interviews", Pick(kInterviews), "date_time", DateTime());
      case 5:
      case 6:
        return s.Add("participants", Pick(kParticipants), "barriers", Pick(kBarriers));
      case 7:
        return s.Remove("participants", Pick(kParticipants), "barriers", Pick(kBarriers));
      case 8:
        return s.Append("interviews", Pick(kInterviews), "notes", Note()).status();
      case 9:
        return RedactOrRevise(s);
      case 10: {
        auto [collection, id] = AnyRecord();
        return Chance(0.5) ? s.Delete(collection, id) : s.Restore(collection, id);
      }
      case 11: {
        auto [collection, id] = AnyRecord();
        return s.Restore(collection, id);
      }
      case 12:
      case 13:
        return s.Set("attendance", Pick(AttendanceIds()), "status", Pick(kAttendance));
      case 14:
        return ResolveOne(s);
      default:
        return SeveralInOneTransaction(s);
    }
  }

  std::pair<std::string, std::string> AnyRecord() {
    switch (Pick(3)) {
      case 0:
        return {"participants", Pick(kParticipants)};
      case 1:
        return {"interviews", Pick(kInterviews)};
      default:
        return {"attendance", Pick(AttendanceIds())};
    }
  }

  std::string DateTime() {
    char text[32];
    std::snprintf(text, sizeof text, "2025-03-%02zuT%02zu:%02zu:00Z", 1 + Pick(28), 8 + Pick(10),
                  Pick(60));
    return text;
  }

  std::string Note() { return "note " + std::to_string(++notes_) + (Chance(0.1) ? "\n\t\\" : ""); }

  Status RedactOrRevise(Store& s) {
    const std::string& id = Pick(kInterviews);
    Result<Record> record = s.Get("interviews", id);
    if (!record.ok()) return record.status();
    auto notes = record->fields.find("notes");
    if (notes == record->fields.end()) return NotFound("no notes");
    std::vector<LogEntry> live;
    for (const LogEntry& e : notes->second.entries) {
      if (!e.redacted) live.push_back(e);
    }
    if (live.empty()) return NotFound("every note is redacted");
    const LogEntry& entry = Pick(live);
    if (Chance(0.5)) return s.Redact("interviews", id, "notes", entry.stamp);
    return s.Append("interviews", id, "notes", Note(), entry.stamp).status();
  }

  Status ResolveOne(Store& s) {
    Result<std::vector<Conflict>> conflicts = s.Conflicts();
    if (!conflicts.ok()) return conflicts.status();
    if (conflicts->empty()) return NotFound("no conflict");
    const Conflict& c = Pick(*conflicts);
    if (c.kind == ConflictKind::kEditedWhileDeleted) {
      return s.ResolveDeleted(c.collection, c.record, Chance(0.5));
    }
    return s.Resolve(c.collection, c.record, c.field, Chance(0.5) ? c.kept_value : c.losing_value);
  }

  // Two to four changes committed together, or rolled back one time in five.
  Status SeveralInOneTransaction(Store& s) {
    Result<Transaction> txn = s.Begin();
    if (!txn.ok()) return txn.status();
    for (size_t n = 2 + Pick(3); n > 0; --n) {
      Status status;
      switch (Pick(3)) {
        case 0:
          status = txn->Set("participants", Pick(kParticipants), "status", "active");
          break;
        case 1:
          status = txn->Add("participants", Pick(kParticipants), "barriers", Pick(kBarriers));
          break;
        default:
          status = txn->Append("interviews", Pick(kInterviews), "notes", Note()).status();
      }
      if (!status.ok() && status.code() != StatusCode::kFailedPrecondition) return status;
    }
    if (Chance(0.2)) return Status::Ok();  // rolled back by the destructor
    return txn->Commit();
  }

  // What `from` has not had acknowledged yet, remembered for resending as duplicates later.
  std::vector<Operation> Export(size_t from) {
    std::vector<Operation> pending = Outbox(store(from));
    for (const Operation& op : pending) {
      auto [it, inserted] = history_[from].emplace(op.seq, op);
      if (!inserted) REQUIRE(it->second == op);
    }
    return pending;
  }

  // One sync step between two tablets: the whole outbox, a random part of it in random order,
  // or a contiguous slice, each with some old operations sent again.
  void Exchange() {
    size_t from = Pick(3);
    size_t to = (from + 1 + Pick(2)) % 3;
    std::vector<Operation> pending = Export(from);
    std::vector<Operation> batch;
    switch (Pick(3)) {
      case 0:
        batch = pending;
        break;
      case 1:
        for (const Operation& op : pending) {
          if (Chance(0.5)) batch.push_back(op);
        }
        batch = Shuffled(batch);
        break;
      default:
        if (!pending.empty()) {
          size_t begin = Pick(pending.size());
          size_t end = begin + 1 + Pick(pending.size() - begin);
          batch.assign(pending.begin() + begin, pending.begin() + end);
        }
    }
    if (!history_[from].empty()) {
      for (size_t n = Pick(4); n > 0; --n) {
        auto it = history_[from].begin();
        std::advance(it, Pick(history_[from].size()));
        batch.insert(batch.begin() + Pick(batch.size() + 1), it->second);
      }
    }
    Send(from, to, batch);
    MaybeAcknowledge(from);
  }

  void Send(size_t from, size_t to, const std::vector<Operation>& batch) {
    uint64_t newest = 0;
    for (const Operation& op : batch) newest = std::max(newest, op.seq);
    const std::string key = "cursor-" + store(from).device_id();
    Result<ApplyStats> stats = store(to).ApplyRemote(batch, {{key, std::to_string(newest)}});
    INFO("batch of " << batch.size() << " from " << store(from).device_id() << " to "
                     << store(to).device_id());
    REQUIRE_OK(stats);
    CHECK(stats->applied + stats->duplicates == batch.size());
    CHECK(testing::SyncState(store(to), key) == std::to_string(newest));
    for (const Operation& op : batch) delivered_[from][to].insert(op.seq);
  }

  // The server acknowledges what both other tablets have received.
  void MaybeAcknowledge(size_t from) {
    uint64_t seq = acked_[from];
    auto everywhere = [&](uint64_t s) {
      for (size_t to = 0; to < 3; ++to) {
        if (to != from && delivered_[from][to].count(s) == 0) return false;
      }
      return true;
    };
    while (everywhere(seq + 1)) ++seq;
    if (seq > acked_[from] && Chance(0.5)) {
      REQUIRE_OK(store(from).AcknowledgeOperations(seq));
      acked_[from] = seq;
    }
  }

  std::mt19937_64 rng_;
  int local_ops_;
  int succeeded_ = 0;
  int notes_ = 0;
  TempDir dir_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::vector<std::map<uint64_t, Operation>> history_;      // per device, every op by seq
  std::vector<std::vector<std::set<uint64_t>>> delivered_;  // [from][to]: seqs received
  std::vector<uint64_t> acked_;
};

std::vector<uint64_t> Seeds(std::vector<uint64_t> defaults) {
  if (const char* replay = std::getenv("CARNET_SEED")) return {std::strtoull(replay, nullptr, 10)};
  return defaults;
}

void RunSeeds(const std::vector<uint64_t>& seeds, int local_ops) {
  for (uint64_t seed : seeds) {
    INFO("seed " << seed << " (replay: CARNET_SEED=" << seed << ")");
    Simulation simulation(seed, local_ops);
    simulation.Run();
    simulation.CheckConverged();
  }
}

}  // namespace

TEST_CASE("Three tablets exchanging random operations in any order converge to one state",
          "[core][convergence]") {
  RunSeeds(Seeds({1, 2, 3, 4, 5}), 2'000);
}

TEST_CASE("Three tablets converge over a long random history", "[core][convergence][.slow]") {
  RunSeeds(Seeds({101, 102, 103, 104, 105, 106, 107, 108}), 10'000);
}
