// The private side of the C API (carnet/carnet.h): what the handles hold, and the guard that
// turns every outcome of an entry point, exceptions included, into a carnet_code.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "carnet/carnet.h"
#include "carnet/env.h"
#include "carnet/key_store.h"
#include "carnet/posix_env.h"
#include "carnet/status.h"
#include "carnet/store.h"
#include "carnet/sync_client.h"

namespace carnet::capi {

// Fills `error` (may be null) from `status` and returns its code.
carnet_code Fail(carnet_error* error, carnet_domain domain, const Status& status);
carnet_code Succeed(carnet_error* error);
// A refusal of the C API itself (domain API).
carnet_code Refuse(carnet_error* error, StatusCode code, const std::string& message);

// A pointer argument of an entry point, by name, for Require.
struct Arg {
  const char* name;
  const void* value;
};
// CARNET_OK when every argument is non-null; otherwise refuses, naming the first null one.
carnet_code Require(carnet_error* error, std::initializer_list<Arg> args);

// Fills `error` with `code` (domain API) and the message "prefix: detail", without allocating:
// it reports exceptions, out of memory included. Non-ASCII bytes of `detail` become '?'.
carnet_code FailWithoutAllocating(carnet_error* error, carnet_code code, const char* prefix,
                                  const char* detail) noexcept;

// Runs `body` (which returns a carnet_code) and catches every exception: none may cross the C
// API. An exception becomes CARNET_RESOURCE_EXHAUSTED (out of memory) or CARNET_INTERNAL.
template <typename Body>
carnet_code Guard(carnet_error* error, Body body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return FailWithoutAllocating(error, CARNET_RESOURCE_EXHAUSTED, "out of memory", "");
  } catch (const std::exception& e) {
    return FailWithoutAllocating(error, CARNET_INTERNAL, "unexpected exception", e.what());
  } catch (...) {
    return FailWithoutAllocating(error, CARNET_INTERNAL, "unexpected exception", "");
  }
}

// Whether the calling thread is inside a callback Carnet made to the host. Calls that wait for a
// sync to end are refused there: the sync may be running on this very thread.
bool InCallback();
class CallbackScope {
 public:
  CallbackScope();
  ~CallbackScope();
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;
};

// One host callback and its context. Call() delivers to the current one; Set() replaces it and
// waits until no call of the previous one is running, so that the host may free its context
// once Set() returns.
template <typename Fn>
class CallbackSlot {
 public:
  void Set(Fn fn, void* context) {
    std::unique_lock<std::mutex> lock(mutex_);
    fn_ = fn;
    context_ = context;
    // From inside a callback the running call may be this thread's own: waiting would never end.
    if (!InCallback()) idle_.wait(lock, [this] { return running_ == 0; });
  }

  bool empty() {
    std::lock_guard<std::mutex> lock(mutex_);
    return fn_ == nullptr;
  }

