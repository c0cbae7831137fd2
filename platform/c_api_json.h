// JSON for the C API: records, conflicts and changes out, a record's fields in.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "carnet/status.h"
#include "carnet/store.h"

namespace carnet::capi {

// `text` with every byte sequence that is not UTF-8 replaced by U+FFFD: whatever a record or a
// message holds, hosts receive valid UTF-8 (JNI's NewStringUTF aborts on anything else).
std::string ValidUtf8(std::string_view text);

std::string RecordJson(const Record& record);
std::string RecordsJson(const std::vector<Record>& records);
std::string ConflictsJson(const std::vector<Conflict>& conflicts);
std::string ChangesJson(const std::vector<Change>& changes);

using FieldWrites = std::vector<std::pair<std::string, std::optional<std::string>>>;

// Reads {"field": "text" | integer | true | false | null, ...} into register writes (null
// clears). kInvalidArgument for anything else, with where and why.
Result<FieldWrites> ParseFields(std::string_view json);

}  // namespace carnet::capi
