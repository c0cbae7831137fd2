#include "carnet/hlc.h"

#include <catch2/catch.hpp>

#include "tests/support/test_env.h"

using carnet::HybridClock;
using carnet::testing::TestEnv;

TEST_CASE("The clock never goes backwards when the device clock jumps back", "[core][hlc]") {
  TestEnv env;
  HybridClock clock(&env, {});
  carnet::Hlc first = clock.Tick();
  env.Advance(-3'600'000);
  carnet::Hlc second = clock.Tick();
  CHECK(second > first);
  env.Advance(7'200'000);
  CHECK(clock.Tick() > second);
}
