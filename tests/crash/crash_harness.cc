#include "tests/crash/crash_harness.h"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "tests/core/store_helpers.h"
#include "tests/support/memory_key_store.h"

namespace carnet::testing {
namespace {

// Stamps as StampToString writes them; the scenarios' device ids hold no dot.
const std::regex& StampPattern() {
  static const std::regex pattern("[0-9]+\\.[0-9]+@[A-Za-z0-9_:-]+");
  return pattern;
}

std::vector<Stamp> StampsIn(const std::string& text) {
  std::vector<Stamp> stamps;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), StampPattern());
       it != std::sregex_iterator(); ++it) {
    Result<Stamp> stamp = StampFromString(it->str());
    REQUIRE_OK(stamp);
    stamps.push_back(*stamp);
  }
  return stamps;
}

std::string OutboxText(Store& store) {
  std::ostringstream out;
  for (const Operation& op : Outbox(store)) {
    out << op.seq << "\t" << StampToString(op.stamp()) << "\t" << OpKindName(op.kind) << "\t"
        << op.collection << "\t" << op.record << "\t" << op.field << "\t" << op.element << "\t"
        << op.value.value_or("-") << "\t";
    for (const Stamp& ref : op.refs) out << StampToString(ref) << ",";
    out << "\n";
  }
  return out.str();
}

// The dump without the records A has evicted.
std::string InScope(const std::string& dump,
                    const std::vector<std::pair<std::string, std::string>>& evicted) {
  std::istringstream in(dump);
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    bool out_of_scope = false;
    for (const auto& [collection, record] : evicted) {
      out_of_scope = out_of_scope || line.rfind(collection + "\t" + record + "\t", 0) == 0;
    }
    if (!out_of_scope) kept += line + "\n";
  }
  return kept;
}

void CopyFolder(const std::filesystem::path& from, const std::filesystem::path& to) {
  for (const auto& file : std::filesystem::directory_iterator(from)) {
    std::filesystem::copy_file(file.path(), to / file.path().filename());
  }
}

}  // namespace

Tablet::Tablet(const TempDir& dir, const std::string& device, uint64_t seed, int64_t now_ms)
    : env_(now_ms, seed) {
  options_.path = dir.File(device + ".db");
  options_.device_id = device;
  options_.env = &env_;
  // Encrypted at rest, so that every crash point and I/O error also falls on sealed values.
  options_.key_store = &ProcessKeyStore();
}

Status Tablet::Open() {
  Close();
  Result<std::unique_ptr<Store>> store = Store::Open(options_);
  if (!store.ok()) return store.status();
  store_ = std::move(store.value());
  return Status::Ok();
}

void Tablet::Close() { store_.reset(); }

TabletState Capture(Store& store) {
  TabletState state;
  state.dump = Dump(store);
  state.outbox = OutboxText(store);
  for (const char* key : {"pull_cursor", "push_cursor"}) {
    state.sync_state += std::string(key) + "=" + SyncState(store, key).value_or("-") + "\n";
  }
  state.conflicts = ConflictsText(store);
  state.last_hlc = store.LastHlc();
  return state;
}

std::string Text(const TabletState& state) {
  return "dump:\n" + state.dump + "outbox:\n" + state.outbox + "sync state:\n" +
         state.sync_state + "conflicts:\n" + state.conflicts + "clock: " +
         StampToString(Stamp{state.last_hlc, "last"}) + "\n";
}

std::string TextWithFreshStampsRanked(const TabletState& state, const TabletState& base) {
  TabletState unclocked = state;
  unclocked.last_hlc = 0;
  const std::string text = Text(unclocked);
  std::set<Stamp> known;
  for (const Stamp& s : StampsIn(Text(base))) known.insert(s);
  std::set<Stamp> fresh;
  for (const Stamp& s : StampsIn(text)) {
    if (!known.count(s)) fresh.insert(s);
  }
  std::map<std::string, std::string> names;
  int rank = 0;
  for (const Stamp& s : fresh) names[StampToString(s)] = "new" + std::to_string(++rank) + "@" + s.device;
  std::string ranked;
  auto last = text.cbegin();
  for (auto it = std::sregex_iterator(text.begin(), text.end(), StampPattern());
       it != std::sregex_iterator(); ++it) {
    ranked.append(last, text.cbegin() + it->position());
    auto name = names.find(it->str());
    ranked += name == names.end() ? it->str() : name->second;
    last = text.cbegin() + it->position() + it->length();
  }
  ranked.append(last, text.cend());
  return ranked;
}

