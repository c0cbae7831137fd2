// Hybrid logical clocks and the stamps that order every operation.
//
// An Hlc packs physical milliseconds (high 48 bits) and a logical counter (low 16 bits) into one
// integer, so comparing two Hlc values compares (physical, logical). A Stamp adds the id of the
// device that made the operation: the order (hlc, device) is total, and it is the order in which
// last-writer-wins registers pick their winner.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "carnet/env.h"
#include "carnet/status.h"

namespace carnet {

using Hlc = uint64_t;

constexpr int kHlcLogicalBits = 16;
constexpr Hlc MakeHlc(int64_t physical_ms, uint32_t logical) {
  return (static_cast<Hlc>(physical_ms) << kHlcLogicalBits) | (logical & 0xffffu);
}
constexpr int64_t HlcPhysicalMs(Hlc hlc) { return static_cast<int64_t>(hlc >> kHlcLogicalBits); }
constexpr uint32_t HlcLogical(Hlc hlc) { return static_cast<uint32_t>(hlc & 0xffffu); }

struct Stamp {
  Hlc hlc = 0;
  std::string device;

  friend bool operator==(const Stamp&, const Stamp&) = default;
  friend auto operator<=>(const Stamp& a, const Stamp& b) {
    if (auto c = a.hlc <=> b.hlc; c != 0) return c;
    return a.device <=> b.device;
  }
};

// Byte string whose memcmp order is the Stamp order: 8 bytes big-endian hlc, then the device id.
// This is how stamps are stored and indexed.
std::string EncodeStamp(const Stamp& stamp);
// Fails on fewer than 9 bytes.
Result<Stamp> DecodeStamp(std::string_view bytes);
// A list of stamps as one byte string (each length-prefixed), as stored; kCorruption when
// truncated.
std::string EncodeStampList(const std::vector<Stamp>& stamps);
Result<std::vector<Stamp>> DecodeStampList(std::string_view bytes);
// Human and JSON form: "<physical ms>.<logical>@<device>", e.g. "1732300000000.3@tab-1".
std::string StampToString(const Stamp& stamp);
Result<Stamp> StampFromString(std::string_view text);

struct HlcOptions {
  // A remote stamp more than this far ahead of our physical time is refused: accepting it would
  // drag this clock forward and let that write win every later conflict.
  int64_t max_forward_skew_ms = 15 * 60 * 1000;
};

// The clock of one replica. Not thread-safe: the Store serialises access.
class HybridClock {
 public:
  HybridClock(Env* env, HlcOptions options);

  // A fresh stamp for a local event, greater than every stamp issued or observed so far.
  Hlc Tick();

  // Takes a remote stamp into account so that later Tick()s are greater than it. Refuses,
  // with kClockSkew and without moving, a stamp too far ahead of our physical time.
  Status Observe(Hlc remote);

  // Checks what Observe would refuse, without moving the clock.
  Status CheckSkew(Hlc remote) const;

  // The last value issued or observed; persisted by the store so a restart never goes back.
  Hlc Last() const { return last_; }
  void Restore(Hlc last) {
    if (last > last_) last_ = last;
  }
  // Sets the last value back to `last`, below stamps issued before: only for a store that
  // re-stamps operations no other replica has seen (Store::RestampAhead), once none of what it
  // keeps is above `last`.
  void Rewind(Hlc last) { last_ = last; }

  // Offset (ms) added to the device's clock, as told by the server that measured it.
  void SetOffsetMs(int64_t offset_ms) { offset_ms_ = offset_ms; }
  int64_t OffsetMs() const { return offset_ms_; }

  // Physical time as this clock sees it (device clock plus offset).
  int64_t PhysicalMs() const;

 private:
  Env* env_;
  HlcOptions options_;
  Hlc last_ = 0;
  int64_t offset_ms_ = 0;
};

}  // namespace carnet
