// The programme report (issue "Central records at scale", ../shared/DOMAIN.md, Programme
// indicators): computed on the server from the synced records, for a period. The definitions
// are in sync/REPORT.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "carnet/server_store.h"
#include "carnet/status.h"

namespace carnet {

// Exit categories that count as positive exits (DOMAIN.md), in the order the report lists them.
inline constexpr const char* kPositiveExitCategories[] = {
    "durable_employment", "subsidised_employment", "temporary_employment", "training"};

struct ProgrammeReport {
  std::string from;  // first day of the period, YYYY-MM-DD
  std::string to;    // last day, included
  uint64_t participants_followed = 0;
  uint64_t entries = 0;
  uint64_t exits = 0;
  uint64_t positive_exits = 0;
  // Exits of the period by category: the schema's categories, and "unknown" for an exit whose
  // category is not set yet. Every category is present, zero or not.
  std::map<std::string, uint64_t> exits_by_category;
};

// kInvalidArgument for a date that is not YYYY-MM-DD or a period that ends before it starts.
Result<ProgrammeReport> ComputeProgrammeReport(ServerStore& store, const std::string& from,
                                               const std::string& to);

// Shares are percentages with one decimal, "" when their denominator is zero.
std::string ReportCsv(const ProgrammeReport& report);
std::string ReportJson(const ProgrammeReport& report);

}  // namespace carnet
