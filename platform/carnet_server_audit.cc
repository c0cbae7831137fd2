#include "platform/carnet_server_audit.h"

#include <cstdio>
#include <ctime>
#include <optional>

#include "carnet/audit.h"
#include "platform/carnet_server_text.h"
#include "platform/json_writer.h"

namespace carnet::server_cli {
namespace {

int Usage(const char* message) {
  std::fprintf(stderr, "carnet-server: %s\n", message);
  return 2;
}

Result<int64_t> ParseSince(const std::string& text) {
  if (!text.empty() && text.size() <= 15 &&
      text.find_first_not_of("0123456789") == std::string::npos) {
    return static_cast<int64_t>(std::stoll(text));
  }
  const Status wrong = InvalidArgument("--since '" + text +
                                       "': 2026-11-20, 2026-11-20T09:30:00Z (UTC) or milliseconds");
  std::tm tm{};
  int date_end = 0, time_end = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &date_end) !=
      3) {
    return wrong;
  }
  if (static_cast<size_t>(date_end) != text.size() &&
      (std::sscanf(text.c_str() + date_end, "T%2d:%2d:%2dZ%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
                   &time_end) != 3 ||
       static_cast<size_t>(date_end + time_end) != text.size())) {
    return wrong;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

int Verify(ServerStore* store, const AuditOptions& options) {
  if (!options.device.empty() || !options.record.empty() || !options.since.empty()) {
    return Usage("--verify checks the whole log: it takes no --device, --record or --since");
  }
  std::optional<AuditHead> anchor;
  if (!options.anchor.empty()) {
    const size_t colon = options.anchor.find(':');
    if (colon == 0 || colon > 15 || options.anchor.find_first_not_of("0123456789") != colon ||
        options.anchor.size() != colon + 65) {
      return Usage("--anchor ID:HASH, a row's id and its 64 hex digits, as --verify prints them");
    }
    anchor =
        AuditHead{std::stoull(options.anchor.substr(0, colon)), options.anchor.substr(colon + 1)};
  }
  Result<AuditCheck> check = VerifyAudit(*store, anchor);
  if (!check.ok()) return Fail(check.status());
  if (!check->intact) {
    std::fprintf(stderr, "carnet-server: audit log broken at row %llu: %s\n",
                 static_cast<unsigned long long>(check->broken_at), check->problem.c_str());
    return 3;
  }
  std::printf("audit log intact: %llu rows; head %llu:%s\n",
              static_cast<unsigned long long>(check->rows),
              static_cast<unsigned long long>(check->head.last_id), check->head.hash.c_str());
  return 0;
}

}  // namespace

int Audit(ServerStore* store, const AuditOptions& options) {
  if (options.verify) return Verify(store, options);
  if (!options.anchor.empty()) return Usage("--anchor goes with --verify");
  AuditFilter filter;
  filter.device = options.device;
  filter.record = options.record;
  if (!options.since.empty()) {
    Result<int64_t> since = ParseSince(options.since);
    if (!since.ok()) return Fail(since.status());
    filter.since_ms = *since;
  }
  for (uint64_t after = 0;;) {
    Result<std::vector<AuditRow>> rows = store->ReadAudit(filter, after, 1000);
    if (!rows.ok()) return Fail(rows.status());
    if (rows->empty()) return 0;
    for (const AuditRow& r : *rows) {
      JsonWriter json;
      json.BeginObject().Key("id").Uint(r.id).Key("at").String(UtcTime(r.at_ms));
      json.Key("device").String(r.device).Key("adviser").String(r.adviser);
      json.Key("action").String(r.action).Key("collection").String(r.collection);
      json.Key("record").String(r.record).Key("field").String(r.field);
      json.Key("count").Uint(r.count).Key("hash").String(r.hash).EndObject();
      std::printf("%s\n", json.text().c_str());
    }
    after = rows->back().id;
  }
}

}  // namespace carnet::server_cli
