// Devices and their credentials on the server (sync/PROTOCOL.md, Devices): one-time enrollment
// codes, tokens renewed at their first use and expiring, a revoked device told to wipe. Raw
// requests to the in-process server, on its own clock; on SQLite and on PostgreSQL.
#include <algorithm>
#include <cctype>

#include <catch2/catch.hpp>

#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

constexpr int64_t kHourMs = 3600 * 1000;
constexpr int64_t kDayMs = 24 * kHourMs;

void CheckRefused(const RawReply& reply, int status, const std::string& code) {
  INFO("reply " << reply.status << " " << reply.code << ": " << reply.body.substr(0, 200));
  CHECK(reply.status == status);
  CHECK(reply.code == code);
}

template <typename Message>
Message Decoded(const RawReply& reply) {
  INFO("reply " << reply.status << " " << reply.code << ": " << reply.body.substr(0, 200));
  REQUIRE(reply.status == 200);
  Message message;
  SYNC_REQUIRE_OK(wire::Decode(reply.body, wire::Format::kJson, &message));
  return message;
}

// A code for `device` from the store, as `carnet-server enroll` makes one.
std::string NewCode(ServerFixture& server, const std::string& device, int64_t valid_ms) {
  std::string code = NewEnrollmentCode(&server.env());
  SYNC_REQUIRE_OK(server.store().CreateEnrollmentCode(
      {device, "adviser-a", {kNorth}}, HashToken(NormalizeEnrollmentCode(code)),
      server.env().NowMillis() + valid_ms));
  return code;
}

RawReply Redeem(ServerFixture& server, const std::string& device, const std::string& code) {
  return RawClient(server.port(), "")
      .Send("/v1/enroll", wire::EnrollRequest{wire::kProtocolVersion, device, code});
}

RawReply PullWith(ServerFixture& server, const std::string& token) {
  return RawClient(server.port(), token).Send("/v1/pull", wire::PullRequest{});
}

Device DeviceOf(ServerFixture& server, const std::string& id) {
  Result<std::vector<Device>> devices = server.store().Devices();
  SYNC_REQUIRE_OK(devices);
  for (const Device& d : *devices) {
    if (d.id == id) return d;
  }
  FAIL("no device " << id);
  return {};
}

}  // namespace

TEST_CASE("An enrollment code serves its device until the token it gave is used, before it expires",
          "[sync][server][enroll]") {
  ServerFixture server;
  std::string code = NewCode(server, "tab-e", kHourMs);
  REQUIRE(code.size() == 23);  // four groups of five, dashed
  CHECK(DeviceOf(server, "tab-e").token_issued_ms == 0);

  // Typed as a person types it: lower case, a space for a dash.
  std::string typed = code;
  std::transform(typed.begin(), typed.end(), typed.begin(),
                 [](char c) { return c == '-' ? ' ' : static_cast<char>(std::tolower(c)); });
  // The first reply is lost: the tablet exchanges the code again, and the last token counts.
  wire::TokenReply lost = Decoded<wire::TokenReply>(Redeem(server, "tab-e", code));
  wire::TokenReply token = Decoded<wire::TokenReply>(Redeem(server, "tab-e", typed));
  CheckRefused(PullWith(server, lost.token), 401, "unauthenticated");
  CHECK(PullWith(server, token.token).status == 200);  // its first use spends the code
  RawReply again = Redeem(server, "tab-e", code);
  std::string other = NewCode(server, "tab-f", 2 * kHourMs);
  RawReply wrong_device = Redeem(server, "tab-e", other);
  std::string late = NewCode(server, "tab-g", kHourMs);
  server.env().Advance(kHourMs + 1);
  RawReply expired = Redeem(server, "tab-g", late);
  RawReply malformed = Redeem(server, "tab-f", "not-a-code");

  CHECK(token.token.size() == 64);
  CHECK(token.token_expires_ms == token.server_time_ms + ServerOptions{}.token_lifetime_ms);
  CHECK(PullWith(server, token.token).status == 200);
  CHECK(PullWith(server, lost.token).status == 401);
  CheckRefused(again, 401, "unauthenticated");
  CHECK_THAT(again.body, Catch::Contains("used already"));
  CheckRefused(wrong_device, 401, "unauthenticated");
  CheckRefused(expired, 401, "unauthenticated");
  CheckRefused(malformed, 400, "invalid_argument");
  // The codes refused are not spent: tab-f's still serves.
  wire::TokenReply f_token = Decoded<wire::TokenReply>(Redeem(server, "tab-f", other));
  CHECK(PullWith(server, f_token.token).status == 200);
  Device enrolled = DeviceOf(server, "tab-e");
  CHECK(enrolled.token_issued_ms != 0);
  CHECK(enrolled.code_expires_ms == 0);
}

