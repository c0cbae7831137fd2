// carnet-server's device commands (sync/PROTOCOL.md, Devices): enroll, devices.
#pragma once

#include <string>

#include "carnet/env.h"
#include "carnet/server_store.h"

namespace carnet::server_cli {

// `enroll --device ID --adviser ID --territory NAME... [--code-hours H]`: prints a one-time
// enrollment code for the tablet, valid `code_hours` ("" for 72), and returns the exit status.
int Enroll(ServerStore* store, Env* env, const Device& device, const std::string& code_hours);
// `enroll ... --token [--token-days D]`: registers the device with a token printed once, valid
// `token_days` ("" for 90), for a device-management tool that provisions the tablet itself.
int EnrollWithToken(ServerStore* store, Env* env, const Device& device,
                    const std::string& token_days);
// `devices`: one JSON object a line, with each device's state (awaiting_enrollment, enrolled,
// revoked, wiped) and its credentials' times.
int Devices(ServerStore* store);

}  // namespace carnet::server_cli
