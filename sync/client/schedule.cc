// Background sync: one thread, owned by the client, that decides when a sync is due.
#include <algorithm>
#include <chrono>

#include "sync/client/sync_client_impl.h"

namespace carnet {
namespace {

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kDayMinutes = 24 * 60;
// The thread looks at the clock at least this often: the Env's clock may jump (a device waking
// from sleep, a test moving it) without anyone waking the thread.
constexpr int64_t kMaxWaitMs = 60'000;

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// The start of the latest nightly window that began at or before `now_ms`.
int64_t WindowStartMs(int64_t now_ms, int start_minute) {
  int64_t shifted = FloorDiv(now_ms, kMinuteMs) - start_minute;
  return (FloorDiv(shifted, kDayMinutes) * kDayMinutes + start_minute) * kMinuteMs;
}

}  // namespace

void SyncClient::Start() {
  std::lock_guard<std::mutex> lock(impl_->schedule_mutex_);
  if (impl_->thread_.joinable()) return;
  impl_->stopping_ = false;
  impl_->thread_ = std::thread([impl = impl_.get()] { impl->Run(); });
}

void SyncClient::Stop() {
  std::thread thread;
  {
    std::lock_guard<std::mutex> lock(impl_->schedule_mutex_);
    if (!impl_->thread_.joinable()) return;
    impl_->stopping_ = true;
    thread = std::move(impl_->thread_);
  }
  impl_->wake_.notify_all();
  thread.join();
  std::lock_guard<std::mutex> lock(impl_->schedule_mutex_);
  impl_->stopping_ = false;
}

void SyncClient::RequestSync() {
  {
    std::lock_guard<std::mutex> lock(impl_->schedule_mutex_);
    impl_->requested_ = true;
  }
  impl_->wake_.notify_all();
}

void SyncClient::SetOnline(bool online) {
  {
    std::lock_guard<std::mutex> lock(impl_->schedule_mutex_);
    if (online && !impl_->online_) impl_->requested_ = true;
    impl_->online_ = online;
  }
  // Also when nothing changed: the thread looks at the clock again.
  impl_->wake_.notify_all();
}

void SyncClient::Impl::Run() {
  std::unique_lock<std::mutex> lock(schedule_mutex_);
  while (!stopping_) {
    int64_t now = env_->NowMillis();
    int64_t next_check = now + kMaxWaitMs;
    if (SyncDueLocked(now, &next_check)) {
      requested_ = false;
      lock.unlock();
      (void)Sync();  // records its outcome for the schedule
      lock.lock();
      continue;
    }
    int64_t wait_ms = std::clamp<int64_t>(next_check - now, 1, kMaxWaitMs);
    wake_.wait_for(lock, std::chrono::milliseconds(wait_ms));
  }
}

bool SyncClient::Impl::SyncDueLocked(int64_t now_ms, int64_t* next_check_ms) {
  if (requested_) return true;
  if (!online_) return false;
  if (last_failed_) {
    int64_t retry_at = last_attempt_ms_ + options_.retry_after_failure_ms;
    if (now_ms >= retry_at) return true;
    *next_check_ms = std::min(*next_check_ms, retry_at);
    return false;
  }
  if (options_.nightly_length_minutes <= 0) return false;
  int64_t window_start = WindowStartMs(now_ms, options_.nightly_start_minute);
  int64_t window_end = window_start + options_.nightly_length_minutes * kMinuteMs;
  int64_t last_success;
  {
    std::lock_guard<std::mutex> status_lock(status_mutex_);
    last_success = status_.last_success_ms;
  }
  // Once per window: any successful sync inside it, asked for or not, counts.
  if (now_ms < window_end && last_success < window_start) return true;
  *next_check_ms = std::min(*next_check_ms, window_start + kDayMinutes * kMinuteMs);
  return false;
}

}  // namespace carnet
