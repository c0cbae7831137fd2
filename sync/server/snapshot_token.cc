#include "sync/server/snapshot_token.h"

#include <charconv>
#include <string_view>
#include <vector>

#include "carnet/hlc.h"

namespace carnet {
namespace {

// Version 1: "1.<snapshot_seq>.f.<after_forget>" or
// "1.<snapshot_seq>.e[.<collection>.<record>.<field>.<element>.<stamp>]", each part of the key
// in hexadecimal, so that no byte of it can be taken for a separator.
constexpr std::string_view kHexDigits = "0123456789abcdef";

std::string Hex(std::string_view bytes) {
  std::string out;
  out.reserve(2 * bytes.size());
  for (unsigned char c : bytes) {
    out.push_back(kHexDigits[c >> 4]);
    out.push_back(kHexDigits[c & 0xf]);
  }
  return out;
}

std::optional<std::string> Unhex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    size_t high = kHexDigits.find(hex[i]), low = kHexDigits.find(hex[i + 1]);
    if (high == std::string_view::npos || low == std::string_view::npos) return std::nullopt;
    out.push_back(static_cast<char>(high << 4 | low));
  }
  return out;
}

std::optional<uint64_t> Number(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::vector<std::string_view> Split(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t dot; (dot = text.find('.', start)) != std::string_view::npos; start = dot + 1) {
    parts.push_back(text.substr(start, dot - start));
  }
  parts.push_back(text.substr(start));
  return parts;
}

}  // namespace

std::string EncodeSnapshotToken(const SnapshotPosition& p) {
  std::string token = "1." + std::to_string(p.snapshot_seq);
  if (!p.in_entries) return token + ".f." + std::to_string(p.after_forget);
  token += ".e";
  if (p.after_entry) {
    const EntryKey& k = *p.after_entry;
    for (std::string_view part : {std::string_view(k.collection), std::string_view(k.record),
                                  std::string_view(k.field), std::string_view(k.element)}) {
      token += "." + Hex(part);
    }
    token += "." + Hex(EncodeStamp(k.stamp));
  }
  return token;
}

Result<SnapshotPosition> DecodeSnapshotToken(const std::string& token) {
  const Status bad = InvalidArgument("snapshot token '" + token.substr(0, 64) +
                                     "' was not made by this server");
  if (token.size() > 2048) return bad;
  std::vector<std::string_view> parts = Split(token);
  if (parts.size() < 3 || parts[0] != "1") return bad;
  SnapshotPosition p;
  std::optional<uint64_t> seq = Number(parts[1]);
  if (!seq) return bad;
  p.snapshot_seq = *seq;
  if (parts[2] == "f" && parts.size() == 4) {
    std::optional<uint64_t> after = Number(parts[3]);
    if (!after) return bad;
    p.after_forget = *after;
    return p;
  }
  if (parts[2] != "e") return bad;
  p.in_entries = true;
  if (parts.size() == 3) return p;
  if (parts.size() != 8) return bad;
  std::optional<std::string> fields[5];
  for (int i = 0; i < 5; ++i) {
    fields[i] = Unhex(parts[3 + i]);
    if (!fields[i]) return bad;
  }
  Result<Stamp> stamp = DecodeStamp(*fields[4]);
  if (!stamp.ok()) return bad;
  p.after_entry = EntryKey{*fields[0], *fields[1], *fields[2], *fields[3], *stamp};
  return p;
}

}  // namespace carnet
