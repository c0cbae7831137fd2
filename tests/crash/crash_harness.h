// What the crash and I/O-error loops share: tablets on store files that a test closes and opens
// at will, the state of a tablet they compare, the scenarios (one per kind of transaction), and a
// rig that copies a scenario's starting point and knows its two possible outcomes.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "carnet/store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_env.h"

namespace carnet::testing {

constexpr int64_t kSetupMs = 1'763'900'000'000;  // the clock while a starting point is built
constexpr int64_t kRunMs = kSetupMs + 60'000;    // the clock of every run from it

// One tablet whose store file the test closes and reopens, as the app does on a restart.
class Tablet {
 public:
  Tablet(const TempDir& dir, const std::string& device, uint64_t seed, int64_t now_ms = kRunMs);

  Status Open();  // through whichever SQLite VFS is the default now
  void Close();   // a no-op when closed
  bool open() const { return store_ != nullptr; }

  Store& operator*() { return *store_; }
  Store* operator->() { return store_.get(); }
  const std::string& path() const { return options_.path; }
  StoreOptions& options() { return options_; }

 private:
  TestEnv env_;
  StoreOptions options_;
  std::unique_ptr<Store> store_;
};

// Everything of a tablet that a transaction may change, in forms that compare and print well.
struct TabletState {
  std::string dump;        // Store::CanonicalDump, dead entries included
  std::string outbox;      // pending operations, one line each
  std::string sync_state;  // the sync keys the scenarios use
  std::string conflicts;
  Hlc last_hlc = 0;
  friend bool operator==(const TabletState&, const TabletState&) = default;
};

TabletState Capture(Store& store);
std::string Text(const TabletState& state);
// Text(state) without the clock, with every stamp that `base` does not hold renamed by rank
// ("new1@tab-a", ...): two runs of one call that issued different fresh stamps compare equal.
std::string TextWithFreshStampsRanked(const TabletState& state, const TabletState& base);

// "ok", or what PRAGMA integrity_check reports, through a connection of its own on the default VFS.
std::string IntegrityCheck(const std::string& path);

// A kind of transaction the loops drive on tablet A, with tablet B as its sync peer.
struct Scenario {
  std::string name;
  // Builds the starting point on two fresh tablets.
  std::function<void(Tablet& a, Tablet& b)> setup;
  // The transaction under test; the first failure ends it. May leave A closed.
  std::function<Status(Tablet& a)> run;
  // Whether the sync that follows a restart runs the transaction again when it did not take
  // effect: a pull whose cursor was not saved is pulled again, an unacknowledged push is
  // acknowledged again, an eviction is told again. A local edit the app was not told is saved is
  // not redone: losing it is allowed.
  bool sync_redoes = false;
  // Records that leave A's scope: left out when A's state is compared with B's.
  std::vector<std::pair<std::string, std::string>> evicted;
};

Scenario LocalEditScenario();
Scenario PulledBatchScenario();
Scenario CursorScenario();
Scenario AcknowledgeScenario();
Scenario EvictionScenario();
Scenario CloseScenario();  // a local edit, then closing the store (the WAL checkpoint)
std::vector<Scenario> AllScenarios();

// A scenario's starting point, built once, and its two fault-free outcomes: A's state before and
// after the transaction, and the tablets' states after the sync that follows a restart.
class Rig {
 public:
  explicit Rig(Scenario scenario);

  const Scenario& scenario() const { return scenario_; }
  // Copies the starting point (A's and B's store files, closed) into `dir`.
  void CopyTo(const TempDir& dir) const;
  const TabletState& before() const { return before_; }
  const TabletState& after() const { return after_; }

  // Runs what follows a restart of A: the sync with B (the transaction again when it did not
  // take effect and the sync redoes it), a local edit on A that must be stamped after everything
  // A holds, and a second exchange; requires A and B to agree and returns both dumps and A's
  // outbox, which must equal converged(took_effect).
  std::string SyncAfterRestart(Tablet& a, Tablet& b, bool took_effect) const;
  const std::string& converged(bool took_effect) const { return converged_[took_effect]; }

 private:
  Scenario scenario_;
  TempDir template_;
  TabletState before_, after_;
  std::array<std::string, 2> converged_;
};

}  // namespace carnet::testing
