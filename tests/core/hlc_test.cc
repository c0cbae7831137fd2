#include "carnet/hlc.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/store.h"
#include "tests/core/store_helpers.h"
#include "tests/support/test_env.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

constexpr int64_t kMinute = 60'000;

// A write made on another tablet whose clock reads `ms`.
Operation RemoteWrite(int64_t ms, uint64_t seq, const std::string& value) {
  Operation op;
  op.device = "tab-remote";
  op.seq = seq;
  op.hlc = MakeHlc(ms, 0);
  op.kind = OpKind::kWrite;
  op.collection = "participants";
  op.record = "p1";
  op.field = "phase";
  op.value = value;
  return op;
}

}  // namespace

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

TEST_CASE("The clock counts in its logical part while the device clock stands still or lags",
          "[core][hlc]") {
  TestEnv env;
  HybridClock clock(&env, {});
  Hlc first = clock.Tick();
  CHECK(HlcPhysicalMs(first) == env.NowMillis());
  CHECK(HlcLogical(first) == 0);
  Hlc second = clock.Tick();
  CHECK(HlcPhysicalMs(second) == env.NowMillis());
  CHECK(HlcLogical(second) == 1);
  env.Advance(-10);
  Hlc third = clock.Tick();
  CHECK(HlcPhysicalMs(third) == HlcPhysicalMs(second));
  CHECK(HlcLogical(third) == 2);
  env.Advance(20);
  Hlc fourth = clock.Tick();
  CHECK(HlcPhysicalMs(fourth) == env.NowMillis());
  CHECK(HlcLogical(fourth) == 0);
  CHECK(clock.Last() == fourth);
}

