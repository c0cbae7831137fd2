// The programme report (sync/REPORT.md) on a data set whose figures are counted by hand, through
// the library and through `carnet-server report`, on the test store (SQLite, and PostgreSQL
// under the pg label).
#include <cstdio>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "carnet/report.h"
#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

// Runs carnet-server with `args` and returns what it printed; REQUIREs exit status 0.
std::string RunServerCommand(const std::string& args) {
  const std::string command = std::string(CARNET_SERVER_BINARY) + " " + args + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), &pclose);
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe.get())) out.append(buffer, n);
  int status = pclose(pipe.release());
  INFO(command << "\n" << out);
  REQUIRE(status == 0);
  return out;
}

struct Caseload {
  Tablet& tablet;

  std::string Participant(const std::string& entry_date) {
    std::string id = tablet->NewId();
    SYNC_REQUIRE_OK(tablet->Put("participants", id,
                                {{"referent", "adviser-a"},
                                 {"territory", kNorth},
                                 {"entry_date", entry_date},
                                 {"status", "active"}}));
    return id;
  }
  std::string Exit(const std::string& participant, const std::string& date,
                   std::optional<std::string> category) {
    std::string id = tablet->NewId();
    std::vector<std::pair<std::string, std::optional<std::string>>> fields = {
        {"participant", participant}, {"exit_date", date}};
    if (category) fields.emplace_back("category", *category);
    SYNC_REQUIRE_OK(tablet->Put("exits", id, fields));
    return id;
  }
};

}  // namespace

TEST_CASE("The programme report counts a period's participants, entries and exits to the unit",
          "[server][report]") {
  ServerFixture server;
  auto a = server.Join("tab-a", "adviser-a", {kNorth});
  Caseload caseload{*a};
  // Period: 2026-01-01 to 2026-06-30.
  std::string p1 = caseload.Participant("2025-10-01");  // followed; exit in the period
  caseload.Exit(p1, "2026-02-10", "durable_employment");
  std::string p2 = caseload.Participant("2026-01-15");  // entry
  caseload.Exit(p2, "2026-03-01", "subsidised_employment");
  std::string p3 = caseload.Participant("2026-02-01");  // entry
  caseload.Exit(p3, "2026-05-05", "temporary_employment");
  std::string p4 = caseload.Participant("2025-06-01");  // left before the period: not followed
  caseload.Exit(p4, "2025-12-15", "training");
  caseload.Participant("2026-03-10");                   // entry, no exit
  caseload.Participant("2026-07-05");                   // after the period: nothing
  std::string p7 = caseload.Participant("2025-01-01");  // exit on the last day, not positive
  caseload.Exit(p7, "2026-06-30", "other");
  std::string p8 = caseload.Participant("2026-04-01");  // entry; exit without category yet
  caseload.Exit(p8, "2026-04-20", std::nullopt);
  std::string p9 = caseload.Participant("2026-02-02");  // deleted: nothing
  SYNC_REQUIRE_OK((*a)->Delete("participants", p9));
  std::string p10 = caseload.Participant("2026-05-01");  // entry; one exit, one deleted
  caseload.Exit(p10, "2026-06-01", "training");
  std::string deleted_exit = caseload.Exit(p10, "2026-06-02", "durable_employment");
  SYNC_REQUIRE_OK((*a)->Delete("exits", deleted_exit));
  std::string p11 = caseload.Participant("2025-12-31");  // corrected into the period: entry
  SYNC_REQUIRE_OK((*a)->Set("participants", p11, "entry_date", "2026-01-02"));
  // An exit re-dated out of the period, then its category corrected.
  std::string p12 = caseload.Participant("2025-03-01");  // left before: not followed
  std::string redated = caseload.Exit(p12, "2026-01-20", "durable_employment");
  SYNC_REQUIRE_OK((*a)->Set("exits", redated, "exit_date", "2025-11-30"));
  SYNC_REQUIRE_OK((*a)->Set("exits", redated, "category", "other"));
  RequireSynced(*a);

  Result<ProgrammeReport> report = ComputeProgrammeReport(server.store(), "2026-01-01",
                                                          "2026-06-30");
  SYNC_REQUIRE_OK(report);
  CHECK(report->participants_followed == 8);  // p1 p2 p3 p5 p7 p8 p10 p11
  CHECK(report->entries == 6);                // p2 p3 p5 p8 p10 p11
  CHECK(report->exits == 6);                  // p1 p2 p3 p7 p8 p10
  CHECK(report->positive_exits == 4);
  CHECK(report->exits_by_category.at("durable_employment") == 1);
  CHECK(report->exits_by_category.at("subsidised_employment") == 1);
  CHECK(report->exits_by_category.at("temporary_employment") == 1);
  CHECK(report->exits_by_category.at("training") == 1);
  CHECK(report->exits_by_category.at("other") == 1);
  CHECK(report->exits_by_category.at("unknown") == 1);

  const std::string csv = RunServerCommand("report --store '" + server.store_spec() +
                                           "' --from 2026-01-01 --to 2026-06-30");
  CHECK(csv ==
        "indicator,count,share_percent,from,to\n"
        "participants_followed,8,,2026-01-01,2026-06-30\n"
        "entries,6,,2026-01-01,2026-06-30\n"
        "exits,6,,2026-01-01,2026-06-30\n"
        "positive_exits,4,66.7,2026-01-01,2026-06-30\n"
        "positive_exits.durable_employment,1,25.0,2026-01-01,2026-06-30\n"
        "positive_exits.subsidised_employment,1,25.0,2026-01-01,2026-06-30\n"
        "positive_exits.temporary_employment,1,25.0,2026-01-01,2026-06-30\n"
        "positive_exits.training,1,25.0,2026-01-01,2026-06-30\n"
        "exits.other,1,16.7,2026-01-01,2026-06-30\n"
        "exits.unknown,1,16.7,2026-01-01,2026-06-30\n");
  const std::string json = RunServerCommand("report --store '" + server.store_spec() +
                                            "' --from 2026-01-01 --to 2026-06-30 --format json");
  CHECK(json.find("{\"indicator\": \"positive_exits\", \"count\": 4, \"share_percent\": 66.7}") !=
        std::string::npos);
  CHECK(json.find("{\"indicator\": \"entries\", \"count\": 6, \"share_percent\": null}") !=
        std::string::npos);

  // A period without exits: shares left empty, not divided by zero.
  Result<ProgrammeReport> empty = ComputeProgrammeReport(server.store(), "2030-01-01", "2030-12-31");
  SYNC_REQUIRE_OK(empty);
  CHECK(empty->exits == 0);
  CHECK(ReportCsv(*empty).find("positive_exits,0,,") != std::string::npos);
}

TEST_CASE("The programme report refuses a malformed period", "[server][report]") {
  ServerFixture server;
  CHECK(ComputeProgrammeReport(server.store(), "2026-13-01", "2026-12-31").status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(ComputeProgrammeReport(server.store(), "2026-06-30", "2026-01-01").status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(ComputeProgrammeReport(server.store(), "yesterday", "2026-01-01").status().code() ==
        StatusCode::kInvalidArgument);
}
