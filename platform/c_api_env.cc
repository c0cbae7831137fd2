// The C API's errors, version, memory and environment (the host's callbacks).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <utility>

#include "platform/c_api_internal.h"
#include "platform/c_api_json.h"

namespace carnet::capi {
namespace {

// The C codes are the C++ ones: a code crosses the boundary as its number.
static_assert(CARNET_OK == static_cast<int>(StatusCode::kOk));
static_assert(CARNET_INVALID_ARGUMENT == static_cast<int>(StatusCode::kInvalidArgument));
static_assert(CARNET_NOT_FOUND == static_cast<int>(StatusCode::kNotFound));
static_assert(CARNET_ALREADY_EXISTS == static_cast<int>(StatusCode::kAlreadyExists));
static_assert(CARNET_FAILED_PRECONDITION == static_cast<int>(StatusCode::kFailedPrecondition));
static_assert(CARNET_CLOCK_SKEW == static_cast<int>(StatusCode::kClockSkew));
static_assert(CARNET_RESOURCE_EXHAUSTED == static_cast<int>(StatusCode::kResourceExhausted));
static_assert(CARNET_BUSY == static_cast<int>(StatusCode::kBusy));
static_assert(CARNET_UNAVAILABLE == static_cast<int>(StatusCode::kUnavailable));
static_assert(CARNET_IO_ERROR == static_cast<int>(StatusCode::kIoError));
static_assert(CARNET_CORRUPTION == static_cast<int>(StatusCode::kCorruption));
static_assert(CARNET_PERMISSION_DENIED == static_cast<int>(StatusCode::kPermissionDenied));
static_assert(CARNET_UNAUTHENTICATED == static_cast<int>(StatusCode::kUnauthenticated));
static_assert(CARNET_UPDATE_NEEDED == static_cast<int>(StatusCode::kUpdateNeeded));
static_assert(CARNET_INTERNAL == static_cast<int>(StatusCode::kInternal));
static_assert(CARNET_DEVICE_REVOKED == static_cast<int>(StatusCode::kDeviceRevoked));
static_assert(CARNET_LEASE_EXPIRED == static_cast<int>(StatusCode::kLeaseExpired));
static_assert(CARNET_LOG_LEVEL_DEBUG == static_cast<int>(LogLevel::kDebug));
static_assert(CARNET_LOG_LEVEL_ERROR == static_cast<int>(LogLevel::kError));

// Secrets larger than this are refused: a device token is a few dozen bytes.
constexpr size_t kMaxSecretBytes = 64 * 1024;

thread_local int callback_depth = 0;

// The integer a C caller stored in an enum. A host may store any int there (a bug, another
// language's binding); loading an out-of-range value as the enum type is undefined in C++.
template <typename Enum>
int64_t RawValue(const Enum& value) {
  std::underlying_type_t<Enum> raw;
  static_assert(sizeof raw == sizeof value);
  std::memcpy(&raw, &value, sizeof raw);
  return static_cast<int64_t>(raw);
}

// Copies `text` into `out` (size bytes), cut at a character boundary if it is too long.
void CopyMessage(const std::string& text, char* out, size_t size) {
  std::string valid = ValidUtf8(text);
  size_t length = valid.size();
  if (length >= size) {
    length = size - 1;
    while (length > 0 && (static_cast<unsigned char>(valid[length]) & 0xc0) == 0x80) --length;
  }
  std::memcpy(out, valid.data(), length);
  out[length] = '\0';
}

PosixEnvOptions PosixOptions(const carnet_host& host) {
  PosixEnvOptions options;
  options.min_level = static_cast<LogLevel>(host.log_level);
  if (host.data_directory != nullptr) options.data_directory = host.data_directory;
  return options;
}

carnet_host Copy(const carnet_host& host) {
  carnet_host copy = host;
  copy.data_directory = nullptr;  // borrowed: PosixEnvOptions keeps its own copy
  return copy;
}

}  // namespace

carnet_code Fail(carnet_error* error, carnet_domain domain, const Status& status) {
  if (status.ok()) return Succeed(error);
  int value = static_cast<int>(status.code());
  // A code this C API does not name yet (a newer core) reads as internal; the message names it.
  bool known = value > CARNET_OK && value <= CARNET_LEASE_EXPIRED;
  carnet_code code = known ? static_cast<carnet_code>(value) : CARNET_INTERNAL;
  if (error != nullptr) {
    error->domain = domain;
    error->code = code;
    error->retryable = status.retryable();
    CopyMessage(known ? status.message() : status.ToString(), error->message,
                sizeof error->message);
  }
  return code;
}

carnet_code FailWithoutAllocating(carnet_error* error, carnet_code code, const char* prefix,
                                  const char* detail) noexcept {
  if (error != nullptr) {
    error->domain = CARNET_DOMAIN_API;
    error->code = code;
    error->retryable = code == CARNET_RESOURCE_EXHAUSTED;
    std::snprintf(error->message, sizeof error->message, "%s%s%s", prefix,
                  detail[0] != '\0' ? ": " : "", detail);
    for (char* c = error->message; *c != '\0'; ++c) {
      if (static_cast<unsigned char>(*c) >= 0x80) *c = '?';
    }
  }
  return code;
}

carnet_code Succeed(carnet_error* error) {
  if (error != nullptr) {
    error->domain = CARNET_DOMAIN_NONE;
    error->code = CARNET_OK;
    error->retryable = false;
    error->message[0] = '\0';
  }
  return CARNET_OK;
}

carnet_code Refuse(carnet_error* error, StatusCode code, const std::string& message) {
  return Fail(error, CARNET_DOMAIN_API, Status(code, message));
}

carnet_code Require(carnet_error* error, std::initializer_list<Arg> args) {
  for (const Arg& arg : args) {
    if (arg.value == nullptr) {
      return Refuse(error, StatusCode::kInvalidArgument, std::string(arg.name) + " is NULL");
    }
  }
  return CARNET_OK;
}

bool InCallback() { return callback_depth > 0; }
CallbackScope::CallbackScope() { ++callback_depth; }
CallbackScope::~CallbackScope() { --callback_depth; }

HostEnv::HostEnv(const carnet_host& host) : host_(Copy(host)), posix_(PosixOptions(host)) {}

void HostEnv::Log(LogLevel level, std::string_view message) {
  if (host_.log == nullptr) {
    posix_.Log(level, message);
    return;
  }
  if (static_cast<int>(level) < static_cast<int>(host_.log_level)) return;
  try {
    std::string line = ValidUtf8(message);
    CallbackScope scope;
    host_.log(host_.context, static_cast<carnet_log_level>(level), line.c_str());
  } catch (...) {
    // Logging never fails the operation that logs.
  }
}

Result<std::string> HostEnv::GetSecret(const std::string& name) {
  if (!has_key_storage()) return NotFound("the host supplies no key storage");
  std::string buffer(256, '\0');
  // The host tells the size when the buffer is too small; it may change between two calls.
  for (int attempt = 0; attempt < 3; ++attempt) {
    size_t length = 0;
    carnet_key_result result;
    {
      CallbackScope scope;
      result = host_.key_get(host_.context, name.c_str(), reinterpret_cast<uint8_t*>(buffer.data()),
                             buffer.size(), &length);
    }
    if (RawValue(result) == CARNET_KEY_NOT_FOUND) {
      return NotFound("no secret '" + name + "' in key storage");
    }
    if (RawValue(result) != CARNET_KEY_OK) {
      return Status(StatusCode::kUnavailable, "key storage failed to read '" + name + "'");
    }
    if (length > kMaxSecretBytes) {
      return Status(StatusCode::kResourceExhausted, "secret '" + name + "' in key storage is " +
                                                        std::to_string(length) + " bytes long");
    }
    if (length <= buffer.size()) {
      buffer.resize(length);
      return buffer;
    }
    buffer.assign(length, '\0');
  }
  return Status(StatusCode::kUnavailable, "key storage kept changing the size of '" + name + "'");
}

Status HostEnv::PutSecret(const std::string& name, const std::string& value) {
  if (!has_key_storage()) return FailedPrecondition("the host supplies no key storage");
  carnet_key_result result;
  {
    CallbackScope scope;
    result = host_.key_put(host_.context, name.c_str(),
                           reinterpret_cast<const uint8_t*>(value.data()), value.size());
  }
  if (RawValue(result) != CARNET_KEY_OK) {
    return Status(StatusCode::kUnavailable, "key storage failed to save '" + name + "'");
  }
  return Status::Ok();
}

Status HostEnv::DeleteSecret(const std::string& name) {
  if (!has_key_storage()) return Status::Ok();
  carnet_key_result result;
  {
    CallbackScope scope;
    result = host_.key_delete(host_.context, name.c_str());
  }
  if (RawValue(result) == CARNET_KEY_OK || RawValue(result) == CARNET_KEY_NOT_FOUND) {
    return Status::Ok();
  }
  return Status(StatusCode::kUnavailable, "key storage failed to delete '" + name + "'");
}

void HostEnv::SetOnline(bool online) {
  online_.store(online);
  // Under the lock: a store being closed waits here before it goes away.
  std::lock_guard<std::mutex> lock(stores_mutex_);
  for (carnet_store* store : stores_) SetStoreOnline(store, online);
}

void HostEnv::Register(carnet_store* store) {
  std::lock_guard<std::mutex> lock(stores_mutex_);
  stores_.insert(store);
}

void HostEnv::Unregister(carnet_store* store) {
  std::lock_guard<std::mutex> lock(stores_mutex_);
  stores_.erase(store);
}

}  // namespace carnet::capi

