// Employers and company visits (DOMAIN.md), and the in-work follow-up that names its employer.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/store.h"
#include "tests/core/store_helpers.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

struct TwoTablets : OneTablet {
  Replica b{dir, "tab-b", kStartMs, 2};

  void RecordEmployer(Replica& tablet) {
    REQUIRE_OK(tablet->Put("employers", "e1",
                           {{"name", "Boulangerie Martin"},
                            {"siret", "73282932000074"},
                            {"commune", "Saint-Pol"},
                            {"sector", "food retail"},
                            {"contact_name", "Mme Martin"},
                            {"territory", "nord"}}));
  }
};

}  // namespace

TEST_CASE_METHOD(TwoTablets, "A prospecting visit to an employer is recorded with no participant",
                 "[core][employers]") {
  RecordEmployer(a);
  REQUIRE_OK(a->Put("company_visits", "v1",
                    {{"employer", "e1"},
                     {"adviser", "adv-1"},
                     {"date", "2025-11-20"},
                     {"purpose", "prospecting"},
                     {"territory", "nord"}}));
  REQUIRE(
      a->Append("company_visits", "v1", "notes", "Two bakers' assistants wanted in March.").ok());

  Record visit = GetRecord(a.store(), "company_visits", "v1");
  CHECK(visit.fields.at("employer").value == "e1");
  CHECK(visit.fields.at("purpose").value == "prospecting");
  CHECK(visit.fields.count("participants") == 0);
  CHECK(visit.fields.at("notes").entries.size() == 1);
  CHECK(GetRecord(a.store(), "employers", "e1").fields.at("siret").value == "73282932000074");
  CHECK(a->Set("company_visits", "v1", "purpose", "lunch").code() == StatusCode::kInvalidArgument);
  CHECK(a->Set("company_visits", "v1", "date", "2025-13-01").code() ==
        StatusCode::kInvalidArgument);
  CHECK(a->Add("company_visits", "v1", "participants", "not an id").code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE_METHOD(TwoTablets, "Profiles proposed at one visit from two tablets offline are all kept",
                 "[core][employers]") {
  RecordEmployer(a);
  REQUIRE_OK(a->Put("company_visits", "v1",
                    {{"employer", "e1"}, {"purpose", "placement"}, {"territory", "nord"}}));
  Deliver(a.store(), b.store());
  REQUIRE_OK(a->Add("company_visits", "v1", "participants", "p1"));
  REQUIRE_OK(b->Add("company_visits", "v1", "participants", "p2"));
  ExchangeAll({&a.store(), &b.store()});

  CHECK(Dump(a.store()) == Dump(b.store()));
  CHECK(GetRecord(b.store(), "company_visits", "v1").fields.at("participants").elements ==
        std::vector<std::string>{"p1", "p2"});
}

TEST_CASE_METHOD(TwoTablets,
                 "A follow-up names its employer, a CAE or a CIE, and how its interviews were held",
                 "[core][employers]") {
  RecordEmployer(a);
  REQUIRE_OK(a->Put("followups", "f1",
                    {{"participant", "p1"},
                     {"employer_id", "e1"},
                     {"contract", "subsidised_cie"},
                     {"start_date", "2025-10-01"},
                     {"month_1_date", "2025-10-28"},
                     {"month_1_format", "tripartite"},
                     {"month_5_format", "bipartite"}}));
  Record f1 = GetRecord(a.store(), "followups", "f1");
  CHECK(f1.fields.at("employer_id").value == "e1");
  CHECK(f1.fields.at("contract").value == "subsidised_cie");
  CHECK(f1.fields.at("month_1_format").value == "tripartite");
  CHECK(f1.fields.at("month_5_format").value == "bipartite");
  REQUIRE_OK(a->Set("followups", "f1", "contract", "subsidised_cae"));
  CHECK(a->Set("followups", "f1", "month_1_format", "by_phone").code() ==
        StatusCode::kInvalidArgument);
  CHECK(a->Set("followups", "f1", "employer_id", "Boulangerie Martin").code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE_METHOD(TwoTablets,
                 "Erasing a participant takes them out of the visits that proposed them",
                 "[core][employers]") {
  RecordEmployer(a);
  REQUIRE_OK(a->Put("participants", "p1", {{"first_name", "Nadia"}}));
  REQUIRE_OK(a->Put("company_visits", "v1", {{"employer", "e1"}, {"territory", "nord"}}));
  REQUIRE_OK(a->Add("company_visits", "v1", "participants", "p1"));
  REQUIRE_OK(a->Add("company_visits", "v1", "participants", "p2"));
  REQUIRE_OK(a->AcknowledgeOperations(Outbox(a.store()).back().seq));

  REQUIRE_OK(a->Erase("p1"));

  CHECK(GetRecord(a.store(), "company_visits", "v1").fields.at("participants").elements ==
        std::vector<std::string>{"p2"});
  CHECK(GetRecord(a.store(), "employers", "e1").fields.at("name").value == "Boulangerie Martin");
}