TEST_CASE("A token is renewed past half its life, the next one replacing it at its first use",
          "[sync][server][enroll]") {
  ServerFixture server;
  server.tune_server = [](ServerOptions* options) { options->token_lifetime_ms = 10 * kDayMs; };
  server.Restart();
  std::string first =
      Decoded<wire::TokenReply>(Redeem(server, "tab-e", NewCode(server, "tab-e", kHourMs))).token;

  CHECK_FALSE(Decoded<wire::PullReply>(PullWith(server, first)).rotate_token);
  server.env().Advance(6 * kDayMs);
  CHECK(Decoded<wire::PullReply>(PullWith(server, first)).rotate_token);
  RawClient raw(server.port(), first);
  RawReply for_other = raw.Send("/v1/token", wire::TokenRequest{wire::kProtocolVersion, "tab-x"});
  // A reply lost: the tablet asks again, and only the last next token counts.
  std::string lost =
      Decoded<wire::TokenReply>(
          raw.Send("/v1/token", wire::TokenRequest{wire::kProtocolVersion, "tab-e"}))
          .token;
  wire::TokenReply next = Decoded<wire::TokenReply>(
      raw.Send("/v1/token", wire::TokenRequest{wire::kProtocolVersion, "tab-e"}));

  CheckRefused(for_other, 403, "permission_denied");
  CheckRefused(PullWith(server, lost), 401, "unauthenticated");
  CHECK(PullWith(server, first).status == 200);  // until the next one is used
  CHECK_FALSE(Decoded<wire::PullReply>(PullWith(server, next.token)).rotate_token);
  CheckRefused(PullWith(server, first), 401, "unauthenticated");
  CHECK(DeviceOf(server, "tab-e").token_expires_ms == next.token_expires_ms);

  server.env().Advance(10 * kDayMs + 1);
  RawReply expired = PullWith(server, next.token);
  CheckRefused(expired, 401, "unauthenticated");
  CHECK_THAT(expired.body, Catch::Contains("expired"));
  // Revoked, the tablet is still told to wipe, however old its token.
  SYNC_REQUIRE_OK(server.store().Revoke("tab-e"));
  CheckRefused(PullWith(server, next.token), 410, "device_revoked");
}

TEST_CASE("A new code for an enrolled device keeps its scope, and a revoked one gets none",
          "[sync][server][enroll]") {
  ServerFixture server;
  std::string first =
      Decoded<wire::TokenReply>(Redeem(server, "tab-e", NewCode(server, "tab-e", kHourMs))).token;
  CHECK(PullWith(server, first).status == 200);         // enrolled
  std::string code = NewCode(server, "tab-e", kHourMs);  // the tablet's key storage was lost
  CHECK(PullWith(server, first).status == 200);         // valid until the code's token is used
  std::string second = Decoded<wire::TokenReply>(Redeem(server, "tab-e", code)).token;
  CHECK(PullWith(server, first).status == 200);  // until the new token is used

  CHECK(PullWith(server, second).status == 200);
  CheckRefused(PullWith(server, first), 401, "unauthenticated");
  CheckRefused(Redeem(server, "tab-e", code), 401, "unauthenticated");
  Status other_scope = server.store().CreateEnrollmentCode(
      {"tab-e", "adviser-b", {kNorth}}, HashToken("x"), server.env().NowMillis() + kHourMs);
  CHECK(other_scope.code() == StatusCode::kInvalidArgument);
  SYNC_REQUIRE_OK(server.store().Revoke("tab-e"));
  Status revoked = server.store().CreateEnrollmentCode(
      {"tab-e", "adviser-a", {kNorth}}, HashToken("y"), server.env().NowMillis() + kHourMs);
  CHECK(revoked.code() == StatusCode::kFailedPrecondition);
}