using carnet::StatusCode;
using carnet::capi::Guard;
using carnet::capi::Refuse;
using carnet::capi::Succeed;

extern "C" {

const char* carnet_code_name(carnet_code code) {
  int64_t value = carnet::capi::RawValue(code);
  if (value < CARNET_OK || value > CARNET_LEASE_EXPIRED) return "unknown";
  return carnet::StatusCodeName(static_cast<StatusCode>(value));
}

const char* carnet_domain_name(carnet_domain domain) {
  int64_t value = carnet::capi::RawValue(domain);
  if (value < CARNET_DOMAIN_NONE || value > CARNET_DOMAIN_HOST) return "unknown";
  switch (domain) {
    case CARNET_DOMAIN_NONE:
      return "none";
    case CARNET_DOMAIN_API:
      return "api";
    case CARNET_DOMAIN_STORE:
      return "store";
    case CARNET_DOMAIN_SYNC:
      return "sync";
    case CARNET_DOMAIN_HOST:
      return "host";
  }
  return "unknown";
}

const char* carnet_version(void) { return CARNET_VERSION; }

void carnet_free(void* pointer) { std::free(pointer); }

carnet_code carnet_env_new(const carnet_host* host, carnet_env** out_env, carnet_error* error) {
  return Guard(error, [&] {
    if (out_env == nullptr) return Refuse(error, StatusCode::kInvalidArgument, "out_env is NULL");
    *out_env = nullptr;
    carnet_host defaults{};
    defaults.log_level = CARNET_LOG_LEVEL_WARNING;
    const carnet_host& chosen = host != nullptr ? *host : defaults;
    int64_t level = carnet::capi::RawValue(chosen.log_level);
    if (level < CARNET_LOG_LEVEL_DEBUG || level > CARNET_LOG_LEVEL_ERROR) {
      return Refuse(error, StatusCode::kInvalidArgument,
                    "host log_level " + std::to_string(level) + " is not a level");
    }
    int key_callbacks =
        (chosen.key_get != nullptr) + (chosen.key_put != nullptr) + (chosen.key_delete != nullptr);
    if (key_callbacks != 0 && key_callbacks != 3) {
      return Refuse(error, StatusCode::kInvalidArgument,
                    "key storage needs all three callbacks (key_get, key_put, key_delete)");
    }
    auto env = std::make_unique<carnet_env>();
    env->env = std::make_shared<carnet::capi::HostEnv>(chosen);
    if (!env->env->Ready().ok())
      return Refuse(error, StatusCode::kInternal, env->env->Ready().message());
    *out_env = env.release();
    return Succeed(error);
  });
}

void carnet_env_free(carnet_env* env) { delete env; }

carnet_code carnet_env_set_online(carnet_env* env, bool online, carnet_error* error) {
  return Guard(error, [&] {
    if (env == nullptr) return Refuse(error, StatusCode::kInvalidArgument, "env is NULL");
    env->env->SetOnline(online);
    return Succeed(error);
  });
}

}  // extern "C"
