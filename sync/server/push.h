// What every store checks of a push before it touches its records (sync/PROTOCOL.md, Push).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "carnet/operation.h"
#include "carnet/schema.h"
#include "carnet/server_store.h"
#include "carnet/wire.h"

namespace carnet {

// The batch on its own: every operation signed by `caller`, well formed, not stamped more than
// `max_forward_skew_ms` ahead of `now_ms`, in sequence without gaps; an incarnation well formed
// and whose last_seq is not below the batch's.
Status CheckPushBatch(const Schema& schema, const Device& caller, const wire::PushRequest& push,
                      int64_t now_ms, int64_t max_forward_skew_ms);

// What the store's incarnation makes of a push (PROTOCOL.md, Push).
struct IncarnationVerdict {
  // A store restored from a backup: apply nothing, reply with stale_incarnation set.
  bool stale = false;
  // The operations before this index were acknowledged to this incarnation already: a push
  // delivered again, or late. They are duplicates whatever the server holds now, since the purge
  // may have removed what they made.
  size_t first_fresh = 0;
  // The highest sequence number acknowledged before this push: to the store's life, or to the
  // device for a push that names no incarnation.
  uint64_t acknowledged = 0;
};
// `life_acknowledged`: what the store holds for (device, push.incarnation), if anything. Logs
// what a server operator should know: a stale push, or a gap in a device's operations.
IncarnationVerdict JudgeIncarnation(Env* env, const Device& device, const wire::PushRequest& push,
                                    std::optional<uint64_t> life_acknowledged);
wire::PushReply StaleIncarnationReply(int64_t now_ms);

}  // namespace carnet
