// What every store checks of a push before it touches its records (sync/PROTOCOL.md, Push).
#pragma once

#include <cstdint>
#include <vector>

#include "carnet/operation.h"
#include "carnet/schema.h"
#include "carnet/server_store.h"

namespace carnet {

// The batch on its own: every operation signed by `caller`, well formed, not stamped more than
// `max_forward_skew_ms` ahead of `now_ms`, in sequence without gaps.
Status CheckPushBatch(const Schema& schema, const Device& caller, const std::vector<Operation>& ops,
                      int64_t now_ms, int64_t max_forward_skew_ms);

}  // namespace carnet
