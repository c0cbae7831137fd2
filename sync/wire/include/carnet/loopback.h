// The rule both ends apply to plain http (sync/SECURITY.md): allowed to a loopback host only.
#pragma once

#include <string>

namespace carnet {

// The hosts plain http is allowed to, by the client and by carnet-server: 127.0.0.0/8, ::1 (with
// or without brackets) and "localhost". Host names that merely start with "127." are not.
bool IsLoopbackHost(const std::string& host);

}  // namespace carnet
