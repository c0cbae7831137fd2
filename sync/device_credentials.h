// The rules on devices and their credentials that both server stores apply (sync/PROTOCOL.md,
// Devices), written once.
#pragma once

#include <cstdint>
#include <string>

#include "carnet/server_store.h"

namespace carnet {

// A device id, adviser and territories fit to be enrolled.
Status CheckNewDevice(const Device& device);
// Whether `existing` may be given a new enrollment code for `wanted`: not revoked, same adviser
// and territories.
Status CheckReEnrollment(const Device& existing, const Device& wanted);
// Whether the device found by a token may be served at `now_ms` (ServerStore::Authenticate).
Status CheckCredential(const Device& device, int64_t now_ms);
Status InvalidEnrollmentCode(const std::string& device_id);
Status NotEnrolled(const std::string& device_id);

}  // namespace carnet
