// /metrics in Prometheus text format (sync/OPERATIONS.md): what the server counted, as a
// monitoring agent with the operator's token reads it.
#include <algorithm>

#include <catch2/catch.hpp>

#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

RawReply Scrape(const ServerFixture& server) {
  return RawClient(server.port(), "")
      .Get("/metrics", {{"Authorization", std::string("Bearer ") + kMetricsToken}});
}

}  // namespace

TEST_CASE("/metrics counts requests, operations and entries, and each device's last contact",
          "[server][metrics]") {
  ServerFixture server;
  auto a = server.Join("tab-a", "adviser-a", {kNorth});
  auto b = server.Join("tab-b", "adviser-b", {kNorth});
  AddParticipant(a->store(), "adviser-a", kNorth, "w-1");
  RequireSynced(*a);
  RequireSynced(*b);
  // A refused request is an error.
  RawClient stranger(server.port(), "not-a-token");
  CHECK(stranger.Send("/v1/pull", wire::PullRequest{}).status == 401);

  RawReply metrics = Scrape(server);
  REQUIRE(metrics.status == 200);
  CHECK(metrics.content_type.rfind("text/plain", 0) == 0);
  const std::string& text = metrics.body;
  INFO(text);
  CHECK(text.find("carnet_requests_total{path=\"/v1/push\",code=\"200\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("carnet_requests_total{path=\"/v1/pull\",code=\"401\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("carnet_errors_total 1\n") != std::string::npos);
  CHECK(text.find("carnet_operations_duplicate_total 0\n") != std::string::npos);
  // Tablet b pulled what a pushed.
  Result<std::string> dump = b->store().CanonicalDump(true);
  SYNC_REQUIRE_OK(dump);
  const size_t entries = static_cast<size_t>(std::count(dump->begin(), dump->end(), '\n'));
  CHECK(entries > 0);
  // At least those; tablet a may be served some of its own back (its creations scoped anew).
  const std::string served = "\ncarnet_entries_served_total ";
  REQUIRE(text.find(served) != std::string::npos);
  CHECK(std::stoull(text.substr(text.find(served) + served.size())) >= entries);
  CHECK(text.find("carnet_operations_applied_total 0\n") == std::string::npos);
  const std::string contact =
      "carnet_device_last_contact_seconds{device=\"tab-a\",revoked=\"false\"} " +
      std::to_string(server.DeviceRow("tab-a").last_contact_ms / 1000) + "\n";
  CHECK(text.find(contact) != std::string::npos);
  CHECK(text.find("# TYPE carnet_requests_total counter\n") != std::string::npos);
  CHECK(text.find("\ncarnet_register_conflicts 0\n") != std::string::npos);
}

TEST_CASE("/metrics counts the fields holding a concurrent value kept for review",
          "[server][metrics]") {
  ServerFixture server;
  auto a = server.Join("tab-a", "adviser-a", {kNorth});
  auto b = server.Join("tab-b", "adviser-b", {kNorth});
  ParticipantFile file = AddParticipant(a->store(), "adviser-a", kNorth, "w-1");
  RequireSynced(*a);
  RequireSynced(*b);
  // Both write the phone offline: one conflict. Both write the same commune: none.
  SYNC_REQUIRE_OK(a->store().Set("participants", file.participant, "phone", "0600000001"));
  SYNC_REQUIRE_OK(b->store().Set("participants", file.participant, "phone", "0600000002"));
  SYNC_REQUIRE_OK(a->store().Set("participants", file.participant, "commune", "Mende"));
  SYNC_REQUIRE_OK(b->store().Set("participants", file.participant, "commune", "Mende"));
  RequireSynced(*a);
  RequireSynced(*b);
  RequireSynced(*a);
  Result<std::vector<Conflict>> kept = a->store().Conflicts();
  SYNC_REQUIRE_OK(kept);
  REQUIRE(kept->size() == 1);

  RawReply metrics = Scrape(server);
  REQUIRE(metrics.status == 200);
  INFO(metrics.body);
  CHECK(metrics.body.find("\ncarnet_register_conflicts 1\n") != std::string::npos);
}
