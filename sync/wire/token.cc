#include <sodium.h>

#include <cstring>

#include "carnet/token.h"

namespace carnet {
namespace {

std::string Hex(const unsigned char* bytes, size_t size) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
  return out;
}

}  // namespace

std::string NewDeviceToken(Env* env) {
  unsigned char bytes[32];
  for (int word = 0; word < 4; ++word) {
    uint64_t bits = env->RandomU64();
    for (int i = 0; i < 8; ++i) bytes[word * 8 + i] = static_cast<unsigned char>(bits >> (8 * i));
  }
  return Hex(bytes, sizeof bytes);
}

// Crockford's base 32: no I, L, O or U, which read as 1, 1, 0 or V.
constexpr char kCodeDigits[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr size_t kCodeLength = 20;  // 5 bits each: 100 bits
constexpr size_t kCodeGroup = 5;

std::string NewEnrollmentCode(Env* env) {
  std::string code;
  uint64_t bits = 0;
  int left = 0;
  for (size_t i = 0; i < kCodeLength; ++i) {
    if (left < 5) {
      bits = env->RandomU64();
      left = 64;
    }
    if (i > 0 && i % kCodeGroup == 0) code.push_back('-');
    code.push_back(kCodeDigits[bits & 31]);
    bits >>= 5;
    left -= 5;
  }
  return code;
}

std::string NormalizeEnrollmentCode(const std::string& typed) {
  std::string code;
  for (char c : typed) {
    if (c == '-' || c == ' ') continue;
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (std::strchr(kCodeDigits, c) == nullptr || c == '\0') return "";
    code.push_back(c);
  }
  return code.size() == kCodeLength ? code : "";
}

// SHA-256 through libsodium, which the tablet links already: the tablet normalizes codes with
// this file and must not need OpenSSL for it. The digest is the one stored hashes were made with.
// libsodium's SHA-256 has a single implementation that sodium_init does not choose: no init.
std::string HashToken(const std::string& token) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(token.data()), token.size());
  return Hex(digest, sizeof digest);
}

}  // namespace carnet
