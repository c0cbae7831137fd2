// An expired offline lease reaches the app as CARNET_LEASE_EXPIRED, a code of its own, so that the
// app asks for a sync on the code rather than on the message (carnet.h, offline_lease_days).
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <ctime>
#include <string>

#include "carnet/carnet.h"
#include "tests/support/temp_dir.h"

namespace {

constexpr int64_t kDayMs = 24 * 60 * 60 * 1000LL;

// Moves the store's last successful contact `days` back, as if the tablet had been that long in a
// drawer: the library reads the real clock, which a test cannot move. A store without key storage
// keeps its lease in clear ("CONTACT_MS SEEN_MS", core/store_keys.cc).
void AgeLease(const std::string& path, int days) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  const int64_t then = static_cast<int64_t>(time(nullptr)) * 1000 - days * kDayMs;
  const std::string sql = "UPDATE meta SET value = '" + std::to_string(then) + " " +
                          std::to_string(then) + "' WHERE key = 'lease'";
  CHECK(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  CHECK(sqlite3_changes(db) == 1);
  sqlite3_close(db);
}

}  // namespace

TEST_CASE("Past its offline lease, a store answers CARNET_LEASE_EXPIRED", "[capi][lease]") {
  carnet::testing::TempDir dir;
  carnet_host host{};
  host.log_level = CARNET_LOG_LEVEL_ERROR;
  host.offline_lease_days = 1;
  carnet_env* env = nullptr;
  carnet_error error{};
  REQUIRE(carnet_env_new(&host, &env, &error) == CARNET_OK);
  const std::string path = dir.File("lease.db");
  carnet_store* store = nullptr;
  REQUIRE(carnet_store_open(env, path.c_str(), "tab-lease", &store, &error) == CARNET_OK);
  char id[CARNET_ID_SIZE];
  REQUIRE(carnet_new_id(store, id, &error) == CARNET_OK);
  char* json = nullptr;
  CHECK(carnet_record_get(store, "interviews", id, &json, &error) == CARNET_NOT_FOUND);
  REQUIRE(carnet_store_close(store, &error) == CARNET_OK);

  AgeLease(path, 3);
  REQUIRE(carnet_store_open(env, path.c_str(), "tab-lease", &store, &error) == CARNET_OK);
  CHECK(carnet_record_get(store, "interviews", id, &json, &error) == CARNET_LEASE_EXPIRED);
  CHECK(error.code == CARNET_LEASE_EXPIRED);
  CHECK(error.domain == CARNET_DOMAIN_STORE);
  CHECK_FALSE(error.retryable);
  CHECK(std::string(error.message).find("offline lease expired") != std::string::npos);
  carnet_txn* txn = nullptr;
  CHECK(carnet_txn_begin(store, &txn, &error) == CARNET_LEASE_EXPIRED);
  CHECK(std::string(carnet_code_name(CARNET_LEASE_EXPIRED)) == "lease_expired");
  CHECK(carnet_store_close(store, &error) == CARNET_OK);
  carnet_env_free(env);
}
