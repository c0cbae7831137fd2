#include "examples/carnet_cli/json.h"

namespace carnet_cli {
namespace {

// Length of the valid UTF-8 sequence starting at `at`, or 0 if the byte there starts none.
size_t Utf8Length(std::string_view s, size_t at) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char c = byte(at);
  if (c < 0x80) return 1;
  size_t n = 0;
  uint32_t min = 0;
  if ((c >> 5) == 0x6) {
    n = 2, min = 0x80;
  } else if ((c >> 4) == 0xe) {
    n = 3, min = 0x800;
  } else if ((c >> 3) == 0x1e) {
    n = 4, min = 0x10000;
  } else {
    return 0;
  }
  if (at + n > s.size()) return 0;
  uint32_t code = c & (0x7f >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((byte(at + k) >> 6) != 0x2) return 0;
    code = (code << 6) | (byte(at + k) & 0x3f);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not characters.
  if (code < min || (code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff) return 0;
  return n;
}

}  // namespace

std::string JsonQuote(std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else if (size_t n = Utf8Length(text, i); n == 0) {
          out += "\\ufffd";
        } else {
          out.append(text.substr(i, n));
          i += n;
          continue;
        }
    }
    ++i;
  }
  return out + "\"";
}

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_value_.empty()) {
    if (has_value_.back()) out_ += ',';
    has_value_.back() = true;
  }
}

JsonWriter& JsonWriter::Open(char bracket) {
  BeforeValue();
  out_ += bracket;
  has_value_.push_back(false);
  return *this;
}

JsonWriter& JsonWriter::Close(char bracket) {
  out_ += bracket;
  has_value_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::Key(std::string_view name) {
  BeforeValue();
  out_ += JsonQuote(name);
  out_ += ':';
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view text) {
  BeforeValue();
  out_ += JsonQuote(text);
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t number) {
  BeforeValue();
  out_ += std::to_string(number);
  return *this;
}

JsonWriter& JsonWriter::Bool(bool value) {
  BeforeValue();
  out_ += value ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::Null() {
  BeforeValue();
  out_ += "null";
  return *this;
}

}  // namespace carnet_cli
