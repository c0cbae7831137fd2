// The end of a run: the network heals and every tablet syncs until nothing moves; then the
// oracles (tests/sim/README.md) compare the tablets, the server and the ledger.
#include <algorithm>
#include <iterator>

#include "tests/sim/sim_world_impl.h"

namespace carnet::sim {
namespace {

constexpr int kMaxHealRounds = 12;

// A canonical dump's lines by record (its first two tab-separated columns).
std::map<RecordKey, std::vector<std::string>> ByRecord(const std::string& dump) {
  std::map<RecordKey, std::vector<std::string>> out;
  size_t start = 0;
  for (size_t end; (end = dump.find('\n', start)) != std::string::npos; start = end + 1) {
    std::string line = dump.substr(start, end - start + 1);
    size_t tab1 = line.find('\t');
    size_t tab2 = line.find('\t', tab1 + 1);
    out[{line.substr(0, tab1), line.substr(tab1 + 1, tab2 - tab1 - 1)}].push_back(line);
  }
  return out;
}

std::vector<std::string> Lines(const std::string& dump) {
  std::vector<std::string> out;
  for (auto& [record, lines] : ByRecord(dump)) out.insert(out.end(), lines.begin(), lines.end());
  std::sort(out.begin(), out.end());
  return out;
}

// What only `a` has and what only `b` has, a few lines of each.
std::string Diff(std::vector<std::string> a, std::vector<std::string> b, const std::string& a_name,
                 const std::string& b_name) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::vector<std::string> only_a, only_b;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only_a));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(only_b));
  std::string out;
  auto list = [&](const std::vector<std::string>& lines, const std::string& name) {
    for (size_t i = 0; i < lines.size() && i < 6; ++i) {
      std::string line = lines[i];
      if (!line.empty() && line.back() == '\n') line.pop_back();
      out += "    only " + name + ": " + line + "\n";
    }
    if (lines.size() > 6) out += "    only " + name + ": ... " + std::to_string(lines.size() - 6) + " more\n";
  };
  list(only_a, a_name);
  list(only_b, b_name);
  return out;
}

std::string Text(const RecordKey& record) { return record.first + "/" + record.second; }

}  // namespace

void World::Heal() {
  trace_.Add(clock_.now_ms, "the network heals; clocks are set right");
  network_.SetFaulty(false);
  for (const auto& t : tablets_) {
    if (network_.crashed(t->index)) Restart(*t, "crashed before the network healed");
    network_.SetOnline(t->index, true);
  }
  network_.DeliverAllHeld();
  TakeServerViolations();
  // Changes stamped while a clock ran ahead (days, years) wait for nothing: refused, they are
  // re-stamped. Only those a few minutes past the bound wait for the world's time, a few rounds.
  for (const auto& t : tablets_) t->env->set_skew_ms(0);

  std::string previous;
  std::string failures;
  int unchanged = 0;
  for (int round = 1; round <= kMaxHealRounds; ++round) {
    stats_.heal_rounds = round;
    clock_.now_ms += kMinuteMs + 1000;  // the server purges after the next pull
    failures.clear();
    std::string state;
    for (const auto& t : tablets_) {
      Status status = t->client->SyncNow();
      TakeServerViolations();
      CheckClock(*t, "while healing");
      if (!status.ok()) failures += "\n    " + t->Name() + ": " + status.ToString();
      // Whatever changes on the server moves its sequence, and so every cursor an up-to-date
      // pull hands out. The purge runs after a pull and judges by the cursors pulled from, so
      // what it does shows a round later: two rounds that move nothing mean quiescence.
      Result<std::optional<std::string>> cursor = t->store->GetSyncState("pull_cursor");
      Result<uint64_t> pending = t->store->PendingCount();
      state += (cursor.ok() ? cursor->value_or("-") : cursor.status().ToString()) + "/" +
               (pending.ok() ? std::to_string(*pending) : pending.status().ToString()) + " ";
    }
    unchanged = failures.empty() && state == previous ? unchanged + 1 : 0;
    if (unchanged == 2) {
      trace_.Add(clock_.now_ms, "converged after " + std::to_string(round) + " rounds");
      return;
    }
    previous = std::move(state);
  }
  Violation("no quiescence after " + std::to_string(kMaxHealRounds) +
            " rounds of sync on a healed network" + (failures.empty() ? "" : "; last failures:" + failures));
}

