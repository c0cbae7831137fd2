// The C API's reads: records and conflicts as JSON.
#include <cstdlib>
#include <cstring>
#include <new>

#include "platform/c_api_internal.h"
#include "platform/c_api_json.h"

using carnet::Result;
using carnet::StatusCode;
using carnet::capi::Fail;
using carnet::capi::Guard;
using carnet::capi::Require;
using carnet::capi::Succeed;

namespace {

// Hands `text` to the host in memory it frees with carnet_free.
char* CopyOut(const std::string& text) {
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (out == nullptr) throw std::bad_alloc();
  std::memcpy(out, text.c_str(), text.size() + 1);
  return out;
}

// Reads with `read` (a Result<T>) and returns it as JSON through `out_json`.
template <typename Read, typename ToJson>
carnet_code ReadJson(carnet_store* store, char** out_json, carnet_error* error,
                     std::initializer_list<carnet::capi::Arg> args, Read read, ToJson to_json) {
  return Guard(error, [&] {
    if (out_json != nullptr) *out_json = nullptr;
    if (carnet_code missing = Require(error, {{"store", store}, {"out_json", out_json}});
        missing != CARNET_OK) {
      return missing;
    }
    if (carnet_code missing = Require(error, args); missing != CARNET_OK) return missing;
    auto result = read(*store->store);
    if (!result.ok()) return Fail(error, CARNET_DOMAIN_STORE, result.status());
    *out_json = CopyOut(to_json(*result));
    return Succeed(error);
  });
}

}  // namespace

extern "C" {

carnet_code carnet_record_get(carnet_store* store, const char* collection, const char* id,
                              char** out_json, carnet_error* error) {
  return ReadJson(
      store, out_json, error, {{"collection", collection}, {"id", id}},
      [&](carnet::Store& s) { return s.Get(collection, id); }, carnet::capi::RecordJson);
}

carnet_code carnet_record_list(carnet_store* store, const char* collection, char** out_json,
                               carnet_error* error) {
  return ReadJson(
      store, out_json, error, {{"collection", collection}},
      [&](carnet::Store& s) { return s.List(collection); }, carnet::capi::RecordsJson);
}

carnet_code carnet_record_query(carnet_store* store, const char* collection, const char* field,
                                const char* value, char** out_json, carnet_error* error) {
  return ReadJson(
      store, out_json, error, {{"collection", collection}, {"field", field}, {"value", value}},
      [&](carnet::Store& s) { return s.Query(collection, field, value); },
      carnet::capi::RecordsJson);
}

carnet_code carnet_conflicts(carnet_store* store, char** out_json, carnet_error* error) {
  return ReadJson(
      store, out_json, error, {}, [](carnet::Store& s) { return s.Conflicts(); },
      carnet::capi::ConflictsJson);
}

carnet_code carnet_everything_uploaded(carnet_store* store, bool* out_uploaded,
                                       carnet_error* error) {
  return Guard(error, [&] {
    if (carnet_code missing = Require(error, {{"store", store}, {"out_uploaded", out_uploaded}});
        missing != CARNET_OK) {
      return missing;
    }
    Result<uint64_t> pending = store->store->PendingCount();
    if (!pending.ok()) return Fail(error, CARNET_DOMAIN_STORE, pending.status());
    *out_uploaded = *pending == 0;
    return Succeed(error);
  });
}

}  // extern "C"
