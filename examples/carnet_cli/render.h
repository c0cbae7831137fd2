// Records and conflicts as JSON, the CLI's output format.
#pragma once

#include <vector>

#include "carnet/store.h"
#include "platform/json_writer.h"

namespace carnet_cli {

using carnet::JsonWriter;

// {"collection", "id", "fields": {name: value}, "in_conflict": [names]}: a register prints its
// value (null once cleared), a set an array of elements, a log an array of
// {"stamp", "text", "redacted", "revises"}.
void WriteRecord(JsonWriter& json, const carnet::Record& record);

// {"kind", "collection", "record", "field", "kept": {"value", "stamp", "device"}, "losing": ...}.
void WriteConflict(JsonWriter& json, const carnet::Conflict& conflict);

}  // namespace carnet_cli
