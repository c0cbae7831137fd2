// Employers and company visits go by territory, like workshops (sync/PROTOCOL.md, Scope).
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

TEST_CASE("Employers and company visits reach the tablets of their territory and no other",
          "[server][employers]") {
  ServerFixture server;
  std::unique_ptr<Tablet> a = server.Join("tab-a", "adviser-a", {kNorth});
  std::unique_ptr<Tablet> b = server.Join("tab-b", "adviser-b", {kNorth});
  std::unique_ptr<Tablet> c = server.Join("tab-c", "adviser-c", {kSouth});

  const std::string employer = (*a)->NewId(), visit = (*a)->NewId(), far = (*a)->NewId();
  const std::string participant = (*a)->NewId(), followup = (*a)->NewId();
  SYNC_REQUIRE_OK(
      (*a)->Put("employers", employer, {{"name", "Boulangerie Martin"}, {"territory", kNorth}}));
  SYNC_REQUIRE_OK((*a)->Put("employers", far, {{"name", "Garage Roux"}, {"territory", kSouth}}));
  SYNC_REQUIRE_OK((*a)->Put("company_visits", visit,
                            {{"employer", employer},
                             {"adviser", "adviser-a"},
                             {"purpose", "prospecting"},
                             {"territory", kNorth}}));
  SYNC_REQUIRE_OK(
      (*a)->Put("participants", participant, {{"referent", "adviser-a"}, {"territory", kNorth}}));
  SYNC_REQUIRE_OK((*a)->Put("followups", followup,
                            {{"participant", participant},
                             {"employer_id", employer},
                             {"contract", "subsidised_cae"},
                             {"month_1_format", "tripartite"}}));
  RequireSynced(*a);
  RequireSynced(*b);
  RequireSynced(*c);

  CHECK(Holds(*b, "employers", employer));
  CHECK(Holds(*b, "company_visits", visit));
  CHECK_FALSE(Holds(*b, "employers", far));
  CHECK(Holds(*b, "followups", followup));
  CHECK(Holds(*c, "employers", far));
  CHECK_FALSE(Holds(*c, "employers", employer));
  CHECK_FALSE(Holds(*c, "company_visits", visit));
  CHECK_FALSE(Holds(*a, "employers", far));  // handed to the south's territory

  // b proposes a profile at the visit; a sees it.
  SYNC_REQUIRE_OK((*b)->Add("company_visits", visit, "participants", participant));
  RequireSynced(*b);
  RequireSynced(*a);
  Result<Record> on_a = (*a)->Get("company_visits", visit);
  SYNC_REQUIRE_OK(on_a);
  CHECK(on_a->fields.at("participants").elements == std::vector<std::string>{participant});
  CHECK_IN_SCOPE(server, *a);
  CHECK_IN_SCOPE(server, *b);
  CHECK_IN_SCOPE(server, *c);

  // An employer moved to the south leaves the north's tablets.
  SYNC_REQUIRE_OK((*b)->Set("employers", employer, "territory", kSouth));
  RequireSynced(*b);
  RequireSynced(*a);
  RequireSynced(*c);
  CHECK_FALSE(Holds(*a, "employers", employer));
  CHECK(Holds(*c, "employers", employer));
}
