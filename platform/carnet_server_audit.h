// carnet-server's audit command (sync/SECURITY.md, Audit).
#pragma once

#include <string>

#include "carnet/server_store.h"

namespace carnet::server_cli {

struct AuditOptions {
  bool verify = false;
  std::string device;  // the filters, "" for none
  std::string record;
  std::string since;   // 2026-11-20, 2026-11-20T09:30:00Z or milliseconds since 1970
  std::string anchor;  // ID:HASH, with verify
};

// `audit [--device ID] [--record ID] [--since WHEN]` prints the matching rows, one JSON object a
// line; `audit --verify [--anchor ID:HASH]` checks the whole chain and prints its head. Returns
// the exit status: 0, 1 (the store failed), 2 (usage), 3 (the chain is broken).
int Audit(ServerStore* store, const AuditOptions& options);

}  // namespace carnet::server_cli
