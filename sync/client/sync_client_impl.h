// The private side of carnet::SyncClient, shared by the files that implement it:
// sync_client.cc (push and pull), sync_exchange.cc (one request with its retries) and
// sync_schedule.cc (the background thread).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "carnet/sync_client.h"

namespace carnet {

// SyncClient's own methods reach into this state: the client is the Impl's only user.
class SyncClient::Impl {
 public:
  Impl(Store* store, Env* env, std::unique_ptr<Transport> transport, SyncOptions options);

  // SyncClient::SyncNow(), for the client and for the background thread.
  Status Sync();

 private:
  friend class SyncClient;

  // How one request ended when it did not succeed: the Status, and the HTTP status of the reply
  // that said so (0 when no reply came).
  struct Failure {
    Status status;
    int http_status = 0;
  };

  Status PushThenPull();
  // The device token for this sync, in token_: from the key store (or memory), else obtained
  // with the enrollment code (sync_credentials.cc).
  Status LoadToken(bool may_enroll);
  // Saves a token the server gave: the key store first, then memory.
  Status SaveToken(const std::string& token);
  // Asks for a new token, after a pull said the current one is past half its life.
  Status RenewToken();
  // The device is revoked: wipes the store, tells the server, forgets the token. Returns why
  // the sync ended (kDeviceRevoked), or what kept the wipe from being done or confirmed.
  Status CarryOutWipe(const Status& revoked);
  std::string Token();
  Status PushAll(SyncProgress* progress);
  Status PullAll(SyncProgress* progress);

  // Encodes `request`, POSTs it to `path` and decodes the reply into `reply`, retrying what a
  // retry can fix (sync_exchange.cc).
  template <typename Request, typename Reply>
  Status Exchange(const std::string& path, const Request& request, Reply* reply);
  HttpRequest MakeRequest(const std::string& path, const std::string& body);
  Failure FailureFromReply(const std::string& path, const HttpReply& reply, int64_t start_ms,
                           int64_t end_ms);
  bool ShouldRetry(const Failure& failure) const;
  // Sleeps the backoff before retry number `retry` (1-based); false when the client is stopping.
  bool Backoff(int retry);
  void AdoptServerTime(int64_t server_time_ms, int64_t start_ms, int64_t end_ms);
  int64_t LoadClockOffset();
  // The incarnation this store pushes under (PROTOCOL.md, Push); `renew` draws a new one.
  Result<std::string> PushIncarnation(bool renew);

  void Publish(const std::function<void(SyncStatus*)>& change);
  void Report(const SyncProgress& progress);
  std::optional<uint64_t> Pending();

  void Run();  // the background thread
  bool SyncDueLocked(int64_t now_ms, int64_t* next_check_ms);

  Store* const store_;
  Env* const env_;
  const std::unique_ptr<Transport> transport_;
  const SyncOptions options_;

  std::mutex sync_mutex_;        // held for a whole sync: one at a time
  int64_t clock_offset_ms_ = 0;  // as last set in the store by a client
  bool rotate_token_ = false;    // a pull of this sync asked for a new token
  bool wipe_confirmed_ = false;  // the server knows this tablet is wiped: nothing left to do

  std::mutex token_mutex_;  // requests sent ahead read the token on another thread
  std::string token_;

  std::mutex status_mutex_;  // guards status_ and the callbacks
  SyncStatus status_;
  std::function<void(const SyncProgress&)> on_progress_;
  std::function<void(const SyncStatus&)> on_status_;

  std::mutex schedule_mutex_;  // guards what follows
  std::condition_variable wake_;
  std::thread thread_;
  bool stopping_ = false;
  bool requested_ = false;
  bool online_ = true;
  bool last_failed_ = false;     // the last sync, background or not
  int64_t last_attempt_ms_ = 0;  // when it ended
};

}  // namespace carnet
