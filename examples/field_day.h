// The field-day demo's cast: three tablets of one territory and the records of the day's story.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "carnet/status.h"
#include "carnet/store.h"
#include "carnet/sync_client.h"

namespace field_day {

struct Tablet {
  std::string device;   // "tablet-amina"
  std::string adviser;  // "amina"
  // One-time code from carnet-server enroll, which the tablet's first sync exchanges for its
  // device token.
  std::string enrollment_code;
  std::unique_ptr<carnet::Store> store;
  std::unique_ptr<carnet::SyncClient> client;
  carnet::SyncProgress progress;  // of its latest sync
};

// Ids of the story's records, and how the report names them.
struct Cast {
  std::string nadia, julien, sophie;  // participants
  std::string interview;              // Nadia's interview, deleted and edited offline
  std::string visit;                  // Julien's company visit, recorded offline
  std::string employer;               // the bakery Amina visits, Julien's profile proposed there
  std::string company_visit;          // that visit, synced by territory
  std::string workshop;
  std::map<std::string, std::string> names;  // record id -> readable name
};

// What converged, the conflicts kept for review, and whether each tablet holds exactly the
// server's dump of its scope (`carnet-server dump --device`). True when every tablet does.
bool Report(const std::vector<Tablet*>& tablets, const Cast& cast, const std::string& server_binary,
            const std::string& store_spec, const std::string& log_path);

}  // namespace field_day
