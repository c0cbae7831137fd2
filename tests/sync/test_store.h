// The server store the tests run against. SQLite in the test's temporary folder by default;
// PostgreSQL, a fresh database per test, when CARNET_TEST_STORE names a cluster: its URL
// ("postgresql://carnet@127.0.0.1:PORT/postgres"), or "postgresql:FILE" for the file where
// tests/pg/pg-cluster wrote it (ctest sets this for the entries labelled pg, and starts and stops
// the cluster around them).
#pragma once

#include <pqxx/pqxx>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "tests/support/temp_dir.h"

namespace carnet::testing {

inline std::string TestStoreVariable() {
  const char* store = std::getenv("CARNET_TEST_STORE");
  return store ? store : "";
}

inline bool TestingPostgres() { return TestStoreVariable().rfind("postgres", 0) == 0; }

// The URL of the test cluster's maintenance database.
inline std::string PostgresAdminUrl() {
  const std::string store = TestStoreVariable();
  if (store.find("://") != std::string::npos) return store;
  INFO("CARNET_TEST_STORE=" << store << ": expected postgresql://... or postgresql:FILE");
  REQUIRE(store.rfind("postgresql:", 0) == 0);
  const std::string file = store.substr(11);
  std::ifstream in(file);
  std::string url;
  std::getline(in, url);
  INFO("no cluster URL in " << file << ": is the cluster started (tests/pg/pg-cluster)?");
  REQUIRE(!url.empty());
  return url;
}

// A database of its own on the test cluster, dropped at the end.
class PostgresDatabase {
 public:
  PostgresDatabase() : admin_(PostgresAdminUrl()) {
    std::random_device random;
    name_ = "carnet_test_" + std::to_string(random()) + std::to_string(random());
    Exec("CREATE DATABASE " + name_);
  }
  ~PostgresDatabase() {
    try {
      Exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception&) {
      // The cluster goes away with its data directory after the tests anyway.
    }
  }
  PostgresDatabase(const PostgresDatabase&) = delete;
  PostgresDatabase& operator=(const PostgresDatabase&) = delete;

  std::string url() const { return admin_.substr(0, admin_.rfind('/') + 1) + name_; }

 private:
  void Exec(const std::string& sql) {
    pqxx::connection connection(admin_);
    pqxx::nontransaction txn(connection);
    txn.exec(sql);
  }

  std::string admin_;
  std::string name_;
};

// The store spec for a test's server: "sqlite:<dir>/server.db", or a fresh PostgreSQL database.
class TestStore {
 public:
  explicit TestStore(const TempDir& dir) {
    if (TestingPostgres()) {
      postgres_ = std::make_unique<PostgresDatabase>();
      spec_ = postgres_->url();
    } else {
      spec_ = "sqlite:" + dir.File("server.db");
    }
  }
  const std::string& spec() const { return spec_; }

 private:
  std::unique_ptr<PostgresDatabase> postgres_;
  std::string spec_;
};

}  // namespace carnet::testing
