#include "carnet/wire.h"

#include <zlib.h>

#include <cereal/archives/json.hpp>
#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <sstream>
#include <type_traits>

namespace carnet {
namespace wire_detail {

// Decoding must never allocate more than the body could hold: a size claimed by a malformed
// binary body is checked before anything is sized from it.
template <class Archive>
constexpr bool kBinaryInput = std::is_same_v<Archive, cereal::PortableBinaryInputArchive>;

template <class Archive>
void Text(Archive& ar, const char* name, std::string& text) {
  if constexpr (kBinaryInput<Archive>) {
    cereal::size_type size = 0;
    ar(cereal::make_size_tag(size));
    if (size > wire::kMaxBodyBytes) throw cereal::Exception("string longer than any body");
    text.resize(size);
    ar(cereal::binary_data(text.data(), size));
  } else {
    ar(cereal::make_nvp(name, text));
  }
}

template <class Archive>
void OptionalText(Archive& ar, const char* name, std::optional<std::string>& text) {
  if constexpr (cereal::traits::is_text_archive<Archive>::value) {
    ar(cereal::make_nvp(name, text));
  } else {
    bool present = text.has_value();
    ar(present);
    if (!present) {
      text.reset();
      return;
    }
    if (!text) text.emplace();
    Text(ar, name, *text);
  }
}

// A message holding more items than the protocol allows (PROTOCOL.md, Limits): the sender must
// split it, which is not the same answer as for a malformed body.
struct LimitExceeded : cereal::Exception {
  using cereal::Exception::Exception;
};

// A vector whose length is checked against `max` before it is sized. Past a protocol limit
// (`limit`), LimitExceeded; past a structural bound, a plain malformed body.
template <typename T>
struct Bounded {
  std::vector<T>* items;
  size_t max;
  bool limit;
};

template <class Archive, typename T>
void save(Archive& ar, const Bounded<T>& b) {
  ar(cereal::make_size_tag(static_cast<cereal::size_type>(b.items->size())));
  for (const T& item : *b.items) ar(item);
}

template <class Archive, typename T>
void load(Archive& ar, Bounded<T>& b) {
  cereal::size_type size = 0;
  ar(cereal::make_size_tag(size));
  if (size > b.max) {
    const std::string what = "a list of " + std::to_string(size) + " items, more than the " +
                             std::to_string(b.max) + " the protocol allows";
    if (b.limit) throw LimitExceeded(what);
    throw cereal::Exception(what);
  }
  b.items->resize(size);
  for (T& item : *b.items) ar(item);
}

template <class Archive, typename T>
void List(Archive& ar, const char* name, std::vector<T>& items, size_t max, bool limit = false) {
  Bounded<T> bounded{&items, max, limit};
  ar(cereal::make_nvp(name, bounded));
}

// The lists PROTOCOL.md names in its limits: one too many is a 413, split and retry.
template <class Archive, typename T>
void LimitedList(Archive& ar, const char* name, std::vector<T>& items, size_t max) {
  List(ar, name, items, max, true);
}

}  // namespace wire_detail

using wire_detail::LimitedList;
using wire_detail::List;
using wire_detail::OptionalText;
using wire_detail::Text;

template <class Archive>
void serialize(Archive& ar, Stamp& stamp) {
  ar(cereal::make_nvp("hlc", stamp.hlc));
  Text(ar, "device", stamp.device);
}

template <class Archive>
void serialize(Archive& ar, Operation& op) {
  Text(ar, "device", op.device);
  ar(cereal::make_nvp("seq", op.seq), cereal::make_nvp("hlc", op.hlc));
  uint8_t kind = static_cast<uint8_t>(op.kind);
  ar(cereal::make_nvp("kind", kind));
  op.kind = static_cast<OpKind>(kind);
  Text(ar, "collection", op.collection);
  Text(ar, "record", op.record);
  Text(ar, "field", op.field);
  Text(ar, "element", op.element);
  OptionalText(ar, "value", op.value);
  List(ar, "refs", op.refs, kMaxRefs);
}

template <class Archive>
void serialize(Archive& ar, Entry& e) {
  Text(ar, "collection", e.key.collection);
  Text(ar, "record", e.key.record);
  Text(ar, "field", e.key.field);
  Text(ar, "element", e.key.element);
  ar(cereal::make_nvp("stamp", e.key.stamp));
  uint8_t kind = static_cast<uint8_t>(e.kind);
  ar(cereal::make_nvp("kind", kind));
  e.kind = static_cast<FieldKind>(kind);
  ar(cereal::make_nvp("live", e.live));
  OptionalText(ar, "value", e.value);
  List(ar, "refs", e.refs, kMaxRefs);
}

namespace wire {

template <class Archive>
void serialize(Archive& ar, PushRequest& m) {
  ar(cereal::make_nvp("protocol", m.protocol));
  Text(ar, "device", m.device);
  Text(ar, "incarnation", m.incarnation);
  ar(cereal::make_nvp("last_seq", m.last_seq));
  LimitedList(ar, "ops", m.ops, kMaxPushOps);
}

template <class Archive>
void serialize(Archive& ar, PushReply& m) {
  ar(cereal::make_nvp("acknowledged_seq", m.acknowledged_seq), cereal::make_nvp("applied", m.applied),
     cereal::make_nvp("duplicates", m.duplicates),
     cereal::make_nvp("server_time_ms", m.server_time_ms),
     cereal::make_nvp("stale_incarnation", m.stale_incarnation),
     cereal::make_nvp("erased", m.erased));
}

template <class Archive>
void serialize(Archive& ar, PullRequest& m) {
  ar(cereal::make_nvp("protocol", m.protocol), cereal::make_nvp("cursor", m.cursor),
     cereal::make_nvp("limit", m.limit));
  Text(ar, "snapshot", m.snapshot);
}

template <class Archive>
void serialize(Archive& ar, RecordRef& m) {
  Text(ar, "collection", m.collection);
  Text(ar, "record", m.record);
}

template <class Archive>
void serialize(Archive& ar, ErasureOrder& m) {
  Text(ar, "participant", m.participant);
  List(ar, "records", m.records, kMaxErasedRecords);
}

template <class Archive>
void serialize(Archive& ar, PullReply& m) {
  LimitedList(ar, "entries", m.entries, kMaxPullEntries);
  LimitedList(ar, "forget", m.forget, kMaxPullEntries);
  ar(cereal::make_nvp("next_cursor", m.next_cursor), cereal::make_nvp("more", m.more),
     cereal::make_nvp("server_time_ms", m.server_time_ms));
  Text(ar, "snapshot", m.snapshot);
  List(ar, "erase", m.erase, kMaxPullEntries);
  ar(cereal::make_nvp("rotate_token", m.rotate_token));
}

template <class Archive>
void serialize(Archive& ar, EnrollRequest& m) {
  ar(cereal::make_nvp("protocol", m.protocol));
  Text(ar, "device", m.device);
  Text(ar, "code", m.code);
}

template <class Archive>
void serialize(Archive& ar, TokenRequest& m) {
  ar(cereal::make_nvp("protocol", m.protocol));
  Text(ar, "device", m.device);
}

template <class Archive>
void serialize(Archive& ar, TokenReply& m) {
  Text(ar, "token", m.token);
  ar(cereal::make_nvp("token_expires_ms", m.token_expires_ms),
     cereal::make_nvp("server_time_ms", m.server_time_ms));
}

template <class Archive>
void serialize(Archive& ar, WipeConfirmation& m) {
  ar(cereal::make_nvp("protocol", m.protocol));
  Text(ar, "device", m.device);
}

template <class Archive>
void serialize(Archive& ar, StatusReply& m) {
  Text(ar, "device", m.device);
  Text(ar, "adviser", m.adviser);
  List(ar, "territories", m.territories, 1024);
  ar(cereal::make_nvp("cursor", m.cursor), cereal::make_nvp("acknowledged_seq", m.acknowledged_seq),
     cereal::make_nvp("server_time_ms", m.server_time_ms));
}

template <class Archive>
void serialize(Archive& ar, ErrorReply& m) {
  Text(ar, "code", m.code);
  Text(ar, "message", m.message);
  ar(cereal::make_nvp("retryable", m.retryable),
     cereal::make_nvp("server_time_ms", m.server_time_ms));
}

}  // namespace wire

namespace wire {
namespace {

constexpr const char* kJsonType = "application/json";
constexpr const char* kBinaryType = "application/vnd.carnet.bin";
constexpr int kMaxJsonDepth = 32;

Result<std::string> Deflate(const std::string& raw) {
  uLongf size = compressBound(raw.size());
  std::string out(size, '\0');
  int rc = compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                     reinterpret_cast<const Bytef*>(raw.data()), raw.size(), Z_BEST_SPEED);
  if (rc != Z_OK) return Internal("deflate failed: " + std::to_string(rc));
  out.resize(size);
  return out;
}

Result<std::string> Inflate(std::string_view compressed) {
  z_stream stream{};
  if (inflateInit(&stream) != Z_OK) return Internal("inflateInit failed");
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  std::string out;
  char buffer[64 * 1024];
  int rc = Z_OK;
  while (rc == Z_OK) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof buffer;
    rc = inflate(&stream, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
    out.append(buffer, sizeof buffer - stream.avail_out);
    if (out.size() > kMaxBodyBytes) {
      inflateEnd(&stream);
      return Status(StatusCode::kResourceExhausted,
                    "body inflates past " + std::to_string(kMaxBodyBytes) + " bytes");
    }
    if (rc == Z_OK && stream.avail_in == 0 && stream.avail_out != 0) rc = Z_BUF_ERROR;
  }
  inflateEnd(&stream);
  if (rc != Z_STREAM_END) return InvalidArgument("body is not valid deflate data");
  return out;
}

// rapidjson parses recursively: a body of nested brackets would exhaust the stack.
bool JsonDepthWithin(std::string_view body, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

}  // namespace

const char* ContentType(Format format) {
  return format == Format::kJson ? kJsonType : kBinaryType;
}

std::optional<Format> FormatFromContentType(std::string_view content_type) {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  if (type == kJsonType) return Format::kJson;
  if (type == kBinaryType) return Format::kBinary;
  return std::nullopt;
}

template <typename Message>
Result<std::string> Encode(const Message& message, Format format) {
  std::ostringstream out;
  try {
    Message copy = message;  // cereal's serialize() takes non-const references
    if (format == Format::kJson) {
      cereal::JSONOutputArchive archive(out, cereal::JSONOutputArchive::Options::NoIndent());
      archive(cereal::make_nvp("message", copy));
    } else {
      cereal::PortableBinaryOutputArchive archive(out);
      archive(copy);
    }
  } catch (const std::exception& e) {
    return Internal(std::string("encoding failed: ") + e.what());
  }
  std::string body = out.str();
  if (format == Format::kBinary) {
    Result<std::string> compressed = Deflate(body);
    if (!compressed.ok()) return compressed.status();
    body = std::move(compressed.value());
  }
  if (body.size() > kMaxWireBytes) {
    return Status(StatusCode::kResourceExhausted,
                  "message of " + std::to_string(body.size()) + " bytes exceeds " +
                      std::to_string(kMaxWireBytes));
  }
  return body;
}

template <typename Message>
Status Decode(std::string_view body, Format format, Message* message) {
  if (body.size() > kMaxWireBytes) {
    return Status(StatusCode::kResourceExhausted,
                  "body of " + std::to_string(body.size()) + " bytes exceeds " +
                      std::to_string(kMaxWireBytes));
  }
  std::string raw;
  if (format == Format::kBinary) {
    Result<std::string> inflated = Inflate(body);
    if (!inflated.ok()) return inflated.status();
    raw = std::move(inflated.value());
  } else {
    if (!JsonDepthWithin(body, kMaxJsonDepth)) return InvalidArgument("JSON nested too deeply");
    raw.assign(body);
  }
  try {
    std::istringstream in(raw);
    Message decoded;
    if (format == Format::kJson) {
      cereal::JSONInputArchive archive(in);
      archive(cereal::make_nvp("message", decoded));
    } else {
      cereal::PortableBinaryInputArchive archive(in);
      archive(decoded);
      if (in.peek() != std::char_traits<char>::eof()) {
        return InvalidArgument("malformed body: trailing bytes");
      }
    }
    *message = std::move(decoded);
  } catch (const wire_detail::LimitExceeded& e) {
    return Status(StatusCode::kResourceExhausted, std::string("message too large: ") + e.what());
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kResourceExhausted, "malformed body: too large to decode");
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("malformed body: ") + e.what());
  }
  return Status::Ok();
}

