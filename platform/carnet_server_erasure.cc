#include "platform/carnet_server_erasure.h"

#include <cstdio>

#include "platform/carnet_server_text.h"

namespace carnet::server_cli {

Result<std::optional<RetentionPolicy>> ParseRetention(const std::string& days,
                                                      const std::string& action, bool allow_off) {
  RetentionPolicy policy;
  if (!days.empty()) {
    if (days.size() > 6 || days.find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgument("retention days '" + days + "': a whole number of days");
    }
    policy.days = std::stoll(days);
    if (policy.days == 0) {
      if (allow_off) return std::optional<RetentionPolicy>();
      return InvalidArgument("retention days: at least 1");
    }
  }
  if (action == "erase") {
    policy.action = RetentionAction::kErase;
  } else if (!action.empty() && action != "forget") {
    return InvalidArgument("retention action '" + action + "': forget or erase");
  }
  return std::optional<RetentionPolicy>(policy);
}

namespace {

// After Erase's own try: waits up to `wait_s` seconds for the store's files to be scrubbed;
// kExitNotScrubbed, said, when they are not.
int Scrub(ServerStore* store, bool scrubbed, const std::string& what, const std::string& wait_s) {
  int64_t wait = 10;
  if (!wait_s.empty()) {
    if (wait_s.size() > 4 || wait_s.find_first_not_of("0123456789") != std::string::npos) {
      return Fail(InvalidArgument("--scrub-wait '" + wait_s + "': a whole number of seconds"));
    }
    wait = std::stoll(wait_s);
  }
  if (!scrubbed) {
    Result<bool> now = store->ScrubErasures(wait * 1000);
    if (!now.ok()) return Fail(now.status());
    scrubbed = *now;
  }
  if (scrubbed) return 0;
  std::printf("%s recorded but not yet scrubbed: a reader (a backup?) holds the store's WAL, and "
              "the store's files still hold what was erased; carnet-server erasure-status "
              "scrubs it once the reader is gone\n",
              what.c_str());
  return kExitNotScrubbed;
}

}  // namespace

int Erase(ServerStore* store, const std::string& participant, const std::string& ordered_by,
          const std::string& scrub_wait) {
  if (participant.empty()) return Fail(InvalidArgument("erase needs --participant ID"));
  // The erasure list keeps who ordered each erasure: the controller must be able to show it.
  if (ordered_by.empty()) {
    return Fail(InvalidArgument("erase needs --by NAME: who ordered the erasure"));
  }
  Result<ErasureReport> report = store->Erase(participant, ordered_by);
  if (!report.ok()) return Fail(report.status());
  if (report->already) {
    std::printf("participant %s was erased already: see erasure-status\n", participant.c_str());
    return 0;
  }
  std::string devices;
  for (const std::string& d : report->devices) devices += " " + d;
  std::printf("erased participant %s: %llu records, %llu entries; erasure order sent to %zu "
              "tablets:%s\n",
              participant.c_str(), static_cast<unsigned long long>(report->records),
              static_cast<unsigned long long>(report->entries), report->devices.size(),
              devices.c_str());
  return Scrub(store, report->scrubbed, "erasure of " + participant, scrub_wait);
}

int ErasureStatus(ServerStore* store, const std::string& participant) {
  // Scrubs what erasures blocked by a reader left: a second to get past the server's writes.
  if (Result<bool> scrubbed = store->ScrubErasures(1000); !scrubbed.ok()) {
    return Fail(scrubbed.status());
  }
  Result<std::vector<ErasureState>> list = store->Erasures(participant);
  if (!list.ok()) return Fail(list.status());
  if (!participant.empty() && list->empty()) {
    return Fail(Status(StatusCode::kNotFound, "participant " + participant + " is not erased"));
  }
  for (const ErasureState& e : *list) {
    size_t confirmed = 0;
    for (const ErasureOrderState& d : e.devices) confirmed += d.confirmed_ms.has_value();
    std::printf("%s erased %s by %s: %llu records; %zu of %zu tablets confirmed\n",
                e.participant.c_str(), UtcTime(e.at_ms).c_str(), e.ordered_by.c_str(),
                static_cast<unsigned long long>(e.records), confirmed, e.devices.size());
    if (e.scrubbed_ms) {
      std::printf("  scrubbed %s\n", UtcTime(*e.scrubbed_ms).c_str());
    } else if (e.scrub_pending) {
      std::printf("  not yet scrubbed: a reader holds the store's WAL\n");
    }
    for (const ErasureOrderState& d : e.devices) {
      if (d.confirmed_ms) {
        std::printf("  %s confirmed %s\n", d.device.c_str(), UtcTime(*d.confirmed_ms).c_str());
      } else {
        std::printf("  %s owed%s\n", d.device.c_str(), d.revoked ? " (revoked: told to wipe)" : "");
      }
    }
  }
  return 0;
}

int Retention(ServerStore* store, const RetentionPolicy& policy, bool dry_run,
              const std::string& scrub_wait) {
  Result<RetentionReport> report = store->ApplyRetention(policy, dry_run);
  if (!report.ok()) return Fail(report.status());
  const char* verb = dry_run ? "would retire"
                     : policy.action == RetentionAction::kErase ? "erased"
                                                                : "retired";
  for (const RetentionReport::Item& item : report->retired) {
    std::printf("%s %s (last contact %s)\n", verb, item.participant.c_str(),
                UtcTime(item.last_contact_ms).c_str());
  }
  for (const RetentionReport::Item& item : report->reactivated) {
    std::printf("%s %s (last contact %s)\n", dry_run ? "would bring back" : "brought back",
                item.participant.c_str(), UtcTime(item.last_contact_ms).c_str());
  }
  std::printf("%zu participants %s after %lld days without contact, %zu %s\n",
              report->retired.size(), verb, static_cast<long long>(policy.days),
              report->reactivated.size(),
              dry_run ? "would come back" : "back in scope");
  if (dry_run || report->retired.empty() || policy.action != RetentionAction::kErase) return 0;
  return Scrub(store, report->scrubbed, "the erasures", scrub_wait);
}

}  // namespace carnet::server_cli
