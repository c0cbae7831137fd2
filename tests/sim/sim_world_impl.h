// The private side of RunSimulation, shared by sim_world.cc (the run) and sim_oracles.cc (the
// healing and the end-state checks).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "carnet/store.h"
#include "carnet/sync_client.h"
#include "tests/sim/sim_env.h"
#include "tests/sim/sim_model.h"
#include "tests/sim/sim_network.h"
#include "tests/sim/sim_random.h"
#include "tests/sim/sim_server.h"
#include "tests/sim/sim_trace.h"
#include "tests/sim/sim_workload.h"
#include "tests/sim/sim_world.h"

namespace carnet::sim {

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kHourMs = 60 * kMinuteMs;
constexpr int64_t kDayMs = 24 * kHourMs;

struct SimTablet {
  int index = 0;
  Identity me;
  std::string path;
  std::unique_ptr<SimEnv> env;
  SyncOptions options;
  std::unique_ptr<Store> store;
  std::unique_ptr<SyncClient> client;  // after the store: goes first
  uint64_t captured_seq = 0;  // the last of its operations written in the ledger
  Hlc last_hlc = 0;           // the greatest Store::LastHlc() seen
  std::set<Stamp> seen;       // stamps it made or was sent: all its operations may refer to
  int changes_left = 0;
  bool snapshot_taken = false;
  std::string Name() const { return me.device; }
};

struct SimStats {
  int changes = 0, refused = 0, syncs = 0, failed_syncs = 0, crashes = 0, restarts = 0;
  int server_restarts = 0, heal_rounds = 0, conflicts = 0, deleted = 0, records = 0;
  int restamped = 0;  // times a tablet re-stamped operations stamped ahead
};

class World {
 public:
  explicit World(const SimConfig& config);
  ~World();
  SimResult Run();

 private:
  // The run (sim_world.cc).
  Status Setup();
  Status OpenTablet(SimTablet& t);
  void Step();
  void AdvanceTime();
  void LocalChange(SimTablet& t);
  void Sync(SimTablet& t);
  void Restart(SimTablet& t, const std::string& why);
  void ClockEvent();
  void PartitionEvent();
  void Capture(SimTablet& t, bool changed, Hlc before);
  void CheckClock(SimTablet& t, const std::string& when);
  bool TakeRestamp(SimTablet& t);
  void Violation(std::string what);
  void TakeServerViolations();
  std::string Stats() const;

  // Healing and the oracles (sim_oracles.cc).
  void Heal();
  void Check();
  void CheckServer(const Model& model);
  void CheckTablet(SimTablet& t, const Model& model);

  SimConfig config_;
  std::string dir_;
  SimClock clock_;
  int64_t start_ms_ = 0;
  Rng rng_;
  Trace trace_;
  SimServer server_;
  Network network_;
  Registry registry_;
  Ledger ledger_;
  std::vector<std::unique_ptr<SimTablet>> tablets_;
  std::vector<std::string> violations_;
  SimStats stats_;
  int64_t step_ = 0;
  int64_t mean_step_ms_ = 40'000;
  int years_tablet_ = -1;
  int64_t years_step_ = -1;
  bool stopped_ = false;  // a tablet could not reopen
};

}  // namespace carnet::sim
