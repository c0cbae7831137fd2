#include "platform/json_writer.h"

// cereal's header first: every user of rapidjson in the library must see its settings (assertions
// that throw rather than abort).
#include <rapidjson/encodings.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <cereal/archives/json.hpp>

namespace carnet {
namespace {

// A rapidjson input stream over `text` that reads NUL past its end rather than beyond it.
struct BoundedStream {
  using Ch = char;
  std::string_view text;
  size_t at = 0;
  Ch Peek() const { return at < text.size() ? text[at] : '\0'; }
  Ch Take() { return at < text.size() ? text[at++] : '\0'; }
  size_t Tell() const { return at; }
};

// Discards what rapidjson's validation copies: only its verdict and length count.
struct NullStream {
  using Ch = char;
  void Put(Ch) {}
};

// 0xEF 0xBF 0xBD, U+FFFD REPLACEMENT CHARACTER.
constexpr std::string_view kReplacement = "\xef\xbf\xbd";

}  // namespace

std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  BoundedStream in{text};
  NullStream sink;
  while (in.at < text.size()) {
    const size_t start = in.at;
    // A sequence cut short by the end reads NULs there, which are not continuation bytes.
    if (rapidjson::UTF8<>::Validate(in, sink)) {
      out.append(text.substr(start, in.at - start));
    } else {
      out.append(kReplacement);
      in.at = start + 1;  // the next byte may start a valid sequence
    }
  }
  return out;
}

struct JsonWriter::Impl {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer{buffer};
};

JsonWriter::JsonWriter() : impl_(std::make_unique<Impl>()) {}
JsonWriter::~JsonWriter() = default;

JsonWriter& JsonWriter::BeginObject() {
  impl_->writer.StartObject();
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  impl_->writer.EndObject();
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  impl_->writer.StartArray();
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  impl_->writer.EndArray();
  return *this;
}

JsonWriter& JsonWriter::Key(std::string_view name) {
  const std::string valid = ValidUtf8(name);
  impl_->writer.Key(valid.data(), static_cast<rapidjson::SizeType>(valid.size()), true);
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view text) {
  const std::string valid = ValidUtf8(text);
  impl_->writer.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()), true);
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t number) {
  impl_->writer.Int64(number);
  return *this;
}

JsonWriter& JsonWriter::Uint(uint64_t number) {
  impl_->writer.Uint64(number);
  return *this;
}

JsonWriter& JsonWriter::Bool(bool value) {
  impl_->writer.Bool(value);
  return *this;
}

JsonWriter& JsonWriter::Null() {
  impl_->writer.Null();
  return *this;
}

std::string JsonWriter::text() const {
  return std::string(impl_->buffer.GetString(), impl_->buffer.GetSize());
}

}  // namespace carnet
