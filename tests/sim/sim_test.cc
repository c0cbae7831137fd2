// Deterministic simulation (tests/sim/README.md): each seed is one run of four tablets and the
// server through network faults, crashes and lying clocks, judged by the oracles at the end.
//
//   CARNET_SIM_SEEDS=N     run N seeds (default 1000) from CARNET_SIM_FIRST_SEED (default 1)
//   CARNET_SIM_SEED=S      replay seed S alone, printing what it did even when it passes
//   CARNET_SIM_SHARD=K/N   run only every Nth of those seeds, from the Kth (CTest's split)
//   CARNET_SIM_STRICT=1    a seed that meets a known bug fails too
//   CARNET_SIM_OPS=N       changes per tablet (default 256); CARNET_SIM_TABLETS=N (default 4)
//   CARNET_SIM_FEATURES=a,b  only these features, instead of those the seed draws: hand-overs,
//                          restores, small-batches, late-deliveries (or "none")
//   CARNET_SIM_TRACE=N     how many of the last events a failure report shows (default 80)
//   CARNET_SIM_YEARS_AHEAD=P  chance of a clock set years ahead (default 0.05)
//   CARNET_SIM_DIR=PATH    where the SQLite files go (default /dev/shm, else $TMPDIR)
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/sim/sim_world.h"

using namespace carnet::sim;

namespace {

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::strtoull(text, nullptr, 10) : fallback;
}

std::string SimDir() {
  if (const char* dir = std::getenv("CARNET_SIM_DIR"); dir && *dir) return dir;
  // tmpfs: each tablet fsyncs every commit (synchronous=FULL); on a disk a thousand runs would
  // spend their time waiting for it.
  std::error_code error;
  if (std::filesystem::is_directory("/dev/shm", error)) return "/dev/shm";
  return std::filesystem::temp_directory_path().string();
}

std::vector<uint64_t> Seeds(uint64_t count_default) {
  if (const char* one = std::getenv("CARNET_SIM_SEED"); one && *one) {
    return {std::strtoull(one, nullptr, 10)};
  }
  uint64_t first = EnvNumber("CARNET_SIM_FIRST_SEED", 1);
  uint64_t count = EnvNumber("CARNET_SIM_SEEDS", count_default);
  uint64_t shard = 0, shards = 1;
  if (const char* split = std::getenv("CARNET_SIM_SHARD"); split && *split) {
    std::string text = split;
    shard = std::strtoull(text.c_str(), nullptr, 10);
    shards = std::max<uint64_t>(1, std::strtoull(text.c_str() + text.find('/') + 1, nullptr, 10));
  }
  std::vector<uint64_t> seeds;
  for (uint64_t i = shard; i < count; i += shards) seeds.push_back(first + i);
  return seeds;
}

// A seed's run: its features drawn from the seed too, so that some runs go without each of them
// and a bug behind one feature does not hide what the others would find.
SimConfig Config(uint64_t seed) {
  SimConfig config;
  config.seed = seed;
  config.dir = SimDir();
  config.tablets = static_cast<int>(EnvNumber("CARNET_SIM_TABLETS", 4));
  config.ops_per_tablet = static_cast<int>(EnvNumber("CARNET_SIM_OPS", 256));
  config.trace_events = EnvNumber("CARNET_SIM_TRACE", 80);
  if (const char* chance = std::getenv("CARNET_SIM_YEARS_AHEAD"); chance && *chance) {
    config.years_ahead_chance = std::strtod(chance, nullptr);
  }
  Rng draw(seed ^ 0xfea70e5ull);
  config.features.handovers = draw.Chance(0.5);
  config.features.restores = draw.Chance(0.5);
  config.features.small_batches = draw.Chance(0.35);
  config.features.late_deliveries = draw.Chance(0.5);
  if (const char* only = std::getenv("CARNET_SIM_FEATURES"); only && *only) {
    std::string list = std::string(",") + only + ",";
    auto has = [&](const char* name) { return list.find(std::string(",") + name + ",") != std::string::npos; };
    config.features = SimFeatures{has("hand-overs"), has("restores"), has("small-batches"),
                                  has("late-deliveries")};
  }
  return config;
}

