#include "core/crypto.h"

#include <sodium.h>

#include "carnet/key_store.h"

namespace carnet {

std::string MasterKeyName(const std::string& device_id) {
  return "carnet.master_key." + device_id;
}

namespace crypto {
namespace {

constexpr size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == kKeyBytes);
static_assert(crypto_kdf_KEYBYTES == kKeyBytes);

// The first byte of what is stored: which construction sealed it, so that a later one can come
// beside it.
constexpr char kRandomNonceFormat = 1;
constexpr char kSyntheticNonceFormat = 2;
constexpr size_t kHeaderBytes = 1 + kKeyIdBytes + kNonceBytes;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

Status Corrupt(const char* what) { return Status(StatusCode::kCorruption, what); }

// nonce || ciphertext || tag of `plaintext` under `key`.
std::string SealWithNonce(const SecretKey& key, const unsigned char* nonce,
                          std::string_view plaintext, std::string_view ad) {
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  std::copy(nonce, nonce + kNonceBytes, out.begin());
  unsigned long long length = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      reinterpret_cast<unsigned char*>(out.data()) + kNonceBytes, &length, Bytes(plaintext),
      plaintext.size(), Bytes(ad), ad.size(), nullptr, nonce, key.data());
  return out;
}

Result<std::string> OpenWithNonce(const SecretKey& key, std::string_view sealed,
                                  std::string_view ad, const char* what) {
  if (sealed.size() < kNonceBytes + kTagBytes) return Corrupt(what);
  std::string out(sealed.size() - kNonceBytes - kTagBytes, '\0');
  unsigned long long length = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(out.data()), &length, nullptr,
          Bytes(sealed) + kNonceBytes, sealed.size() - kNonceBytes, Bytes(ad), ad.size(),
          Bytes(sealed), key.data()) != 0) {
    return Corrupt(what);
  }
  out.resize(length);
  return out;
}

std::string Header(char format, const DataKey& key) {
  std::string header(1, format);
  header += key.id;
  return header;
}

}  // namespace

Status Initialize() {
  // sodium_init is thread-safe and idempotent: 0 the first time, 1 after.
  if (sodium_init() < 0) return Internal("libsodium failed to initialise");
  return Status::Ok();
}

SecretKey::~SecretKey() { sodium_memzero(bytes_.data(), bytes_.size()); }

SecretKey SecretKey::Random() {
  SecretKey key;
  randombytes_buf(key.bytes_.data(), key.bytes_.size());
  return key;
}

Result<SecretKey> SecretKey::FromBytes(std::string_view bytes) {
  if (bytes.size() != kKeyBytes) return Corrupt("a key is not 32 bytes long");
  SecretKey key;
  std::copy(bytes.begin(), bytes.end(), key.bytes_.begin());
  return key;
}

DataKey DataKey::Derive(std::string id, const SecretKey& key) {
  DataKey data{std::move(id), key, SecretKey()};
  crypto_kdf_derive_from_key(data.nonce_key.data(), kKeyBytes, 1, "carnetSN", key.data());
  return data;
}

std::string NewKeyId() {
  std::string id(kKeyIdBytes, '\0');
  randombytes_buf(id.data(), id.size());
  return id;
}

std::string Seal(const SecretKey& key, std::string_view plaintext, std::string_view ad) {
  unsigned char nonce[kNonceBytes];
  randombytes_buf(nonce, sizeof nonce);
  return SealWithNonce(key, nonce, plaintext, ad);
}

Result<std::string> Open(const SecretKey& key, std::string_view sealed, std::string_view ad) {
  return OpenWithNonce(key, sealed, ad, "sealed data does not open with its key");
}

std::string WrapKey(const SecretKey& wrapping, const SecretKey& key, std::string_view ad) {
  return Seal(wrapping, key.view(), ad);
}

Result<SecretKey> UnwrapKey(const SecretKey& wrapping, std::string_view wrapped,
                            std::string_view ad) {
  Result<std::string> bytes =
      OpenWithNonce(wrapping, wrapped, ad, "a wrapped key does not open with the master key");
  if (!bytes.ok()) return bytes.status();
  Result<SecretKey> key = SecretKey::FromBytes(*bytes);
  sodium_memzero(bytes->data(), bytes->size());
  return key;
}

std::string SealValue(const DataKey& key, std::string_view value, std::string_view ad) {
  unsigned char nonce[kNonceBytes];
  randombytes_buf(nonce, sizeof nonce);
  return Header(kRandomNonceFormat, key) + SealWithNonce(key.key, nonce, value, ad);
}

std::string ValueKeyId(std::string_view sealed) {
  if (sealed.size() < kHeaderBytes + kTagBytes || sealed[0] != kRandomNonceFormat) return "";
  return std::string(sealed.substr(1, kKeyIdBytes));
}

Result<std::string> OpenValue(const DataKey& key, std::string_view sealed, std::string_view ad) {
  if (ValueKeyId(sealed) != key.id) return Corrupt("a value was not sealed with its key");
  return OpenWithNonce(key.key, sealed.substr(1 + kKeyIdBytes), ad,
                       "a sealed value does not open at its place (moved or altered)");
}

std::string SealElement(const DataKey& key, std::string_view element, std::string_view ad) {
  unsigned char nonce[kNonceBytes];
  crypto_generichash_state state;
  crypto_generichash_init(&state, key.nonce_key.data(), kKeyBytes, sizeof nonce);
  crypto_generichash_update(&state, Bytes(ad), ad.size());
  crypto_generichash_update(&state, Bytes(element), element.size());
  crypto_generichash_final(&state, nonce, sizeof nonce);
  std::string binary = Header(kSyntheticNonceFormat, key) + SealWithNonce(key.key, nonce, element, ad);
  std::string text(sodium_base64_ENCODED_LEN(binary.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                   '\0');
  sodium_bin2base64(text.data(), text.size(), Bytes(binary), binary.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  text.resize(text.size() - 1);  // the terminating NUL
  return text;
}

namespace {

std::string ElementBinary(std::string_view sealed) {
  std::string binary(sealed.size(), '\0');
  size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(binary.data()), binary.size(),
                        sealed.data(), sealed.size(), nullptr, &length, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
    return "";
  }
  binary.resize(length);
  if (binary.size() < kHeaderBytes + kTagBytes || binary[0] != kSyntheticNonceFormat) return "";
  return binary;
}

}  // namespace

std::string ElementKeyId(std::string_view sealed) {
  std::string binary = ElementBinary(sealed);
  return binary.empty() ? "" : binary.substr(1, kKeyIdBytes);
}

Result<std::string> OpenElement(const DataKey& key, std::string_view sealed,
                                std::string_view ad) {
  std::string binary = ElementBinary(sealed);
  if (binary.empty() || binary.compare(1, kKeyIdBytes, key.id) != 0) {
    return Corrupt("a set element was not sealed with its key");
  }
  return OpenWithNonce(key.key, std::string_view(binary).substr(1 + kKeyIdBytes), ad,
                       "a sealed set element does not open at its place (moved or altered)");
}

AdBuilder& AdBuilder::Add(std::string_view part) {
  uint32_t size = static_cast<uint32_t>(part.size());
  for (int shift = 24; shift >= 0; shift -= 8) bytes_.push_back(static_cast<char>(size >> shift));
  bytes_.append(part);
  return *this;
}

}  // namespace crypto
}  // namespace carnet
