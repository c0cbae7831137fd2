// Where the store's master key lives: the host's protected key storage (the Android Keystore,
// the iOS Keychain), which the core reaches only through this interface. The store keeps its
// data keys in its own file, wrapped by the master key; without the master key that file reads
// as noise for every value of classes S and H (core/ENCRYPTION.md).
#pragma once

#include <string>

#include "carnet/status.h"

namespace carnet {

class KeyStore {
 public:
  virtual ~KeyStore() = default;

  // The secret stored under `name` (bytes, at most 64 KiB). kNotFound when there is none;
  // kUnavailable when the key storage cannot answer now (a device locked since it booted): a
  // later call may succeed.
  virtual Result<std::string> Get(const std::string& name) = 0;
  // Stores the secret, replacing any of that name. kUnavailable as for Get.
  virtual Status Put(const std::string& name, const std::string& secret) = 0;
  // Removes the secret; ok when there was none.
  virtual Status Delete(const std::string& name) = 0;
};

// The name under which a store keeps its master key: one per device id, as a store file
// belongs to one device for life.
std::string MasterKeyName(const std::string& device_id);

}  // namespace carnet
