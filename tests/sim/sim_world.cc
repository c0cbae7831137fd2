#include "tests/sim/sim_world.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "tests/sim/sim_world_impl.h"

namespace carnet::sim {
namespace {

constexpr int64_t kStartMs = 1'763'900'000'000;  // November 2025
constexpr int64_t kYearMs = 365 * kDayMs;
// The client re-stamps what is more than this ahead of the server's time (sync_client.cc: the
// bound and a margin for the measured offset). New stamps start above the greatest other stamp
// the tablet keeps, which may be as far ahead: a minute more for the offset's error.
constexpr int64_t kRestampAheadMs = kSkewBoundMs + 5 * kMinuteMs;

std::string RunDir(const SimConfig& config) {
  return config.dir + "/carnet-sim-" + std::to_string(::getpid()) + "-" +
         std::to_string(config.seed);
}

// Failures a sync meets on a faulty network, with clocks that lie: it ends, the next one resumes.
bool ExpectedSyncFailure(const Status& status) {
  return status.code() == StatusCode::kUnavailable || status.code() == StatusCode::kBusy ||
         status.code() == StatusCode::kClockSkew;
}

std::string Decimal(double value) {
  std::string text = std::to_string(value);
  text.erase(text.find_last_not_of('0') + 1);
  if (text.back() == '.') text.pop_back();
  return text;
}

}  // namespace

std::string SimResult::Report(uint64_t seed, const std::string& test_name) const {
  std::string out = "seed " + std::to_string(seed) + " failed; replay: " + replay +
                    " sim_tests '" + test_name + "'\n" + stats + "\n";
  for (size_t i = 0; i < violations.size() && i < 10; ++i) out += "* " + violations[i] + "\n";
  if (violations.size() > 10) out += "* ... " + std::to_string(violations.size() - 10) + " more\n";
  return out + "last events:\n" + trace;
}

World::World(const SimConfig& config)
    : config_(config),
      dir_(RunDir(config)),
      rng_(config.seed),
      trace_(config.trace_events),
      server_(dir_ + "/server.db", &clock_, config.seed * 31 + 7, config.plant),
      network_(&server_, &clock_, rng_.Fork(1), &trace_, static_cast<size_t>(config.tablets)) {
  start_ms_ = kStartMs + rng_.Between(0, 30) * kDayMs + rng_.Between(0, kDayMs);
  clock_.now_ms = start_ms_;
  trace_.set_origin(start_ms_);
}

World::~World() {
  tablets_.clear();
  server_.Close();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

Status World::Setup() {
  std::error_code error;
  std::filesystem::remove_all(dir_, error);
  std::filesystem::create_directories(dir_, error);
  if (error) return Status(StatusCode::kIoError, "cannot make " + dir_ + ": " + error.message());
  CARNET_RETURN_IF_ERROR(server_.Open());
  const std::vector<std::string>& territories = Territories();
  for (int i = 0; i < config_.tablets; ++i) {
    auto t = std::make_unique<SimTablet>();
    t->index = i;
    // Two tablets share the north, one has the south, one the east and the south: scopes overlap.
    std::vector<std::vector<std::string>> covers = {
        {territories[0]}, {territories[0]}, {territories[1]}, {territories[2], territories[1]}};
    t->me = Identity{"tab-" + std::to_string(i), Advisers()[static_cast<size_t>(i) % 5],
                     i < 4 ? covers[static_cast<size_t>(i)]
                           : std::vector<std::string>{territories[static_cast<size_t>(i) % 4]}};
    t->path = dir_ + "/" + t->me.device + ".db";
    t->env = std::make_unique<SimEnv>(&clock_, rng_.Next());
    Result<std::string> token = server_.Enroll(Device{t->me.device, t->me.adviser, t->me.territories});
    if (!token.ok()) return token.status();
    t->options.token = *token;
    t->options.format = rng_.Chance(0.4) ? wire::Format::kBinary : wire::Format::kJson;
    // Without small batches a tablet pushes its whole outbox at once (up to the protocol's
    // limit), so that no change is split across two pushes.
    t->options.push_batch = config_.features.small_batches
                                ? rng_.Pick(std::vector<size_t>{1, 3, 20, 500})
                                : wire::kMaxPushOps;
    t->options.pull_batch = rng_.Pick(std::vector<uint32_t>{5, 50, 1000, 1000});
    t->options.max_attempts = static_cast<int>(rng_.Between(2, 5));
    t->changes_left = i == config_.offline_tablet ? config_.offline_ops : config_.ops_per_tablet;
    CARNET_RETURN_IF_ERROR(OpenTablet(*t));
    std::string covers_text;
    for (const std::string& territory : t->me.territories) covers_text += " " + territory;
    trace_.Add(clock_.now_ms, t->Name() + ": " + t->me.adviser + " in" + covers_text + ", " +
                                  (t->options.format == wire::Format::kBinary ? "binary" : "json") +
                                  ", push batch " + std::to_string(t->options.push_batch) +
                                  ", pull batch " + std::to_string(t->options.pull_batch) + ", " +
                                  std::to_string(t->options.max_attempts) + " attempts");
    tablets_.push_back(std::move(t));
  }
  network_.OnPulled([this](int tablet, const std::vector<Stamp>& stamps) {
    tablets_[static_cast<size_t>(tablet)]->seen.insert(stamps.begin(), stamps.end());
  });
  if (config_.offline_tablet >= 0) network_.SetOnline(config_.offline_tablet, false);
  NetworkFaults faults;
  if (!config_.features.late_deliveries) faults.hold = 0;
  network_.SetFaults(faults);
  trace_.Add(clock_.now_ms, "features: " + config_.features.Text());

  int64_t changes = 0;
  for (const auto& t : tablets_) changes += t->changes_left;
  int64_t steps = changes * 10 / 7;  // local changes are 70% of the steps
  mean_step_ms_ = std::max<int64_t>(40'000, config_.min_days * kDayMs / std::max<int64_t>(1, steps));
  if (rng_.Chance(config_.years_ahead_chance)) {
    years_tablet_ = static_cast<int>(rng_.Below(static_cast<uint64_t>(config_.tablets)));
    years_step_ = rng_.Between(0, steps);
  }
  return Status::Ok();
}

Status World::OpenTablet(SimTablet& t) {
  StoreOptions options;
  options.path = t.path;
  options.device_id = t.me.device;
  options.env = t.env.get();
  Result<std::unique_ptr<Store>> store = Store::Open(options);
  if (!store.ok()) return store.status();
  t.store = std::move(store.value());
  t.client = std::make_unique<SyncClient>(t.store.get(), t.env.get(), network_.Connect(t.index),
                                          t.options);
  return Status::Ok();
}

SimResult World::Run() {
  SimResult result;
  Status setup = Setup();
  if (!setup.ok()) {
    result.violations.push_back("setup failed: " + setup.ToString());
    return result;
  }
  auto busy = [&] {
    return std::any_of(tablets_.begin(), tablets_.end(), [](const auto& t) { return t->changes_left > 0; });
  };
  while (busy() && !stopped_ && violations_.size() < 20) Step();
  clock_.now_ms = std::max(clock_.now_ms, start_ms_ + config_.min_days * kDayMs);
  if (violations_.empty()) Heal();
  if (violations_.empty()) Check();
  // The same violation found twice says nothing more.
  std::set<std::string> reported;
  for (std::string& v : violations_) {
    if (reported.insert(v).second) result.violations.push_back(std::move(v));
  }
  result.trace = trace_.Text();
  for (const auto& t : tablets_) {
    for (const std::string& line : t->env->logs()) result.trace += "  [" + t->Name() + " log] " + line + "\n";
  }
  result.stats = Stats();
  result.replay = "CARNET_SIM_SEED=" + std::to_string(config_.seed) +
                  " CARNET_SIM_TABLETS=" + std::to_string(config_.tablets) +
                  " CARNET_SIM_OPS=" + std::to_string(config_.ops_per_tablet) +
                  " CARNET_SIM_FEATURES=" + config_.features.List() +
                  (config_.years_ahead_chance == SimConfig().years_ahead_chance
                       ? ""
                       : " CARNET_SIM_YEARS_AHEAD=" + Decimal(config_.years_ahead_chance));
  return result;
}

std::string SimFeatures::Text() const {
  std::string on, off;
  auto add = [&](bool enabled, const char* name) { (enabled ? on : off) += std::string(" ") + name; };
  add(handovers, "hand-overs");
  add(restores, "restores");
  add(small_batches, "small-batches");
  add(late_deliveries, "late-deliveries");
  return "with" + (on.empty() ? " nothing" : on) + (off.empty() ? "" : "; without" + off);
}

std::string SimFeatures::List() const {
  std::string list;
  auto add = [&](bool enabled, const char* name) {
    if (enabled) list += std::string(list.empty() ? "" : ",") + name;
  };
  add(handovers, "hand-overs");
  add(restores, "restores");
  add(small_batches, "small-batches");
  add(late_deliveries, "late-deliveries");
  return list.empty() ? "none" : list;
}

std::string World::Stats() const {
  return config_.features.Text() + "; " + std::to_string(stats_.changes) + " changes (" + std::to_string(stats_.refused) +
         " refused), " + std::to_string(ledger_.size()) + " operations, " +
         std::to_string(stats_.syncs) + " syncs (" + std::to_string(stats_.failed_syncs) +
         " cut short), " + std::to_string(stats_.crashes) + " crashes mid-sync, " +
         std::to_string(stats_.restarts) + " restarts, " + std::to_string(stats_.server_restarts) +
         " server restarts, " + std::to_string((clock_.now_ms - start_ms_) / kHourMs) +
         " h simulated, " + std::to_string(stats_.heal_rounds) + " rounds to converge; end state: " +
         std::to_string(stats_.records) + " records, " + std::to_string(stats_.deleted) +
         " deleted, " + std::to_string(stats_.conflicts) + " conflicts" +
         (years_tablet_ >= 0 ? ", tab-" + std::to_string(years_tablet_) + " set years ahead" : "") +
         (stats_.restamped > 0 ? ", " + std::to_string(stats_.restamped) + " re-stamps" : "");
}

void World::Violation(std::string what) {
  trace_.Add(clock_.now_ms, "VIOLATION " + what.substr(0, what.find('\n')));
  if (violations_.size() < 50) violations_.push_back(std::move(what));
}

void World::TakeServerViolations() {
  for (std::string& v : server_.TakeViolations()) Violation(std::move(v));
}

void World::AdvanceTime() {
  int64_t step = rng_.Between(1000, 2 * mean_step_ms_);
  if (rng_.Chance(0.01)) step += rng_.Between(1, 14) * kHourMs;  // a night, an afternoon off
  if (rng_.Chance(0.002)) step += rng_.Between(1, 3) * kDayMs;   // a weekend
  clock_.now_ms += step;
}

void World::Step() {
  ++step_;
  AdvanceTime();
  if (step_ == years_step_) {
    SimTablet& t = *tablets_[static_cast<size_t>(years_tablet_)];
    t.env->set_skew_ms(rng_.Between(2, 5) * kYearMs + rng_.Between(0, kYearMs));
    trace_.Add(clock_.now_ms, t.Name() + " clock set years ahead");
  }
  std::vector<SimTablet*> working;
  for (const auto& t : tablets_) {
    if (t->changes_left > 0) working.push_back(t.get());
  }
  switch (rng_.Weighted({700, 70, network_.held() ? 30 : 0, 10, 20, 20, 3})) {
    case 0: return LocalChange(*rng_.Pick(working));
    case 1: return Sync(*tablets_[rng_.Below(tablets_.size())]);
    case 2: network_.DeliverOneHeld(); return TakeServerViolations();
    case 3: return Restart(*tablets_[rng_.Below(tablets_.size())], "the app restarts");
    case 4: return ClockEvent();
    case 5: return PartitionEvent();
    default:
      ++stats_.server_restarts;
      trace_.Add(clock_.now_ms, "server restarts");
      server_.Close();
      if (Status s = server_.Open(); !s.ok()) Violation("server does not reopen: " + s.ToString());
  }
}

void World::LocalChange(SimTablet& t) {
  Hlc before = t.store->LastHlc();
  Action action = Act(*t.store, t.me, registry_, rng_,
                      WorkloadOptions{config_.features.handovers, config_.features.restores});
  --t.changes_left;
  ++stats_.changes;
  trace_.Add(clock_.now_ms, t.Name() + ": " + action.what +
                                (action.status.ok() ? "" : " -> " + action.status.ToString()));
  StatusCode code = action.status.code();
  if (!action.status.ok()) ++stats_.refused;
  if (!action.status.ok() && code != StatusCode::kFailedPrecondition && code != StatusCode::kNotFound) {
    Violation(t.Name() + ": " + action.what + ": unexpected " + action.status.ToString());
  }
  Capture(t, action.status.ok(), before);
}

// Writes the operations a change just made into the ledger, and checks them: sequence without
// gaps, stamps moving forward, refs only to what the tablet had.
void World::Capture(SimTablet& t, bool changed, Hlc before) {
  Result<std::vector<Operation>> ops = t.store->PendingOperations(t.captured_seq, 1'000'000);
  if (!ops.ok()) return Violation(t.Name() + ": reading the outbox: " + ops.status().ToString());
  if (!changed && !ops->empty()) {
    Violation(t.Name() + ": a refused change left " + std::to_string(ops->size()) +
              " operations in the outbox");
  }
  Hlc previous = before;
  for (const Operation& op : *ops) {
    std::string id = op.device + "#" + std::to_string(op.seq);
    if (op.seq != t.captured_seq + 1) {
      Violation(t.Name() + ": outbox jumps from #" + std::to_string(t.captured_seq) + " to " + id);
    }
    if (std::string why = ledger_.Record(op); !why.empty()) Violation(why);
    if (op.hlc <= previous) {
      Violation(id + " stamped " + StampToString(op.stamp()) + ", not after the clock's " +
                StampToString(Stamp{previous, op.device}));
    }
    for (const Stamp& ref : op.refs) {
      std::string what = id + " (" + OpKindName(op.kind) + " " + op.collection + "/" + op.record +
                         "/" + op.field + ") refers to " + StampToString(ref);
      if (!t.seen.count(ref)) Violation(what + ", which the tablet never had");
      // What an operation replaces is older than it: a write never buries a newer one.
      if (!(ref < op.stamp())) Violation(what + ", which is not older than it");
    }
    t.seen.insert(op.stamp());
    previous = op.hlc;
    t.captured_seq = op.seq;
  }
  CheckClock(t, "after a change");
}

void World::CheckClock(SimTablet& t, const std::string& when) {
  Hlc now = t.store->LastHlc();
  if (now < t.last_hlc && TakeRestamp(t)) {
    t.last_hlc = now;
    return;
  }
  if (now < t.last_hlc) {
    Violation(t.Name() + ": HLC went back " + when + ", from " +
              StampToString(Stamp{t.last_hlc, t.me.device}) + " to " +
              StampToString(Stamp{now, t.me.device}));
  }
  t.last_hlc = std::max(t.last_hlc, now);
}

// The one time a tablet's clock may go back: it re-stamped the operations a clock set ahead had
// stamped, after the server refused them (Store::RestampAhead). Judged here: only operations no
// server accepted (neither in this run nor ever: more than the bound ahead of the true time), now
// stamped near the true time, in the same order, and otherwise the same operations (their refs
// following the stamps that moved). The ledger takes the new stamps. False when no operation
// changed stamp: nothing explains the clock going back.
bool World::TakeRestamp(SimTablet& t) {
  Result<std::vector<Operation>> outbox = t.store->PendingOperations(0, 100'000'000);
  if (!outbox.ok()) {
    Violation(t.Name() + ": reading the outbox: " + outbox.status().ToString());
    return false;
  }
  std::map<uint64_t, const Operation*> pending;
  for (const Operation& op : *outbox) pending[op.seq] = &op;
  // Each operation as it stands now: in the outbox, else as the server accepted it.
  std::vector<std::pair<Operation, Operation>> moved;  // (in the ledger, now)
  for (uint64_t seq = 1; seq <= t.captured_seq; ++seq) {
    const Operation* made = ledger_.Find(t.me.device, seq);
    const Operation* now = nullptr;
    if (auto it = pending.find(seq); it != pending.end()) {
      now = it->second;
    } else if (auto it = server_.applied().find({t.me.device, seq}); it != server_.applied().end()) {
      now = &it->second;
    }
    if (made != nullptr && now != nullptr && !(*made == *now)) moved.emplace_back(*made, *now);
  }
  if (moved.empty()) return false;
  std::map<Stamp, Stamp> renames;
  for (const auto& [made, now] : moved) renames[made.stamp()] = now.stamp();
  Hlc previous = 0;
  for (const auto& [made, now] : moved) {
    std::string id = made.device + "#" + std::to_string(made.seq) + " (" + OpKindName(made.kind) +
                     " " + made.collection + "/" + made.record + "/" + made.field + ")";
    std::string from_to = " from " + StampToString(made.stamp()) + " to " + StampToString(now.stamp());
    int64_t was_ahead = HlcPhysicalMs(made.hlc) - clock_.now_ms;
    if (was_ahead <= kSkewBoundMs) {
      Violation(t.Name() + " re-stamped " + id + from_to + ", only " +
                std::to_string(was_ahead / 1000) + " s ahead: a server may hold it");
    }
    auto accepted = server_.applied().find({made.device, made.seq});
    if (accepted != server_.applied().end() && accepted->second == made) {
      Violation(t.Name() + " re-stamped " + id + from_to + ", which the server had accepted");
    }
    if (HlcPhysicalMs(now.hlc) - clock_.now_ms > kRestampAheadMs + kMinuteMs) {
      Violation(t.Name() + " re-stamped " + id + from_to + ", still far ahead");
    }
    if (now.hlc <= previous) {
      Violation(t.Name() + " re-stamped " + id + from_to + ", out of the order of its operations");
    }
    previous = now.hlc;
    Operation expected = made;
    expected.hlc = now.hlc;
    for (Stamp& ref : expected.refs) {
      if (auto it = renames.find(ref); it != renames.end()) ref = it->second;
    }
    if (!(expected == now)) {
      Violation(t.Name() + " re-stamped " + id + from_to + " into another operation: " +
                OpKindName(now.kind) + " on " + now.collection + "/" + now.record + "/" + now.field);
    }
    for (const Stamp& ref : now.refs) {
      if (!(ref < now.stamp())) {
        Violation(t.Name() + " re-stamped " + id + from_to + ", below " + StampToString(ref) +
                  ", which it refers to");
      }
    }
  }
  for (const auto& [made, now] : moved) {
    ledger_.Restamp(now);
    t.seen.erase(made.stamp());
    t.seen.insert(now.stamp());
  }
  trace_.Add(clock_.now_ms, t.Name() + " re-stamped " + std::to_string(moved.size()) +
                                " operations stamped ahead, the first from " +
                                StampToString(moved.front().first.stamp()) + " to " +
                                StampToString(moved.front().second.stamp()));
  ++stats_.restamped;
  return true;
}

void World::Sync(SimTablet& t) {
  if (rng_.Chance(0.08)) network_.ArmCrash(t.index, static_cast<int>(rng_.Between(1, 3)));
  Status status = t.client->SyncNow();
  ++stats_.syncs;
  trace_.Add(clock_.now_ms, t.Name() + " sync: " + (status.ok() ? "ok" : status.ToString()));
  TakeServerViolations();
  if (network_.crashed(t.index)) {
    ++stats_.crashes;
    Restart(t, "crashed during a sync");
    return;
  }
  network_.ArmCrash(t.index, 0);
  if (!status.ok()) ++stats_.failed_syncs;
  if (!status.ok() && !ExpectedSyncFailure(status)) {
    Violation(t.Name() + ": sync failed: " + status.ToString());
  }
  CheckClock(t, "after a sync");
}

// Closes the tablet's store and opens it again: nothing in its outbox may change, its clock may
// not go back.
void World::Restart(SimTablet& t, const std::string& why) {
  ++stats_.restarts;
  trace_.Add(clock_.now_ms, t.Name() + " restarts: " + why);
  Result<std::vector<Operation>> before = t.store->PendingOperations(0, 100'000'000);
  t.client.reset();
  t.store.reset();
  if (config_.plant == Plant::kRestoreOldFile) {
    std::error_code ignored;
    if (!t.snapshot_taken) {
      std::filesystem::copy_file(t.path, t.path + ".old", ignored);
      t.snapshot_taken = true;
    } else {
      std::filesystem::copy_file(t.path + ".old", t.path,
                                 std::filesystem::copy_options::overwrite_existing, ignored);
      std::filesystem::remove(t.path + "-wal", ignored);
      std::filesystem::remove(t.path + "-shm", ignored);
    }
  }
  network_.Revive(t.index);
  if (Status s = OpenTablet(t); !s.ok()) {
    Violation(t.Name() + " does not reopen: " + s.ToString());
    stopped_ = true;  // nothing sensible can follow
    return;
  }
  Result<std::vector<Operation>> after = t.store->PendingOperations(0, 100'000'000);
  if (before.ok() && after.ok() && *before != *after) {
    Violation(t.Name() + ": outbox changed across a restart (" + std::to_string(before->size()) +
              " operations before, " + std::to_string(after->size()) + " after)");
  }
  CheckClock(t, "across a restart");
}

void World::ClockEvent() {
  SimTablet& t = *tablets_[rng_.Below(tablets_.size())];
  int64_t skew = t.env->skew_ms();
  switch (rng_.Weighted({45, 15, 30})) {
    case 0:  // a drift or a bump of minutes, either way
      skew += rng_.Between(-10, 10) * kMinuteMs + rng_.Between(-30'000, 30'000);
      break;
    case 1:  // a wrong date: days off, more often behind than ahead
      skew = (rng_.Chance(0.35) ? 1 : -1) * (rng_.Between(1, 4) * kDayMs + rng_.Between(0, kDayMs));
      break;
    default:  // the clock is set right
      skew = 0;
  }
  t.env->set_skew_ms(skew);
  trace_.Add(clock_.now_ms, t.Name() + " clock now " + std::to_string(skew / 1000) + " s off");
}

// Tablets lose the network for a while, alone or with a neighbour, about a quarter of the time.
void World::PartitionEvent() {
  int i = static_cast<int>(rng_.Below(tablets_.size()));
  if (i == config_.offline_tablet) return;
  if (!network_.online(i)) {
    network_.SetOnline(i, true);
    trace_.Add(clock_.now_ms, "tab-" + std::to_string(i) + " reconnects");
    return;
  }
  if (!rng_.Chance(0.35)) return;
  network_.SetOnline(i, false);
  trace_.Add(clock_.now_ms, "tab-" + std::to_string(i) + " loses the network");
  int j = static_cast<int>(rng_.Below(tablets_.size()));
  if (rng_.Chance(0.3) && j != config_.offline_tablet && j != i) {
    network_.SetOnline(j, false);  // the same mast serves both
    trace_.Add(clock_.now_ms, "tab-" + std::to_string(j) + " loses the network too");
  }
}

SimResult RunSimulation(const SimConfig& config) {
  World world(config);
  return world.Run();
}

}  // namespace carnet::sim
