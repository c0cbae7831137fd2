#include "carnet/reachability.h"

#include <ifaddrs.h>
#include <net/if.h>

namespace carnet {

bool AnyNetworkInterfaceUp() {
  ifaddrs* interfaces = nullptr;
  if (getifaddrs(&interfaces) != 0) return false;
  bool up = false;
  for (ifaddrs* i = interfaces; i != nullptr && !up; i = i->ifa_next) {
    up = i->ifa_addr != nullptr && (i->ifa_flags & IFF_UP) && (i->ifa_flags & IFF_RUNNING) &&
         !(i->ifa_flags & IFF_LOOPBACK);
  }
  freeifaddrs(interfaces);
  return up;
}

ReachabilityMonitor::ReachabilityMonitor(Listener listener, std::chrono::milliseconds interval,
                                         Probe probe)
    : listener_(std::move(listener)), interval_(interval), probe_(std::move(probe)) {}

ReachabilityMonitor::~ReachabilityMonitor() { Stop(); }

void ReachabilityMonitor::Start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void ReachabilityMonitor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ReachabilityMonitor::Run() {
  std::optional<bool> last;
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    bool online = probe_();
    if (!last || *last != online) listener_(online);
    last = online;
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

}  // namespace carnet
