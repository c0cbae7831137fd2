#include "carnet/loopback.h"

#include <arpa/inet.h>

#include <cstring>

namespace carnet {

bool IsLoopbackHost(const std::string& host) {
  std::string bare = host;
  if (bare.size() >= 2 && bare.front() == '[' && bare.back() == ']') {
    bare = bare.substr(1, bare.size() - 2);
  }
  if (bare == "localhost") return true;
  unsigned char address[16];
  if (inet_pton(AF_INET, bare.c_str(), address) == 1) return address[0] == 127;
  if (inet_pton(AF_INET6, bare.c_str(), address) == 1) {
    static const unsigned char kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char kMapped4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(address, kLoopback6, 16) == 0 ||
           (std::memcmp(address, kMapped4, 12) == 0 && address[12] == 127);
  }
  return false;
}

}  // namespace carnet
