#include "carnet/operation.h"

namespace carnet {

const char* OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kWrite: return "write";
    case OpKind::kAdd: return "add";
    case OpKind::kRemove: return "remove";
    case OpKind::kAppend: return "append";
    case OpKind::kRedact: return "redact";
    case OpKind::kDelete: return "delete";
    case OpKind::kRestore: return "restore";
  }
  return "?";
}

std::optional<OpKind> OpKindFromName(std::string_view name) {
  for (OpKind k : {OpKind::kWrite, OpKind::kAdd, OpKind::kRemove, OpKind::kAppend, OpKind::kRedact,
                   OpKind::kDelete, OpKind::kRestore}) {
    if (name == OpKindName(k)) return k;
  }
  return std::nullopt;
}

bool OpRefsEndEntries(OpKind kind) {
  return kind == OpKind::kWrite || kind == OpKind::kRemove || kind == OpKind::kRedact ||
         kind == OpKind::kRestore;
}

bool IsRecordOp(OpKind kind) { return kind == OpKind::kDelete || kind == OpKind::kRestore; }

FieldKind FieldKindOf(OpKind kind) {
  switch (kind) {
    case OpKind::kWrite: return FieldKind::kRegister;
    case OpKind::kAppend:
    case OpKind::kRedact: return FieldKind::kLog;
    default: return FieldKind::kSet;  // set operations, and record tombstones which behave as one
  }
}

Status ValidateOperation(const Schema& schema, const Operation& op) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("operation " + op.device + "#" + std::to_string(op.seq) + ": " + why);
  };
  if (!IsValidDeviceId(op.device)) return bad("invalid device id");
  if (op.seq == 0) return bad("sequence numbers start at 1");
  if (op.hlc == 0) return bad("missing clock stamp");
  if (static_cast<uint8_t>(op.kind) < 1 || static_cast<uint8_t>(op.kind) > 7) {
    // Its merge rule is not known here: storing it would be guessing.
    return Status(StatusCode::kUpdateNeeded,
                  "operation " + op.device + "#" + std::to_string(op.seq) +
                      ": unknown operation kind " + std::to_string(static_cast<int>(op.kind)) +
                      ", made by a newer version of Carnet: update the app");
  }
  // A collection missing from the schema is a newer app's: kept and passed on like its fields.
  if (!IsValidName(op.collection)) return bad("invalid collection name");
  const CollectionSpec* collection = schema.Find(op.collection);
  if (!IsValidRecordId(op.record)) return bad("invalid record id");
  if (op.refs.size() > kMaxRefs) return bad("too many refs");
  for (const Stamp& ref : op.refs) {
    if (!IsValidDeviceId(ref.device) || ref.hlc == 0) return bad("malformed ref");
    // A causal predecessor is always older: the clock moved past it before this op was made.
    if (OpRefsEndEntries(op.kind) && !(ref < op.stamp())) return bad("ref not older than the op");
  }
  if (op.value && op.value->size() > kMaxValueBytes) {
    return bad("value of " + std::to_string(op.value->size()) + " bytes exceeds the limit of " +
               std::to_string(kMaxValueBytes));
  }
  if (IsRecordOp(op.kind)) {
    if (!op.field.empty() || !op.element.empty() || op.value)
      return bad("a record operation carries no field, element or value");
    return Status::Ok();
  }
  if (!IsValidName(op.field)) return bad("invalid field name");
  bool set_op = op.kind == OpKind::kAdd || op.kind == OpKind::kRemove;
  if (!set_op && !op.element.empty()) return bad("only set operations carry an element");
  if (set_op && op.value) return bad("set operations carry an element, not a value");
  if ((op.kind == OpKind::kAppend) != op.value.has_value() && op.kind != OpKind::kWrite)
    return bad(op.kind == OpKind::kAppend ? "append without text" : "unexpected value");
  if ((op.kind == OpKind::kRedact && op.refs.size() != 1) ||
      (op.kind == OpKind::kAppend && op.refs.size() > 1))
    return bad("a redaction names one entry, a revision at most one");
  const FieldSpec* field = collection ? collection->Find(op.field) : nullptr;
  if (field == nullptr) {
    // A newer app's field: kept and passed on as its operation kind says.
    if (set_op && op.element.size() > kMaxValueBytes) return bad("element too large");
    return Status::Ok();
  }
  if (field->kind != FieldKindOf(op.kind)) {
    return bad(std::string("a ") + OpKindName(op.kind) + " on " + FieldKindName(field->kind) +
               " field '" + op.field + "'");
  }
  if (set_op) {
    Status s = ValidateReceivedValue(*field, op.element);
    if (!s.ok()) return bad(s.message());
  } else if (op.value) {
    FieldSpec text = *field;
    if (op.kind == OpKind::kAppend) text.type = FieldType::kText;
    Status s = ValidateReceivedValue(text, *op.value);
    if (!s.ok()) return bad(s.message());
  }
  return Status::Ok();
}

}  // namespace carnet
