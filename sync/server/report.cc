#include "carnet/report.h"

#include <cstdio>
#include <optional>
#include <vector>

#include "carnet/merge.h"
#include "carnet/schema.h"

namespace carnet {
namespace {

// The winning values of a record's registers, for the fields asked; none for a deleted record.
using Values = std::map<std::string, std::optional<std::string>>;

// Groups a collection's live entries (record by record, as LiveEntries returns them) into the
// winning register values of each record not deleted.
std::map<std::string, Values> WinningValues(const CollectionSpec& collection,
                                            const std::vector<Entry>& entries,
                                            const std::vector<std::string>& fields) {
  std::map<std::string, Values> records;
  size_t at = 0;
  while (at < entries.size()) {
    const std::string& record = entries[at].key.record;
    size_t end = at;
    bool deleted = false;
    std::map<std::string, std::vector<Entry>> heads;
    for (; end < entries.size() && entries[end].key.record == record; ++end) {
      const Entry& e = entries[end];
      if (e.key.field.empty()) deleted = true;
      heads[e.key.field].push_back(e);
    }
    if (!deleted) {
      Values& values = records[record];
      for (const std::string& name : fields) {
        const FieldSpec* field = collection.Find(name);
        auto found = heads.find(name);
        values[name] = (field == nullptr || found == heads.end())
                           ? std::nullopt
                           : RegisterWinner(field, found->second).value;
      }
    }
    at = end;
  }
  return records;
}

bool IsDate(const std::string& text) {
  const FieldSpec date{"date", FieldKind::kRegister, FieldType::kDate, Sensitivity::kPersonal,
                       {}, false};
  return ValidateValue(date, text).ok();
}

// Dates as YYYY-MM-DD compare as text.
bool Within(const std::optional<std::string>& date, const std::string& from,
            const std::string& to) {
  return date && IsDate(*date) && *date >= from && *date <= to;
}

std::string Share(uint64_t part, uint64_t whole) {
  if (whole == 0) return "";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", 100.0 * static_cast<double>(part) /
                                               static_cast<double>(whole));
  return text;
}

bool IsPositive(const std::string& category) {
  for (const char* positive : kPositiveExitCategories) {
    if (category == positive) return true;
  }
  return false;
}

// Rows of (indicator, count, share) in the order both formats print them.
struct Row {
  std::string indicator;
  uint64_t count;
  std::string share;
};

std::vector<Row> Rows(const ProgrammeReport& r) {
  std::vector<Row> rows = {{"participants_followed", r.participants_followed, ""},
                           {"entries", r.entries, ""},
                           {"exits", r.exits, ""},
                           {"positive_exits", r.positive_exits, Share(r.positive_exits, r.exits)}};
  // Positive categories: their share among positive exits; the others among all exits.
  for (const char* category : kPositiveExitCategories) {
    uint64_t count = r.exits_by_category.at(category);
    rows.push_back({std::string("positive_exits.") + category, count,
                    Share(count, r.positive_exits)});
  }
  for (const auto& [category, count] : r.exits_by_category) {
    if (!IsPositive(category)) rows.push_back({"exits." + category, count, Share(count, r.exits)});
  }
  return rows;
}

}  // namespace

Result<ProgrammeReport> ComputeProgrammeReport(ServerStore& store, const std::string& from,
                                               const std::string& to) {
  if (!IsDate(from) || !IsDate(to)) {
    return InvalidArgument("report dates are YYYY-MM-DD: '" + from + "', '" + to + "'");
  }
  if (to < from) return InvalidArgument("the report's period ends (" + to + ") before it starts (" +
                                        from + ")");
  const Schema& schema = Schema::Programme();
  const CollectionSpec* participants_spec = schema.Find("participants");
  const CollectionSpec* exits_spec = schema.Find("exits");
  Result<std::vector<Entry>> participant_entries = store.LiveEntries("participants");
  if (!participant_entries.ok()) return participant_entries.status();
  Result<std::vector<Entry>> exit_entries = store.LiveEntries("exits");
  if (!exit_entries.ok()) return exit_entries.status();
  const std::map<std::string, Values> participants =
      WinningValues(*participants_spec, *participant_entries, {"entry_date"});
  const std::map<std::string, Values> exits =
      WinningValues(*exits_spec, *exit_entries, {"participant", "exit_date", "category"});

  ProgrammeReport report;
  report.from = from;
  report.to = to;
  for (const std::string& category : exits_spec->Find("category")->values) {
    report.exits_by_category[category] = 0;
  }
  report.exits_by_category["unknown"] = 0;
  // The exit dates of each participant: one who left after their entry and before the period is
  // not followed in it.
  std::map<std::string, std::vector<std::string>> exit_dates;
  for (const auto& [id, values] : exits) {
    const std::optional<std::string>& participant = values.at("participant");
    const std::optional<std::string>& date = values.at("exit_date");
    if (participant && date && IsDate(*date)) exit_dates[*participant].push_back(*date);
    if (!Within(date, from, to)) continue;
    ++report.exits;
    const std::optional<std::string>& category = values.at("category");
    const std::string name = category ? *category : "unknown";
    ++report.exits_by_category[name];
    if (IsPositive(name)) ++report.positive_exits;
  }
  for (const auto& [id, values] : participants) {
    const std::optional<std::string>& entry = values.at("entry_date");
    if (!entry || !IsDate(*entry) || *entry > to) continue;
    if (*entry >= from) ++report.entries;
    bool left_before = false;
    for (const std::string& date : exit_dates[id]) left_before |= date >= *entry && date < from;
    if (!left_before) ++report.participants_followed;
  }
  return report;
}

std::string ReportCsv(const ProgrammeReport& report) {
  std::string csv = "indicator,count,share_percent,from,to\n";
  for (const Row& row : Rows(report)) {
    csv += row.indicator + "," + std::to_string(row.count) + "," + row.share + "," + report.from +
           "," + report.to + "\n";
  }
  return csv;
}

std::string ReportJson(const ProgrammeReport& report) {
  // Indicator names and dates are [a-z0-9_.-] only: nothing to escape.
  std::string json = "{\"from\": \"" + report.from + "\", \"to\": \"" + report.to +
                     "\", \"indicators\": [";
  bool first = true;
  for (const Row& row : Rows(report)) {
    json += std::string(first ? "" : ", ") + "{\"indicator\": \"" + row.indicator +
            "\", \"count\": " + std::to_string(row.count) +
            ", \"share_percent\": " + (row.share.empty() ? "null" : row.share) + "}";
    first = false;
  }
  return json + "]}\n";
}

}  // namespace carnet
