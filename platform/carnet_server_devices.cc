#include "platform/carnet_server_devices.h"

#include <cstdio>

#include "platform/carnet_server_text.h"
#include "platform/json_writer.h"

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
void WriteTime(JsonWriter& json, const char* key, int64_t ms) {
  json.Key(key);
  if (ms == 0) {
    json.Null();
  } else {
    json.String(UtcTime(ms));
  }
}

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
    JsonWriter json;
    json.BeginObject().Key("device").String(d.id).Key("adviser").String(d.adviser);
    json.Key("territories").BeginArray();
    for (const std::string& t : d.territories) json.String(t);
    json.EndArray().Key("state").String(StateOf(d)).Key("revoked").Bool(d.revoked);
    json.Key("cursor").Uint(d.cursor).Key("acknowledged_seq").Uint(d.acknowledged_seq);
    json.Key("last_contact_ms").Int(d.last_contact_ms);
    WriteTime(json, "token_expires", d.token_expires_ms);
    WriteTime(json, "code_expires", d.code_expires_ms);
    WriteTime(json, "revoked_at", d.revoked_ms);
    WriteTime(json, "wipe_confirmed_at", d.wipe_confirmed_ms);
    std::printf("%s\n", json.EndObject().text().c_str());
  }
  return 0;
}

}  // namespace carnet::server_cli
