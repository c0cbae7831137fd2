// The one source of randomness of a simulated run: a seed gives the same stream on every machine
// (no std::*_distribution, whose results differ between standard libraries).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace carnet::sim {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  // splitmix64: small, fast, and every seed (0 included) gives a good stream.
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); 0 when n is 0. The modulo bias is far below what a test can see.
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  int64_t Between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo) + 1));
  }
  bool Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }

  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Below(items.size())];
  }
  // An index drawn with the given weights (not all zero).
  size_t Weighted(const std::vector<int>& weights) {
    int64_t total = 0;
    for (int w : weights) total += w;
    int64_t at = static_cast<int64_t>(Below(static_cast<uint64_t>(total)));
    for (size_t i = 0; i < weights.size(); ++i) {
      if ((at -= weights[i]) < 0) return i;
    }
    return weights.size() - 1;
  }
  // An independent stream, so that one part of the run drawing more numbers does not shift
  // what another part draws.
  Rng Fork(uint64_t salt) { return Rng(Next() ^ (salt * 0xd1b54a32d192ed03ull)); }

 private:
  uint64_t state_;
};

}  // namespace carnet::sim
