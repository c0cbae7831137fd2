// A KeyStore for tests, in memory: what stands for the Android Keystore or the iOS Keychain,
// which no test can run. A test can make it fail, or read and change what it holds.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "carnet/key_store.h"

namespace carnet::testing {

class MemoryKeyStore : public KeyStore {
 public:
  Result<std::string> Get(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (unavailable_) return Status(StatusCode::kUnavailable, "the key store is locked");
    auto it = secrets_.find(name);
    if (it == secrets_.end()) return NotFound("no secret '" + name + "'");
    return it->second;
  }
  Status Put(const std::string& name, const std::string& secret) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (unavailable_) return Status(StatusCode::kUnavailable, "the key store is locked");
    secrets_[name] = secret;
    return Status::Ok();
  }
  Status Delete(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (unavailable_) return Status(StatusCode::kUnavailable, "the key store is locked");
    secrets_.erase(name);
    return Status::Ok();
  }

  // Every call fails with kUnavailable, as a device locked since it booted.
  void SetUnavailable(bool unavailable) {
    std::lock_guard<std::mutex> lock(mutex_);
    unavailable_ = unavailable;
  }
  std::map<std::string, std::string> secrets() {
    std::lock_guard<std::mutex> lock(mutex_);
    return secrets_;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> secrets_;
  bool unavailable_ = false;
};

// One key store for the whole test process, as a tablet has one: a store file copied or reopened
// by another object of the same device finds its master key there.
inline MemoryKeyStore& ProcessKeyStore() {
  static MemoryKeyStore* const keys = new MemoryKeyStore();
  return *keys;
}

}  // namespace carnet::testing
