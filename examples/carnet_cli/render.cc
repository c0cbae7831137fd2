#include "examples/carnet_cli/render.h"

#include <optional>
#include <string>

namespace carnet_cli {
namespace {

void WriteOptional(JsonWriter& json, const std::optional<std::string>& value) {
  if (value) {
    json.String(*value);
  } else {
    json.Null();
  }
}

void WriteField(JsonWriter& json, const carnet::FieldValue& field) {
  switch (field.kind) {
    case carnet::FieldKind::kRegister:
      WriteOptional(json, field.value);
      return;
    case carnet::FieldKind::kSet:
      json.BeginArray();
      for (const std::string& element : field.elements) json.String(element);
      json.EndArray();
      return;
    case carnet::FieldKind::kLog:
      json.BeginArray();
      for (const carnet::LogEntry& entry : field.entries) {
        json.BeginObject().Key("stamp").String(carnet::StampToString(entry.stamp));
        json.Key("text").String(entry.text).Key("redacted").Bool(entry.redacted);
        json.Key("revises");
        if (entry.revises) {
          json.String(carnet::StampToString(*entry.revises));
        } else {
          json.Null();
        }
        json.EndObject();
      }
      json.EndArray();
      return;
  }
  json.Null();
}

void WriteSide(JsonWriter& json, const std::optional<std::string>& value,
               const carnet::Stamp& stamp) {
  json.BeginObject().Key("value");
  WriteOptional(json, value);
  json.Key("stamp").String(carnet::StampToString(stamp));
  json.Key("device").String(stamp.device).EndObject();
}

}  // namespace

void WriteRecord(JsonWriter& json, const carnet::Record& record) {
  json.BeginObject().Key("collection").String(record.collection);
  json.Key("id").String(record.id).Key("fields").BeginObject();
  for (const auto& [name, field] : record.fields) {
    json.Key(name);
    WriteField(json, field);
  }
  json.EndObject().Key("in_conflict").BeginArray();
  for (const auto& [name, field] : record.fields) {
    if (field.in_conflict) json.String(name);
  }
  json.EndArray().EndObject();
}

void WriteConflict(JsonWriter& json, const carnet::Conflict& conflict) {
  bool deleted = conflict.kind == carnet::ConflictKind::kEditedWhileDeleted;
  json.BeginObject().Key("kind").String(deleted ? "edited_while_deleted" : "concurrent_write");
  json.Key("collection").String(conflict.collection);
  json.Key("record").String(conflict.record).Key("field").String(conflict.field);
  json.Key("kept");
  WriteSide(json, conflict.kept_value, conflict.kept_stamp);
  json.Key("losing");
  WriteSide(json, conflict.losing_value, conflict.losing_stamp);
  json.EndObject();
}

}  // namespace carnet_cli
