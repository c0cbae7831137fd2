#include "carnet/hlc.h"

#include <algorithm>
#include <charconv>

#include "carnet/schema.h"

namespace carnet {

std::string EncodeStamp(const Stamp& stamp) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((stamp.hlc >> (56 - 8 * i)) & 0xff);
  out += stamp.device;
  return out;
}

Result<Stamp> DecodeStamp(std::string_view bytes) {
  if (bytes.size() < 9) return InvalidArgument("stamp shorter than 9 bytes");
  Stamp stamp;
  for (int i = 0; i < 8; ++i) stamp.hlc = (stamp.hlc << 8) | static_cast<uint8_t>(bytes[i]);
  stamp.device.assign(bytes.substr(8));
  return stamp;
}

std::string EncodeStampList(const std::vector<Stamp>& stamps) {
  std::string out;
  for (const Stamp& stamp : stamps) {
    std::string bytes = EncodeStamp(stamp);
    out.push_back(static_cast<char>(bytes.size() >> 8));
    out.push_back(static_cast<char>(bytes.size() & 0xff));
    out += bytes;
  }
  return out;
}

Result<std::vector<Stamp>> DecodeStampList(std::string_view bytes) {
  std::vector<Stamp> stamps;
  while (!bytes.empty()) {
    if (bytes.size() < 2) return Status(StatusCode::kCorruption, "truncated stamp list");
    size_t size = (static_cast<uint8_t>(bytes[0]) << 8) | static_cast<uint8_t>(bytes[1]);
    if (bytes.size() < 2 + size) return Status(StatusCode::kCorruption, "truncated stamp list");
    Result<Stamp> stamp = DecodeStamp(bytes.substr(2, size));
    if (!stamp.ok()) return Status(StatusCode::kCorruption, stamp.status().message());
    stamps.push_back(std::move(stamp.value()));
    bytes.remove_prefix(2 + size);
  }
  return stamps;
}

std::string StampToString(const Stamp& stamp) {
  return std::to_string(HlcPhysicalMs(stamp.hlc)) + "." + std::to_string(HlcLogical(stamp.hlc)) +
         "@" + stamp.device;
}

Result<Stamp> StampFromString(std::string_view text) {
  auto bad = [&] { return InvalidArgument("malformed stamp '" + std::string(text) + "'"); };
  size_t dot = text.find('.');
  size_t at = text.find('@');
  if (dot == std::string_view::npos || at == std::string_view::npos || dot > at) return bad();
  int64_t physical = 0;
  uint32_t logical = 0;
  auto p1 = std::from_chars(text.data(), text.data() + dot, physical);
  auto p2 = std::from_chars(text.data() + dot + 1, text.data() + at, logical);
  if (p1.ec != std::errc() || p1.ptr != text.data() + dot || p2.ec != std::errc() ||
      p2.ptr != text.data() + at || physical < 0 || physical >= (int64_t{1} << 48) ||
      logical > 0xffff || !IsValidDeviceId(text.substr(at + 1))) {
    return bad();
  }
  return Stamp{MakeHlc(physical, logical), std::string(text.substr(at + 1))};
}

HybridClock::HybridClock(Env* env, HlcOptions options) : env_(env), options_(options) {}

int64_t HybridClock::PhysicalMs() const { return std::max<int64_t>(0, env_->NowMillis() + offset_ms_); }

Hlc HybridClock::Tick() {
  Hlc physical = MakeHlc(PhysicalMs(), 0);
  // When the physical clock is behind (it jumped back, or we observed a stamp from a faster
  // clock), keep the physical part and count in the logical part. Its overflow carries into the
  // millisecond, which stays within the skew bound in any realistic burst.
  last_ = std::max(physical, last_ + 1);
  return last_;
}

Status HybridClock::CheckSkew(Hlc remote) const {
  int64_t ahead = HlcPhysicalMs(remote) - PhysicalMs();
  if (ahead > options_.max_forward_skew_ms) {
    return Status(StatusCode::kClockSkew,
                  "stamp is " + std::to_string(ahead / 1000) + " s ahead of this replica's time (" +
                      "bound " + std::to_string(options_.max_forward_skew_ms / 1000) +
                      " s): the sending device's clock is wrong");
  }
  return Status::Ok();
}

Status HybridClock::Observe(Hlc remote) {
  CARNET_RETURN_IF_ERROR(CheckSkew(remote));
  last_ = std::max(last_, remote);
  return Status::Ok();
}

}  // namespace carnet
