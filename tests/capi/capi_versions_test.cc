// What the C API shows of a newer app's collections, fields and enum values (carnet.h, Reading
// records; core/README.md, Mixed versions). The store file is filled by the core on its own, as
// the previous release's library would after a sync with newer tablets, then read through
// libcarnet.
#include <string>

#include <catch2/catch.hpp>

#include "carnet/carnet.h"
#include "carnet/store.h"
#include "tests/support/newer_schema.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_env.h"

namespace {

// What carnet_record_get or carnet_record_list gives, or the code it fails with.
struct Read {
  carnet_code code = CARNET_OK;
  std::string json;
};

Read ReadRecords(carnet_store* store, const char* collection, const char* id) {
  carnet_error error{};
  char* json = nullptr;
  Read read;
  read.code = id ? carnet_record_get(store, collection, id, &json, &error)
                 : carnet_record_list(store, collection, &json, &error);
  if (json != nullptr) read.json = json;
  carnet_free(json);
  return read;
}

// A store file of the previous release holding what a newer tablet wrote.
void FillWithNewerRecords(const std::string& path) {
  using namespace carnet;
  testing::TestEnv newer_env(1'763'900'000'000, 1), older_env(1'763'900'000'000, 2);
  StoreOptions newer_options;
  newer_options.path = path + ".newer";
  newer_options.device_id = "tab-new";
  newer_options.env = &newer_env;
  newer_options.schema = &testing::NewerSchema();
  StoreOptions older_options;
  older_options.path = path;
  older_options.device_id = "tab-old";
  older_options.env = &older_env;
  Result<std::unique_ptr<Store>> newer = Store::Open(newer_options);
  Result<std::unique_ptr<Store>> older = Store::Open(older_options);
  REQUIRE(newer.ok());
  REQUIRE(older.ok());
  REQUIRE(
      (*newer)
          ->Put(
              "participants", "p1",
              {{"first_name", "Nadia"}, {"phase", "post_exit"}, {"preferred_language", "occitan"}})
          .ok());
  REQUIRE((*newer)->Put("job_fairs", "j1", {{"name", "Forum emploi Lille"}}).ok());
  Result<std::vector<Operation>> ops = (*newer)->PendingOperations(0, 100);
  REQUIRE(ops.ok());
  Result<ApplyStats> applied = (*older)->ApplyRemote(*ops);
  INFO(applied.status().ToString());
  REQUIRE(applied.ok());
}

}  // namespace

TEST_CASE("The C API shows a newer app's fields, enum values and collections as unknown",
          "[capi][versions]") {
  carnet::testing::TempDir dir;
  const std::string path = dir.File("tab-old.db");
  FillWithNewerRecords(path);
  carnet_env* env = nullptr;
  carnet_store* store = nullptr;
  carnet_error error{};
  REQUIRE(carnet_env_new(nullptr, &env, &error) == CARNET_OK);
  REQUIRE(carnet_store_open(env, path.c_str(), "tab-old", &store, &error) == CARNET_OK);

  Read p1 = ReadRecords(store, "participants", "p1");
  INFO(p1.json);
  REQUIRE(p1.code == CARNET_OK);
  CHECK_THAT(p1.json, Catch::Contains("\"first_name\":\"Nadia\""));
  CHECK_THAT(p1.json, Catch::Contains("\"phase\":\"post_exit\""));
  CHECK_THAT(p1.json, Catch::Contains("\"preferred_language\":\"occitan\""));
  CHECK_THAT(p1.json, Catch::Contains("\"unknown\":[\"phase\",\"preferred_language\"]"));

  Read fairs = ReadRecords(store, "job_fairs", nullptr);
  INFO(fairs.json);
  REQUIRE(fairs.code == CARNET_OK);
  CHECK_THAT(fairs.json, Catch::Contains("\"name\":\"Forum emploi Lille\""));
  CHECK_THAT(fairs.json, Catch::Contains("\"unknown\":[\"name\"]"));
  CHECK(ReadRecords(store, "job_fair", nullptr).code == CARNET_INVALID_ARGUMENT);

  // A local write of what this schema does not know is refused.
  carnet_txn* txn = nullptr;
  REQUIRE(carnet_txn_begin(store, &txn, &error) == CARNET_OK);
  CHECK(carnet_register_set_text(txn, "participants", "p1", "phase", "post_exit", &error) ==
        CARNET_INVALID_ARGUMENT);
  CHECK(carnet_register_set_text(txn, "job_fairs", "j1", "name", "Forum", &error) ==
        CARNET_INVALID_ARGUMENT);
  REQUIRE(carnet_txn_rollback(txn, &error) == CARNET_OK);
  REQUIRE(carnet_store_close(store, &error) == CARNET_OK);
  carnet_env_free(env);
}
