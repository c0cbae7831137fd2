// Erasure and retention, the same for both stores (sync/PROTOCOL.md, Erasure and Retention).
#include "sync/server/erasure.h"

#include <algorithm>

#include "carnet/merge.h"

namespace carnet {
namespace {

constexpr int64_t kDayMs = 24 * 60 * 60 * 1000;

// The fields whose values or elements are record ids, hence may name a participant.
std::vector<std::pair<const CollectionSpec*, const FieldSpec*>> RefFields(const Schema& schema) {
  std::vector<std::pair<const CollectionSpec*, const FieldSpec*>> fields;
  for (const CollectionSpec& c : schema.collections()) {
    for (const FieldSpec& f : c.fields) {
      if (f.type == FieldType::kRef) fields.emplace_back(&c, &f);
    }
  }
  return fields;
}

const FieldSpec* RefField(const Schema& schema, const Operation& op) {
  const CollectionSpec* c = schema.Find(op.collection);
  const FieldSpec* f = c != nullptr ? c->Find(op.field) : nullptr;
  return f != nullptr && f->type == FieldType::kRef ? f : nullptr;
}

bool IsParticipantField(const Schema& schema, const Operation& op) {
  const CollectionSpec* c = schema.Find(op.collection);
  return c != nullptr && !c->participant_field.empty() && op.field == c->participant_field;
}

// The ids of erased participants an operation names: the participant it is on, or the value or
// element of a ref field.
std::vector<std::string> NamedIds(const Schema& schema, const Operation& op) {
  std::vector<std::string> ids;
  if (op.collection == "participants") ids.push_back(op.record);
  if (RefField(schema, op) != nullptr) {
    if (op.value) ids.push_back(*op.value);
    if (!op.element.empty()) ids.push_back(op.element);
  }
  return ids;
}

// The records an erasure takes whole: the participant's own, those whose stored scope names
// them, and those whose participant field's winning value names them (a deleted record being
// purged has left every scope, but not its entries). A losing head naming them is a reference.
Result<std::set<RecordKey>> RecordsOfParticipant(ErasureTxn& txn, const std::string& participant) {
  std::set<RecordKey> records = {{"participants", participant}};
  Result<std::vector<RecordKey>> scoped = txn.scopes->RecordsOf(participant);
  if (!scoped.ok()) return scoped.status();
  records.insert(scoped->begin(), scoped->end());
  for (const CollectionSpec& c : txn.schema->collections()) {
    if (c.participant_field.empty()) continue;
    Result<std::vector<std::string>> naming =
        txn.erasures->RecordsNaming(c.name, c.participant_field, participant);
    if (!naming.ok()) return naming.status();
    for (const std::string& record : *naming) {
      if (records.count({c.name, record})) continue;
      Result<std::vector<Entry>> heads = txn.scopes->LiveHeads(c.name, record, c.participant_field);
      if (!heads.ok()) return heads.status();
      if (!heads->empty() &&
          RegisterWinner(c.Find(c.participant_field), *heads).value == participant) {
        records.emplace(c.name, record);
      }
    }
  }
  return records;
}

}  // namespace

Result<uint32_t> DropErasedOperations(ErasureTxn& txn, const Device& device,
                                      std::vector<Operation>* ops) {
  if (ops->empty()) return uint32_t{0};
  Result<bool> any = txn.erasures->AnyErasure();
  if (!any.ok()) return any.status();
  if (!*any) return uint32_t{0};
  const Schema& schema = *txn.schema;
  std::set<std::string> named;
  std::set<RecordKey> touched;
  for (const Operation& op : *ops) {
    touched.emplace(op.collection, op.record);
    for (std::string& id : NamedIds(schema, op)) named.insert(std::move(id));
  }
  Result<std::set<std::string>> erased = txn.erasures->ErasedParticipants(named);
  if (!erased.ok()) return erased.status();
  Result<std::set<RecordKey>> dropped = txn.erasures->ErasedRecords(touched);
  if (!dropped.ok()) return dropped.status();
  if (erased->empty() && dropped->empty()) return uint32_t{0};

  // A record of unknown owner (new here, or its participant field not arrived yet) that the
  // batch gives to an erased participant is theirs, unless the batch also gives it to another.
  std::map<RecordKey, std::string> claimed;
  std::set<RecordKey> given_elsewhere;
  for (const Operation& op : *ops) {
    if (op.kind != OpKind::kWrite || !op.value || !IsParticipantField(schema, op)) continue;
    RecordKey record{op.collection, op.record};
    if (erased->count(*op.value)) {
      claimed.emplace(record, *op.value);
    } else {
      given_elsewhere.insert(record);
    }
  }
  for (const auto& [record, participant] : claimed) {
    if (dropped->count(record) || given_elsewhere.count(record)) continue;
    Result<std::optional<RecordScope>> scope = txn.scopes->StoredScope(record.first, record.second);
    if (!scope.ok()) return scope.status();
    if (scope->has_value() && (*scope)->participant) continue;  // someone else's: a reference
    Result<uint64_t> removed = txn.erasures->DeleteRecord(record);
    if (!removed.ok()) return removed.status();
    CARNET_RETURN_IF_ERROR(txn.erasures->AddErasedRecord(participant, record));
    dropped->insert(record);
  }

  const size_t before = ops->size();
  std::erase_if(*ops, [&](const Operation& op) {
    if (dropped->count({op.collection, op.record})) return true;
    for (const std::string& id : NamedIds(schema, op)) {
      if (erased->count(id)) return true;
    }
    return false;
  });
  const auto count = static_cast<uint32_t>(before - ops->size());
  if (count > 0) {
    txn.env->Log(LogLevel::kWarning,
                 "push from " + device.id + ": " + std::to_string(count) +
                     " operations on erased participants dropped, not applied (" +
                     std::to_string(dropped->size()) + " erased records touched)");
  }
  return count;
}

Result<ErasureReport> ServerStore::Erase(const std::string& participant,
                                         const std::string& ordered_by) {
  if (!IsValidRecordId(participant)) {
    return InvalidArgument("'" + participant + "' is not a participant id");
  }
  ErasureReport report;
  Status status = InErasureTransaction(true, [&](ErasureTxn& txn) -> Status {
    report = ErasureReport{};  // the body may run again (PostgreSQL retries a conflict)
    Result<std::set<std::string>> known = txn.erasures->ErasedParticipants({participant});
    if (!known.ok()) return known.status();
    if (!known->empty()) {
      report.already = true;
      return Status::Ok();
    }
    Result<std::set<RecordKey>> records = RecordsOfParticipant(txn, participant);
    if (!records.ok()) return records.status();
    for (const RecordKey& record : *records) {
      Result<uint64_t> removed = txn.erasures->DeleteRecord(record);
      if (!removed.ok()) return removed.status();
      report.entries += *removed;
    }
    report.records = records->size();
    CARNET_RETURN_IF_ERROR(txn.scopes->SaveParticipant(participant, std::nullopt));
    for (const auto& [collection, field] : RefFields(*txn.schema)) {
      Result<uint64_t> removed =
          txn.erasures->DeleteReferences(collection->name, field->name, participant);
      if (!removed.ok()) return removed.status();
      report.entries += *removed;
    }
    // Every tablet, not only those whose scope holds them: a tablet may hold them through what
    // the server cannot see (records made offline, a hand-over not yet pulled).
    Result<std::vector<Device>> devices = txn.scopes->ActiveDevices();
    if (!devices.ok()) return devices.status();
    for (const Device& d : *devices) report.devices.push_back(d.id);
    return txn.erasures->AddErasure(participant, txn.env->NowMillis(), ordered_by, *records,
                                    report.devices);
  });
  if (!status.ok()) return status;
  Result<bool> scrubbed = ScrubErasures(0);
  if (!scrubbed.ok()) return scrubbed.status();
  report.scrubbed = *scrubbed;
  return report;
}

Result<bool> ServerStore::ScrubErasures(int64_t) { return true; }

Result<std::vector<ErasureState>> ServerStore::Erasures(const std::string& participant) {
  std::vector<ErasureState> list;
  Status status = InErasureTransaction(false, [&](ErasureTxn& txn) -> Status {
    Result<std::vector<ErasureState>> found = txn.erasures->ListErasures(participant);
    if (!found.ok()) return found.status();
    list = std::move(found.value());
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return list;
}

Result<RetentionReport> ServerStore::ApplyRetention(const RetentionPolicy& policy, bool dry_run) {
  if (policy.days <= 0) return InvalidArgument("a retention limit is at least one day");
  RetentionReport report;
  Env* env = nullptr;
  Status status = InErasureTransaction(!dry_run, [&](ErasureTxn& txn) -> Status {
    report = RetentionReport{};
    env = txn.env;
    const int64_t limit = txn.env->NowMillis() - policy.days * kDayMs;
    Result<std::map<std::string, int64_t>> contacts = txn.erasures->LastContacts();
    if (!contacts.ok()) return contacts.status();
    Result<std::vector<Device>> devices = txn.scopes->ActiveDevices();
    if (!devices.ok()) return devices.status();
    ScopeTracker tracker(txn.schema, txn.scopes);
    for (const auto& [participant, last] : *contacts) {
      Result<std::optional<ParticipantScope>> ps = txn.scopes->StoredParticipant(participant);
      if (!ps.ok()) return ps.status();
      const bool retired = ps->has_value() && (*ps)->referent == kRetiredReferent;
      if (last >= limit) {
        if (!retired) continue;
        // Someone recorded something since (a tablet that still held them): back in scope, whole,
        // on every tablet whose scope holds them by their own fields.
        report.reactivated.push_back({participant, last});
        if (!dry_run) CARNET_RETURN_IF_ERROR(tracker.Update("participants", participant));
        continue;
      }
      if (retired && policy.action == RetentionAction::kForget) continue;
      report.retired.push_back({participant, last});
      if (dry_run || policy.action == RetentionAction::kErase) continue;
      // Out of every scope, so that no pull or snapshot serves them again; the tablets holding
      // them forget them. The central records keep them all.
      for (const Device& d : *devices) {
        if (ScopeTracker::Covers(d, RecordScope{participant, std::nullopt}, *ps)) {
          CARNET_RETURN_IF_ERROR(
              txn.scopes->AddForget(d.id, "participants", participant, /*own=*/false));
        }
      }
      CARNET_RETURN_IF_ERROR(txn.scopes->SaveParticipant(
          participant, ParticipantScope{kRetiredReferent, std::nullopt}));
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  if (!dry_run && policy.action == RetentionAction::kErase) {
    const std::string by =
        "retention policy (no contact for " + std::to_string(policy.days) + " days)";
    for (const RetentionReport::Item& item : report.retired) {
      Result<ErasureReport> erased = Erase(item.participant, by);
      if (!erased.ok()) return erased.status();
      report.scrubbed = erased->scrubbed;  // the last one's try covers those before it
    }
  }
  if (!dry_run && env != nullptr && (!report.retired.empty() || !report.reactivated.empty())) {
    env->Log(LogLevel::kInfo,
             "retention (" + std::to_string(policy.days) + " days): " +
                 std::to_string(report.retired.size()) +
                 (policy.action == RetentionAction::kErase ? " participants erased, "
                                                           : " participants left the tablets, ") +
                 std::to_string(report.reactivated.size()) + " back in scope");
  }
  return report;
}

}  // namespace carnet
