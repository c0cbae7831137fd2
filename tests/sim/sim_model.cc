#include "tests/sim/sim_model.h"

#include <algorithm>

namespace carnet::sim {
namespace {

std::string Id(const std::string& device, uint64_t seq) {
  return device + "#" + std::to_string(seq);
}

std::string ValueText(const std::optional<std::string>& value) {
  return value ? "'" + *value + "'" : "none";
}

int Rank(const FieldSpec* spec, const std::optional<std::string>& value) {
  if (spec == nullptr || !spec->forward_only || !value) return -1;
  auto it = std::find(spec->values.begin(), spec->values.end(), *value);
  return it == spec->values.end() ? -1 : static_cast<int>(it - spec->values.begin());
}

}  // namespace

std::string Ledger::Record(const Operation& op) {
  auto [it, fresh] = ops_.emplace(std::make_pair(op.device, op.seq), op);
  if (fresh || it->second == op) return "";
  return "operation id " + Id(op.device, op.seq) + " reused: first " +
         OpKindName(it->second.kind) + " on " + it->second.collection + "/" + it->second.record +
         " at " + StampToString(it->second.stamp()) + ", now " + OpKindName(op.kind) + " on " +
         op.collection + "/" + op.record + " at " + StampToString(op.stamp());
}

const Operation* Ledger::Find(const std::string& device, uint64_t seq) const {
  auto it = ops_.find({device, seq});
  return it == ops_.end() ? nullptr : &it->second;
}

std::vector<const Operation*> Ledger::UpTo(
    const std::map<std::string, uint64_t>& acknowledged) const {
  std::vector<const Operation*> out;
  for (const auto& [id, op] : ops_) {
    auto it = acknowledged.find(id.first);
    if (it != acknowledged.end() && id.second <= it->second) out.push_back(&op);
  }
  return out;
}

Model::Model(const std::vector<const Operation*>& ops, const Schema& schema) : schema_(schema) {
  std::set<EntryKey>& ended = ended_;
  std::map<EntryKey, Entry> made;
  for (const Operation* op : ops) {
    const std::string& c = op->collection;
    const std::string& r = op->record;
    auto make = [&](const std::string& field, const std::string& element, FieldKind kind,
                    std::vector<Stamp> refs) {
      EntryKey key{c, r, field, element, op->stamp()};
      made[key] = Entry{key, kind, true, op->value, std::move(refs)};
    };
    auto end_refs = [&](const std::string& field, const std::string& element) {
      for (const Stamp& ref : op->refs) ended.insert(EntryKey{c, r, field, element, ref});
    };
    switch (op->kind) {
      case OpKind::kWrite:
        make(op->field, "", FieldKind::kRegister, {});
        end_refs(op->field, "");
        break;
      case OpKind::kAdd:
        make(op->field, op->element, FieldKind::kSet, {});
        break;
      case OpKind::kRemove:
        end_refs(op->field, op->element);
        break;
      case OpKind::kAppend:
        make(op->field, "", FieldKind::kLog, op->refs);
        break;
      case OpKind::kRedact:
        end_refs(op->field, "");
        break;
      case OpKind::kDelete:
        make("", "", FieldKind::kSet, op->refs);
        break;
      case OpKind::kRestore:
        end_refs("", "");
        restored_.insert({c, r});
        break;
    }
  }
  for (auto& [key, entry] : made) {
    if (ended.count(key)) continue;
    entry.value = entry.kind == FieldKind::kSet ? std::nullopt : entry.value;
    live_[{key.collection, key.record}].emplace(key, std::move(entry));
  }
}

std::vector<RecordKey> Model::Records() const {
  std::vector<RecordKey> out;
  for (const auto& [record, entries] : live_) out.push_back(record);
  return out;
}

bool Model::Deleted(const RecordKey& record) const {
  auto it = live_.find(record);
  if (it == live_.end()) return false;
  return std::any_of(it->second.begin(), it->second.end(),
                     [](const auto& kv) { return kv.first.field.empty(); });
}

std::vector<std::string> Model::Lines(const RecordKey& record) const {
  std::vector<std::string> lines;
  auto it = live_.find(record);
  if (it == live_.end()) return lines;
  for (const auto& [key, entry] : it->second) lines.push_back(CanonicalLine(entry));
  return lines;
}

const FieldSpec* Model::Spec(const std::string& collection, const std::string& field) const {
  const CollectionSpec* c = schema_.Find(collection);
  return c ? c->Find(field) : nullptr;
}

std::map<std::string, std::vector<const Entry*>> Model::Registers(const RecordKey& record) const {
  std::map<std::string, std::vector<const Entry*>> heads;
  auto it = live_.find(record);
  if (it == live_.end()) return heads;
  for (const auto& [key, entry] : it->second) {
    if (entry.kind == FieldKind::kRegister && !key.field.empty()) heads[key.field].push_back(&entry);
  }
  for (auto& [field, entries] : heads) {
    const FieldSpec* spec = Spec(record.first, field);
    // The winner: the highest rank on a forward-only field, then the greatest (HLC, device).
    std::sort(entries.begin(), entries.end(), [&](const Entry* a, const Entry* b) {
      int ra = Rank(spec, a->value), rb = Rank(spec, b->value);
      if (ra != rb) return ra > rb;
      return a->key.stamp > b->key.stamp;
    });
  }
  return heads;
}

std::string Model::Reading(const RecordKey& record) const {
  std::map<std::string, std::string> fields;
  const FieldSpec* spec = nullptr;
  for (const auto& [field, heads] : Registers(record)) {
    spec = Spec(record.first, field);
    const Entry* winner = heads.front();
    bool conflict = std::any_of(heads.begin() + 1, heads.end(), [&](const Entry* h) {
      return h->value != winner->value && Rank(spec, h->value) >= Rank(spec, winner->value);
    });
    fields[field] = ValueText(winner->value) + "@" + StampToString(winner->key.stamp) +
                    (conflict ? " in conflict" : "");
  }
  auto it = live_.find(record);
  if (it != live_.end()) {
    for (const auto& [key, entry] : it->second) {
      if (entry.kind == FieldKind::kSet && !key.field.empty()) {
        std::string& text = fields[key.field];
        std::string element = "{" + key.element + "}";
        if (text.find(element) == std::string::npos) text += element;
      } else if (entry.kind == FieldKind::kLog) {
        fields[key.field] += "[" + StampToString(key.stamp) + " " + ValueText(entry.value) +
                             (entry.refs.empty() ? "" : " revises " + StampToString(entry.refs[0])) +
                             "]";
      }
    }
  }
  std::string out;
  for (const auto& [field, text] : fields) out += field + ": " + text + "\n";
  return out;
}

std::set<std::string> Model::Conflicts(const RecordKey& record) const {
  std::set<std::string> out;
  for (const auto& [field, heads] : Registers(record)) {
    const FieldSpec* spec = Spec(record.first, field);
    const Entry* winner = heads.front();
    for (const Entry* h : heads) {
      if (h == winner || h->value == winner->value) continue;
      if (Rank(spec, h->value) < Rank(spec, winner->value)) continue;
      Conflict c{ConflictKind::kConcurrentWrite, record.first, record.second, field,
                 winner->value, winner->key.stamp, h->value, h->key.stamp};
      out.insert(ConflictText(c));
    }
  }
  if (!Deleted(record)) return out;
  // Delete wins; each edit the deleters had not seen stays listed against the newest tombstone.
  const auto& entries = live_.at(record);
  std::vector<const Entry*> tombstones;
  for (const auto& [key, entry] : entries) {
    if (key.field.empty()) tombstones.push_back(&entry);
  }
  const Entry* newest = tombstones.back();  // key order is stamp order among tombstones
  for (const auto& [key, entry] : entries) {
    if (key.field.empty()) continue;
    // Named: clang 14 cannot capture a structured binding in a lambda.
    const Stamp& edit = key.stamp;
    bool seen = std::any_of(tombstones.begin(), tombstones.end(), [&](const Entry* t) {
      return std::any_of(t->refs.begin(), t->refs.end(), [&](const Stamp& s) {
        return s.device == edit.device && edit.hlc <= s.hlc;
      });
    });
    if (seen) continue;
    Conflict c{ConflictKind::kEditedWhileDeleted, record.first, record.second, key.field,
               std::nullopt, newest->key.stamp,
               entry.kind == FieldKind::kSet ? std::optional<std::string>(key.element) : entry.value,
               key.stamp};
    out.insert(ConflictText(c));
  }
  return out;
}

std::string ReadingOf(const Record& record) {
  std::string out;
  for (const auto& [field, value] : record.fields) {
    std::string text;
    if (value.kind == FieldKind::kRegister) {
      text = ValueText(value.value) + "@" + (value.stamp ? StampToString(*value.stamp) : "?") +
             (value.in_conflict ? " in conflict" : "");
    }
    for (const std::string& e : value.elements) text += "{" + e + "}";
    for (const LogEntry& e : value.entries) {
      if (e.redacted) continue;
      text += "[" + StampToString(e.stamp) + " " + ValueText(e.text) +
              (e.revises ? " revises " + StampToString(*e.revises) : "") + "]";
    }
    if (!text.empty()) out += field + ": " + text + "\n";
  }
  return out;
}

std::optional<EntryKey> KeyOfLine(const std::string& line) {
  std::vector<std::string> columns;
  size_t start = 0;
  for (size_t end; columns.size() < 5 && (end = line.find('\t', start)) != std::string::npos;
       start = end + 1) {
    columns.push_back(line.substr(start, end - start));
  }
  if (columns.size() < 5) return std::nullopt;
  Result<Stamp> stamp = StampFromString(columns[4]);
  if (!stamp.ok()) return std::nullopt;
  return EntryKey{columns[0], columns[1], columns[2], columns[3], *stamp};
}

std::string ConflictText(const Conflict& c) {
  std::string where = c.collection + "/" + c.record + "/" + c.field;
  if (c.kind == ConflictKind::kConcurrentWrite) {
    return "concurrent write on " + where + ": kept " + ValueText(c.kept_value) + "@" +
           StampToString(c.kept_stamp) + ", lost " + ValueText(c.losing_value) + "@" +
           StampToString(c.losing_stamp);
  }
  return "edited while deleted " + where + ": tombstone " + StampToString(c.kept_stamp) +
         ", edit " + ValueText(c.losing_value) + "@" + StampToString(c.losing_stamp);
}

}  // namespace carnet::sim
