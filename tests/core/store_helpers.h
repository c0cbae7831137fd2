// Helpers shared by the core tests: replicas on real SQLite files, exchanging their operations,
// and reading back what a store holds in forms that compare and print well.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/store.h"
#include "tests/support/memory_key_store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_env.h"

namespace carnet::testing {

inline const Status& StatusOf(const Status& status) { return status; }
template <typename T>
const Status& StatusOf(const Result<T>& result) {
  return result.status();
}

}  // namespace carnet::testing

// Requires a Status or Result to be ok, and prints its message when it is not.
#define REQUIRE_OK(expr)                                                              \
  do {                                                                                \
    const auto& carnet_checked_ = (expr);                                             \
    INFO(#expr << " -> " << ::carnet::testing::StatusOf(carnet_checked_).ToString()); \
    REQUIRE(::carnet::testing::StatusOf(carnet_checked_).ok());                       \
  } while (0)

namespace carnet::testing {

constexpr int64_t kStartMs = 1'763'900'000'000;

inline std::unique_ptr<Store> OpenStore(const StoreOptions& options) {
  Result<std::unique_ptr<Store>> store = Store::Open(options);
  REQUIRE_OK(store);
  return std::move(store.value());
}

// One tablet: its own clock and randomness, its own store file in `dir`, encrypted at rest with
// the master key in its own key store, so that every core test runs on sealed values.
class Replica {
 public:
  Replica(const TempDir& dir, const std::string& device, int64_t start_ms = kStartMs,
          uint64_t seed = 1)
      : env_(start_ms, seed) {
    options_.path = dir.File(device + ".db");
    options_.device_id = device;
    options_.env = &env_;
    options_.key_store = &keys_;
    store_ = OpenStore(options_);
  }

  Store& store() { return *store_; }
  Store* operator->() { return store_.get(); }
  TestEnv& env() { return env_; }
  MemoryKeyStore& keys() { return keys_; }
  StoreOptions& options() { return options_; }

  // Closes the store file and opens it again, as after the app restarts.
  void Reopen() {
    store_.reset();
    store_ = OpenStore(options_);
  }
  void Close() { store_.reset(); }

 private:
  TestEnv env_;
  MemoryKeyStore keys_;
  StoreOptions options_;
  std::unique_ptr<Store> store_;
};

// One tablet in a temporary folder of its own: the fixture of most store tests.
struct OneTablet {
  TempDir dir;
  Replica a{dir, "tab-a"};
};

inline std::string Dump(Store& store) {
  Result<std::string> dump = store.CanonicalDump();
  REQUIRE_OK(dump);
  return *dump;
}

inline std::vector<Operation> Outbox(Store& store) {
  Result<std::vector<Operation>> ops =
      store.PendingOperations(0, std::numeric_limits<size_t>::max());
  REQUIRE_OK(ops);
  return *ops;
}

inline std::optional<std::string> SyncState(Store& store, const std::string& key) {
  Result<std::optional<std::string>> value = store.GetSyncState(key);
  REQUIRE_OK(value);
  return *value;
}

// Applies every pending operation of `from` to `to`.
inline ApplyStats Deliver(Store& from, Store& to) {
  Result<ApplyStats> stats = to.ApplyRemote(Outbox(from));
  REQUIRE_OK(stats);
  return *stats;
}

// Delivers every pending operation of each store to every other one.
inline void ExchangeAll(const std::vector<Store*>& stores) {
  for (Store* from : stores) {
    for (Store* to : stores) {
      if (from != to) Deliver(*from, *to);
    }
  }
}

inline std::vector<Conflict> ConflictsOf(Store& store) {
  Result<std::vector<Conflict>> conflicts = store.Conflicts();
  REQUIRE_OK(conflicts);
  return *conflicts;
}

inline std::string Describe(const Conflict& c) {
  std::ostringstream out;
  out << (c.kind == ConflictKind::kConcurrentWrite ? "concurrent_write" : "edited_while_deleted")
      << " " << c.collection << "/" << c.record << "/" << c.field << " kept "
      << c.kept_value.value_or("-") << "@" << StampToString(c.kept_stamp) << " losing "
      << c.losing_value.value_or("-") << "@" << StampToString(c.losing_stamp);
  return out.str();
}

// The conflicts of a store, one line each, in the order the store lists them.
inline std::string ConflictsText(Store& store) {
  std::string text;
  for (const Conflict& c : ConflictsOf(store)) text += Describe(c) + "\n";
  return text;
}

inline Record GetRecord(Store& store, const std::string& collection, const std::string& id) {
  Result<Record> record = store.Get(collection, id);
  REQUIRE_OK(record);
  return *record;
}

// The register's winning value; none when the field is unset or cleared.
inline std::optional<std::string> ValueOf(Store& store, const std::string& collection,
                                          const std::string& id, const std::string& field) {
  Record record = GetRecord(store, collection, id);
  auto it = record.fields.find(field);
  if (it == record.fields.end()) return std::nullopt;
  return it->second.value;
}

inline Stamp StampOf(Store& store, const std::string& collection, const std::string& id,
                     const std::string& field) {
  Record record = GetRecord(store, collection, id);
  auto it = record.fields.find(field);
  REQUIRE(it != record.fields.end());
  REQUIRE(it->second.stamp.has_value());
  return *it->second.stamp;
}

// Everything a store has written that a failed call must leave as it was.
struct Snapshot {
  std::string dump;
  std::vector<Operation> outbox;
  Hlc last_hlc = 0;
  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

inline Snapshot Take(Store& store) { return Snapshot{Dump(store), Outbox(store), store.LastHlc()}; }

// The sequence number of the next local operation, found by making one.
inline uint64_t NextSeqByWriting(Store& store) {
  REQUIRE_OK(store.Set("workshops", "seq-probe", "theme", "probe"));
  std::vector<Operation> outbox = Outbox(store);
  REQUIRE(!outbox.empty());
  return outbox.back().seq;
}

}  // namespace carnet::testing
