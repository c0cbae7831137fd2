// What advisers do on their tablets, drawn at random in the proportions of real work: many
// interview edits and notes, fewer participant edits, workshop registrations and attendance,
// some deletes and restores, conflict resolutions, and hand-overs of participants to another
// adviser or territory (changes of scope).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "carnet/status.h"
#include "carnet/store.h"
#include "tests/sim/sim_random.h"

namespace carnet::sim {

// Who a tablet belongs to: what its scope is made of.
struct Identity {
  std::string device;
  std::string adviser;
  std::vector<std::string> territories;
};

// Every record id created during a run, by collection, in order of creation: where a tablet
// looks for records to work on (it works only on those it holds).
class Registry {
 public:
  void Add(const std::string& collection, const std::string& id) {
    if (known_.insert({collection, id}).second) ids_[collection].push_back(id);
  }
  // Attendance ids are derived, not drawn: once deleted (and perhaps purged), the same id would
  // be a new record to a tablet that forgot it, which the oracles' model cannot tell from a
  // resurrection. Advisers register such a pair again only rarely; the simulation never does.
  void MarkDeleted(const std::string& collection, const std::string& id) {
    deleted_.insert({collection, id});
  }
  bool WasDeleted(const std::string& collection, const std::string& id) const {
    return deleted_.count({collection, id}) > 0;
  }
  const std::vector<std::string>& Of(const std::string& collection) const {
    static const std::vector<std::string> kNone;
    auto it = ids_.find(collection);
    return it == ids_.end() ? kNone : it->second;
  }

 private:
  std::map<std::string, std::vector<std::string>> ids_;
  std::set<std::pair<std::string, std::string>> known_;
  std::set<std::pair<std::string, std::string>> deleted_;
};

// One user action and how the store took it: ok, or refused (a deleted or frozen record, a
// value that may only move forward...), which is part of real use too.
struct Action {
  std::string what;
  Status status;
};

// Advisers, and the territories their tablets cover.
const std::vector<std::string>& Advisers();
const std::vector<std::string>& Territories();

// What a run's advisers may do besides everyday work.
struct WorkloadOptions {
  bool handovers = true;
  bool restores = true;
};

// Performs one action drawn at random on `store`, as `me`.
Action Act(Store& store, const Identity& me, Registry& registry, Rng& rng,
           const WorkloadOptions& options);

}  // namespace carnet::sim
