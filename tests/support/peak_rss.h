// The peak resident memory of this process (Linux), for tests and benchmarks that report it.
#pragma once

#include <fstream>
#include <string>

// AddressSanitizer keeps freed memory in quarantine and ThreadSanitizer shadows all of it, so a
// bound on resident memory is a property of an ordinary build: tests assert such bounds only
// there (kMemoryBoundsHold), and tests/run's Release stage runs them first.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CARNET_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CARNET_TEST_SANITIZED 1
#endif
#endif

namespace carnet::testing {

#ifdef CARNET_TEST_SANITIZED
inline constexpr bool kMemoryBoundsHold = false;
#else
inline constexpr bool kMemoryBoundsHold = true;
#endif

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
