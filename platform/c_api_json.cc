#include "platform/c_api_json.h"

// cereal's header first: it makes rapidjson's assertions throw (caught at the C API's boundary)
// rather than abort, and every user of rapidjson in the library must see the same settings.
#include <cereal/archives/json.hpp>
#include <rapidjson/error/en.h>

#include <cstdint>
#include <set>

namespace carnet::capi {
namespace {

// Past this, a record's fields cannot be valid anyway (each value is at most kMaxValueBytes).
constexpr size_t kMaxFieldsJsonBytes = 4 * 1024 * 1024;

// Length of the UTF-8 sequence starting at `s[i]`, or 0 if it is not a valid one (overlong
// forms, surrogates and code points past U+10FFFF included).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  size_t length;
  uint32_t min;
  uint32_t code;
  if ((lead & 0xe0) == 0xc0) {
    length = 2, min = 0x80, code = lead & 0x1f;
  } else if ((lead & 0xf0) == 0xe0) {
    length = 3, min = 0x800, code = lead & 0x0f;
  } else if ((lead & 0xf8) == 0xf0) {
    length = 4, min = 0x10000, code = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > s.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3f);
  }
  if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  return length;
}

void AppendString(std::string* out, std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < text.size();) {
    size_t length = Utf8SequenceLength(text, i);
    if (length == 0) {
      out->append("\xef\xbf\xbd");
      ++i;
      continue;
    }
    if (length > 1) {
      out->append(text.substr(i, length));
      i += length;
      continue;
    }
    unsigned char c = static_cast<unsigned char>(text[i++]);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xf]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

void AppendOptional(std::string* out, const std::optional<std::string>& value) {
  if (value) {
    AppendString(out, *value);
  } else {
    out->append("null");
  }
}

// `"name":` — the caller writes the value. A comma first unless it opens the object.
void AppendKey(std::string* out, std::string_view name) {
  if (out->back() != '{') out->push_back(',');
  AppendString(out, name);
  out->push_back(':');
}

void AppendText(std::string* out, std::string_view name, std::string_view text) {
  AppendKey(out, name);
  AppendString(out, text);
}

void AppendBool(std::string* out, std::string_view name, bool value) {
  AppendKey(out, name);
  out->append(value ? "true" : "false");
}

void AppendNullable(std::string* out, std::string_view name,
                    const std::optional<std::string>& value) {
  AppendKey(out, name);
  AppendOptional(out, value);
}

void AppendLogEntry(std::string* out, const LogEntry& entry) {
  out->push_back('{');
  AppendText(out, "stamp", StampToString(entry.stamp));
  AppendText(out, "text", entry.text);
  AppendBool(out, "redacted", entry.redacted);
  AppendNullable(out, "revises", entry.revises ? std::optional<std::string>(StampToString(*entry.revises))
                                             : std::nullopt);
  out->push_back('}');
}

template <typename T>
void AppendArray(std::string* out, const std::vector<T>& items,
                 void (*append)(std::string*, const T&)) {
  out->push_back('[');
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out->push_back(',');
    append(out, items[i]);
  }
  out->push_back(']');
}

void AppendFieldValue(std::string* out, const FieldValue& field) {
  switch (field.kind) {
    case FieldKind::kRegister:
      return AppendOptional(out, field.value);
    case FieldKind::kSet:
      return AppendArray(out, field.elements,
                         +[](std::string* o, const std::string& e) { AppendString(o, e); });
    case FieldKind::kLog:
      return AppendArray(out, field.entries, AppendLogEntry);
  }
  out->append("null");
}

// The names of the record's fields that are `flagged`, as a JSON array under `key`.
void AppendFieldNames(std::string* out, std::string_view key, const Record& record,
                      bool FieldValue::*flagged) {
  AppendKey(out, key);
  out->push_back('[');
  bool first = true;
  for (const auto& [name, field] : record.fields) {
    if (!(field.*flagged)) continue;
    if (!first) out->push_back(',');
    first = false;
    AppendString(out, name);
  }
  out->push_back(']');
}

void AppendRecord(std::string* out, const Record& record) {
  out->push_back('{');
  AppendText(out, "collection", record.collection);
  AppendText(out, "id", record.id);
  AppendKey(out, "fields");
  out->push_back('{');
  for (const auto& [name, field] : record.fields) {
    AppendKey(out, name);
    AppendFieldValue(out, field);
  }
  out->push_back('}');
  AppendFieldNames(out, "in_conflict", record, &FieldValue::in_conflict);
  AppendFieldNames(out, "unknown", record, &FieldValue::unknown);
  out->push_back('}');
}

