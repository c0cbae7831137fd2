// JSON text for the command-line tools (carnet, carnet-server): rapidjson's writer, compact, with
// every string made valid UTF-8 first, so that the output is valid JSON whatever a record holds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace carnet {

// One JSON value (an object, an array or a scalar) written call by call, as with rapidjson's SAX
// writer; a second value after a complete one is a programming error. Each byte that does not
// start a valid UTF-8 sequence (overlong forms, surrogates and code points past U+10FFFF
// included) is written as U+FFFD, one for each such byte.
class JsonWriter {
 public:
  JsonWriter();
  ~JsonWriter();
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // The name of the next member of the enclosing object.
  JsonWriter& Key(std::string_view name);
  JsonWriter& String(std::string_view text);
  JsonWriter& Int(int64_t number);
  JsonWriter& Uint(uint64_t number);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  // What has been written so far.
  std::string text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// `text` with each byte that starts no valid UTF-8 sequence replaced by U+FFFD.
std::string ValidUtf8(std::string_view text);

}  // namespace carnet