#define CARNET_WIRE_MESSAGE(M)                                   \
  template Result<std::string> Encode<M>(const M&, Format);      \
  template Status Decode<M>(std::string_view, Format, M*);
CARNET_WIRE_MESSAGE(PushRequest)
CARNET_WIRE_MESSAGE(PushReply)
CARNET_WIRE_MESSAGE(PullRequest)
CARNET_WIRE_MESSAGE(PullReply)
CARNET_WIRE_MESSAGE(StatusReply)
CARNET_WIRE_MESSAGE(ErrorReply)
CARNET_WIRE_MESSAGE(EnrollRequest)
CARNET_WIRE_MESSAGE(TokenRequest)
CARNET_WIRE_MESSAGE(TokenReply)
CARNET_WIRE_MESSAGE(WipeConfirmation)
#undef CARNET_WIRE_MESSAGE

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kResourceExhausted: return 413;
    case StatusCode::kClockSkew: return 422;
    case StatusCode::kUpdateNeeded: return 426;
    case StatusCode::kBusy:
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kIoError:
    case StatusCode::kCorruption:
    case StatusCode::kInternal: return 500;
    case StatusCode::kDeviceRevoked: return 410;
    case StatusCode::kLeaseExpired: return 409;  // the tablet's own: never sent
  }
  return 500;
}

StatusCode StatusCodeFromName(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(StatusCode::kLeaseExpired); ++c) {
    if (name == StatusCodeName(static_cast<StatusCode>(c))) return static_cast<StatusCode>(c);
  }
  return StatusCode::kInternal;
}

}  // namespace wire
}  // namespace carnet