TEST_CASE("A stream of ticks under a clock jumping both ways is strictly increasing",
          "[core][hlc]") {
  TestEnv env;
  HybridClock clock(&env, {});
  Hlc previous = 0;
  const int64_t jumps[] = {0, 1, -5'000, 3, 0, -1, 86'400'000, -86'400'000, 7};
  for (int round = 0; round < 2'000; ++round) {
    env.Advance(jumps[round % 9]);
    Hlc next = clock.Tick();
    REQUIRE(next > previous);
    previous = next;
  }
}

TEST_CASE("Observing a remote stamp makes later local stamps greater", "[core][hlc]") {
  TestEnv env;
  HybridClock clock(&env, {});
  Hlc remote = MakeHlc(env.NowMillis() + 5 * kMinute, 42);
  REQUIRE_OK(clock.Observe(remote));
  CHECK(clock.Last() == remote);
  CHECK(clock.Tick() > remote);
  // An older remote stamp does not move it back.
  Hlc last = clock.Last();
  REQUIRE_OK(clock.Observe(MakeHlc(env.NowMillis() - kMinute, 0)));
  CHECK(clock.Last() == last);
}

TEST_CASE("A remote stamp beyond the skew bound is refused without moving the clock",
          "[core][hlc]") {
  TestEnv env;
  HlcOptions options;
  options.max_forward_skew_ms = 10 * kMinute;
  HybridClock clock(&env, options);
  Hlc before = clock.Tick();
  Hlc at_bound = MakeHlc(env.NowMillis() + 10 * kMinute, 0);
  Hlc beyond = MakeHlc(env.NowMillis() + 10 * kMinute + 1, 0);
  CHECK(clock.CheckSkew(at_bound).ok());
  Status refused = clock.Observe(beyond);
  CHECK(refused.code() == StatusCode::kClockSkew);
  CHECK_FALSE(refused.message().empty());
  CHECK(clock.CheckSkew(beyond).code() == StatusCode::kClockSkew);
  CHECK(clock.Last() == before);
}

TEST_CASE_METHOD(
    OneTablet,
    "ApplyRemote refuses a batch holding a stamp beyond the skew bound and writes nothing",
    "[core][hlc]") {
  REQUIRE_OK(a->Set("participants", "p2", "phase", "assessment"));
  const testing::Snapshot before = testing::Take(a.store());
  const int64_t now = a.env().NowMillis();
  std::vector<Operation> batch = {RemoteWrite(now, 1, "health"),
                                  RemoteWrite(now + 15 * kMinute + 1'000, 2, "job_search")};
  Result<ApplyStats> refused = a->ApplyRemote(batch, {{"cursor", "2"}});
  CHECK(refused.status().code() == StatusCode::kClockSkew);
  CHECK_THAT(refused.status().message(), Catch::Contains("tab-remote#2"));
  CHECK(testing::Take(a.store()) == before);
  CHECK_FALSE(SyncState(a.store(), "cursor").has_value());

  // Once the receiver's clock has caught up, the same batch is accepted.
  a.env().Advance(2 * kMinute);
  REQUIRE_OK(a->ApplyRemote(batch, {{"cursor", "2"}}));
  CHECK(a->LastHlc() >= batch[1].hlc);
}

TEST_CASE_METHOD(
    OneTablet,
    "A stamp from a clock running fast within the bound is accepted and local stamps follow",
    "[core][hlc]") {
  Operation fast = RemoteWrite(a.env().NowMillis() + 10 * kMinute, 1, "health");
  REQUIRE_OK(a->ApplyRemote({fast}));
  CHECK(a->LastHlc() == fast.hlc);
  REQUIRE_OK(a->Set("participants", "p1", "phase", "job_search"));
  CHECK(Outbox(a.store()).back().hlc > fast.hlc);
  // The local write saw the remote one, so it replaced it without a conflict.
  CHECK(testing::ConflictsOf(a.store()).empty());
}

TEST_CASE("A clock offset shifts local stamps and the skew bound", "[core][hlc]") {
  TestEnv env;
  HybridClock clock(&env, {});
  clock.SetOffsetMs(20 * kMinute);
  CHECK(clock.OffsetMs() == 20 * kMinute);
  CHECK(clock.PhysicalMs() == env.NowMillis() + 20 * kMinute);
  CHECK(HlcPhysicalMs(clock.Tick()) == env.NowMillis() + 20 * kMinute);
  CHECK(clock.CheckSkew(MakeHlc(env.NowMillis() + 30 * kMinute, 0)).ok());
  CHECK(clock.CheckSkew(MakeHlc(env.NowMillis() + 36 * kMinute, 0)).code() ==
        StatusCode::kClockSkew);
}

TEST_CASE_METHOD(OneTablet, "The store keeps its clock offset across a reopen", "[core][hlc]") {
  // 18 minutes ahead of a device clock that is 5 minutes slow: 13 minutes ahead of the real time.
  const std::vector<Operation> batch = {
      RemoteWrite(a.env().NowMillis() + 18 * kMinute, 1, "health")};
  CHECK(a->ApplyRemote(batch).status().code() == StatusCode::kClockSkew);
  REQUIRE_OK(a->SetClockOffsetMs(5 * kMinute));
  a.Reopen();
  REQUIRE_OK(a->Set("participants", "p2", "phase", "health"));
  CHECK(HlcPhysicalMs(Outbox(a.store()).back().hlc) == a.env().NowMillis() + 5 * kMinute);
  REQUIRE_OK(a->ApplyRemote(batch));
}

TEST_CASE_METHOD(OneTablet,
                 "The store's clock does not go back after reopening with an earlier device clock",
                 "[core][hlc]") {
  REQUIRE_OK(a->Set("participants", "p1", "phase", "assessment"));
  REQUIRE_OK(a->ApplyRemote({RemoteWrite(a.env().NowMillis() + 10 * kMinute, 1, "health")}));
  const Hlc before = a->LastHlc();
  a.Close();
  a.env().Advance(-2 * 3'600'000);
  a.Reopen();
  CHECK(a->LastHlc() >= before);
  REQUIRE_OK(a->Set("participants", "p1", "phase", "job_search"));
  CHECK(Outbox(a.store()).back().hlc > before);
  CHECK(testing::ValueOf(a.store(), "participants", "p1", "phase") == "job_search");
}

TEST_CASE("Stamps round-trip through their text and byte forms", "[core][hlc]") {
  const std::vector<Stamp> stamps = {
      Stamp{MakeHlc(1'732'300'000'000, 3), "tab-1"},
      Stamp{MakeHlc(0, 1), "a"},
      Stamp{MakeHlc((int64_t{1} << 48) - 1, 0xffff), "dev.ice_1:x-Y"},
  };
  CHECK(StampToString(stamps[0]) == "1732300000000.3@tab-1");
  for (const Stamp& stamp : stamps) {
    Result<Stamp> parsed = StampFromString(StampToString(stamp));
    REQUIRE_OK(parsed);
    CHECK(*parsed == stamp);
    Result<Stamp> decoded = DecodeStamp(EncodeStamp(stamp));
    REQUIRE_OK(decoded);
    CHECK(*decoded == stamp);
  }
}

TEST_CASE("Encoded stamps sort in stamp order", "[core][hlc]") {
  const std::vector<Stamp> ordered = {Stamp{MakeHlc(1, 0), "b"},     Stamp{MakeHlc(1, 1), "a"},
                                      Stamp{MakeHlc(2, 0), "a"},     Stamp{MakeHlc(2, 0), "ab"},
                                      Stamp{MakeHlc(2, 0), "b"},     Stamp{MakeHlc(256, 0), "a"},
                                      Stamp{MakeHlc(65'536, 0), "a"}};
  for (size_t i = 1; i < ordered.size(); ++i) {
    CHECK(ordered[i - 1] < ordered[i]);
    CHECK(EncodeStamp(ordered[i - 1]) < EncodeStamp(ordered[i]));
  }
  CHECK(DecodeStamp("12345678").status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("Malformed stamp text is refused", "[core][hlc]") {
  const std::string malformed =
      GENERATE(as<std::string>{}, "", "abc", "1@tab", "1.2", "1.2@", ".2@tab", "1.@tab", "-1.2@tab",
               "1.-2@tab", "1.65536@tab", "281474976710656.0@tab", "1@tab.2", "1.2.3@tab",
               " 1.2@tab", "+1.2@tab", "0x1.2@tab");
  CAPTURE(malformed);
  Result<Stamp> parsed = StampFromString(malformed);
  CHECK(parsed.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("Stamp text naming an invalid device is refused", "[core][hlc]") {
  const std::string malformed = GENERATE(as<std::string>{}, "1.2@tab 1", "1.2@tab@x", "1.2@tab\n",
                                         "1.2@" + std::string(65, 'd'));
  CAPTURE(malformed);
  Result<Stamp> parsed = StampFromString(malformed);
  CHECK(parsed.status().code() == StatusCode::kInvalidArgument);
}
