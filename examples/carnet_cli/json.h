// A small JSON writer for the carnet CLI: compact output, strings escaped, invalid UTF-8 bytes
// replaced by U+FFFD so that the output is always valid JSON whatever a record holds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace carnet_cli {

class JsonWriter {
 public:
  JsonWriter& BeginObject() { return Open('{'); }
  JsonWriter& EndObject() { return Close('}'); }
  JsonWriter& BeginArray() { return Open('['); }
  JsonWriter& EndArray() { return Close(']'); }
  // The name of the next member of the enclosing object.
  JsonWriter& Key(std::string_view name);
  JsonWriter& String(std::string_view text);
  JsonWriter& Int(int64_t number);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  const std::string& text() const { return out_; }

 private:
  JsonWriter& Open(char bracket);
  JsonWriter& Close(char bracket);
  void BeforeValue();

  std::string out_;
  // Per open container: whether it holds a value already (a comma is due before the next).
  std::vector<bool> has_value_;
  bool after_key_ = false;
};

// `text` as a JSON string literal, quotes included.
std::string JsonQuote(std::string_view text);

}  // namespace carnet_cli
