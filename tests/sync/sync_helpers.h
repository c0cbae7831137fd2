// Helpers shared by the sync tests: tablets on real SQLite files, clients on the real libcurl
// transport, and the replies of a well-behaved server for the scripted one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/store.h"
#include "carnet/sync_client.h"
#include "carnet/transport.h"
#include "carnet/wire.h"
#include "tests/support/memory_key_store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_env.h"
#include "tests/sync/scripted_server.h"

namespace carnet::testing {

inline std::string Describe(const Status& status) { return status.ToString(); }
template <typename T>
std::string Describe(const Result<T>& result) {
  return result.status().ToString();
}

}  // namespace carnet::testing

// Requires a Status or Result to be ok, and prints its message when it is not. (The core tests'
// store_helpers.h is not included here: its names would collide with the server tests'.)
#define SYNC_REQUIRE_OK(expr)                                            \
  do {                                                                   \
    const auto& sync_checked_ = (expr);                                  \
    INFO(#expr << " -> " << ::carnet::testing::Describe(sync_checked_)); \
    REQUIRE(sync_checked_.ok());                                         \
  } while (0)

namespace carnet::testing {

constexpr int64_t kTabletStartMs = 1'763'900'000'000;
constexpr const char* kToken = "t0k3n";

// Retries and backoffs as in production; the TestEnv makes their sleeps instant.
inline SyncOptions TestSyncOptions(std::string token = kToken) {
  SyncOptions options;
  options.token = std::move(token);
  options.max_attempts = 4;
  return options;
}

// `ca_file`: the CA to verify an https server against (tests/sync/process_tls.h).
inline std::unique_ptr<Transport> CurlTo(const std::string& url, int total_timeout_ms = 0,
                                         const std::string& ca_file = "") {
  CurlOptions options;
  options.base_url = url;
  options.ca_file = ca_file;
  options.connect_timeout_ms = 2000;
  options.total_timeout_ms = total_timeout_ms;
  Result<std::unique_ptr<Transport>> transport = MakeCurlTransport(options);
  SYNC_REQUIRE_OK(transport);
  return std::move(transport.value());
}

// One tablet: its clock, its store file (encrypted at rest, its master key in the process's key
// store), and a sync client to a server. `schema`: the app's, Schema::Programme() when null.
class Tablet {
 public:
  Tablet(const TempDir& dir, const std::string& device, int64_t start_ms = kTabletStartMs,
         uint64_t seed = 1, int lease_days = 0, const Schema* schema = nullptr)
      : env_(start_ms, seed) {
    StoreOptions options;
    options.path = dir.File(device + ".db");
    options.device_id = device;
    options.env = &env_;
    options.key_store = &ProcessKeyStore();
    options.lease_days = lease_days;
    options.schema = schema;
    Result<std::unique_ptr<Store>> store = Store::Open(options);
    SYNC_REQUIRE_OK(store);
    store_ = std::move(store.value());
  }

  void Connect(const std::string& url, SyncOptions options = TestSyncOptions(),
               int total_timeout_ms = 0, const std::string& ca_file = "") {
    client_.reset();
    client_ = std::make_unique<SyncClient>(
        store_.get(), &env_, CurlTo(url, total_timeout_ms, ca_file), std::move(options));
  }

  Store& store() { return *store_; }
  Store* operator->() { return store_.get(); }
  SyncClient& client() { return *client_; }
  TestEnv& env() { return env_; }

  uint64_t Pending() {
    Result<uint64_t> count = store().PendingCount();
    SYNC_REQUIRE_OK(count);
    return *count;
  }
  std::vector<Operation> Outbox() {
    Result<std::vector<Operation>> ops = store_->PendingOperations(0, 1'000'000);
    SYNC_REQUIRE_OK(ops);
    return *ops;
  }
  // What the server's ScopeDump of an up-to-date tablet shows.
  std::string Dump() {
    Result<std::string> dump = store().CanonicalDump(true);
    SYNC_REQUIRE_OK(dump);
    return *dump;
  }

 private:
  TestEnv env_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<SyncClient> client_;  // declared last: stopped before the store goes
};

// On the test's thread: the body of a request the server saw.
template <typename Message>
Message DecodeBody(const SeenRequest& request) {
  std::optional<wire::Format> format = wire::FormatFromContentType(request.Header("Content-Type"));
  REQUIRE(format.has_value());
  Message message;
  SYNC_REQUIRE_OK(wire::Decode(request.body, *format, &message));
  return message;
}

// A server that makes every pushed operation durable, its clock at the tablet's.
inline Handler AcknowledgePush(Env* env) {
  return [env](const httplib::Request& req, httplib::Response& res) {
    wire::PushRequest push;
    if (!Parse(req, &push)) return BadRequest(res);
    wire::PushReply reply;
    reply.acknowledged_seq = push.ops.empty() ? 0 : push.ops.back().seq;
    reply.applied = static_cast<uint32_t>(push.ops.size());
    reply.server_time_ms = env->NowMillis();
    Send(req, res, 200, reply);
  };
}

// A pull answer, its clock at `env`'s.
inline Handler PullAnswer(Env* env, std::vector<Entry> entries, uint64_t next_cursor,
                          bool more = false, std::vector<wire::RecordRef> forget = {}) {
  return [=](const httplib::Request& req, httplib::Response& res) {
    wire::PullReply reply{entries, forget, next_cursor, more, env->NowMillis(), "", {}};
    Send(req, res, 200, reply);
  };
}

// Nothing new on the server: the cursor stays where the tablet has it.
inline Handler PullNothing(Env* env) {
  return [env](const httplib::Request& req, httplib::Response& res) {
    wire::PullRequest pull;
    if (!Parse(req, &pull)) return BadRequest(res);
    Send(req, res, 200, wire::PullReply{{}, {}, pull.cursor, false, env->NowMillis(), "", {}});
  };
}

// One tablet and the scripted server it syncs with.
struct ScriptedFixture {
  TempDir dir;
  ScriptedServer server;  // outlives the tablet: the tablet's connection closes first
  Tablet tablet{dir, "tab-a"};
};

// Counts syncs as they end, from the client's status events.
class SyncEnds {
 public:
  explicit SyncEnds(SyncClient& client) : client_(client) {
    client.OnStatus([this](const SyncStatus& status) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (status.state != carnet::SyncState::kSyncing) ++ends_;
      changed_.notify_all();
    });
  }
  // No status event may arrive once this is gone.
  ~SyncEnds() {
    client_.Stop();
    client_.OnStatus(nullptr);
  }
  SyncEnds(const SyncEnds&) = delete;
  SyncEnds& operator=(const SyncEnds&) = delete;

  // Waits (real time) until `n` syncs have ended; false on timeout.
  bool WaitFor(int n, int timeout_ms = 5000) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                             [&] { return ends_ >= n; });
  }
  int ends() {
    std::lock_guard<std::mutex> lock(mutex_);
    return ends_;
  }

 private:
  SyncClient& client_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int ends_ = 0;
};

}  // namespace carnet::testing
