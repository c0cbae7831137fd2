// Crash at every write point: for each kind of transaction, the process dies at its 1st, 2nd, ...
// write, truncation or sync, until the transaction completes; the disk then holds what was
// synced, or everything written, or a random subset of the unsynced sectors. After each crash
// the file must open on the normal VFS and pass PRAGMA integrity_check, hold exactly the state
// before the transaction or exactly the state after it, with a clock that has not gone back, and
// the sync that follows must converge with nothing lost (the very outcome of a run without
// faults).
#include <chrono>
#include <iostream>

#include <catch2/catch.hpp>

#include "tests/core/store_helpers.h"
#include "tests/crash/crash_harness.h"
#include "tests/crash/fault_vfs.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

constexpr uint64_t kRandomDraws = 8;

struct Tally {
  uint64_t points = 0;      // crash points tried (the last run is the crash just after returning)
  uint64_t took_effect = 0;  // runs after which the transaction had taken effect
};

// One run under `plan` (a crash, or an I/O error at the nth operation) ended by a crash: the one
// the plan makes, or else a power cut just after the call returned. False once the transaction
// completed without meeting the planned fault.
bool RunThenCrash(const Rig& rig, FaultVfs& vfs, const FaultPlan& plan, AfterCrash how,
                  uint64_t seed, Tally* tally) {
  INFO(rig.scenario().name << ", " << (plan.fault == Fault::kCrash ? "crash" : "I/O error")
                           << " at operation " << plan.at << ", disk " << AfterCrashName(how)
                           << " (seed " << seed << ")");
  TempDir dir;
  rig.CopyTo(dir);
  vfs.SetDefault(true);
  Tablet a(dir, "tab-a", 1);
  REQUIRE_OK(a.Open());
  vfs.Arm(plan);
  const Status status = rig.scenario().run(a);
  const bool completed = !vfs.fired();
  if (completed) REQUIRE_OK(status);
  vfs.CrashNow();
  a.Close();
  vfs.RestoreAfterCrash(how, seed);
  vfs.ForgetFiles();
  vfs.SetDefault(false);

  REQUIRE_OK(a.Open());
  REQUIRE(IntegrityCheck(a.path()) == "ok");
  const TabletState state = Capture(*a);
  const bool took_effect = state == rig.after();
  if (!took_effect) REQUIRE(Text(state) == Text(rig.before()));
  if (status.ok()) REQUIRE(took_effect);  // an app told "saved" finds it saved
  Tablet b(dir, "tab-b", 2);
  REQUIRE_OK(b.Open());
  REQUIRE(rig.SyncAfterRestart(a, b, took_effect) == rig.converged(took_effect));
  ++tally->points;
  tally->took_effect += took_effect;
  return !completed;
}

void CrashAtEveryPoint(const Scenario& scenario) {
  const auto start = std::chrono::steady_clock::now();
  FaultVfs vfs;
  const Rig rig(scenario);
  for (AfterCrash how :
       {AfterCrash::kLoseUnsynced, AfterCrash::kKeepWritten, AfterCrash::kRandomSectors}) {
    Tally tally;
    bool more = true;
    for (uint64_t n = 1; more; ++n) {
      // A random subset of unsynced sectors: several draws at each point.
      const uint64_t draws = how == AfterCrash::kRandomSectors ? kRandomDraws : 1;
      for (uint64_t draw = 0; draw < draws; ++draw) {
        more = RunThenCrash(rig, vfs, FaultPlan{Fault::kCrash, n}, how, n * 100 + draw, &tally);
      }
    }
    CHECK(tally.took_effect > 0);
    CHECK(tally.took_effect < tally.points);
    std::cout << scenario.name << " [" << AfterCrashName(how) << "]: " << tally.points
              << " crash points, " << tally.took_effect << " after which it had taken effect\n";
  }
  std::cout << scenario.name << ": "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
            << " s\n";
}

}  // namespace

TEST_CASE("A local edit cut by a crash at any write is all or nothing", "[crash]") {
  CrashAtEveryPoint(LocalEditScenario());
}

TEST_CASE("A pulled batch cut by a crash at any write is all or nothing, cursor included",
          "[crash]") {
  CrashAtEveryPoint(PulledBatchScenario());
}

TEST_CASE("Saving a cursor cut by a crash at any write is all or nothing", "[crash]") {
  CrashAtEveryPoint(CursorScenario());
}

TEST_CASE("Acknowledging a push cut by a crash at any write is all or nothing", "[crash]") {
  CrashAtEveryPoint(AcknowledgeScenario());
}

TEST_CASE("An eviction cut by a crash at any write is all or nothing", "[crash]") {
  CrashAtEveryPoint(EvictionScenario());
}

TEST_CASE("Closing the store cut by a crash at any write loses nothing committed", "[crash]") {
  CrashAtEveryPoint(CloseScenario());
}

TEST_CASE("A failed fsync followed by a power cut leaves every kind of transaction whole",
          "[crash][io]") {
  FaultVfs vfs;
  for (const Scenario& scenario : AllScenarios()) {
    const Rig rig(scenario);
    for (AfterCrash how :
         {AfterCrash::kLoseUnsynced, AfterCrash::kKeepWritten, AfterCrash::kRandomSectors}) {
      Tally tally;
      for (uint64_t n = 1;
           RunThenCrash(rig, vfs, FaultPlan{Fault::kIoError, n, kFaultSync}, how, n, &tally);
           ++n) {
      }
      std::cout << scenario.name << " [fsync error, then " << AfterCrashName(how)
                << "]: " << tally.points << " points, " << tally.took_effect
                << " after which it had taken effect\n";
    }
  }
}

TEST_CASE("Creating a store cut by a crash at any write leaves a file that opens as a new store",
          "[crash]") {
  FaultVfs vfs;
  for (AfterCrash how :
       {AfterCrash::kLoseUnsynced, AfterCrash::kKeepWritten, AfterCrash::kRandomSectors}) {
    uint64_t points = 0;
    for (uint64_t n = 1;; ++n) {
      INFO("crash at operation " << n << ", disk " << AfterCrashName(how));
      TempDir dir;
      vfs.SetDefault(true);
      Tablet c(dir, "tab-c", 3);
      vfs.Arm(FaultPlan{Fault::kCrash, n});
      const Status opened = c.Open();
      const bool completed = !vfs.fired();
      if (completed) REQUIRE_OK(opened);
      vfs.CrashNow();
      c.Close();
      vfs.RestoreAfterCrash(how, n);
      vfs.ForgetFiles();
      vfs.SetDefault(false);

      REQUIRE_OK(c.Open());
      REQUIRE(IntegrityCheck(c.path()) == "ok");
      REQUIRE(Dump(*c).empty());
      REQUIRE(Outbox(*c).empty());
      REQUIRE_OK(c->Set("workshops", "w9", "theme", "first edit"));
      REQUIRE(Outbox(*c).front().seq == 1);
      Tablet b(dir, "tab-b", 2);
      REQUIRE_OK(b.Open());
      Deliver(*c, *b);
      REQUIRE(Dump(*b) == Dump(*c));
      if (opened.ok()) {
        // Open returned: the file belongs to this device for life, crash or not.
        Tablet impostor(dir, "tab-x", 4);
        impostor.options().path = c.path();
        c.Close();
        REQUIRE(impostor.Open().code() == StatusCode::kFailedPrecondition);
      }
      ++points;
      if (completed) break;
    }
    std::cout << "creating a store [" << AfterCrashName(how) << "]: " << points
              << " crash points\n";
  }
}