// Bugs the simulation found in core/ or sync/, not fixed yet (see the [!mayfail] tests below,
// which keep a small seed of each). A seed that meets one does not fail the sweep, unless
// CARNET_SIM_STRICT=1; remove a bug from this list once it is fixed.
struct KnownBug {
  const char* name;
  std::regex signature;  // matched against each violation of a run
};

const std::vector<KnownBug>& KnownBugs() {
  static const std::vector<KnownBug> kBugs = {
      // A tablet hands a participant over, the pull that serves the forget is lost (or the
      // forget refused for pending changes), and the adviser, still seeing the participant,
      // moves them back to themselves: the server cannot tell this from a tablet ignoring the
      // forget, refuses (sync/SECURITY.md, Scope), and the outbox is stuck.
      {"a hand-over taken back after its forget was served", std::regex("may not take it back")},
  };
  return kBugs;
}

// The known bug a failed run met, if any.
const KnownBug* KnownBugOf(const SimResult& result) {
  for (const std::string& violation : result.violations) {
    for (const KnownBug& bug : KnownBugs()) {
      if (std::regex_search(violation, bug.signature)) return &bug;
    }
  }
  return nullptr;
}

// Runs the seeds; every failing seed is reported with its replay line and its last events.
void RunSeeds(const std::vector<uint64_t>& seeds, SimConfig (*make)(uint64_t)) {
  const bool strict = EnvNumber("CARNET_SIM_STRICT", 0) != 0;
  auto start = std::chrono::steady_clock::now();
  std::vector<std::string> failures;
  std::map<std::string, int> known;
  for (uint64_t seed : seeds) {
    SimResult result = RunSimulation(make(seed));
    if (seeds.size() == 1) std::cout << "seed " << seed << ": " << result.stats << "\n";
    if (result.ok()) continue;
    // The whole report on stdout (CTest shows it on failure), unwrapped: traces are read by grep.
    std::cout << result.Report(seed, Catch::getResultCapture().getCurrentTestName()) << "\n";
    const KnownBug* bug = KnownBugOf(result);
    if (bug != nullptr) known[bug->name] += 1;
    if (bug == nullptr || strict) {
      failures.push_back("seed " + std::to_string(seed) + ": " + result.violations.front());
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int met = 0;
  std::string bugs;
  for (const auto& [name, count] : known) {
    met += count;
    bugs += " " + name + ": " + std::to_string(count);
  }
  std::cout << "sim: " << seeds.size() << " seeds (" << (seeds.empty() ? 0 : seeds.front()) << ".."
            << (seeds.empty() ? 0 : seeds.back()) << ") in " << seconds << " s: "
            << seeds.size() - failures.size() - (strict ? 0 : met) << " passed every oracle, " << met
            << " met a known bug" << (bugs.empty() ? "" : " (" + bugs.substr(1) + ")") << ", "
            << failures.size() << " failed\n";
  for (size_t i = 0; i < failures.size() && i < 5; ++i) FAIL_CHECK(failures[i]);
  CHECK(failures.empty());
}

// A run with every feature that a known bug hides behind left out: what the planted bugs are
// shown against, so that what an oracle reports is the plant and nothing else.
SimConfig Plain(uint64_t seed) {
  SimConfig config = Config(seed);
  config.features = SimFeatures{false, false, false, false};
  config.years_ahead_chance = 0;
  return config;
}

// Runs seeds with a planted bug until the oracle meant for it reports it.
void RequireCaught(Plant plant, const std::string& oracle_says) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    SimConfig config = Plain(seed);
    config.plant = plant;
    config.years_ahead_chance = plant == Plant::kNoSkewBound ? 1 : 0;
    SimResult result = RunSimulation(config);
    for (const std::string& v : result.violations) {
      if (v.find(oracle_says) != std::string::npos) {
        std::cout << "plant " << PlantName(plant) << " caught at seed " << seed << ": "
                  << v.substr(0, v.find('\n')) << "\n";
        SUCCEED();
        return;
      }
    }
  }
  FAIL("plant " << PlantName(plant) << " went unnoticed in 30 seeds (oracle: " << oracle_says << ")");
}

