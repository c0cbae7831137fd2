// The C API's threading rules (carnet.h, platform/README.md), on libcarnet against a real
// carnet-server: calls from several threads while the background sync runs, callbacks on the
// threads the header names, callbacks removed for good, exceptions kept on the host's side.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/carnet.h"
#include "examples/c_adviser_day/server_process.h"
#include "tests/support/temp_dir.h"

namespace {

using namespace std::chrono_literals;

constexpr const char* kTerritory = "vallee-nord";

// Runs `call`, which passes `error` to the C API, and fails the test case with the error's text
// unless it returns CARNET_OK.
#define CAPI_REQUIRE_OK(call)                                                   \
  do {                                                                          \
    carnet_error capi_error_{};                                                 \
    carnet_error* error = &capi_error_;                                         \
    carnet_code capi_code_ = (call);                                            \
    INFO(#call << ": " << carnet_code_name(capi_code_) << ": " << error->message); \
    REQUIRE(capi_code_ == CARNET_OK);                                           \
  } while (0)

// The role of the calling thread: the test's threads name themselves; Carnet's own are "carnet".
// Roles, not thread ids: an id may be reused by a thread started after another has ended.
thread_local std::string t_role = "carnet";

// What the callbacks saw, and on which kind of thread.
struct Seen {
  std::mutex mutex;
  std::vector<std::string> status_roles;
  std::vector<std::string> progress_roles;
  std::vector<std::pair<std::string, bool>> change_roles;  // (role, remote)
  std::set<std::string> log_roles;
  int sync_ends = 0;
  carnet_sync_status last{};

  int ends() {
    std::lock_guard<std::mutex> lock(mutex);
    return sync_ends;
  }
  // Waits up to 20 s for a sync to end after `before` ends.
  bool WaitEnds(int before) {
    for (int i = 0; i < 2000; ++i) {
      if (ends() > before) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
};

void OnStatus(void* context, const carnet_sync_status* status) {
  auto* seen = static_cast<Seen*>(context);
  std::lock_guard<std::mutex> lock(seen->mutex);
  seen->status_roles.push_back(t_role);
  if (status->state != CARNET_SYNC_SYNCING) ++seen->sync_ends;
  seen->last = *status;
}

void OnProgress(void* context, const carnet_sync_progress*) {
  auto* seen = static_cast<Seen*>(context);
  std::lock_guard<std::mutex> lock(seen->mutex);
  seen->progress_roles.push_back(t_role);
}

void OnChange(void* context, const char* changes_json) {
  auto* seen = static_cast<Seen*>(context);
  std::lock_guard<std::mutex> lock(seen->mutex);
  seen->change_roles.emplace_back(t_role,
                                  std::strstr(changes_json, "\"remote\":true") != nullptr);
}

void OnLog(void* context, carnet_log_level, const char*) {
  auto* seen = static_cast<Seen*>(context);
  std::lock_guard<std::mutex> lock(seen->mutex);
  seen->log_roles.insert(t_role);
}

// Names the calling thread for the test's duration.
class Role {
 public:
  explicit Role(std::string role) : previous_(std::exchange(t_role, std::move(role))) {}
  ~Role() { t_role = previous_; }
  Role(const Role&) = delete;
  Role& operator=(const Role&) = delete;

 private:
  std::string previous_;
};

// A carnet-server with enrolled tablets, and libcarnet stores opened on them.
class Fixture {
 public:
  Fixture() {
    spec_ = "sqlite:" + dir_.File("central.db");
    log_ = dir_.File("server.log");
    for (const char* device : {"tab-t", "tab-u"}) {
      char token[128];
      REQUIRE(demo_enroll(CARNET_SERVER_BINARY, spec_.c_str(), device, device, kTerritory,
                          log_.c_str(), token, sizeof token) == 0);
      tokens_.emplace_back(token);
    }
    REQUIRE(demo_server_start(&server_, CARNET_SERVER_BINARY, spec_.c_str(), log_.c_str()) == 0);
  }
  ~Fixture() {
    for (carnet_store* store : stores_) carnet_store_close(store, nullptr);
    for (carnet_env* env : envs_) carnet_env_free(env);
    demo_server_stop(&server_);
  }

  carnet_env* NewEnv(Seen* seen) {
    carnet_host host{};
    host.context = seen;
    host.log = OnLog;
    host.log_level = CARNET_LOG_LEVEL_INFO;
    carnet_env* env = nullptr;
    CAPI_REQUIRE_OK(carnet_env_new(&host, &env, error));
    envs_.push_back(env);
    return env;
  }

  // Opens device `index` (0: tab-t, 1: tab-u), its sync configured, callbacks to `seen`.
  carnet_store* Open(carnet_env* env, int index, Seen* seen) {
    const char* device = index == 0 ? "tab-t" : "tab-u";
    carnet_store* store = nullptr;
    std::string path = dir_.File(std::string(device) + ".db");
    CAPI_REQUIRE_OK(carnet_store_open(env, path.c_str(), device, &store, error));
    stores_.push_back(store);
    CAPI_REQUIRE_OK(carnet_sync_set_status_callback(store, OnStatus, seen, error));
    CAPI_REQUIRE_OK(carnet_sync_set_progress_callback(store, OnProgress, seen, error));
    CAPI_REQUIRE_OK(carnet_store_set_change_callback(store, OnChange, seen, error));
    carnet_sync_config config;
    carnet_sync_config_init(&config);
    config.server_url = server_.url;
    config.token = tokens_[index].c_str();
    config.connect_timeout_ms = 2000;
    config.backoff_initial_ms = 20;
    config.backoff_max_ms = 100;
    config.nightly_length_minutes = 0;
    CAPI_REQUIRE_OK(carnet_sync_configure(store, &config, error));
    return store;
  }

  // Closes a store opened by Open before the fixture ends.
  void Close(carnet_store* store) {
    std::erase(stores_, store);
    CAPI_REQUIRE_OK(carnet_store_close(store, error));
  }

 private:
  carnet::testing::TempDir dir_;
  std::string spec_;
  std::string log_;
  std::vector<std::string> tokens_;
  demo_server server_{};
  std::vector<carnet_env*> envs_;
  std::vector<carnet_store*> stores_;
};

// One transaction: `write` gets the transaction; committed when it returns CARNET_OK.
carnet_code Write(carnet_store* store, const std::function<carnet_code(carnet_txn*)>& write) {
  carnet_txn* txn = nullptr;
  carnet_code code = carnet_txn_begin(store, &txn, nullptr);
  if (code != CARNET_OK) return code;
  code = write(txn);
  if (code != CARNET_OK) {
    carnet_txn_rollback(txn, nullptr);
    return code;
  }
  return carnet_txn_commit(txn, nullptr);
}

std::string NewId(carnet_store* store) {
  char id[CARNET_ID_SIZE];
  REQUIRE(carnet_new_id(store, id, nullptr) == CARNET_OK);
  return id;
}

std::string CreateParticipant(carnet_store* store) {
  std::string id = NewId(store);
  REQUIRE(Write(store, [&](carnet_txn* txn) {
            return carnet_record_put(txn, "participants", id.c_str(),
                                     "{\"referent\":\"tab-t\",\"territory\":\"vallee-nord\","
                                     "\"first_name\":\"Nadia\",\"status\":\"active\"}",
                                     nullptr);
          }) == CARNET_OK);
  return id;
}

bool EverythingUploaded(carnet_store* store) {
  bool uploaded = false;
  return carnet_everything_uploaded(store, &uploaded, nullptr) == CARNET_OK && uploaded;
}

}  // namespace

TEST_CASE("Calls from several threads while the background sync runs, callbacks arriving on the "
          "threads the header names",
          "[capi]") {
  Role main_role("writer");
  Seen seen;
  Seen other_seen;
  Fixture fixture;  // after what the callbacks use: its stores close first
  carnet_env* env = fixture.NewEnv(&seen);
  carnet_store* store = fixture.Open(env, 0, &seen);
  std::string nadia = CreateParticipant(store);
  CAPI_REQUIRE_OK(carnet_sync_start(store, error));

  constexpr int kWriters = 4;
  constexpr int kInterviews = 15;
  std::atomic<int> failures{0};
  std::atomic<int> sync_now_calls{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&] {
      Role role("writer");
      for (int i = 0; i < kInterviews; ++i) {
        // No Catch2 assertion off the test's thread: Catch2 is not thread-safe.
        char id_buffer[CARNET_ID_SIZE];
        if (carnet_new_id(store, id_buffer, nullptr) != CARNET_OK) ++failures;
        std::string id = id_buffer;
        std::string fields = "{\"participant\":\"" + nadia + "\",\"place\":\"phone\"}";
        carnet_code code = Write(store, [&](carnet_txn* txn) {
          carnet_code put =
              carnet_record_put(txn, "interviews", id.c_str(), fields.c_str(), nullptr);
          if (put != CARNET_OK) return put;
          return carnet_log_append(txn, "interviews", id.c_str(), "notes", "Called.", nullptr,
                                   nullptr, nullptr);
        });
        char* json = nullptr;
        if (code == CARNET_OK) {
          code = carnet_record_get(store, "interviews", id.c_str(), &json, nullptr);
        }
        carnet_free(json);
        carnet_sync_status status;
        if (code == CARNET_OK) code = carnet_sync_get_status(store, &status, nullptr);
        if (code == CARNET_OK && i % 5 == 0) code = carnet_sync_request(store, nullptr);
        if (code != CARNET_OK) ++failures;
      }
    });
  }
  threads.emplace_back([&] {
    Role role("network");
    for (int i = 0; i < 6; ++i) {
      if (carnet_env_set_online(env, i % 2 == 1, nullptr) != CARNET_OK) ++failures;
      std::this_thread::sleep_for(15ms);
    }
  });
  threads.emplace_back([&] {
    Role role("sync_now");
    for (int i = 0; i < 3; ++i) {
      // Waits for a background sync in progress, then syncs here.
      if (carnet_sync_now(store, nullptr) == CARNET_OK) ++sync_now_calls;
      std::this_thread::sleep_for(20ms);
    }
  });
  for (std::thread& thread : threads) thread.join();
  CHECK(failures == 0);
  CHECK(sync_now_calls == 3);

  // Another tablet writes; the background sync brings it in, a remote change.
  carnet_store* other = fixture.Open(fixture.NewEnv(&other_seen), 1, &other_seen);
  CAPI_REQUIRE_OK(carnet_sync_now(other, error));
  REQUIRE(Write(other, [&](carnet_txn* txn) {
            return carnet_register_set_text(txn, "participants", nadia.c_str(), "phase",
                                            "job_search", nullptr);
          }) == CARNET_OK);
  CAPI_REQUIRE_OK(carnet_sync_now(other, error));
  int before = seen.ends();
  CAPI_REQUIRE_OK(carnet_sync_request(store, error));
  REQUIRE(seen.WaitEnds(before));
  for (int i = 0; i < 10 && !EverythingUploaded(store); ++i) {
    before = seen.ends();
    CAPI_REQUIRE_OK(carnet_sync_request(store, error));
    REQUIRE(seen.WaitEnds(before));
  }
  CHECK(EverythingUploaded(store));
  char* json = nullptr;
  CAPI_REQUIRE_OK(carnet_record_list(store, "interviews", &json, error));
  size_t count = 0;
  for (const char* at = json; (at = std::strstr(at, "\"collection\":")) != nullptr; ++at) ++count;
  carnet_free(json);
  CHECK(count == kWriters * kInterviews);
  CAPI_REQUIRE_OK(carnet_sync_stop(store, error));

  std::lock_guard<std::mutex> lock(seen.mutex);
  // Status and progress: on the thread calling carnet_sync_now or on Carnet's own threads,
  // never on an app thread that is not syncing.
  for (const auto* roles : {&seen.status_roles, &seen.progress_roles}) {
    for (const std::string& role : *roles) CHECK((role == "sync_now" || role == "carnet"));
  }
  CHECK(std::count(seen.status_roles.begin(), seen.status_roles.end(), "sync_now") >= 6);
  CHECK(std::count(seen.status_roles.begin(), seen.status_roles.end(), "carnet") >= 2);
  CHECK(std::count(seen.progress_roles.begin(), seen.progress_roles.end(), "carnet") >= 1);
  // Changes: local ones on the committing thread, remote ones on a sync thread.
  int local = 0, remote = 0;
  for (const auto& [role, is_remote] : seen.change_roles) {
    if (is_remote) {
      ++remote;
      CHECK((role == "carnet" || role == "sync_now"));
    } else {
      ++local;
      CHECK(role == "writer");
    }
  }
  CHECK(local == 1 + kWriters * kInterviews);
  CHECK(remote >= 1);
  // Logs: from any thread, here the background sync's among others.
  CHECK(seen.log_roles.count("carnet") == 1);
}

TEST_CASE("A callback removed is not called again once the setter returns, even mid-sync",
          "[capi]") {
  struct Slow {
    std::atomic<bool> inside{false};
    std::atomic<int> calls{0};
  } slow;
  Seen seen;
  Fixture fixture;
  carnet_store* store = fixture.Open(fixture.NewEnv(&seen), 0, &seen);
  auto on_status = [](void* context, const carnet_sync_status*) {
    auto* s = static_cast<Slow*>(context);
    s->inside = true;
    ++s->calls;
    std::this_thread::sleep_for(300ms);  // a slow host, still running when removed
    s->inside = false;
  };
  CAPI_REQUIRE_OK(carnet_sync_set_status_callback(store, on_status, &slow, error));
  CreateParticipant(store);
  CAPI_REQUIRE_OK(carnet_sync_start(store, error));
  CAPI_REQUIRE_OK(carnet_sync_request(store, error));
  for (int i = 0; i < 500 && !slow.inside; ++i) std::this_thread::sleep_for(5ms);
  REQUIRE(slow.inside);
  CAPI_REQUIRE_OK(carnet_sync_set_status_callback(store, nullptr, nullptr, error));
  CHECK(!slow.inside);  // the setter waited for the running call to return
  int calls = slow.calls;
  CAPI_REQUIRE_OK(carnet_sync_request(store, error));
  std::this_thread::sleep_for(300ms);
  CAPI_REQUIRE_OK(carnet_sync_now(store, error));
  CHECK(slow.calls == calls);
}

TEST_CASE("A change callback may write on the committing thread but not wait for a sync",
          "[capi]") {
  Seen seen;
  Fixture fixture;
  carnet_store* store = fixture.Open(fixture.NewEnv(&seen), 0, &seen);
  struct Reaction {
    carnet_store* store;
    std::string participant;
    int calls = 0;
    carnet_code write = CARNET_INTERNAL;
    carnet_code sync_now = CARNET_OK;
  } reaction{store, CreateParticipant(store)};
  auto on_change = [](void* context, const char*) {
    auto* r = static_cast<Reaction*>(context);
    if (++r->calls > 1) return;  // the write below commits too
    r->sync_now = carnet_sync_now(r->store, nullptr);
    r->write = Write(r->store, [&](carnet_txn* txn) {
      return carnet_register_set_text(txn, "participants", r->participant.c_str(), "phase",
                                      "assessment", nullptr);
    });
  };
  CAPI_REQUIRE_OK(carnet_store_set_change_callback(store, on_change, &reaction, error));
  REQUIRE(Write(store, [&](carnet_txn* txn) {
            return carnet_register_set_text(txn, "participants", reaction.participant.c_str(),
                                            "commune", "Saint-Aubin", nullptr);
          }) == CARNET_OK);
  CHECK(reaction.calls == 2);
  CHECK(reaction.sync_now == CARNET_FAILED_PRECONDITION);
  CHECK(reaction.write == CARNET_OK);
  char* json = nullptr;
  CAPI_REQUIRE_OK(
      carnet_record_get(store, "participants", reaction.participant.c_str(), &json, error));
  CHECK(std::strstr(json, "\"phase\":\"assessment\"") != nullptr);
  carnet_free(json);
}

TEST_CASE("A transaction held on one thread makes other threads wait, then go on", "[capi]") {
  Seen seen;
  Fixture fixture;
  carnet_store* store = fixture.Open(fixture.NewEnv(&seen), 0, &seen);
  std::string nadia = CreateParticipant(store);
  carnet_txn* txn = nullptr;
  CAPI_REQUIRE_OK(carnet_txn_begin(store, &txn, error));
  CAPI_REQUIRE_OK(carnet_register_set_text(txn, "participants", nadia.c_str(), "phase",
                                           "assessment", error));
  std::atomic<bool> committed{false};
  std::atomic<bool> other_done{false};
  std::atomic<bool> saw_commit_first{false};
  std::thread other([&] {
    carnet_code code = Write(store, [&](carnet_txn* t) {
      saw_commit_first = committed.load();
      return carnet_register_set_text(t, "participants", nadia.c_str(), "phase", "job_search",
                                      nullptr);
    });
    other_done = code == CARNET_OK;
  });
  std::this_thread::sleep_for(200ms);
  CHECK(!other_done);
  committed = true;
  CAPI_REQUIRE_OK(carnet_txn_commit(txn, error));
  other.join();
  CHECK(other_done);
  CHECK(saw_commit_first);
  char* json = nullptr;
  CAPI_REQUIRE_OK(carnet_record_get(store, "participants", nadia.c_str(), &json, error));
  CHECK(std::strstr(json, "\"phase\":\"job_search\"") != nullptr);
  carnet_free(json);
}

TEST_CASE("An exception thrown by a C++ host's callback stays on the host's side", "[capi]") {
  std::atomic<int> throws{0};
  Seen seen;
  Fixture fixture;
  carnet_store* store = fixture.Open(fixture.NewEnv(&seen), 0, &seen);
  auto throwing = [](void* context, const carnet_sync_status*) {
    ++*static_cast<std::atomic<int>*>(context);
    throw std::runtime_error("a host bug");
  };
  CAPI_REQUIRE_OK(carnet_sync_set_status_callback(store, throwing, &throws, error));
  CreateParticipant(store);
  CAPI_REQUIRE_OK(carnet_sync_now(store, error));
  CHECK(throws >= 2);
  CAPI_REQUIRE_OK(carnet_sync_start(store, error));
  int before = throws;
  CAPI_REQUIRE_OK(carnet_sync_request(store, error));
  for (int i = 0; i < 500 && throws < before + 2; ++i) std::this_thread::sleep_for(10ms);
  CHECK(throws >= before + 2);
  CHECK(EverythingUploaded(store));
}

TEST_CASE("Closing a store stops its background sync: no callback after close returns",
          "[capi]") {
  Seen seen;
  Fixture fixture;
  carnet_store* store = fixture.Open(fixture.NewEnv(&seen), 0, &seen);
  CreateParticipant(store);
  CAPI_REQUIRE_OK(carnet_sync_start(store, error));
  CAPI_REQUIRE_OK(carnet_sync_request(store, error));
  fixture.Close(store);
  size_t statuses;
  {
    std::lock_guard<std::mutex> lock(seen.mutex);
    statuses = seen.status_roles.size();
  }
  std::this_thread::sleep_for(200ms);
  std::lock_guard<std::mutex> lock(seen.mutex);
  CHECK(seen.status_roles.size() == statuses);
}
