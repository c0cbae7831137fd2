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

// `erase --participant ID --by WHO`, `erasure-status [--participant ID]`,
// `retention [--days N] [--action forget|erase] [--dry-run]`: print what was done and return the
// exit status.
int Erase(ServerStore* store, const std::string& participant, const std::string& ordered_by);
int ErasureStatus(ServerStore* store, const std::string& participant);
int Retention(ServerStore* store, const RetentionPolicy& policy, bool dry_run);

}  // namespace carnet::server_cli
