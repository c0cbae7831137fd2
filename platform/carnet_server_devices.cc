#include "platform/carnet_server_devices.h"

#include <cstdio>

#include "platform/carnet_server_text.h"

namespace carnet::server_cli {
namespace {

constexpr int64_t kHourMs = 60 * 60 * 1000;

const char* StateOf(const Device& d) {
  if (d.wipe_confirmed_ms != 0) return "wiped";
  if (d.revoked) return "revoked";
  if (d.token_issued_ms == 0 && d.code_expires_ms != 0) return "awaiting_enrollment";
  return "enrolled";
}

// A time as a JSON value: null for none.
std::string JsonTime(int64_t ms) { return ms == 0 ? "null" : Json(UtcTime(ms)); }

}  // namespace

int Enroll(ServerStore* store, Env* env, const Device& device, const std::string& code_hours) {
  int64_t hours = 72;
  if (!code_hours.empty()) {
    if (code_hours.size() > 4 || code_hours.find_first_not_of("0123456789") != std::string::npos ||
        std::stoll(code_hours) == 0) {
      return Fail(InvalidArgument("--code-hours '" + code_hours +
                                  "': a whole number of hours, "
                                  "from 1 to 9999"));
    }
    hours = std::stoll(code_hours);
  }
  const std::string code = NewEnrollmentCode(env);
  const int64_t expires_ms = env->NowMillis() + hours * kHourMs;
  Status created =
      store->CreateEnrollmentCode(device, HashToken(NormalizeEnrollmentCode(code)), expires_ms);
  if (!created.ok()) return Fail(created);
  // The code alone on stdout, for scripts; what it is for on stderr, for the administrator.
  std::printf("%s\n", code.c_str());
  std::fprintf(stderr,
               "carnet-server: enrollment code for device %s (adviser %s), valid once, until %s; "
               "type it into the tablet\n",
               device.id.c_str(), device.adviser.c_str(), UtcTime(expires_ms).c_str());
  return 0;
}

int EnrollWithToken(ServerStore* store, Env* env, const Device& device,
                    const std::string& token_days) {
  int64_t days = 90;
  if (!token_days.empty()) {
    if (token_days.size() > 4 || token_days.find_first_not_of("0123456789") != std::string::npos) {
      return Fail(
          InvalidArgument("--token-days '" + token_days + "': a whole number of days, 0 for ever"));
    }
    days = std::stoll(token_days);
  }
  const std::string token = NewDeviceToken(env);
  const int64_t expires_ms = days == 0 ? 0 : env->NowMillis() + days * 24 * kHourMs;
  Status enrolled = store->Enroll(device, HashToken(token), expires_ms);
  if (!enrolled.ok()) return Fail(enrolled);
  std::printf("%s\n", token.c_str());
  return 0;
}

int Devices(ServerStore* store) {
  Result<std::vector<Device>> devices = store->Devices();
  if (!devices.ok()) return Fail(devices.status());
  for (const Device& d : *devices) {
    std::string territories;
    for (const std::string& t : d.territories) {
      territories += (territories.empty() ? "" : ",") + Json(t);
    }
    std::printf(
        "{\"device\":%s,\"adviser\":%s,\"territories\":[%s],\"state\":\"%s\",\"revoked\":%s,"
        "\"cursor\":%llu,\"acknowledged_seq\":%llu,\"last_contact_ms\":%lld,"
        "\"token_expires\":%s,\"code_expires\":%s,\"revoked_at\":%s,\"wipe_confirmed_at\":%s}\n",
        Json(d.id).c_str(), Json(d.adviser).c_str(), territories.c_str(), StateOf(d),
        d.revoked ? "true" : "false", static_cast<unsigned long long>(d.cursor),
        static_cast<unsigned long long>(d.acknowledged_seq),
        static_cast<long long>(d.last_contact_ms), JsonTime(d.token_expires_ms).c_str(),
        JsonTime(d.code_expires_ms).c_str(), JsonTime(d.revoked_ms).c_str(),
        JsonTime(d.wipe_confirmed_ms).c_str());
  }
  return 0;
}

}  // namespace carnet::server_cli
