#include "sync/server/conflicts.h"

namespace carnet {

uint64_t CountRegisterConflicts(const Schema& schema, const std::vector<Entry>& heads) {
  uint64_t conflicts = 0;
  size_t at = 0;
  while (at < heads.size()) {
    const EntryKey& first = heads[at].key;
    size_t end = at;
    while (end < heads.size() && heads[end].key.collection == first.collection &&
           heads[end].key.record == first.record && heads[end].key.field == first.field) {
      ++end;
    }
    const std::vector<Entry> field_heads(heads.begin() + at, heads.begin() + end);
    const CollectionSpec* collection = schema.Find(first.collection);
    const FieldSpec* field = collection ? collection->Find(first.field) : nullptr;
    const Entry& winner = RegisterWinner(field, field_heads);
    if (!RegisterLosers(field, field_heads, winner).empty()) ++conflicts;
    at = end;
  }
  return conflicts;
}

}  // namespace carnet
