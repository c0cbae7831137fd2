// Conflicts kept for review in the central records, for /metrics (sync/OPERATIONS.md).
#pragma once

#include <cstdint>
#include <vector>

#include "carnet/merge.h"
#include "carnet/schema.h"

namespace carnet {

// The SQL that narrows the count to registers with more than one live head; a store selects
// these entries (same columns as its other entry reads) ordered by collection, record, field.
inline constexpr const char* kRegistersWithSeveralHeadsSql =
    "SELECT collection, record, field FROM entries WHERE live AND field <> '' AND kind = 0 "
    "GROUP BY collection, record, field HAVING count(*) > 1";

// How many registers among `heads` (live register entries, grouped by collection, record and
// field) hold a value that lost to a concurrent one and is kept for review: what a tablet lists
// as kConcurrentWrite conflicts (RegisterLosers: equal values, and lower states of a
// forward-only field, are not conflicts).
uint64_t CountRegisterConflicts(const Schema& schema, const std::vector<Entry>& heads);

}  // namespace carnet
