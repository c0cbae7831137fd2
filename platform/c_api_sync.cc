// The C API's sync: configuration (with the device token in the host's key storage), the
// background thread, sync now, status and progress.
//
// The store's sync_mutex guards the client pointer and the flags only. Everything that can wait
// (a sync, Stop, the store's lock) runs on a copy of the pointer, outside it: callbacks, which
// may take it, run on the sync thread while other threads wait for that thread.
#include <algorithm>
#include <cstring>
#include <utility>

#include "carnet/token.h"
#include "carnet/transport.h"
#include "platform/c_api_internal.h"

using carnet::Result;
using carnet::Status;
using carnet::StatusCode;
using carnet::capi::Fail;
using carnet::capi::Guard;
using carnet::capi::Refuse;
using carnet::capi::Require;
using carnet::capi::Succeed;

namespace carnet::capi {
namespace {

constexpr size_t kMaxTokenBytes = 512;

std::string TokenKey(carnet_store* store) { return DeviceTokenName(store->store->device_id()); }

// The token goes into an HTTP header: anything else could forge other headers.
bool IsValidToken(const std::string& token) {
  return !token.empty() && token.size() <= kMaxTokenBytes &&
         std::all_of(token.begin(), token.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  std::strchr("-._~+/=", c) != nullptr;
         });
}

std::shared_ptr<SyncClient> Client(carnet_store* store) {
  std::lock_guard<std::mutex> lock(store->sync_mutex);
  return store->client;
}

// Calls that wait for the sync thread, refused where they would wait for themselves.
carnet_code RefuseIfWaitWouldDeadlock(carnet_store* store, const char* call,
                                      carnet_error* error) {
  if (InCallback()) {
    return Refuse(error, StatusCode::kFailedPrecondition,
                  std::string(call) + " cannot be called from a Carnet callback");
  }
  if (store->HoldsTransaction()) {
    return Refuse(error, StatusCode::kFailedPrecondition,
                  std::string(call) + " cannot be called while this thread holds a transaction "
                                      "of the store: the sync waits for it");
  }
  return CARNET_OK;
}

carnet_sync_state StateOf(SyncState state) {
  switch (state) {
    case SyncState::kIdle:
      return CARNET_SYNC_IDLE;
    case SyncState::kSyncing:
      return CARNET_SYNC_SYNCING;
    case SyncState::kOffline:
      return CARNET_SYNC_OFFLINE;
    case SyncState::kError:
      return CARNET_SYNC_ERROR;
  }
  return CARNET_SYNC_ERROR;
}

carnet_sync_status ToC(carnet_store* store, const SyncStatus& status) {
  carnet_sync_status out{};
  out.state = StateOf(status.state);
  {
    std::lock_guard<std::mutex> lock(store->sync_mutex);
    out.running = store->started;
  }
  out.online = store->env->online();
  out.last_success_ms = status.last_success_ms;
  out.pending = status.pending;
  out.clock_offset_ms = status.clock_offset_ms;
  Fail(&out.last_error, CARNET_DOMAIN_SYNC, status.last_error);
  return out;
}

carnet_code CheckConfig(const carnet_sync_config& c, carnet_error* error) {
  const char* wrong = nullptr;
  if (c.connect_timeout_ms <= 0) wrong = "connect_timeout_ms must be positive";
  if (c.stall_timeout_ms <= 0) wrong = "stall_timeout_ms must be positive";
  if (c.max_attempts < 1) wrong = "max_attempts must be at least 1";
  if (c.backoff_initial_ms < 1 || c.backoff_max_ms < c.backoff_initial_ms) {
    wrong = "backoff_initial_ms must be positive and at most backoff_max_ms";
  }
  if (c.nightly_start_minute < 0 || c.nightly_start_minute >= 24 * 60) {
    wrong = "nightly_start_minute must be in [0, 1440)";
  }
  if (c.nightly_length_minutes < 0 || c.nightly_length_minutes > 24 * 60) {
    wrong = "nightly_length_minutes must be in [0, 1440]";
  }
  if (c.retry_after_failure_ms < 1) wrong = "retry_after_failure_ms must be positive";
  if (wrong != nullptr) {
    return Refuse(error, StatusCode::kInvalidArgument,
                  std::string("carnet_sync_config: ") + wrong +
                      " (start from carnet_sync_config_init)");
  }
  return CARNET_OK;
}

// The token to use: the one given (saved to key storage), else the one key storage holds.
carnet_code ResolveToken(carnet_store* store, const char* given, bool have_code,
                         std::string* token, carnet_error* error) {
  HostEnv& env = *store->env;
  if (given != nullptr) {
    *token = given;
    if (!IsValidToken(*token)) {
      return Refuse(error, StatusCode::kInvalidArgument,
                    "the token must be the one line printed by carnet-server enroll");
    }
    if (!env.has_key_storage()) {
      std::lock_guard<std::mutex> lock(store->sync_mutex);
      store->token_in_memory = *token;
      return CARNET_OK;
    }
    Status saved = env.PutSecret(TokenKey(store), *token);
    return saved.ok() ? CARNET_OK : Fail(error, CARNET_DOMAIN_HOST, saved);
  }
  if (!env.has_key_storage()) {
    std::lock_guard<std::mutex> lock(store->sync_mutex);
    *token = store->token_in_memory;
  } else {
    Result<std::string> stored = env.GetSecret(TokenKey(store));
    if (stored.ok()) {
      *token = *stored;
    } else if (stored.status().code() != StatusCode::kNotFound) {
      return Fail(error, CARNET_DOMAIN_HOST, stored.status());
    }
  }
  if (token->empty()) {
    if (have_code) return CARNET_OK;  // the first sync exchanges it
    return Refuse(error, StatusCode::kFailedPrecondition,
                  "no device token for '" + store->store->device_id() +
                      "': configure once with the enrollment code from carnet-server enroll");
  }
  if (!IsValidToken(*token)) {
    return Fail(error, CARNET_DOMAIN_HOST,
                Status(StatusCode::kCorruption, "the device token in key storage is malformed"));
  }
  return CARNET_OK;
}

SyncOptions OptionsFrom(carnet_store* store, const carnet_sync_config& c, std::string token) {
  SyncOptions options;
  options.token = std::move(token);
  if (c.enrollment_code != nullptr) options.enrollment_code = c.enrollment_code;
  // The client reads the token from key storage at each sync and writes the renewed one there.
  if (store->env->has_key_storage()) options.key_store = store->host_keys.get();
  options.max_attempts = c.max_attempts;
  options.backoff_initial_ms = c.backoff_initial_ms;
  options.backoff_max_ms = c.backoff_max_ms;
  options.nightly_start_minute = c.nightly_start_minute;
  options.nightly_length_minutes = c.nightly_length_minutes;
  options.retry_after_failure_ms = c.retry_after_failure_ms;
  return options;
}

// Replaces the store's client (none: unconfigured), restarting the background sync on the new
// one if it was started. The old client is stopped before the new one starts.
void Install(carnet_store* store, std::shared_ptr<SyncClient> client) {
  std::shared_ptr<SyncClient> old;
  bool started;
  {
    std::lock_guard<std::mutex> lock(store->sync_mutex);
    old = std::exchange(store->client, client);
    if (!client) store->started = false;
    started = store->started;
  }
  if (old) old->Stop();
  old.reset();
  if (client && started) client->Start();
}

}  // namespace

