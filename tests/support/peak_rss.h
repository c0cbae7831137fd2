// The peak resident memory of this process (Linux), for tests and benchmarks that report it.
#pragma once

#include <fstream>
#include <string>

namespace carnet::testing {

// VmHWM of /proc/self/status (or of process `pid`'s), in KiB; -1 where it cannot be read.
inline long PeakRssKib(int pid = 0) {
  std::ifstream status(pid == 0 ? "/proc/self/status"
                                : "/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Starts a new peak from the present resident memory; false where the kernel does not allow it.
inline bool ResetPeakRss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  return clear.good();
}

}  // namespace carnet::testing
