#include "carnet/merge.h"

#include <algorithm>

namespace carnet {
namespace {

bool CreatesOwnEntry(OpKind kind) {
  return kind == OpKind::kWrite || kind == OpKind::kAdd || kind == OpKind::kAppend ||
         kind == OpKind::kDelete;
}

EntryKey KeyFor(const Operation& op, const Stamp& stamp) {
  return EntryKey{op.collection, op.record, op.field, op.element, stamp};
}

const Entry* FindEntry(const std::vector<Entry>& entries, const EntryKey& key) {
  for (const Entry& e : entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

std::string Escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::vector<EntryKey> KeysTouchedBy(const Operation& op) {
  std::vector<EntryKey> keys;
  if (CreatesOwnEntry(op.kind)) keys.push_back(KeyFor(op, op.stamp()));
  if (OpRefsEndEntries(op.kind)) {
    for (const Stamp& ref : op.refs) {
      EntryKey key = KeyFor(op, ref);
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(std::move(key));
    }
  }
  return keys;
}

std::vector<Entry> MergeOperation(const Operation& op, const std::vector<Entry>& existing) {
  std::vector<Entry> changes;
  const FieldKind kind = FieldKindOf(op.kind);
  const std::vector<EntryKey> keys = KeysTouchedBy(op);
  size_t first_ended = 0;
  if (CreatesOwnEntry(op.kind)) {
    first_ended = 1;
    // Present already means a duplicate, or an entry some later operation has ended before this
    // one arrived: either way it stays as it is.
    if (FindEntry(existing, keys[0]) == nullptr) {
      Entry own{keys[0], kind, true, op.value, {}};
      if (!OpRefsEndEntries(op.kind)) own.refs = op.refs;
      changes.push_back(std::move(own));
    }
  }
  for (size_t i = first_ended; i < keys.size(); ++i) {
    const Entry* found = FindEntry(existing, keys[i]);
    if (found != nullptr && !found->live) continue;
    // Ending an entry not seen yet leaves its key behind, dead, so it cannot come alive later.
    changes.push_back(Entry{keys[i], found ? found->kind : kind, false, std::nullopt, {}});
  }
  return changes;
}

std::optional<Entry> MergeEntry(const Entry& incoming, const Entry* existing) {
  if (existing == nullptr) {
    if (incoming.live) return incoming;
    return Entry{incoming.key, incoming.kind, false, std::nullopt, {}};
  }
  if (existing->live && !incoming.live) {
    return Entry{existing->key, existing->kind, false, std::nullopt, {}};
  }
  return std::nullopt;
}

Status ValidateEntry(const Schema& schema, const Entry& entry) {
  const EntryKey& key = entry.key;
  auto bad = [&](const std::string& why) {
    return InvalidArgument("entry " + key.collection + "/" + key.record + "/" + key.field + " " +
                           StampToString(key.stamp) + ": " + why);
  };
  if (static_cast<int>(entry.kind) < 0 || static_cast<int>(entry.kind) > 2) {
    // Its merge rule is not known here: storing it would be guessing.
    return Status(StatusCode::kUpdateNeeded,
                  "entry " + key.collection + "/" + key.record + "/" + key.field +
                      ": unknown field kind " + std::to_string(static_cast<int>(entry.kind)) +
                      ", made by a newer version of Carnet: update the app");
  }
  // A collection missing from the schema is a newer app's: kept and passed on like its fields.
  if (!IsValidName(key.collection)) return bad("invalid collection name");
  const CollectionSpec* collection = schema.Find(key.collection);
  if (!IsValidRecordId(key.record)) return bad("invalid record id");
  if (!IsValidDeviceId(key.stamp.device) || key.stamp.hlc == 0) return bad("malformed stamp");
  if (entry.refs.size() > kMaxRefs) return bad("too many refs");
  for (const Stamp& ref : entry.refs) {
    if (!IsValidDeviceId(ref.device) || ref.hlc == 0) return bad("malformed ref");
  }
  if (!entry.live && (entry.value || !entry.refs.empty())) return bad("a dead entry holds nothing");
  if (entry.value && entry.value->size() > kMaxValueBytes) return bad("value too large");
  if (key.element.size() > kMaxValueBytes) return bad("element too large");
  if (key.field.empty()) {
    if (entry.kind != FieldKind::kSet || !key.element.empty() || entry.value)
      return bad("malformed tombstone");
    return Status::Ok();
  }
  if (!IsValidName(key.field)) return bad("invalid field name");
  if (entry.kind != FieldKind::kSet && !key.element.empty()) return bad("element outside a set");
  const FieldSpec* field = collection ? collection->Find(key.field) : nullptr;
  if (field == nullptr) return Status::Ok();  // a newer app's field: kept and passed on
  if (field->kind != entry.kind) return bad("kind does not match the schema");
  if (entry.kind == FieldKind::kSet) {
    Status s = ValidateReceivedValue(*field, key.element);
    if (!s.ok()) return bad(s.message());
  } else if (entry.value) {
    FieldSpec text = *field;
    if (entry.kind == FieldKind::kLog) text.type = FieldType::kText;
    Status s = ValidateReceivedValue(text, *entry.value);
    if (!s.ok()) return bad(s.message());
  }
  return Status::Ok();
}

int ValueRank(const FieldSpec& field, const std::optional<std::string>& value) {
  if (!value) return -1;
  // A newer app adds a forward-only state after the ones it keeps, never between them.
  auto it = std::find(field.values.begin(), field.values.end(), *value);
  return static_cast<int>(it - field.values.begin());
}

const Entry& RegisterWinner(const FieldSpec* field, const std::vector<Entry>& heads) {
  const Entry* best = &heads.front();
  const bool ranked = field != nullptr && field->forward_only;
  for (const Entry& e : heads) {
    if (ranked) {
      int a = ValueRank(*field, e.value), b = ValueRank(*field, best->value);
      if (a != b) {
        if (a > b) best = &e;
        continue;
      }
    }
    if (e.key.stamp > best->key.stamp) best = &e;
  }
  return *best;
}

std::vector<const Entry*> RegisterLosers(const FieldSpec* field, const std::vector<Entry>& heads,
                                         const Entry& winner) {
  const bool ranked = field != nullptr && field->forward_only;
  std::vector<const Entry*> losers;
  for (const Entry& head : heads) {
    if (head.key == winner.key || head.value == winner.value) continue;
    if (ranked && ValueRank(*field, head.value) < ValueRank(*field, winner.value)) continue;
    losers.push_back(&head);
  }
  return losers;
}

std::string CanonicalLine(const Entry& e) {
  std::string line = Escape(e.key.collection) + "\t" + Escape(e.key.record) + "\t" +
                     Escape(e.key.field) + "\t" + Escape(e.key.element) + "\t" +
                     StampToString(e.key.stamp) + "\t" + FieldKindName(e.kind) + "\t" +
                     (e.live ? "live" : "dead") + "\t" + (e.value ? Escape(*e.value) : "-") + "\t";
  for (size_t i = 0; i < e.refs.size(); ++i) {
    if (i > 0) line += ",";
    line += StampToString(e.refs[i]);
  }
  return line + "\n";
}

bool DeleteHadSeen(const std::vector<Stamp>& view, const Stamp& stamp) {
  for (const Stamp& seen : view) {
    if (seen.device == stamp.device && stamp.hlc <= seen.hlc) return true;
  }
  return false;
}

}  // namespace carnet