std::string IntegrityCheck(const std::string& path) {
  sqlite3* db = nullptr;
  std::string result;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    result = std::string("cannot open: ") + sqlite3_errmsg(db);
  } else {
    auto collect = [](void* out, int, char** values, char**) {
      *static_cast<std::string*>(out) += values[0] ? values[0] : "NULL";
      return 0;
    };
    char* error = nullptr;
    if (sqlite3_exec(db, "PRAGMA integrity_check", collect, &result, &error) != SQLITE_OK) {
      result += std::string("error: ") + (error ? error : "?");
    }
    sqlite3_free(error);
  }
  sqlite3_close(db);
  return result;
}

std::vector<Scenario> AllScenarios() {
  return {LocalEditScenario(), PulledBatchScenario(), CursorScenario(),
          AcknowledgeScenario(), EvictionScenario(), CloseScenario()};
}

Rig::Rig(Scenario scenario) : scenario_(std::move(scenario)) {
  {
    Tablet a(template_, "tab-a", 1, kSetupMs);
    Tablet b(template_, "tab-b", 2, kSetupMs);
    REQUIRE_OK(a.Open());
    REQUIRE_OK(b.Open());
    scenario_.setup(a, b);
  }
  // "After" first: the sync that follows a transaction that did not take effect may redo it.
  for (bool took_effect : {true, false}) {
    TempDir dir;
    CopyTo(dir);
    Tablet a(dir, "tab-a", 1);
    REQUIRE_OK(a.Open());
    if (took_effect) REQUIRE_OK(scenario_.run(a));
    if (!a.open()) REQUIRE_OK(a.Open());
    TabletState& state = took_effect ? after_ : before_;
    state = Capture(*a);
    REQUIRE_OK(a.Open());  // a restart keeps exactly what was committed
    REQUIRE(Text(Capture(*a)) == Text(state));
    Tablet b(dir, "tab-b", 2);
    REQUIRE_OK(b.Open());
    converged_[took_effect] = SyncAfterRestart(a, b, took_effect);
  }
  REQUIRE(Text(before_) != Text(after_));
}

void Rig::CopyTo(const TempDir& dir) const { CopyFolder(template_.path(), dir.path()); }

std::string Rig::SyncAfterRestart(Tablet& a, Tablet& b, bool took_effect) const {
  // The clock never goes back: A's clock is at or past every stamp it holds.
  for (const Stamp& s : StampsIn(Dump(*a) + OutboxText(*a))) REQUIRE(s.hlc <= a->LastHlc());
  if (!took_effect && scenario_.sync_redoes) {
    REQUIRE_OK(scenario_.run(a));
    if (!a.open()) REQUIRE_OK(a.Open());
    REQUIRE(Text(Capture(*a)) == Text(after_));
  }
  ExchangeAll({&*a, &*b});
  const Hlc newest = a->LastHlc();
  REQUIRE_OK(a->Set("workshops", "after-restart", "theme", "written after the restart"));
  REQUIRE(StampOf(*a, "workshops", "after-restart", "theme").hlc > newest);
  ExchangeAll({&*a, &*b});
  const std::string dump_a = Dump(*a);
  const std::string dump_b = Dump(*b);
  REQUIRE(InScope(dump_a, scenario_.evicted) == InScope(dump_b, scenario_.evicted));
  return "A:\n" + dump_a + "B:\n" + dump_b + "A's outbox:\n" + OutboxText(*a);
}

}  // namespace carnet::testing
