#include "carnet/store.h"

#include <catch2/catch.hpp>

#include "tests/support/temp_dir.h"
#include "tests/support/test_env.h"

using namespace carnet;

TEST_CASE("A register written locally reads back", "[core][store]") {
  testing::TempDir dir;
  testing::TestEnv env;
  StoreOptions options;
  options.path = dir.File("a.db");
  options.device_id = "tab-a";
  options.env = &env;
  auto store = Store::Open(options);
  REQUIRE(store.ok());
  REQUIRE((*store)->Set("participants", "p1", "phase", "assessment").ok());
  auto record = (*store)->Get("participants", "p1");
  REQUIRE(record.ok());
  CHECK(record->fields.at("phase").value == "assessment");
}
