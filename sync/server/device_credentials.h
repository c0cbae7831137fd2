// The rules on devices and their credentials that both server stores apply (sync/PROTOCOL.md,
// Devices), written once.
#pragma once

#include <cstdint>
#include <string>

#include "carnet/server_store.h"

namespace carnet {

// SQL (SQLite and PostgreSQL alike) setting a device's columns when it is given a new
// enrollment code: a token exchanged for an earlier code and not used yet goes with that code; a
// renewed token waiting for its first use stays.
inline constexpr const char* kVoidCodeToken =
    "next_token_hash = CASE WHEN next_token_from_code THEN NULL ELSE next_token_hash END, "
    "next_token_expires_ms = CASE WHEN next_token_from_code THEN 0 ELSE next_token_expires_ms "
    "END, next_token_from_code = (1 = 0)";

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
