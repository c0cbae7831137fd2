// The tablet side of sync: pushes the outbox, then pulls what changed in the device's scope,
// resuming wherever it was cut (sync/PROTOCOL.md).
//
// Threads: SyncNow() runs on the calling thread. Start() runs syncs on one background thread
// owned by the client, stopped and joined by Stop() or the destructor. Callbacks arrive on the
// thread doing the sync. Local edits never wait for a sync: the store's lock is taken per batch.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "carnet/env.h"
#include "carnet/key_store.h"
#include "carnet/status.h"
#include "carnet/store.h"
#include "carnet/transport.h"
#include "carnet/wire.h"

namespace carnet {

// The name under which a tablet keeps its device token in the key store.
std::string DeviceTokenName(const std::string& device_id);

// The device's credentials (PROTOCOL.md, Devices): at each sync the client reads its token from
// `key_store` (or from memory without one), exchanges `enrollment_code` for one when it has
// none, renews it when the server asks (the new one saved before it is used), and, told that the
// device was revoked, wipes the store (Store::Wipe), confirms, and deletes the token.
struct SyncOptions {
  // The device token, when the caller has one: used when the key store holds none (and saved
  // there).
  std::string token;
  // A one-time code printed by `carnet-server enroll`, exchanged at the first sync for the
  // device token when there is none yet.
  std::string enrollment_code;
  // The host's key storage (not owned; the one the store was opened with), which keeps the
  // token under DeviceTokenName(device id) and the store's master key. Null: the token lives in
  // this client's memory only.
  KeyStore* key_store = nullptr;
  wire::Format format = wire::Format::kBinary;
  size_t push_batch = 500;
  uint32_t pull_batch = 1000;
  // A first pull asks for the scope in key order (PROTOCOL.md, Snapshot), and fetches each page
  // on a second thread while the previous one is written. False: one thread, sequence order
  // (a deterministic client, as the simulation needs).
  bool snapshot_first_pull = true;
  // Attempts per request for failures a retry can fix, with exponential backoff and full
  // jitter between them, from backoff_initial_ms up to backoff_max_ms.
  int max_attempts = 5;
  int64_t backoff_initial_ms = 500;
  int64_t backoff_max_ms = 60'000;
  // Background sync (Start): the nightly window, in minutes after midnight UTC, during which
  // the client syncs once; and how often it tries again after a failure.
  int nightly_start_minute = 2 * 60;
  int nightly_length_minutes = 3 * 60;
  int64_t retry_after_failure_ms = 15 * 60'000;
};

enum class SyncState { kIdle, kSyncing, kOffline, kError };
const char* SyncStateName(SyncState state);

struct SyncStatus {
  SyncState state = SyncState::kIdle;
  Status last_error;              // why the last sync failed (ok after a success)
  int64_t last_success_ms = 0;    // 0: never
  uint64_t pending = 0;           // operations in the outbox
  int64_t clock_offset_ms = 0;    // as last told by the server
};

struct SyncProgress {
  uint64_t pushed = 0;       // operations acknowledged by the server in this sync
  uint64_t push_total = 0;   // operations in the outbox when this sync started
  uint64_t pulled = 0;       // entries and forgets applied in this sync
  bool pull_more = false;    // the server said more is waiting
};

class SyncClient {
 public:
  // `store` and `env` are not owned and must outlive the client.
  SyncClient(Store* store, Env* env, std::unique_ptr<Transport> transport, SyncOptions options);
  ~SyncClient();
  SyncClient(const SyncClient&) = delete;
  SyncClient& operator=(const SyncClient&) = delete;

  // Pushes until the outbox is empty, then pulls until caught up. Ok only on full success.
  Status SyncNow();

  // Whether every local change is acknowledged by the server (the outbox is empty).
  Result<bool> EverythingUploaded();

  SyncStatus status();

  void OnProgress(std::function<void(const SyncProgress&)> callback);
  void OnStatus(std::function<void(const SyncStatus&)> callback);

  // Background sync: on RequestSync(), when SetOnline(true) follows SetOnline(false), and once in
  // each nightly window; after a failure, again every retry_after_failure_ms while online.
  void Start();
  void Stop();
  void RequestSync();
  void SetOnline(bool online);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace carnet
