#include <openssl/evp.h>

#include "carnet/server_store.h"

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

std::string HashToken(const std::string& token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(token.data(), token.size(), digest, &size, EVP_sha256(), nullptr);
  return Hex(digest, size);
}

}  // namespace carnet