void SetStoreOnline(carnet_store* store, bool online) {
  std::shared_ptr<SyncClient> client = Client(store);
  if (client) client->SetOnline(online);
}

}  // namespace carnet::capi

using carnet::capi::Client;
using carnet::capi::RefuseIfWaitWouldDeadlock;

extern "C" {

void carnet_sync_config_init(carnet_sync_config* config) {
  if (config == nullptr) return;
  carnet::SyncOptions sync;
  carnet::CurlOptions curl;
  *config = carnet_sync_config{};
  config->connect_timeout_ms = curl.connect_timeout_ms;
  config->stall_timeout_ms = curl.low_speed_time_ms;
  config->max_attempts = sync.max_attempts;
  config->backoff_initial_ms = sync.backoff_initial_ms;
  config->backoff_max_ms = sync.backoff_max_ms;
  config->nightly_start_minute = sync.nightly_start_minute;
  config->nightly_length_minutes = sync.nightly_length_minutes;
  config->retry_after_failure_ms = sync.retry_after_failure_ms;
}

carnet_code carnet_sync_configure(carnet_store* store, const carnet_sync_config* config,
                                  carnet_error* error) {
  return Guard(error, [&] {
    if (carnet_code missing = Require(error, {{"store", store}, {"config", config}});
        missing != CARNET_OK) {
      return missing;
    }
    if (config->server_url == nullptr) {
      return Refuse(error, StatusCode::kInvalidArgument, "config.server_url is NULL");
    }
    if (carnet_code refused = RefuseIfWaitWouldDeadlock(store, "carnet_sync_configure", error);
        refused != CARNET_OK) {
      return refused;
    }
    if (carnet_code bad = carnet::capi::CheckConfig(*config, error); bad != CARNET_OK) return bad;
    carnet::CurlOptions curl;
    curl.base_url = config->server_url;
    curl.connect_timeout_ms = config->connect_timeout_ms;
    curl.low_speed_time_ms = config->stall_timeout_ms;
    if (config->ca_file != nullptr) curl.ca_file = config->ca_file;
    if (config->pinned_public_key != nullptr) curl.pinned_public_key = config->pinned_public_key;
    // The URL first: a refused one must not leave a token behind.
    Result<std::unique_ptr<carnet::Transport>> transport = carnet::MakeCurlTransport(curl);
    if (!transport.ok()) return Fail(error, CARNET_DOMAIN_SYNC, transport.status());
    if (config->enrollment_code != nullptr &&
        carnet::NormalizeEnrollmentCode(config->enrollment_code).empty()) {
      return Refuse(error, StatusCode::kInvalidArgument,
                    "the enrollment code must be the 20 letters and digits printed by "
                    "carnet-server enroll");
    }
    std::string token;
    if (carnet_code no_token = carnet::capi::ResolveToken(
            store, config->token, config->enrollment_code != nullptr, &token, error);
        no_token != CARNET_OK) {
      return no_token;
    }
    auto client = std::make_shared<carnet::SyncClient>(
        store->store.get(), store->env.get(), std::move(*transport),
        carnet::capi::OptionsFrom(store, *config, std::move(token)));
    // These run on the sync thread: nothing may escape them.
    client->OnStatus([store](const carnet::SyncStatus& status) {
      try {
        carnet_sync_status c = carnet::capi::ToC(store, status);
        store->on_status.Call(&c);
      } catch (...) {
      }
    });
    client->OnProgress([store](const carnet::SyncProgress& progress) {
      carnet_sync_progress c{progress.pushed, progress.push_total, progress.pulled,
                             progress.pull_more};
      store->on_progress.Call(&c);
    });
    if (!store->env->online()) client->SetOnline(false);
    carnet::capi::Install(store, std::move(client));
    return Succeed(error);
  });
}

carnet_code carnet_sync_forget_token(carnet_store* store, carnet_error* error) {
  return Guard(error, [&] {
    if (store == nullptr) return Refuse(error, StatusCode::kInvalidArgument, "store is NULL");
    if (carnet_code refused = RefuseIfWaitWouldDeadlock(store, "carnet_sync_forget_token", error);
        refused != CARNET_OK) {
      return refused;
    }
    carnet::capi::Install(store, nullptr);
    {
      std::lock_guard<std::mutex> lock(store->sync_mutex);
      store->token_in_memory.clear();
    }
    Status deleted = store->env->DeleteSecret(carnet::capi::TokenKey(store));
    return Fail(error, CARNET_DOMAIN_HOST, deleted);
  });
}

carnet_code carnet_sync_start(carnet_store* store, carnet_error* error) {
  return Guard(error, [&] {
    if (store == nullptr) return Refuse(error, StatusCode::kInvalidArgument, "store is NULL");
    std::shared_ptr<carnet::SyncClient> client;
    {
      std::lock_guard<std::mutex> lock(store->sync_mutex);
      client = store->client;
      if (client) store->started = true;
    }
    if (!client) {
      return Refuse(error, StatusCode::kFailedPrecondition,
                    "sync is not configured: call carnet_sync_configure first");
    }
    client->Start();
    return Succeed(error);
  });
}

carnet_code carnet_sync_stop(carnet_store* store, carnet_error* error) {
  return Guard(error, [&] {
    if (store == nullptr) return Refuse(error, StatusCode::kInvalidArgument, "store is NULL");
    if (carnet_code refused = RefuseIfWaitWouldDeadlock(store, "carnet_sync_stop", error);
        refused != CARNET_OK) {
      return refused;
    }
    std::shared_ptr<carnet::SyncClient> client;
    {
      std::lock_guard<std::mutex> lock(store->sync_mutex);
      client = store->client;
      store->started = false;
    }
    if (client) client->Stop();
    return Succeed(error);
  });
}

carnet_code carnet_sync_request(carnet_store* store, carnet_error* error) {
  return Guard(error, [&] {
    if (store == nullptr) return Refuse(error, StatusCode::kInvalidArgument, "store is NULL");
    std::shared_ptr<carnet::SyncClient> client;
    {
      std::lock_guard<std::mutex> lock(store->sync_mutex);
      if (store->started) client = store->client;
    }
    if (!client) {
      return Refuse(error, StatusCode::kFailedPrecondition,
                    "the background sync is not started: call carnet_sync_start, or "
                    "carnet_sync_now to sync on this thread");
    }
    client->RequestSync();
    return Succeed(error);
  });
}

carnet_code carnet_sync_now(carnet_store* store, carnet_error* error) {
  return Guard(error, [&] {
    if (store == nullptr) return Refuse(error, StatusCode::kInvalidArgument, "store is NULL");
    if (carnet_code refused = RefuseIfWaitWouldDeadlock(store, "carnet_sync_now", error);
        refused != CARNET_OK) {
      return refused;
    }
    std::shared_ptr<carnet::SyncClient> client = Client(store);
    if (!client) {
      return Refuse(error, StatusCode::kFailedPrecondition,
                    "sync is not configured: call carnet_sync_configure first");
    }
    return Fail(error, CARNET_DOMAIN_SYNC, client->SyncNow());
  });
}

carnet_code carnet_sync_get_status(carnet_store* store, carnet_sync_status* out_status,
                                   carnet_error* error) {
  return Guard(error, [&] {
    if (carnet_code missing = Require(error, {{"store", store}, {"out_status", out_status}});
        missing != CARNET_OK) {
      return missing;
    }
    std::shared_ptr<carnet::SyncClient> client = Client(store);
    if (client) {
      *out_status = carnet::capi::ToC(store, client->status());
      return Succeed(error);
    }
    Result<uint64_t> pending = store->store->PendingCount();
    if (!pending.ok()) return Fail(error, CARNET_DOMAIN_STORE, pending.status());
    *out_status = carnet_sync_status{};
    out_status->state = CARNET_SYNC_UNCONFIGURED;
    out_status->online = store->env->online();
    out_status->pending = *pending;
    Succeed(&out_status->last_error);
    return Succeed(error);
  });
}

carnet_code carnet_sync_set_status_callback(carnet_store* store, carnet_sync_status_fn fn,
                                            void* context, carnet_error* error) {
  return carnet::capi::SetCallback(store, &carnet_store::on_status, fn, context, error);
}

carnet_code carnet_sync_set_progress_callback(carnet_store* store, carnet_sync_progress_fn fn,
                                              void* context, carnet_error* error) {
  return carnet::capi::SetCallback(store, &carnet_store::on_progress, fn, context, error);
}

}  // extern "C"
