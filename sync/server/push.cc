#include "sync/server/push.h"

#include <string>

namespace carnet {

Status CheckPushBatch(const Schema& schema, const Device& caller, const wire::PushRequest& push,
                      int64_t now_ms, int64_t max_forward_skew_ms) {
  const std::vector<Operation>& ops = push.ops;
  if (push.incarnation.size() > wire::kMaxIncarnationBytes ||
      push.incarnation.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz-") !=
          std::string::npos) {
    return InvalidArgument("a store incarnation is at most " +
                           std::to_string(wire::kMaxIncarnationBytes) +
                           " characters among [0-9a-z-]");
  }
  if (!push.incarnation.empty() && !ops.empty() && push.last_seq < ops.back().seq) {
    return InvalidArgument("last_seq " + std::to_string(push.last_seq) +
                           " is below the batch's last operation " +
                           std::to_string(ops.back().seq));
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    const Operation& op = ops[i];
    const std::string name = op.device + "#" + std::to_string(op.seq);
    if (op.device != caller.id) {
      return Status(StatusCode::kPermissionDenied,
                    "operation " + name + " is not signed by device " + caller.id);
    }
    CARNET_RETURN_IF_ERROR(ValidateOperation(schema, op));
    int64_t ahead = HlcPhysicalMs(op.hlc) - now_ms;
    if (ahead > max_forward_skew_ms) {
      return Status(StatusCode::kClockSkew, "operation " + name + " is stamped " +
                                                std::to_string(ahead / 1000) +
                                                " s ahead of the server's time: the tablet's "
                                                "clock is wrong");
    }
    if (i > 0 && op.seq != ops[i - 1].seq + 1) {
      return InvalidArgument("operations must come in sequence without gaps");
    }
  }
  return Status::Ok();
}

IncarnationVerdict JudgeIncarnation(Env* env, const Device& device, const wire::PushRequest& push,
                                    std::optional<uint64_t> life_acknowledged) {
  IncarnationVerdict verdict;
  verdict.acknowledged =
      push.incarnation.empty() ? device.acknowledged_seq : life_acknowledged.value_or(0);
  if (!push.incarnation.empty() && push.last_seq < verdict.acknowledged) {
    env->Log(LogLevel::kWarning,
             "push from " + device.id + ": its store " + push.incarnation +
                 " has made operations up to " + std::to_string(push.last_seq) + " but " +
                 std::to_string(verdict.acknowledged) +
                 " were acknowledged to it (a copy restored from a backup, or a push delivered "
                 "late): nothing applied, the tablet is told to push under a new incarnation");
    verdict.stale = true;
    return verdict;
  }
  if (!push.incarnation.empty()) {
    while (verdict.first_fresh < push.ops.size() &&
           push.ops[verdict.first_fresh].seq <= verdict.acknowledged) {
      ++verdict.first_fresh;
    }
  }
  // A device never skips an operation: past the server's, the server has lost some it had
  // acknowledged (restored from a backup). Refusing would only strand the tablet's new work. A
  // store's first push (a new life) may start anywhere.
  const bool first_of_life = !push.incarnation.empty() && !life_acknowledged.has_value();
  if (verdict.first_fresh < push.ops.size() && !first_of_life &&
      push.ops[verdict.first_fresh].seq > verdict.acknowledged + 1) {
    env->Log(LogLevel::kWarning,
             "push from " + device.id + " starts at operation " +
                 std::to_string(push.ops[verdict.first_fresh].seq) +
                 " but this store holds up to " + std::to_string(verdict.acknowledged) +
                 " (restored from a backup?): operations in between are lost here");
  }
  return verdict;
}

wire::PushReply StaleIncarnationReply(int64_t now_ms) {
  wire::PushReply reply;
  reply.stale_incarnation = true;
  reply.server_time_ms = now_ms;
  return reply;
}

}  // namespace carnet
