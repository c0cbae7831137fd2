// The few cryptographic operations encryption at rest needs, over libsodium
// (core/ENCRYPTION.md). Private to the core: nothing of libsodium reaches a public header.
//
// Every value is sealed with XChaCha20-Poly1305 (IETF), a random 24-byte nonce per value, and
// associated data naming the value's place, so that a sealed value copied to another place
// fails to open. Set elements, which are part of an entry's key and must compare equal when
// equal, are sealed deterministically (a synthetic nonce: a keyed BLAKE2b hash of the place and
// the element), which reveals only that two elements of the same place are equal.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "carnet/status.h"

namespace carnet::crypto {

constexpr size_t kKeyBytes = 32;
// A store holds a few thousand keys: 64 bits make a collision unlikely (and NewKeyId's caller
// draws again on one).
constexpr size_t kKeyIdBytes = 8;

// libsodium's one-time initialisation; safe to call from several threads, every time.
Status Initialize();

// 32 secret bytes, wiped when destroyed.
class SecretKey {
 public:
  SecretKey() { bytes_.fill(0); }
  SecretKey(const SecretKey& other) : bytes_(other.bytes_) {}
  SecretKey& operator=(const SecretKey& other) {
    bytes_ = other.bytes_;
    return *this;
  }
  ~SecretKey();

  static SecretKey Random();
  // Exactly kKeyBytes, or kCorruption.
  static Result<SecretKey> FromBytes(std::string_view bytes);

  const unsigned char* data() const { return bytes_.data(); }
  unsigned char* data() { return bytes_.data(); }
  std::string_view view() const {
    return std::string_view(reinterpret_cast<const char*>(bytes_.data()), bytes_.size());
  }

 private:
  std::array<unsigned char, kKeyBytes> bytes_;
};

// A data key: the AEAD key, the key its deterministic element nonces are derived with, and the
// random id that sealed values carry to name it.
struct DataKey {
  std::string id;  // kKeyIdBytes
  SecretKey key;
  SecretKey nonce_key;

  static DataKey Derive(std::string id, const SecretKey& key);
};

std::string NewKeyId();

// A key sealed under another (a data key under the master key), with `ad` naming what it is.
std::string WrapKey(const SecretKey& wrapping, const SecretKey& key, std::string_view ad);
// kCorruption when `wrapped` does not open under `wrapping` with `ad`.
Result<SecretKey> UnwrapKey(const SecretKey& wrapping, std::string_view wrapped,
                            std::string_view ad);

// Small secrets sealed under a key (the lease's last contact): nonce, ciphertext and tag.
std::string Seal(const SecretKey& key, std::string_view plaintext, std::string_view ad);
Result<std::string> Open(const SecretKey& key, std::string_view sealed, std::string_view ad);

// A value as stored: format byte, key id, nonce, ciphertext and tag.
std::string SealValue(const DataKey& key, std::string_view value, std::string_view ad);
// The id of the key a stored value or element was sealed with; empty when it is not one.
std::string ValueKeyId(std::string_view sealed);
std::string ElementKeyId(std::string_view sealed);
// kCorruption when the value does not open (another place, another key, altered bytes).
Result<std::string> OpenValue(const DataKey& key, std::string_view sealed, std::string_view ad);

// A set element as stored: the same element at the same place under the same key gives the same
// text (URL-safe base64), so that it keeps working as part of an entry's key.
std::string SealElement(const DataKey& key, std::string_view element, std::string_view ad);
Result<std::string> OpenElement(const DataKey& key, std::string_view sealed, std::string_view ad);

// Associated data: the parts, each length-prefixed, so that no two lists give the same bytes.
class AdBuilder {
 public:
  explicit AdBuilder(std::string_view domain) { Add(domain); }
  AdBuilder& Add(std::string_view part);
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

}  // namespace carnet::crypto
