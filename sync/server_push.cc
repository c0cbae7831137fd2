#include "sync/server_push.h"

#include <string>

namespace carnet {

Status CheckPushBatch(const Schema& schema, const Device& caller, const std::vector<Operation>& ops,
                      int64_t now_ms, int64_t max_forward_skew_ms) {
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

}  // namespace carnet
