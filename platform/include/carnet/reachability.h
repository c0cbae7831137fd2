// Network reachability on a POSIX host: tells the sync client when the tablet goes offline and
// when connectivity returns, so that it syncs then (SyncClient::SetOnline).
//
// Mobile apps report reachability themselves (Android's ConnectivityManager, iOS's
// NWPathMonitor) through the C API; this monitor is for Linux hosts and tests. It polls, which
// is simple and portable; the interval bounds how late a return of the network is noticed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace carnet {

// Whether some interface other than loopback is up and has an address.
bool AnyNetworkInterfaceUp();

class ReachabilityMonitor {
 public:
  using Probe = std::function<bool()>;
  using Listener = std::function<void(bool online)>;

  // `probe` defaults to AnyNetworkInterfaceUp. The listener is called from the monitor's thread:
  // once at start, then on every change.
  ReachabilityMonitor(Listener listener, std::chrono::milliseconds interval,
                      Probe probe = AnyNetworkInterfaceUp);
  ~ReachabilityMonitor();  // stops and joins
  ReachabilityMonitor(const ReachabilityMonitor&) = delete;
  ReachabilityMonitor& operator=(const ReachabilityMonitor&) = delete;

  void Start();
  void Stop();

 private:
  void Run();

  Listener listener_;
  std::chrono::milliseconds interval_;
  Probe probe_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace carnet