// One side of a conflict: {"value":…,"stamp":…,"device":…}.
void AppendSide(std::string* out, std::string_view name, const std::optional<std::string>& value,
                const Stamp& stamp) {
  AppendKey(out, name);
  out->push_back('{');
  AppendNullable(out, "value", value);
  AppendText(out, "stamp", StampToString(stamp));
  AppendText(out, "device", stamp.device);
  out->push_back('}');
}

void AppendConflict(std::string* out, const Conflict& conflict) {
  out->push_back('{');
  AppendText(out, "kind", conflict.kind == ConflictKind::kEditedWhileDeleted
                                ? "edited_while_deleted"
                                : "concurrent_write");
  AppendText(out, "collection", conflict.collection);
  AppendText(out, "record", conflict.record);
  AppendText(out, "field", conflict.field);
  AppendSide(out, "kept", conflict.kept_value, conflict.kept_stamp);
  AppendSide(out, "losing", conflict.losing_value, conflict.losing_stamp);
  out->push_back('}');
}

void AppendChange(std::string* out, const Change& change) {
  out->push_back('{');
  AppendText(out, "collection", change.collection);
  AppendText(out, "record", change.record);
  AppendText(out, "field", change.field);
  AppendBool(out, "remote", change.remote);
  out->push_back('}');
}

template <typename T>
std::string Array(const std::vector<T>& items, void (*append)(std::string*, const T&)) {
  std::string out;
  AppendArray(&out, items, append);
  return out;
}

std::string Quote(std::string_view name) {
  std::string out;
  AppendString(&out, name.substr(0, 64));
  return out;
}

}  // namespace

std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t length = Utf8SequenceLength(text, i);
    if (length == 0) {
      out.append("\xef\xbf\xbd");
      ++i;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  return out;
}

std::string RecordJson(const Record& record) {
  std::string out;
  AppendRecord(&out, record);
  return out;
}

std::string RecordsJson(const std::vector<Record>& records) { return Array(records, AppendRecord); }

std::string ConflictsJson(const std::vector<Conflict>& conflicts) {
  return Array(conflicts, AppendConflict);
}

std::string ChangesJson(const std::vector<Change>& changes) { return Array(changes, AppendChange); }

Result<FieldWrites> ParseFields(std::string_view json) {
  if (json.size() > kMaxFieldsJsonBytes) {
    return Status(StatusCode::kResourceExhausted,
                  "fields_json of " + std::to_string(json.size()) + " bytes exceeds " +
                      std::to_string(kMaxFieldsJsonBytes));
  }
  RAPIDJSON_NAMESPACE::Document document;
  // Iterative: a deeply nested input cannot exhaust the stack.
  constexpr unsigned kFlags =
      RAPIDJSON_NAMESPACE::kParseIterativeFlag | RAPIDJSON_NAMESPACE::kParseValidateEncodingFlag;
  document.Parse<kFlags>(json.data(), json.size());
  if (document.HasParseError()) {
    return InvalidArgument(std::string("fields_json is not valid JSON: ") +
                           RAPIDJSON_NAMESPACE::GetParseError_En(document.GetParseError()) +
                           " (at byte " + std::to_string(document.GetErrorOffset()) + ")");
  }
  if (!document.IsObject()) return InvalidArgument("fields_json must be a JSON object of fields");
  FieldWrites fields;
  std::set<std::string> seen;
  // By index: rapidjson 1.1's iterator comparison is ambiguous in C++20 (clang warns).
  for (RAPIDJSON_NAMESPACE::SizeType i = 0; i < document.MemberCount(); ++i) {
    const auto& member = document.MemberBegin()[i];
    std::string name(member.name.GetString(), member.name.GetStringLength());
    if (!seen.insert(name).second) {
      return InvalidArgument("fields_json names field " + Quote(name) + " twice");
    }
    const auto& value = member.value;
    if (value.IsString()) {
      fields.emplace_back(name, std::string(value.GetString(), value.GetStringLength()));
    } else if (value.IsNull()) {
      fields.emplace_back(name, std::nullopt);
    } else if (value.IsBool()) {
      fields.emplace_back(name, value.GetBool() ? "true" : "false");
    } else if (value.IsInt64()) {
      fields.emplace_back(name, std::to_string(value.GetInt64()));
    } else if (value.IsNumber()) {
      return InvalidArgument("field " + Quote(name) +
                             ": numbers must be integers between -2^63 and 2^63-1");
    } else {
      return InvalidArgument("field " + Quote(name) +
                             ": a value is a string, an integer, true, false or null; sets and "
                             "logs are written with carnet_set_add and carnet_log_append");
    }
  }
  if (fields.empty()) return InvalidArgument("fields_json holds no field");
  return fields;
}

}  // namespace carnet::capi