// One seed, replayed strictly: for the bugs kept as failing tests.
void RequirePasses(SimConfig config) {
  SimResult result = RunSimulation(config);
  if (!result.ok()) {
    std::cout << result.Report(config.seed, Catch::getResultCapture().getCurrentTestName()) << "\n";
  }
  INFO(result.stats);
  CHECK(result.violations == std::vector<std::string>{});
}

}  // namespace

TEST_CASE("Tablets converge with nothing lost through network faults, crashes and wrong clocks",
          "[sim][seeds]") {
  RunSeeds(Seeds(1000), Config);
}

TEST_CASE("Runs without the features behind known bugs pass every oracle", "[sim]") {
  RunSeeds(Seeds(20), Plain);
}

// A long absence: one tablet offline for over a month with thousands of changes while the
// others work on, then back. Seconds per seed, hidden all the same: tests/run --slow.
SimConfig LongAbsence(SimConfig config) {
  config.ops_per_tablet = 800;
  config.offline_tablet = static_cast<int>(config.seed % 4);
  config.offline_ops = 3000;
  config.min_days = 32;
  return config;
}

TEST_CASE("A tablet offline for a month with thousands of changes converges when it returns",
          "[sim][.slow]") {
  RunSeeds(Seeds(5), [](uint64_t seed) { return LongAbsence(Plain(seed)); });
}

TEST_CASE("A month offline converges with every feature of the simulation",
          "[sim][.slow]") {
  RunSeeds(Seeds(5), [](uint64_t seed) { return LongAbsence(Config(seed)); });
}

// --- Each oracle catches the bug it is for (planted in the simulated server or disk) ---------

TEST_CASE("A server that loses an acknowledged write is caught", "[sim][planted]") {
  RequireCaught(Plant::kLoseAckedWrite, "otherwise than the acknowledged operations make it");
}

TEST_CASE("A server that applies an operation twice is caught", "[sim][planted]") {
  RequireCaught(Plant::kApplyTwice, "server accepted two operations as");
}

TEST_CASE("A pull that skips an entry is caught by convergence", "[sim][planted]") {
  RequireCaught(Plant::kSkipPulledEntry, "does not hold what the server holds for its scope");
}

TEST_CASE("Tombstones that do not reach a tablet are caught as resurrections", "[sim][planted]") {
  RequireCaught(Plant::kHideTombstones, "reads as alive");
}

TEST_CASE("A server that accepts stamps years ahead is caught", "[sim][planted]") {
  RequireCaught(Plant::kNoSkewBound, "ahead of its time (bound");
}

TEST_CASE("A store file that comes back older after a crash is caught", "[sim][planted]") {
  RequireCaught(Plant::kRestoreOldFile, "HLC went back across a restart");
}

// --- Bugs found by the simulation, each kept as a small seed ---------------------------------
// One tablet is enough for each. Replay with the variables in the test's comment, adding
// CARNET_SIM_TRACE=400 to read the whole story. A fixed bug's seed stays as a strict test.

SimConfig Pinned(uint64_t seed, int ops, SimFeatures features) {
  SimConfig config = Plain(seed);
  config.tablets = 1;
  config.ops_per_tablet = ops;
  config.features = features;
  return config;
}

// Found at 6da9f1e, fixed by a45a859 (push authorization judged before the batch): with
// push_batch 1 the first push carried a new participant's first name only, its referent and
// territory coming later; the server judged it outside the device's scope and answered 403 at
// every sync from then on, the outbox stuck and the tablet never pulling again.
// CARNET_SIM_SEED=5 CARNET_SIM_TABLETS=1 CARNET_SIM_OPS=10 CARNET_SIM_FEATURES=small-batches
TEST_CASE("A new participant pushed across two batches is accepted", "[sim][regression]") {
  RequirePasses(Pinned(5, 10, SimFeatures{false, false, true, false}));
}

