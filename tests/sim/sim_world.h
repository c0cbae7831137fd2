// One simulated run: tablets on real Stores (real SQLite files), the real SyncClient, the real
// ServerStore behind the in-process server, a faulty network, crashes, wrong clocks; then the
// network heals, every tablet syncs until nothing moves, and the oracles judge the end state
// (tests/sim/README.md). Everything is drawn from the seed: the same seed replays the same run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/sim/sim_server.h"

namespace carnet::sim {

// What a run may do. Each is on in real use; a run may leave some out, so that a bug behind one
// of them does not hide the others.
struct SimFeatures {
  bool handovers = true;        // participants change referent or territory (scope changes)
  bool restores = true;         // deleted records are brought back
  bool small_batches = true;    // tablets push 1, 3, 20 or 500 operations at a time, not all
  bool late_deliveries = true;  // the network holds requests back and delivers them later
  std::string Text() const;
  std::string List() const;  // "hand-overs,restores", as CARNET_SIM_FEATURES takes it
};

struct SimConfig {
  uint64_t seed = 1;
  int tablets = 4;
  int ops_per_tablet = 256;
  // Long absence: this tablet stays offline from the start until the network heals, making
  // `offline_ops` changes meanwhile, and the run lasts at least `min_days` simulated days.
  int offline_tablet = -1;
  int offline_ops = 0;
  int min_days = 0;
  // Chance that one tablet's clock is set years ahead during the run. The server must refuse
  // what it stamps then; the tablet re-stamps it once refused, and is judged as the others.
  double years_ahead_chance = 0.05;
  SimFeatures features;
  Plant plant = Plant::kNone;
  std::string dir;  // where the run's SQLite files go (a folder of its own is made inside)
  size_t trace_events = 80;  // how many of the last events a report shows
};

struct SimResult {
  std::vector<std::string> violations;  // empty: every oracle held
  std::string trace;                    // the last events, for a failure report
  std::string stats;                    // one line: what the run did
  std::string replay;                   // the environment that replays the run (sim_test.cc)
  bool ok() const { return violations.empty(); }
  // The failure report: seed, violations, how to replay, the trace.
  std::string Report(uint64_t seed, const std::string& test_name) const;
};

SimResult RunSimulation(const SimConfig& config);

}  // namespace carnet::sim