void World::Check() {
  Result<std::vector<Device>> devices = server_.store().Devices();
  if (!devices.ok()) return Violation("server devices: " + devices.status().ToString());
  std::map<std::string, uint64_t> acknowledged;
  for (const Device& d : *devices) acknowledged[d.id] = d.acknowledged_seq;

  // Nothing typed is lost: every change of a tablet that can sync reached the server.
  for (const auto& t : tablets_) {
    Result<uint64_t> pending = t->store->PendingCount();
    if (!pending.ok() || *pending != 0) {
      Violation(t->Name() + ": operations never acknowledged: " +
                (pending.ok() ? std::to_string(*pending) : pending.status().ToString()));
    }
    if (acknowledged[t->me.device] != t->captured_seq) {
      Violation("server acknowledged " + t->Name() + " up to #" +
                std::to_string(acknowledged[t->me.device]) + ", but it made " +
                std::to_string(t->captured_seq) + " operations");
    }
  }
  // Nothing applied twice, nothing applied that no tablet made.
  for (const auto& [id, op] : server_.applied()) {
    const Operation* made = ledger_.Find(id.first, id.second);
    if (made == nullptr || !(*made == op)) {
      Violation("server applied " + id.first + "#" + std::to_string(id.second) + " (" +
                OpKindName(op.kind) + " " + op.collection + "/" + op.record + " at " +
                StampToString(op.stamp()) + "), which is not the operation the tablet made" +
                (made ? " (" + std::string(OpKindName(made->kind)) + " at " +
                            StampToString(made->stamp()) + ")" : ""));
    }
  }
  for (const auto& [device, seq] : acknowledged) {
    for (uint64_t s = 1; s <= seq; ++s) {
      if (!server_.applied().count({device, s})) {
        Violation("server acknowledged " + device + "#" + std::to_string(s) + " but never accepted it");
        break;
      }
    }
  }
  Model model(ledger_.UpTo(acknowledged), Schema::Programme());
  CheckServer(model);
  for (const auto& t : tablets_) CheckTablet(*t, model);
}

// The server holds exactly what the acknowledged operations make, but for deleted records it
// purged once every device had seen the delete.
void World::CheckServer(const Model& model) {
  Result<std::string> dump = server_.store().ScopeDump("");
  if (!dump.ok()) return Violation("server dump: " + dump.status().ToString());
  std::map<RecordKey, std::vector<std::string>> held = ByRecord(*dump);
  std::set<RecordKey> records;
  for (const RecordKey& r : model.Records()) records.insert(r);
  for (const auto& [r, lines] : held) records.insert(r);
  int reported = 0;
  for (const RecordKey& r : records) {
    std::vector<std::string> want = model.Lines(r);
    std::vector<std::string>& have = held[r];
    stats_.records += 1;
    stats_.deleted += model.Deleted(r);
    stats_.conflicts += static_cast<int>(model.Conflicts(r).size());
    if (have == want || (have.empty() && model.Deleted(r))) continue;
    if (++reported > 5) continue;
    std::vector<std::string> sorted_have = have, sorted_want = want, missing, extra;
    std::sort(sorted_have.begin(), sorted_have.end());
    std::sort(sorted_want.begin(), sorted_want.end());
    std::set_difference(sorted_want.begin(), sorted_want.end(), sorted_have.begin(),
                        sorted_have.end(), std::back_inserter(missing));
    std::set_difference(sorted_have.begin(), sorted_have.end(), sorted_want.begin(),
                        sorted_want.end(), std::back_inserter(extra));
    size_t ended = std::count_if(extra.begin(), extra.end(), [&](const std::string& line) {
      std::optional<EntryKey> key = KeyOfLine(line);
      return key && model.Ended(*key);
    });
    Violation("server holds " + Text(r) + " otherwise than the acknowledged operations make it (" +
              std::to_string(missing.size()) + " entries missing, " + std::to_string(extra.size()) +
              " too many, " + std::to_string(ended) + " of them ended by an operation; the record " +
              (model.Deleted(r) ? "is deleted" : "lives") +
              (model.Restored(r) ? ", a restore of it was acknowledged" : "") + "):\n" +
              Diff(have, want, "on the server", "in the operations"));
  }
}

// Convergence, and what the app reads on the tablet: values, deletes, conflicts.
void World::CheckTablet(SimTablet& t, const Model& model) {
  Result<std::string> mine = t.store->CanonicalDump(true);
  Result<std::string> scope = server_.store().ScopeDump(t.me.device);
  if (!mine.ok() || !scope.ok()) return Violation(t.Name() + ": dumps cannot be read");
  if (*mine != *scope) {
    Violation(t.Name() + " does not hold what the server holds for its scope:\n" +
              Diff(Lines(*mine), Lines(*scope), "on the tablet", "on the server"));
  }
  std::set<std::string> want_conflicts;
  int reported = 0;
  for (const auto& [r, lines] : ByRecord(*mine)) {
    for (const std::string& c : model.Conflicts(r)) want_conflicts.insert(c);
    Result<Record> record = t.store->Get(r.first, r.second);
    if (model.Deleted(r)) {
      if (record.ok() && ++reported <= 5) Violation(t.Name() + ": deleted " + Text(r) + " reads as alive");
      continue;
    }
    if (!record.ok()) {
      if (++reported <= 5) Violation(t.Name() + ": " + Text(r) + ": " + record.status().ToString());
      continue;
    }
    std::string have = ReadingOf(*record), want = model.Reading(r);
    if (have != want && ++reported <= 5) {
      Violation(t.Name() + " reads " + Text(r) + " as\n" + have + "instead of\n" + want);
    }
  }
  Result<std::vector<Conflict>> conflicts = t.store->Conflicts();
  if (!conflicts.ok()) return Violation(t.Name() + ": conflicts: " + conflicts.status().ToString());
  std::vector<std::string> have_conflicts;
  for (const Conflict& c : *conflicts) have_conflicts.push_back(ConflictText(c) + "\n");
  std::vector<std::string> want(want_conflicts.begin(), want_conflicts.end());
  for (std::string& c : want) c += "\n";
  if (Diff(have_conflicts, want, "", "").empty()) return;
  Violation(t.Name() + " lists other conflicts than its records hold:\n" +
            Diff(have_conflicts, want, "listed", "expected"));
}

}  // namespace carnet::sim
