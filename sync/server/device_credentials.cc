#include "sync/server/device_credentials.h"

#include <algorithm>
#include <vector>

#include "carnet/schema.h"

namespace carnet {

Status CheckNewDevice(const Device& device) {
  if (!IsValidDeviceId(device.id)) return InvalidArgument("invalid device id '" + device.id + "'");
  if (!IsValidRecordId(device.adviser)) return InvalidArgument("invalid adviser id");
  if (device.territories.empty()) return InvalidArgument("a device covers at least one territory");
  for (const std::string& t : device.territories) {
    if (!IsValidRecordId(t)) return InvalidArgument("invalid territory name '" + t + "'");
  }
  return Status::Ok();
}

Status CheckReEnrollment(const Device& existing, const Device& wanted) {
  if (existing.revoked) {
    return FailedPrecondition("device '" + existing.id +
                              "' is revoked, and stays so: enroll the tablet under a new id");
  }
  std::vector<std::string> held = existing.territories, asked = wanted.territories;
  std::sort(held.begin(), held.end());
  std::sort(asked.begin(), asked.end());
  if (existing.adviser != wanted.adviser || held != asked) {
    return InvalidArgument("device '" + existing.id + "' is enrolled for adviser " +
                           existing.adviser +
                           " and other territories: a new code keeps them "
                           "(give the same), a new scope needs a new device id");
  }
  return Status::Ok();
}

Status CheckCredential(const Device& device, int64_t now_ms) {
  if (device.revoked) {
    if (device.wipe_confirmed_ms != 0) {
      return Status(StatusCode::kUnauthenticated,
                    "device '" + device.id + "' is revoked and confirmed its wipe");
    }
    return Status::Ok();  // the caller tells it to wipe, however old its token
  }
  if (device.token_expires_ms != 0 && now_ms >= device.token_expires_ms) {
    return Status(StatusCode::kUnauthenticated,
                  "the token of device '" + device.id +
                      "' has expired: enroll the tablet again (carnet-server enroll)");
  }
  return Status::Ok();
}

Status InvalidEnrollmentCode(const std::string& device_id) {
  return Status(StatusCode::kUnauthenticated,
                "no valid enrollment code for device '" + device_id +
                    "': unknown, used already or expired; ask for a new one");
}

Status NotEnrolled(const std::string& device_id) {
  return Status(StatusCode::kUnauthenticated, "device " + device_id + " is not enrolled");
}

}  // namespace carnet
