// Tablet set-up and sync: init, sync, status.
#include <time.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <string>

#include "carnet/sync_client.h"
#include "carnet/transport.h"
#include "examples/carnet_cli/cli.h"
#include "platform/json_writer.h"

namespace carnet_cli {
namespace {

using carnet::JsonWriter;

using carnet::Result;
using carnet::Status;

// Sync state keys. server_url and token are the tablet's enrolment; the cli.* keys remember the
// outcome of the last `carnet sync`, since each command is a new process.
constexpr const char* kServerKey = "server_url";
constexpr const char* kTokenKey = "token";
constexpr const char* kLastStateKey = "cli.last_state";
constexpr const char* kLastErrorKey = "cli.last_error";
constexpr const char* kLastSuccessKey = "cli.last_success_ms";

// The token goes into an HTTP header: anything but these characters could forge other headers.
bool IsValidToken(const std::string& token) {
  return !token.empty() && token.size() <= 512 &&
         std::all_of(token.begin(), token.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
         });
}

Result<std::string> RequiredState(carnet::Store& store, const std::string& key) {
  Result<std::optional<std::string>> value = store.GetSyncState(key);
  if (!value.ok()) return value.status();
  if (!value->has_value()) {
    return carnet::FailedPrecondition("the tablet has no " + key + ": was it made by init?");
  }
  return **value;
}

Result<std::unique_ptr<carnet::Transport>> MakeTransport(const std::string& server) {
  carnet::CurlOptions options;
  options.base_url = server;
  options.connect_timeout_ms = 5000;
  return carnet::MakeCurlTransport(options);
}

// A client for the tablet's server. A command-line sync gives up sooner than an app's
// background sync would: the user is waiting and can run it again.
Result<std::unique_ptr<carnet::SyncClient>> MakeClient(const Context& ctx, carnet::Store& store) {
  Result<std::string> server = RequiredState(store, kServerKey);
  if (!server.ok()) return server.status();
  Result<std::string> token = RequiredState(store, kTokenKey);
  if (!token.ok()) return token.status();
  Result<std::unique_ptr<carnet::Transport>> transport = MakeTransport(*server);
  if (!transport.ok()) return transport.status();
  carnet::SyncOptions options;
  options.token = *token;
  options.max_attempts = 3;
  options.backoff_initial_ms = 250;
  options.backoff_max_ms = 2000;
  return std::make_unique<carnet::SyncClient>(&store, ctx.env, std::move(*transport), options);
}

std::string IsoTime(int64_t ms) {
  time_t seconds = static_cast<time_t>(ms / 1000);
  struct tm utc;
  char text[32];
  if (gmtime_r(&seconds, &utc) == nullptr ||
      strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc) == 0) {
    return std::to_string(ms);
  }
  return text;
}

}  // namespace

Status InitCommand(Context& ctx) {
  std::map<std::string, std::string>& options = ctx.options;
  // Check everything before a file is made.
  Result<std::unique_ptr<carnet::Transport>> transport = MakeTransport(options["server"]);
  if (!transport.ok()) return transport.status();
  if (!IsValidToken(options["token"])) {
    return carnet::InvalidArgument(
        "the token must be the one line printed by carnet-server "
        "enroll");
  }
  Result<std::unique_ptr<carnet::Store>> store = CreateTablet(ctx, options["device"]);
  if (!store.ok()) return store.status();
  Status saved = (*store)->SetSyncState(kServerKey, options["server"]);
  if (saved.ok()) saved = (*store)->SetSyncState(kTokenKey, options["token"]);
  if (!saved.ok()) {
    store->reset();
    RemoveTablet(ctx);
  }
  return saved;
}

Status SyncCommand(Context& ctx) {
  Result<std::unique_ptr<carnet::Store>> store = OpenTablet(ctx);
  if (!store.ok()) return store.status();
  Result<std::unique_ptr<carnet::SyncClient>> client = MakeClient(ctx, **store);
  if (!client.ok()) return client.status();
  (*client)->OnProgress([](const carnet::SyncProgress& p) {
    std::fprintf(stderr, "sync: pushed %" PRIu64 " of %" PRIu64 ", pulled %" PRIu64 "%s\n",
                 p.pushed, p.push_total, p.pulled, p.pull_more ? ", more to pull" : "");
  });
  Status synced = (*client)->SyncNow();
  carnet::SyncStatus status = (*client)->status();
  Status saved = (*store)->SetSyncState(kLastStateKey, carnet::SyncStateName(status.state));
  if (saved.ok()) saved = (*store)->SetSyncState(kLastErrorKey, synced.ToString());
  if (saved.ok() && synced.ok()) {
    saved = (*store)->SetSyncState(kLastSuccessKey, std::to_string(status.last_success_ms));
  }
  if (!synced.ok()) return synced;
  if (saved.ok()) std::fprintf(stderr, "sync: done, %" PRIu64 " pending\n", status.pending);
  return saved;
}

Status StatusCommand(Context& ctx) {
  Result<std::unique_ptr<carnet::Store>> store = OpenTablet(ctx);
  if (!store.ok()) return store.status();
  Result<std::string> server = RequiredState(**store, kServerKey);
  if (!server.ok()) return server.status();
  Result<std::unique_ptr<carnet::SyncClient>> client = MakeClient(ctx, **store);
  if (!client.ok()) return client.status();
  carnet::SyncStatus status = (*client)->status();
  Result<std::optional<std::string>> state = (*store)->GetSyncState(kLastStateKey);
  Result<std::optional<std::string>> error = (*store)->GetSyncState(kLastErrorKey);
  Result<std::optional<std::string>> success = (*store)->GetSyncState(kLastSuccessKey);
  for (const auto* read : {&state, &error, &success}) {
    if (!read->ok()) return read->status();
  }
  JsonWriter json;
  json.BeginObject().Key("device").String((*store)->device_id());
  json.Key("server").String(*server);
  json.Key("pending").Int(static_cast<int64_t>(status.pending));
  json.Key("last_success");
  int64_t success_ms = success->has_value() ? std::atoll((*success)->c_str()) : 0;
  if (success_ms > 0) {
    json.String(IsoTime(success_ms));
  } else {
    json.Null();
  }
  // Before any sync there is nothing to report but idleness.
  json.Key("state").String(state->value_or("idle"));
  json.Key("last_error");
  if (error->has_value() && **error != "ok") {
    json.String(**error);
  } else {
    json.Null();
  }
  json.Key("clock_offset_ms").Int(status.clock_offset_ms).EndObject();
  ctx.out = json.text() + "\n";
  return Status::Ok();
}

}  // namespace carnet_cli
