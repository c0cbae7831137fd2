// What carnet-server's commands print with: a failure and its exit status, times.
#pragma once

#include <cstdint>
#include <string>

#include "carnet/status.h"

namespace carnet::server_cli {

// Prints `status` on stderr; the exit status: 2 for a wrong argument, 1 otherwise.
int Fail(const Status& status);
// "2026-12-01T09:30:00.000Z".
std::string UtcTime(int64_t ms);

}  // namespace carnet::server_cli
