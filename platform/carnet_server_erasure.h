// carnet-server's erasure and retention commands (sync/PROTOCOL.md, Erasure and Retention).
#pragma once

#include <optional>
#include <string>

#include "carnet/erasure.h"
#include "carnet/server_store.h"
#include "carnet/status.h"

namespace carnet::server_cli {

// A retention policy from its options: `days` (a whole number of days, "" for 730) and `action`
// ("forget", "erase", "" for forget). With `allow_off`, 0 days is no policy at all (serve).
Result<std::optional<RetentionPolicy>> ParseRetention(const std::string& days,
                                                      const std::string& action, bool allow_off);

// The exit status of an erase (or a retention that erased) recorded and sent to the tablets, but
// whose removed data the store's files still hold: a reader of the SQLite file held its WAL past
// --scrub-wait seconds (ServerStore::ScrubErasures; sync/OPERATIONS.md).
inline constexpr int kExitNotScrubbed = 4;

// `erase --participant ID --by WHO [--scrub-wait S]`, `erasure-status [--participant ID]` (which
// first tries to scrub the erasures still pending), `retention [--days N]
// [--action forget|erase] [--dry-run] [--scrub-wait S]`: print what was done and return the exit
// status. `scrub_wait`: seconds, "" for 10.
int Erase(ServerStore* store, const std::string& participant, const std::string& ordered_by,
          const std::string& scrub_wait);
int ErasureStatus(ServerStore* store, const std::string& participant);
int Retention(ServerStore* store, const RetentionPolicy& policy, bool dry_run,
              const std::string& scrub_wait);

}  // namespace carnet::server_cli