  template <typename... Args>
  void Call(Args... args) {
    Fn fn;
    void* context;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (fn_ == nullptr) return;
      fn = fn_;
      context = context_;
      ++running_;
    }
    {
      CallbackScope scope;
      try {
        fn(context, args...);
      } catch (...) {
        // A C++ host's exception must not unwind through Carnet's threads.
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (--running_ == 0) idle_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  Fn fn_ = nullptr;
  void* context_ = nullptr;
  int running_ = 0;
};

// The Env a C host gets: POSIX clock, randomness and sleep, with logs and key storage
// delegated to the host's callbacks.
class HostEnv : public Env {
 public:
  explicit HostEnv(const carnet_host& host);

  int64_t NowMillis() override { return posix_.NowMillis(); }
  uint64_t RandomU64() override { return posix_.RandomU64(); }
  void Log(LogLevel level, std::string_view message) override;
  std::string DataDirectory() override { return posix_.DataDirectory(); }
  void SleepForMillis(int64_t ms) override { posix_.SleepForMillis(ms); }

  // PosixEnv::Ready: whether this env can make random ids and keys.
  const Status& Ready() const { return posix_.Ready(); }
  bool has_key_storage() const { return host_.key_get != nullptr; }
  int lease_days() const {
    return static_cast<int>(std::min<uint32_t>(host_.offline_lease_days, 1u << 30));
  }
  // kNotFound when there is no such secret; kUnavailable when the key storage fails.
  Result<std::string> GetSecret(const std::string& name);
  Status PutSecret(const std::string& name, const std::string& value);
  Status DeleteSecret(const std::string& name);

  // Reachability, as the host reports it, forwarded to every registered store.
  void SetOnline(bool online);
  bool online() const { return online_.load(); }
  void Register(carnet_store* store);
  void Unregister(carnet_store* store);

 private:
  const carnet_host host_;
  PosixEnv posix_;
  std::atomic<bool> online_{true};
  std::mutex stores_mutex_;
  std::set<carnet_store*> stores_;
};

// The host's key storage as the store's KeyStore: where its master key lives.
class HostKeyStore : public KeyStore {
 public:
  explicit HostKeyStore(HostEnv* env) : env_(env) {}
  Result<std::string> Get(const std::string& name) override { return env_->GetSecret(name); }
  Status Put(const std::string& name, const std::string& secret) override {
    return env_->PutSecret(name, secret);
  }
  Status Delete(const std::string& name) override { return env_->DeleteSecret(name); }

 private:
  HostEnv* env_;
};

// Forwards reachability to the store's sync client, if it has one (c_api_sync.cc).
void SetStoreOnline(carnet_store* store, bool online);

}  // namespace carnet::capi

struct carnet_env {
  std::shared_ptr<carnet::capi::HostEnv> env;
};

struct carnet_store {
  std::shared_ptr<carnet::capi::HostEnv> env;
  std::unique_ptr<carnet::Store> store;
  carnet::ObserverId observer = 0;

  // The thread holding this store's open transaction, if any (one at most: they hold the
  // store's lock). A thread holding it must not wait for a sync, which waits for the lock.
  std::mutex txn_mutex;
  std::optional<std::thread::id> txn_owner;

  // The sync client. The mutex guards only the pointer and the flags: nothing that can wait
  // (a sync, a stop, the store's lock) runs under it, so a callback may take it at any time.
  std::mutex sync_mutex;
  std::shared_ptr<carnet::SyncClient> client;
  std::string token_in_memory;  // without host key storage
  bool started = false;
  // The host's key storage, for the sync client's token (SyncOptions::key_store); lives as long
  // as the store, so that a client being replaced may still use it.
  std::unique_ptr<carnet::capi::HostKeyStore> host_keys;  // set by carnet_store_open

  carnet::capi::CallbackSlot<carnet_change_fn> on_change;
  carnet::capi::CallbackSlot<carnet_sync_status_fn> on_status;
  carnet::capi::CallbackSlot<carnet_sync_progress_fn> on_progress;

  bool HoldsTransaction() {
    std::lock_guard<std::mutex> lock(txn_mutex);
    return txn_owner == std::this_thread::get_id();
  }
  bool AnyTransaction() {
    std::lock_guard<std::mutex> lock(txn_mutex);
    return txn_owner.has_value();
  }
};

struct carnet_txn {
  carnet_store* store = nullptr;
  std::optional<carnet::Transaction> txn;
  std::thread::id owner;
};

namespace carnet::capi {

// carnet_*_set_*_callback: replaces the callback in `slot` of the store.
template <typename Fn>
carnet_code SetCallback(carnet_store* store, CallbackSlot<Fn> carnet_store::*slot, Fn fn,
                        void* context, carnet_error* error) {
  return Guard(error, [&] {
    if (store == nullptr) return Refuse(error, StatusCode::kInvalidArgument, "store is NULL");
    (store->*slot).Set(fn, context);
    return Succeed(error);
  });
}

}  // namespace carnet::capi
