#include "sync/server/scope.h"

#include <algorithm>

namespace carnet {

bool ScopeTracker::Covers(const Device& device, const RecordScope& scope,
                          const std::optional<ParticipantScope>& participant) {
  auto covers_territory = [&](const std::optional<std::string>& territory) {
    return territory && std::find(device.territories.begin(), device.territories.end(),
                                  *territory) != device.territories.end();
  };
  if (scope.participant) {
    if (!participant) return false;
    return (participant->referent && *participant->referent == device.adviser) ||
           covers_territory(participant->territory);
  }
  return covers_territory(scope.territory);
}

Result<std::optional<std::string>> ScopeTracker::Winner(const std::string& collection,
                                                        const std::string& record,
                                                        const std::string& field) {
  Result<std::vector<Entry>> heads = source_->LiveHeads(collection, record, field);
  if (!heads.ok()) return heads.status();
  if (heads->empty()) return std::optional<std::string>();
  const CollectionSpec* spec = schema_->Find(collection);
  return RegisterWinner(spec ? spec->Find(field) : nullptr, *heads).value;
}

Result<RecordScope> ScopeTracker::Compute(const std::string& collection,
                                          const std::string& record) {
  if (collection == "participants") return RecordScope{record, std::nullopt};
  const CollectionSpec* spec = schema_->Find(collection);
  // A newer app's collection goes by its `territory` field if it has one (PROTOCOL.md, Scope).
  if (spec != nullptr && spec->belongs_to_participant) {
    Result<std::optional<std::string>> participant = Winner(collection, record, spec->participant_field);
    if (!participant.ok()) return participant.status();
    return RecordScope{*participant, std::nullopt};
  }
  Result<std::optional<std::string>> territory = Winner(collection, record, "territory");
  if (!territory.ok()) return territory.status();
  return RecordScope{std::nullopt, *territory};
}

Result<ParticipantScope> ScopeTracker::ComputeParticipant(const std::string& participant) {
  Result<std::optional<std::string>> referent = Winner("participants", participant, "referent");
  if (!referent.ok()) return referent.status();
  Result<std::optional<std::string>> territory = Winner("participants", participant, "territory");
  if (!territory.ok()) return territory.status();
  return ParticipantScope{*referent, *territory};
}

Status ScopeTracker::Update(const std::string& collection, const std::string& record,
                           const std::string& pusher) {
  Result<RecordScope> now = Compute(collection, record);
  if (!now.ok()) return now.status();
  Result<std::optional<RecordScope>> before = source_->StoredScope(collection, record);
  if (!before.ok()) return before.status();
  // Devices are read only when a scope moved: most changes leave it where it was.
  std::optional<std::vector<Device>> devices;
  auto holders = [&](const RecordScope& scope,
                     const std::optional<ParticipantScope>& ps) -> Result<std::vector<std::string>> {
    if (!devices) {
      Result<std::vector<Device>> active = source_->ActiveDevices();
      if (!active.ok()) return active.status();
      devices = std::move(active.value());
    }
    std::vector<std::string> ids;
    for (const Device& d : *devices) {
      if (Covers(d, scope, ps)) ids.push_back(d.id);
    }
    return ids;
  };
  auto forget_on_losers = [&](const RecordScope& before_scope,
                              const std::optional<ParticipantScope>& before_ps,
                              const RecordScope& now_scope,
                              const std::optional<ParticipantScope>& now_ps) -> Status {
    Result<std::vector<std::string>> before_ids = holders(before_scope, before_ps);
    if (!before_ids.ok()) return before_ids.status();
    Result<std::vector<std::string>> now_ids = holders(now_scope, now_ps);
    if (!now_ids.ok()) return now_ids.status();
    for (const std::string& id : *before_ids) {
      if (std::find(now_ids->begin(), now_ids->end(), id) == now_ids->end()) {
        CARNET_RETURN_IF_ERROR(source_->AddForget(id, collection, record, id == pusher));
      }
    }
    return Status::Ok();
  };

  if (!before->has_value() || **before != *now) {
    CARNET_RETURN_IF_ERROR(source_->SaveScope(collection, record, *now));
    if (collection != "participants") {
      std::optional<ParticipantScope> before_ps, now_ps;
      if (before->has_value() && (*before)->participant) {
        Result<std::optional<ParticipantScope>> ps = source_->StoredParticipant(*(*before)->participant);
        if (!ps.ok()) return ps.status();
        before_ps = *ps;
      }
      if (now->participant) {
        Result<std::optional<ParticipantScope>> ps = source_->StoredParticipant(*now->participant);
        if (!ps.ok()) return ps.status();
        now_ps = *ps;
      }
      CARNET_RETURN_IF_ERROR(source_->Resequence(collection, record));
      if (before->has_value()) {
        CARNET_RETURN_IF_ERROR(forget_on_losers(**before, before_ps, *now, now_ps));
      }
    }
  }
  if (collection != "participants") return Status::Ok();

  Result<ParticipantScope> ps_now = ComputeParticipant(record);
  if (!ps_now.ok()) return ps_now.status();
  Result<std::optional<ParticipantScope>> ps_before = source_->StoredParticipant(record);
  if (!ps_before.ok()) return ps_before.status();
  if (ps_before->has_value() && **ps_before == *ps_now) return Status::Ok();
  CARNET_RETURN_IF_ERROR(source_->SaveParticipant(record, *ps_now));
  // The participant moved (or appeared): every device now holding them receives their records
  // whole; every device that held them forgets them.
  Result<std::vector<std::pair<std::string, std::string>>> records = source_->RecordsOf(record);
  if (!records.ok()) return records.status();
  for (const auto& [c, r] : *records) CARNET_RETURN_IF_ERROR(source_->Resequence(c, r));
  if (ps_before->has_value()) {
    RecordScope own{record, std::nullopt};
    CARNET_RETURN_IF_ERROR(forget_on_losers(own, *ps_before, own, *ps_now));
  }
  return Status::Ok();
}

Result<bool> ScopeTracker::Holds(const Device& device, const std::string& collection,
                                 const std::string& record) {
  Result<std::optional<RecordScope>> scope = source_->StoredScope(collection, record);
  if (!scope.ok()) return scope.status();
  if (!scope->has_value()) return false;
  std::optional<ParticipantScope> ps;
  if ((*scope)->participant) {
    Result<std::optional<ParticipantScope>> stored = source_->StoredParticipant(*(*scope)->participant);
    if (!stored.ok()) return stored.status();
    ps = *stored;
  }
  return Covers(device, **scope, ps);
}

Result<std::optional<std::string>> ScopeTracker::ParticipantOf(const std::string& collection,
                                                               const std::string& record) {
  Result<std::optional<RecordScope>> scope = source_->StoredScope(collection, record);
  if (!scope.ok()) return scope.status();
  if (!scope->has_value()) return std::optional<std::string>();
  return (*scope)->participant;
}

Result<ScopeTracker::Standing> ScopeTracker::StandingOf(const Device& device,
                                                        const std::string& collection,
                                                        const std::string& record) {
  Result<std::optional<RecordScope>> scope = source_->StoredScope(collection, record);
  if (!scope.ok()) return scope.status();
  if (!scope->has_value()) return Standing::kUnknown;
  std::optional<ParticipantScope> ps;
  if ((*scope)->participant) {
    Result<std::optional<ParticipantScope>> stored =
        source_->StoredParticipant(*(*scope)->participant);
    if (!stored.ok()) return stored.status();
    // A participant whose referent or territory has not arrived yet is nobody's yet: a
    // creation cut by a batch between the two is not a hand-over.
    if (!stored->has_value() || !(*stored)->referent || !(*stored)->territory) {
      return Standing::kUnknown;
    }
    ps = *stored;
  } else if (!(*scope)->territory) {
    return Standing::kUnknown;
  }
  return Covers(device, **scope, ps) ? Standing::kHeld : Standing::kElsewhere;
}

Result<PushAccess> ScopeTracker::Access(const Device& device, const std::string& collection,
                                        const std::string& record) {
  Result<Standing> standing = StandingOf(device, collection, record);
  if (!standing.ok()) return standing.status();
  if (*standing == Standing::kHeld) return PushAccess::kHeld;
  if (*standing == Standing::kUnknown) return PushAccess::kNew;
  Result<Grace> grace = source_->InGrace(device, collection, record);
  if (!grace.ok()) return grace.status();
  switch (*grace) {
    case Grace::kAfterAnother: return PushAccess::kGrace;
    case Grace::kAfterOwn: return PushAccess::kHandedOver;
    case Grace::kNone: break;
  }
  return PushAccess::kRefused;
}

Status ScopeTracker::ForgetIfElsewhere(const Device& device, const std::string& collection,
                                       const std::string& record) {
  Result<Standing> standing = StandingOf(device, collection, record);
  if (!standing.ok()) return standing.status();
  if (*standing != Standing::kElsewhere) return Status::Ok();
  Result<bool> pending = source_->ForgetPending(device, collection, record);
  if (!pending.ok()) return pending.status();
  if (*pending) return Status::Ok();
  return source_->AddForget(device.id, collection, record, /*own=*/true);
}

namespace {

// The collection a reference field names records of: the schema says that a field is a ref, not
// to what. "" for a field that is not a ref.
std::string RefTarget(const CollectionSpec& spec, const std::string& field) {
  if (field == spec.participant_field && !field.empty()) return "participants";
  const FieldSpec* f = spec.Find(field);
  if (f == nullptr || f->type != FieldType::kRef) return "";
  if (field == "registered") return "participants";
  if (field == "session") return "workshops";
  return "";
}

// Whether the field decides whose the record is.
bool IsScopeField(const CollectionSpec& spec, const std::string& field) {
  if (spec.name == "participants") return field == "referent" || field == "territory";
  if (spec.belongs_to_participant) return field == spec.participant_field;
  return field == "territory";
}

}  // namespace

Status PushGuard::Refuse(const Key& record, const Key* target) {
  refused_ = record;
  std::string what = record.first + " " + record.second;
  if (target) what += " may not name " + target->first + " " + target->second + ", which";
  return Status(StatusCode::kPermissionDenied,
                what + " is outside the scope of device " + device_->id + " (adviser " +
                    device_->adviser + ")");
}

Result<PushAccess> PushGuard::AccessOf(const Key& record) {
  auto known = access_.find(record);
  if (known != access_.end()) return known->second;
  Result<PushAccess> access = scopes_->Access(*device_, record.first, record.second);
  if (!access.ok()) return access.status();
  access_.emplace(record, *access);
  return *access;
}

Status PushGuard::MayReference(const Key& record, const Key& target) {
  Result<PushAccess> access = AccessOf(target);
  if (!access.ok()) return access.status();
  return *access == PushAccess::kRefused ? Refuse(record, &target) : Status::Ok();
}

Status PushGuard::Admit(const std::vector<Operation>& ops) {
  // Every record first, so that what the batch refers to is judged before any of it applies.
  for (const Operation& op : ops) {
    Key key(op.collection, op.record);
    if (!touched_.insert(key).second) continue;
    Result<PushAccess> access = AccessOf(key);
    if (!access.ok()) return access.status();
    if (*access == PushAccess::kRefused) return Refuse(key);
  }
  for (const Operation& op : ops) {
    const CollectionSpec* spec = schema_->Find(op.collection);
    if (spec == nullptr) continue;
    Key key(op.collection, op.record);
    if (op.kind == OpKind::kWrite && IsScopeField(*spec, op.field) &&
        access_.at(key) == PushAccess::kHandedOver) {
      rescoped_.insert(key);
    }
    // A reference written: a participant field, a session, a registration.
    const std::string target = RefTarget(*spec, op.field);
    if (target.empty()) continue;
    std::optional<std::string> named;
    if (op.kind == OpKind::kWrite) named = op.value;
    if (op.kind == OpKind::kAdd) named = op.element;
    if (named && !named->empty()) CARNET_RETURN_IF_ERROR(MayReference(key, {target, *named}));
  }
  // A record that was not the device's keeps to a participant it may reference.
  for (const Key& key : touched_) {
    if (access_.at(key) == PushAccess::kHeld) continue;
    const CollectionSpec* spec = schema_->Find(key.first);
    if (spec == nullptr || !spec->belongs_to_participant || key.first == "participants") continue;
    Result<std::optional<std::string>> participant = scopes_->ParticipantOf(key.first, key.second);
    if (!participant.ok()) return participant.status();
    if (*participant) CARNET_RETURN_IF_ERROR(MayReference(key, {"participants", **participant}));
  }
  return Status::Ok();
}

Status PushGuard::Check() {
  for (const Key& key : touched_) {
    if (access_.at(key) == PushAccess::kHeld) continue;
    const CollectionSpec* spec = schema_->Find(key.first);
    if (spec != nullptr && spec->belongs_to_participant && key.first != "participants") {
      Result<std::optional<std::string>> participant =
          scopes_->ParticipantOf(key.first, key.second);
      if (!participant.ok()) return participant.status();
      if (*participant) {
        CARNET_RETURN_IF_ERROR(MayReference(key, {"participants", **participant}));
      }
    }
  }
  // A tablet may hand a record over, never take one back: what it handed over and whose scope
  // fields the batch wrote does not end in the device's scope. A record another moved out of
  // its scope may, as a concurrent write that wins: the tablet did not know.
  for (const Key& key : rescoped_) {
    Result<bool> holds = scopes_->Holds(*device_, key.first, key.second);
    if (!holds.ok()) return holds.status();
    if (*holds) {
      refused_ = key;
      return Status(StatusCode::kPermissionDenied,
                    key.first + " " + key.second + " was handed over by device " + device_->id +
                        ", which may not take it back (adviser " + device_->adviser + ")");
    }
  }
  // Participants first: forgetting one takes the records that belong to them along.
  for (bool participants : {true, false}) {
    for (const auto& [collection, record] : touched_) {
      if ((collection == "participants") != participants) continue;
      CARNET_RETURN_IF_ERROR(scopes_->ForgetIfElsewhere(*device_, collection, record));
    }
  }
  return Status::Ok();
}

}  // namespace carnet