// Found at 6da9f1e, fixed by a45a859: a new record (an action, an interview) for a participant
// the tablet had just handed over, and still held, was refused (403) for ever.
// CARNET_SIM_SEED=7 CARNET_SIM_TABLETS=1 CARNET_SIM_OPS=40 CARNET_SIM_FEATURES=hand-overs
TEST_CASE("A new record for a participant just handed over is accepted", "[sim][regression]") {
  RequirePasses(Pinned(7, 40, SimFeatures{true, false, false, false}));
}

// Found at a45a859, fixed by purging in two steps (PROTOCOL.md, Purge): a deleted record was
// erased once every holder had pulled past it, and a forget queued. A tablet that had the
// tombstone but not yet the forget could still restore the record; the restore was pushed and
// acknowledged, but landed on nothing, the forget then dropped the record from the tablet, and
// the interview with all its notes was gone everywhere. Now the entries stay until the forgets
// are pulled, and a change pushed meanwhile keeps the record.
// CARNET_SIM_SEED=18 CARNET_SIM_TABLETS=1 CARNET_SIM_OPS=20 CARNET_SIM_FEATURES=restores
TEST_CASE("A restore made before the forget of the purge arrives keeps the record",
          "[sim][regression]") {
  RequirePasses(Pinned(18, 20, SimFeatures{false, true, false, false}));
}

// Found at 6da9f1e (duplicates known by content), fixed by operation ids per store incarnation:
// a push the network delivers after the client gave up on it (a proxy or a slow node behind the
// load balancer) was applied again, and whatever of it the purge had removed meanwhile came
// back: notes of a deleted and purged interview without their tombstone, overwritten register
// values. Its operations are now known as acknowledged by their store's incarnation and number.
// CARNET_SIM_SEED=11 CARNET_SIM_TABLETS=1 CARNET_SIM_OPS=40 CARNET_SIM_FEATURES=late-deliveries
TEST_CASE("A push delivered late brings back nothing the purge removed", "[sim][regression]") {
  RequirePasses(Pinned(11, 40, SimFeatures{false, false, false, true}));
}

// Found at 3574f55, fixed by re-stamping after a clock_skew refusal (Store::RestampAhead): a
// tablet whose clock was set years ahead stamped one change; the server rightly refused it
// (422), the client adopted the server's offset, but every later stamp was still above that one
// (HybridClock::Tick never goes back), so every later push was refused too, and SyncNow stopped
// before pulling. The tablet never synced again, clock fixed or not. Now the operations no
// server can have accepted get fresh stamps at the server's time and go again in the same sync.
// CARNET_SIM_SEED=3 CARNET_SIM_TABLETS=1 CARNET_SIM_OPS=20 CARNET_SIM_FEATURES=none
// CARNET_SIM_YEARS_AHEAD=1
TEST_CASE("A tablet that once stamped a change years ahead syncs again", "[sim][regression]") {
  SimConfig config = Pinned(3, 20, SimFeatures{false, false, false, false});
  config.years_ahead_chance = 1;
  RequirePasses(config);
}

// Known, not fixed (KnownBugs): found at the commit that refused taking back a participant one
// handed over. Tablet 0 hands a participant over, the reply serving the forget is lost, and it
// moves them back to its own adviser: refused (403) at every sync from then on.
// CARNET_SIM_SEED=812 CARNET_SIM_TABLETS=4 CARNET_SIM_OPS=256
// CARNET_SIM_FEATURES=hand-overs,late-deliveries
TEST_CASE("A hand-over undone before its forget arrives is pushed", "[sim][regression][!mayfail]") {
  RequirePasses(Config(812));
}
