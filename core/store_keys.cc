// Encryption at rest and the offline lease (core/ENCRYPTION.md): the keys, sealing what the store
// writes and opening what it reads, erasing a participant's key.
#include <algorithm>
#include <charconv>
#include <map>

#include "carnet/key_store.h"
#include "carnet/store.h"
#include "core/store_impl.h"

namespace carnet {
namespace {

// meta "at_rest": how the file keeps the values of classes S and H.
constexpr const char* kAtRestKey = "at_rest";
constexpr const char* kSealed = "xchacha20poly1305";
constexpr const char* kClear = "clear";
// meta "lease": the last successful contact with the server and the latest time seen since.
constexpr const char* kLeaseKey = "lease";
// meta "scrub_pending": a key was erased and the file not rebuilt since (Scrub).
constexpr const char* kScrubPendingKey = "scrub_pending";
constexpr int64_t kDayMs = 86'400'000;

std::string WrapAd(const std::string& id, const std::string& participant) {
  return crypto::AdBuilder("carnet data key 1").Add(id).Add(participant).bytes();
}

// A value's place: a sealed value moved to another record, field, element or stamp (or to the
// outbox row of another operation) does not open.
std::string ValueAd(const EntryKey& key) {
  return crypto::AdBuilder("carnet value 1")
      .Add(key.collection)
      .Add(key.record)
      .Add(key.field)
      .Add(key.element)
      .Add(EncodeStamp(key.stamp))
      .bytes();
}

// An element's place leaves out the stamp: every addition of one element must give one key.
std::string ElementAd(const std::string& collection, const std::string& record,
                      const std::string& field) {
  return crypto::AdBuilder("carnet element 1").Add(collection).Add(record).Add(field).bytes();
}

std::string LeaseAd(const std::string& device) {
  return crypto::AdBuilder("carnet lease 1").Add(device).bytes();
}

bool IsSetOp(OpKind kind) { return kind == OpKind::kAdd || kind == OpKind::kRemove; }

// Rules the keys need from a schema; the Programme keeps them. A health value needs a
// participant to be sealed for, and a set element, part of an entry's key, cannot follow a
// participant that changes.
Status CheckSchema(const Schema& schema) {
  for (const CollectionSpec& c : schema.collections()) {
    if (!c.participant_field.empty()) {
      const FieldSpec* field = c.Find(c.participant_field);
      if (field == nullptr || field->kind != FieldKind::kRegister ||
          field->sensitivity == Sensitivity::kSocial || field->sensitivity == Sensitivity::kHealth) {
        return InvalidArgument("schema: " + c.name + "." + c.participant_field +
                               " must be a register of class P to name a record's participant");
      }
    }
    for (const FieldSpec& f : c.fields) {
      if (f.sensitivity != Sensitivity::kHealth) continue;
      if (!c.belongs_to_participant) {
        return InvalidArgument("schema: health field " + c.name + "." + f.name +
                               " in a collection that belongs to no participant");
      }
      if (f.kind == FieldKind::kSet && !c.participant_field.empty()) {
        return InvalidArgument("schema: health set " + c.name + "." + f.name +
                               " allowed only on the participant's own record");
      }
    }
  }
  return Status::Ok();
}

Status KeyStoreError(const Status& status, const std::string& what) {
  return Status(status.code(), "key store: " + what + ": " + status.message());
}

}  // namespace

Store::Impl::Protection Store::Impl::ProtectionOf(const std::string& collection,
                                                  const std::string& field) const {
  if (!encrypted_ || field.empty()) return Protection::kClear;
  const CollectionSpec* c = schema_->Find(collection);
  const FieldSpec* f = c ? c->Find(field) : nullptr;
  // A newer app's field: its class is unknown here, so it is kept as sensitive.
  if (f == nullptr) return Protection::kStoreKey;
  switch (f->sensitivity) {
    case Sensitivity::kSocial:
      return Protection::kStoreKey;
    case Sensitivity::kHealth:
      return Protection::kParticipantKey;
    default:
      return Protection::kClear;
  }
}

Status Store::Impl::InitializeKeys() {
  CARNET_RETURN_IF_ERROR(CheckSchema(*schema_));
  Result<std::optional<std::string>> at_rest = GetMeta(kAtRestKey);
  if (!at_rest.ok()) return at_rest.status();
  const bool sealed = at_rest->has_value() && **at_rest == kSealed;
  if (at_rest->has_value() && !sealed && **at_rest != kClear) {
    return FailedPrecondition("store keeps its values as '" + **at_rest +
                              "', unknown to this build of Carnet: update the app");
  }
  KeyStore* keys = options_.key_store;
  if (keys == nullptr) {
    if (sealed) {
      return FailedPrecondition("store '" + options_.path +
                                "' is encrypted at rest: open it with the key store that holds "
                                "its master key (StoreOptions.key_store)");
    }
    if (!at_rest->has_value()) CARNET_RETURN_IF_ERROR(PutMeta(kAtRestKey, kClear));
    return OpenLease(false);
  }

  CARNET_RETURN_IF_ERROR(crypto::Initialize());
  const std::string name = MasterKeyName(options_.device_id);
  Result<std::string> master = keys->Get(name);
  if (!master.ok() && master.status().code() != StatusCode::kNotFound) {
    return KeyStoreError(master.status(), "reading the master key '" + name + "'");
  }
  if (!master.ok()) {
    if (sealed) {
      return FailedPrecondition("the key store holds no master key '" + name +
                                "' for this store, which is encrypted at rest: it is another "
                                "key store, or the keys were lost, and the store cannot be read");
    }
    master_key_ = crypto::SecretKey::Random();
    Status put = keys->Put(name, std::string(master_key_.view()));
    if (!put.ok()) return KeyStoreError(put, "saving the master key '" + name + "'");
  } else {
    Result<crypto::SecretKey> key = crypto::SecretKey::FromBytes(*master);
    if (!key.ok()) {
      return FailedPrecondition("the key store's master key '" + name +
                                "' is not 32 bytes long: not a key this store made");
    }
    master_key_ = *key;
  }

  if (sealed) {
    CARNET_RETURN_IF_ERROR(LoadKeyRows());
    auto row = key_rows_.find("");
    if (row == key_rows_.end()) {
      return Status(StatusCode::kCorruption, "encrypted store without its store key");
    }
    Result<crypto::SecretKey> key =
        crypto::UnwrapKey(master_key_, row->second.wrapped, WrapAd(row->second.id, ""));
    if (!key.ok()) {
      return FailedPrecondition("the key store's master key '" + name +
                                "' does not open this store: another key store, or a store file "
                                "copied from elsewhere");
    }
    store_key_id_ = row->second.id;
    keys_by_id_.emplace(store_key_id_, crypto::DataKey::Derive(store_key_id_, *key));
    encrypted_ = true;
    CARNET_RETURN_IF_ERROR(OpenLease(true));
    CARNET_RETURN_IF_ERROR(OpenNowClear());
    // An erasure whose scrub was cut short: finished now, or at the next erasure or open.
    Status scrubbed = FinishScrub();
    if (!scrubbed.ok()) {
      options_.env->Log(LogLevel::kWarning,
                        "store: the file could not be rebuilt after an erasure (" +
                            scrubbed.ToString() + "): retried at the next open");
    }
    return Status::Ok();
  }

  // The first open with a key store: a store key, and what the file held in clear sealed, in one
  // transaction; then the file is rebuilt, so that no clear text lingers in free pages or the WAL.
  size_t sealed_count = 0;
  CARNET_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  Status status = [&]() -> Status {
    Result<std::optional<Lease>> lease = ReadLease(false);
    if (!lease.ok()) return lease.status();
    encrypted_ = true;
    Result<const crypto::DataKey*> store_key = ParticipantKey("", true);
    if (!store_key.ok()) return store_key.status();
    store_key_id_ = (*store_key)->id;
    Result<size_t> sealed_existing = SealExisting();
    if (!sealed_existing.ok()) return sealed_existing.status();
    sealed_count = *sealed_existing;
    CARNET_RETURN_IF_ERROR(PutMeta(kAtRestKey, kSealed));
    // A store never synced counts its lease from its birth.
    const int64_t now = LeaseNowMs();
    CARNET_RETURN_IF_ERROR(WriteLease(lease->value_or(Lease{now, now})));
    return db_->Exec("COMMIT");
  }();
  keys_made_.clear();
  if (!status.ok()) {
    (void)db_->Exec("ROLLBACK");
    encrypted_ = false;
    keys_by_id_.clear();
    key_rows_.clear();
    key_owners_.clear();
    return status;
  }
  // A new file has nothing to scrub; one that held data in clear, even all of it deleted since,
  // may keep it in free pages.
  if (sealed_count > 0 || opened_layout_ > 0) CARNET_RETURN_IF_ERROR(Scrub());
  return OpenLease(true);
}

Result<size_t> Store::Impl::SealExisting() {
  std::vector<Entry> entries;
  {
    Result<sqlite::Statement*> st = db_->Prepare(
        "SELECT collection, record, field, element, stamp, kind, live, value, refs FROM entries "
        "WHERE field <> ''");
    if (!st.ok()) return st.status();
    Status status;
    while ((*st)->Step(&status)) {
      sqlite::Statement& s = **st;
      if (ProtectionOf(s.Text(0), s.Text(2)) == Protection::kClear) continue;
      Result<Stamp> stamp = DecodeStamp(s.Text(4));
      Result<std::vector<Stamp>> refs = DecodeStampList(s.Text(8));
      if (!stamp.ok() || !refs.ok()) {
        s.Reset();
        return Status(StatusCode::kCorruption, "an entry's stamp or refs do not decode");
      }
      entries.push_back(Entry{EntryKey{s.Text(0), s.Text(1), s.Text(2), s.Text(3), *stamp},
                              static_cast<FieldKind>(s.Int(5)), s.Int(6) != 0, s.OptionalText(7),
                              std::move(refs.value())});
    }
    CARNET_RETURN_IF_ERROR(status);
  }
  for (Entry& e : entries) {
    EntryKey old_key = e.key;
    CARNET_RETURN_IF_ERROR(Seal(&e));
    if (e.key.element != old_key.element) {
      Result<sqlite::Statement*> erase = db_->Query(
          "DELETE FROM entries WHERE collection = ? AND record = ? AND field = +? AND "
          "element = ? AND stamp = ?",
          old_key.collection, old_key.record, old_key.field, old_key.element,
          sqlite::Blob{EncodeStamp(old_key.stamp)});
      if (!erase.ok()) return erase.status();
      CARNET_RETURN_IF_ERROR((*erase)->Run());
    }
    CARNET_RETURN_IF_ERROR(PutEntry(e));
  }
  std::vector<Operation> ops;
  {
    Result<sqlite::Statement*> st = db_->Prepare(
        "SELECT seq, hlc, kind, collection, record, field, element, value FROM outbox");
    if (!st.ok()) return st.status();
    Status status;
    while ((*st)->Step(&status)) {
      sqlite::Statement& s = **st;
      if (ProtectionOf(s.Text(3), s.Text(5)) == Protection::kClear) continue;
      Operation op;
      op.device = options_.device_id;
      op.seq = static_cast<uint64_t>(s.Int(0));
      op.hlc = static_cast<Hlc>(s.Int(1));
      op.kind = static_cast<OpKind>(s.Int(2));
      op.collection = s.Text(3);
      op.record = s.Text(4);
      op.field = s.Text(5);
      op.element = s.Text(6);
      op.value = s.OptionalText(7);
      ops.push_back(std::move(op));
    }
    CARNET_RETURN_IF_ERROR(status);
  }
  for (Operation& op : ops) {
    CARNET_RETURN_IF_ERROR(Seal(&op));
    Result<sqlite::Statement*> update =
        db_->Query("UPDATE outbox SET element = ?, value = ? WHERE seq = ?", op.element, op.value,
                   static_cast<int64_t>(op.seq));
    if (!update.ok()) return update.status();
    CARNET_RETURN_IF_ERROR((*update)->Run());
  }
  if (!entries.empty() || !ops.empty()) {
    options_.env->Log(LogLevel::kInfo, "store: sealed " + std::to_string(entries.size()) +
                                           " entries and " + std::to_string(ops.size()) +
                                           " outbox operations kept in clear so far");
  }
  return entries.size() + ops.size();
}

// --- Keys -----------------------------------------------------------------------------------

Result<std::optional<std::string>> Store::Impl::ParticipantOf(const std::string& collection,
                                                              const std::string& record) {
  const CollectionSpec* c = schema_->Find(collection);
  if (c == nullptr || c->participant_field.empty()) return std::optional<std::string>(record);
  Result<std::vector<Entry>> heads = LoadField(collection, record, c->participant_field);
  if (!heads.ok()) return heads.status();
  std::erase_if(*heads, [](const Entry& e) { return !e.live; });
  if (heads->empty()) return std::optional<std::string>();
  return RegisterWinner(c->Find(c->participant_field), *heads).value;
}

Result<const crypto::DataKey*> Store::Impl::KeyForWrite(const std::string& collection,
                                                        const std::string& record,
                                                        Protection protection) {
  if (protection == Protection::kParticipantKey) {
    Result<std::optional<std::string>> participant = ParticipantOf(collection, record);
    if (!participant.ok()) return participant.status();
    // A record that names no participant yet: the store key, until an erasure of the
    // participant it comes to name seals it with theirs (EraseParticipantKey).
    if (participant->has_value()) return ParticipantKey(**participant, true);
  }
  return &keys_by_id_.at(store_key_id_);
}

Status Store::Impl::LoadKeyRows() {
  // A few thousand rows at most, a few dozen bytes each: read once, so that making a key costs
  // one insert and finding one no query.
  Result<sqlite::Statement*> st = db_->Prepare("SELECT participant, id, wrapped FROM data_keys");
  if (!st.ok()) return st.status();
  Status status;
  while ((*st)->Step(&status)) {
    std::optional<std::string> participant = (*st)->OptionalText(0);
    std::string id = (*st)->Text(1);
    std::optional<std::string> wrapped = (*st)->OptionalText(2);
    if (!participant || !wrapped) {
      erased_key_ids_.insert(id);
      continue;
    }
    key_owners_[id] = *participant;
    key_rows_[*participant] = KeyRow{std::move(id), std::move(*wrapped)};
  }
  return status;
}

Result<const crypto::DataKey*> Store::Impl::ParticipantKey(const std::string& participant,
                                                           bool create) {
  auto row = key_rows_.find(participant);
  if (row != key_rows_.end()) {
    auto known = keys_by_id_.find(row->second.id);
    if (known != keys_by_id_.end()) return &known->second;
    Result<crypto::SecretKey> key =
        crypto::UnwrapKey(master_key_, row->second.wrapped, WrapAd(row->second.id, participant));
    if (!key.ok()) return key.status();
    return &keys_by_id_.emplace(row->second.id, crypto::DataKey::Derive(row->second.id, *key))
                .first->second;
  }
  if (!create) return static_cast<const crypto::DataKey*>(nullptr);
  std::string id = crypto::NewKeyId();
  while (key_owners_.count(id) || erased_key_ids_.count(id)) id = crypto::NewKeyId();
  crypto::SecretKey key = crypto::SecretKey::Random();
  std::string wrapped = crypto::WrapKey(master_key_, key, WrapAd(id, participant));
  Result<sqlite::Statement*> insert = db_->Query("INSERT INTO data_keys VALUES(?, ?, ?)",
                                                 participant, sqlite::Blob{id}, sqlite::Blob{wrapped});
  if (!insert.ok()) return insert.status();
  CARNET_RETURN_IF_ERROR((*insert)->Run());
  keys_made_.emplace_back(participant, id);
  key_owners_[id] = participant;
  key_rows_[participant] = KeyRow{id, std::move(wrapped)};
  return &keys_by_id_.emplace(id, crypto::DataKey::Derive(id, key)).first->second;
}

Result<const crypto::DataKey*> Store::Impl::KeyById(const std::string& id) {
  auto known = keys_by_id_.find(id);
  if (known != keys_by_id_.end()) return &known->second;
  if (erased_key_ids_.count(id)) return static_cast<const crypto::DataKey*>(nullptr);
  auto owner = key_owners_.find(id);
  if (owner == key_owners_.end()) {
    return Status(StatusCode::kCorruption, "a value is sealed with a key this store does not have");
  }
  return ParticipantKey(owner->second, false);
}

void Store::Impl::DropKeysMade(size_t keep) {
  while (keys_made_.size() > keep) {
    const auto& [participant, id] = keys_made_.back();
    key_rows_.erase(participant);
    key_owners_.erase(id);
    keys_by_id_.erase(id);
    keys_made_.pop_back();
  }
}

// --- Sealing and opening ----------------------------------------------------------------------

Status Store::Impl::Seal(Operation* op) {
  Protection protection = ProtectionOf(op->collection, op->field);
  if (protection == Protection::kClear) return Status::Ok();
  Result<const crypto::DataKey*> key = KeyForWrite(op->collection, op->record, protection);
  if (!key.ok()) return key.status();
  if (IsSetOp(op->kind)) {
    op->element = crypto::SealElement(**key, op->element,
                                      ElementAd(op->collection, op->record, op->field));
  }
  if (op->value) {
    EntryKey place{op->collection, op->record, op->field, op->element, op->stamp()};
    op->value = crypto::SealValue(**key, *op->value, ValueAd(place));
  }
  return Status::Ok();
}

Status Store::Impl::Seal(Entry* entry) {
  Protection protection = ProtectionOf(entry->key.collection, entry->key.field);
  if (protection == Protection::kClear) return Status::Ok();
  Result<const crypto::DataKey*> key =
      KeyForWrite(entry->key.collection, entry->key.record, protection);
  if (!key.ok()) return key.status();
  if (entry->kind == FieldKind::kSet) {
    entry->key.element = crypto::SealElement(
        **key, entry->key.element,
        ElementAd(entry->key.collection, entry->key.record, entry->key.field));
  }
  if (entry->value) entry->value = crypto::SealValue(**key, *entry->value, ValueAd(entry->key));
  return Status::Ok();
}

Result<bool> Store::Impl::Unseal(Entry* entry) {
  if (ProtectionOf(entry->key.collection, entry->key.field) == Protection::kClear) return true;
  return OpenSealed(entry);
}

Result<bool> Store::Impl::OpenSealed(Entry* entry) {
  const std::string place = ValueAd(entry->key);  // with the element as stored
  if (entry->kind == FieldKind::kSet) {
    Result<const crypto::DataKey*> key = KeyById(crypto::ElementKeyId(entry->key.element));
    if (!key.ok()) return key.status();
    if (*key == nullptr) return false;
    Result<std::string> element = crypto::OpenElement(
        **key, entry->key.element,
        ElementAd(entry->key.collection, entry->key.record, entry->key.field));
    if (!element.ok()) return element.status();
    entry->key.element = std::move(element.value());
  }
  if (entry->value) {
    Result<const crypto::DataKey*> key = KeyById(crypto::ValueKeyId(*entry->value));
    if (!key.ok()) return key.status();
    if (*key == nullptr) return false;
    Result<std::string> value = crypto::OpenValue(**key, *entry->value, place);
    if (!value.ok()) return value.status();
    entry->value = std::move(value.value());
  }
  return true;
}

Status Store::Impl::Unseal(Operation* op) {
  if (ProtectionOf(op->collection, op->field) == Protection::kClear) return Status::Ok();
  EntryKey place{op->collection, op->record, op->field, op->element, op->stamp()};
  auto erased = [&] {
    return Status(StatusCode::kCorruption, "operation " + std::to_string(op->seq) +
                                               " in the outbox is sealed with an erased key");
  };
  if (IsSetOp(op->kind)) {
    Result<const crypto::DataKey*> key = KeyById(crypto::ElementKeyId(op->element));
    if (!key.ok()) return key.status();
    if (*key == nullptr) return erased();
    Result<std::string> element =
        crypto::OpenElement(**key, op->element, ElementAd(op->collection, op->record, op->field));
    if (!element.ok()) return element.status();
    op->element = std::move(element.value());
  }
  if (op->value) {
    Result<const crypto::DataKey*> key = KeyById(crypto::ValueKeyId(*op->value));
    if (!key.ok()) return key.status();
    if (*key == nullptr) return erased();
    Result<std::string> value = crypto::OpenValue(**key, *op->value, ValueAd(place));
    if (!value.ok()) return value.status();
    op->value = std::move(value.value());
  }
  return Status::Ok();
}

Result<std::optional<std::string>> Store::Impl::Reseal(const EntryKey& from, const Stamp& to,
                                                       const std::optional<std::string>& value) {
  if (!value || ProtectionOf(from.collection, from.field) == Protection::kClear) return value;
  Result<const crypto::DataKey*> key = KeyById(crypto::ValueKeyId(*value));
  if (!key.ok()) return key.status();
  if (*key == nullptr) return value;  // erased: unreadable wherever it is
  Result<std::string> clear = crypto::OpenValue(**key, *value, ValueAd(from));
  if (!clear.ok()) return clear.status();
  EntryKey moved = from;
  moved.stamp = to;
  return std::optional<std::string>(crypto::SealValue(**key, *clear, ValueAd(moved)));
}

// --- Erasure ----------------------------------------------------------------------------------

Status Store::Impl::EraseParticipantKey(const std::string& participant) {
  if (!IsValidRecordId(participant)) {
    return InvalidArgument("invalid participant id '" + participant.substr(0, 100) + "'");
  }
  if (!encrypted_) return Status::Ok();
  CARNET_RETURN_IF_ERROR(BeginTransaction());
  std::string erased_id;
  Status status = [&]() -> Status {
    Result<const crypto::DataKey*> current = ParticipantKey(participant, false);
    if (!current.ok()) return current.status();
    std::string current_id = *current ? (*current)->id : "";
    std::map<std::pair<std::string, std::string>, std::optional<std::string>> owners;
    auto owner_of = [&](const std::string& c, const std::string& r) -> Result<std::optional<std::string>> {
      auto it = owners.find({c, r});
      if (it != owners.end()) return it->second;
      Result<std::optional<std::string>> owner = ParticipantOf(c, r);
      if (owner.ok()) owners[{c, r}] = *owner;
      return owner;
    };
    // The key a health value should be under, when it is not: the participant's own for their
    // records, their new participant's (or the store key) for records that moved away.
    auto target = [&](const std::string& c, const std::string& r,
                      const std::string& id) -> Result<const crypto::DataKey*> {
      Result<std::optional<std::string>> owner = owner_of(c, r);
      if (!owner.ok()) return owner.status();
      const bool theirs = *owner == participant;
      if (theirs == (!current_id.empty() && id == current_id)) {
        return static_cast<const crypto::DataKey*>(nullptr);
      }
      if (theirs) {
        Result<const crypto::DataKey*> key = ParticipantKey(participant, true);
        if (key.ok()) current_id = (*key)->id;
        return key;
      }
      return KeyForWrite(c, r, Protection::kParticipantKey);
    };

    struct Row {
      EntryKey key;
      std::string value;
    };
    std::vector<Row> rows;
    {
      Result<sqlite::Statement*> st = db_->Prepare(
          "SELECT collection, record, field, element, stamp, value FROM entries "
          "WHERE value IS NOT NULL");
      if (!st.ok()) return st.status();
      Status read;
      while ((*st)->Step(&read)) {
        sqlite::Statement& s = **st;
        if (ProtectionOf(s.Text(0), s.Text(2)) != Protection::kParticipantKey) continue;
        Result<Stamp> stamp = DecodeStamp(s.Text(4));
        if (!stamp.ok()) {
          s.Reset();
          return Status(StatusCode::kCorruption, "entry stamp: " + stamp.status().message());
        }
        rows.push_back(Row{EntryKey{s.Text(0), s.Text(1), s.Text(2), s.Text(3), *stamp}, s.Text(5)});
      }
      CARNET_RETURN_IF_ERROR(read);
    }
    for (const Row& row : rows) {
      const std::string id = crypto::ValueKeyId(row.value);
      Result<const crypto::DataKey*> to = target(row.key.collection, row.key.record, id);
      if (!to.ok()) return to.status();
      if (*to == nullptr) continue;
      Result<const crypto::DataKey*> from = KeyById(id);
      if (!from.ok()) return from.status();
      if (*from == nullptr) continue;  // under a key erased before
      Result<std::string> clear = crypto::OpenValue(**from, row.value, ValueAd(row.key));
      if (!clear.ok()) return clear.status();
      Result<sqlite::Statement*> update = db_->Query(
          "UPDATE entries SET value = ? WHERE collection = ? AND record = ? AND field = +? AND "
          "element = ? AND stamp = ?",
          sqlite::Blob{crypto::SealValue(**to, *clear, ValueAd(row.key))}, row.key.collection,
          row.key.record, row.key.field, row.key.element, sqlite::Blob{EncodeStamp(row.key.stamp)});
      if (!update.ok()) return update.status();
      CARNET_RETURN_IF_ERROR((*update)->Run());
    }

    // The outbox: the participant's health changes must reach the server first; those of
    // records that moved away follow their new participant.
    std::vector<Operation> ops;
    {
      Result<sqlite::Statement*> st = db_->Prepare(
          "SELECT seq, hlc, kind, collection, record, field, element, value FROM outbox");
      if (!st.ok()) return st.status();
      Status read;
      while ((*st)->Step(&read)) {
        sqlite::Statement& s = **st;
        if (ProtectionOf(s.Text(3), s.Text(5)) != Protection::kParticipantKey) continue;
        Operation op;
        op.device = options_.device_id;
        op.seq = static_cast<uint64_t>(s.Int(0));
        op.hlc = static_cast<Hlc>(s.Int(1));
        op.kind = static_cast<OpKind>(s.Int(2));
        op.collection = s.Text(3);
        op.record = s.Text(4);
        op.field = s.Text(5);
        op.element = s.Text(6);
        op.value = s.OptionalText(7);
        ops.push_back(std::move(op));
      }
      CARNET_RETURN_IF_ERROR(read);
    }
    for (Operation& op : ops) {
      Result<std::optional<std::string>> owner = owner_of(op.collection, op.record);
      if (!owner.ok()) return owner.status();
      if (*owner == participant) {
        return FailedPrecondition("the outbox holds changes to the health data of participant " +
                                  participant + " not pushed yet: push before erasing the key");
      }
      if (!op.value || current_id.empty() || crypto::ValueKeyId(*op.value) != current_id) continue;
      CARNET_RETURN_IF_ERROR(Unseal(&op));
      CARNET_RETURN_IF_ERROR(Seal(&op));
      Result<sqlite::Statement*> update = db_->Query("UPDATE outbox SET value = ? WHERE seq = ?",
                                                     op.value, static_cast<int64_t>(op.seq));
      if (!update.ok()) return update.status();
      CARNET_RETURN_IF_ERROR((*update)->Run());
    }

    if (current_id.empty()) return Status::Ok();
    // The row goes; its id stays, marked erased, so that what it sealed reads as erased rather
    // than as corrupt.
    Result<sqlite::Statement*> erase =
        db_->Query("DELETE FROM data_keys WHERE participant = ?", participant);
    if (!erase.ok()) return erase.status();
    CARNET_RETURN_IF_ERROR((*erase)->Run());
    Result<sqlite::Statement*> mark = db_->Query("INSERT INTO data_keys VALUES(NULL, ?, NULL)",
                                                 sqlite::Blob{current_id});
    if (!mark.ok()) return mark.status();
    CARNET_RETURN_IF_ERROR((*mark)->Run());
    erased_id = current_id;
    // Committed with the erasure: a scrub cut short (a crash, a full disk) is finished later.
    return PutMeta(kScrubPendingKey, "1");
  }();
  std::vector<Change> changes;
  if (status.ok()) {
    status = CommitTransaction(&changes);
  } else {
    RollbackTransaction();
  }
  CARNET_RETURN_IF_ERROR(status);
  if (!erased_id.empty()) {
    keys_by_id_.erase(erased_id);
    key_rows_.erase(participant);
    key_owners_.erase(erased_id);
    erased_key_ids_.insert(erased_id);
  }
  return FinishScrub();
}

Status Store::Impl::FinishScrub() {
  Result<std::optional<std::string>> pending = GetMeta(kScrubPendingKey);
  if (!pending.ok()) return pending.status();
  if (!pending->has_value()) return Status::Ok();
  CARNET_RETURN_IF_ERROR(Scrub());
  Result<sqlite::Statement*> done =
      db_->Query("DELETE FROM meta WHERE key = ?", std::string(kScrubPendingKey));
  if (!done.ok()) return done.status();
  return (*done)->Run();
}

Status Store::Impl::Scrub() {
  // The deleted row's bytes are still in its page's free space, in older pages on the free list
  // and in the WAL's frames: VACUUM writes every page of the file anew from the live rows alone,
  // and the checkpoint copies them over the old ones and empties the WAL.
  CARNET_RETURN_IF_ERROR(db_->Exec("VACUUM"));
  return db_->Exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

// --- The offline lease ------------------------------------------------------------------------

int64_t Store::Impl::LeaseNowMs() const {
  // The clock never goes back past the greatest stamp this store issued or observed: setting the
  // tablet's clock back does not win days.
  return std::max(clock_.PhysicalMs(), HlcPhysicalMs(clock_.Last()));
}

Status Store::Impl::OpenLease(bool sealed) {
  Result<std::optional<Lease>> stored = ReadLease(sealed);
  if (!stored.ok()) return stored.status();
  const int64_t now = LeaseNowMs();
  // A store never synced counts its lease from its birth.
  if (!stored->has_value()) return WriteLease(Lease{now, now});
  lease_ = **stored;
  // The latest time the store has seen is kept, so that a clock set back later wins nothing.
  if (options_.lease_days > 0 && now > lease_.seen_ms) {
    return WriteLease(Lease{lease_.contact_ms, now});
  }
  return Status::Ok();
}

Status Store::Impl::CheckLease() {
  CARNET_RETURN_IF_ERROR(RefuseIfWiped());
  if (options_.lease_days <= 0) return Status::Ok();
  const int64_t now = std::max(LeaseNowMs(), lease_.seen_ms);
  const int64_t elapsed = now - lease_.contact_ms;
  if (elapsed <= int64_t{options_.lease_days} * kDayMs) return Status::Ok();
  // Expired stays expired until a sync, whatever the clock says next. Best effort: the refusal
  // stands even if this cannot be saved.
  if (now > lease_.seen_ms) (void)WriteLease(Lease{lease_.contact_ms, now});
  return Status(StatusCode::kLeaseExpired,
                "offline lease expired: sync to continue (no successful sync for " +
                    std::to_string(elapsed / kDayMs) + " days, this tablet allows " +
                    std::to_string(options_.lease_days) + ")");
}

Status Store::Impl::RenewLease() {
  const int64_t now = LeaseNowMs();
  return WriteLease(Lease{now, now});
}

Status Store::Impl::WriteLease(const Lease& lease) {
  std::string value = std::to_string(lease.contact_ms) + " " + std::to_string(lease.seen_ms);
  // Sealed, so that editing the file cannot move the last contact forward.
  if (encrypted_) {
    value = crypto::Seal(keys_by_id_.at(store_key_id_).key, value, LeaseAd(options_.device_id));
  }
  CARNET_RETURN_IF_ERROR(PutMeta(kLeaseKey, value));
  lease_ = lease;
  return Status::Ok();
}

Result<std::optional<Store::Impl::Lease>> Store::Impl::ReadLease(bool sealed) {
  Result<std::optional<std::string>> stored = GetMeta(kLeaseKey);
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return std::optional<Lease>();
  std::string text = **stored;
  if (sealed) {
    Result<std::string> opened =
        crypto::Open(keys_by_id_.at(store_key_id_).key, text, LeaseAd(options_.device_id));
    if (!opened.ok()) {
      return Status(StatusCode::kCorruption, "the offline lease's last contact does not open: "
                                             "the store file was altered");
    }
    text = *opened;
  }
  Lease lease;
  const char* end = text.data() + text.size();
  auto contact = std::from_chars(text.data(), end, lease.contact_ms);
  auto seen = contact.ec == std::errc() && contact.ptr != end
                  ? std::from_chars(contact.ptr + 1, end, lease.seen_ms)
                  : std::from_chars_result{end, std::errc::invalid_argument};
  if (seen.ec != std::errc() || seen.ptr != end) {
    return Status(StatusCode::kCorruption, "the offline lease's record is malformed");
  }
  return std::optional<Lease>(lease);
}

// --- Store ------------------------------------------------------------------------------------

Status Store::NoteServerContact() {
  std::lock_guard<std::recursive_mutex> lock(impl_->mutex_);
  return impl_->RenewLease();
}

std::optional<int64_t> Store::LeaseExpiresAtMs() {
  std::lock_guard<std::recursive_mutex> lock(impl_->mutex_);
  if (impl_->options_.lease_days <= 0) return std::nullopt;
  return impl_->lease_.contact_ms + int64_t{impl_->options_.lease_days} * kDayMs;
}

Status Store::EraseParticipantKey(const std::string& participant) {
  std::unique_lock<std::recursive_mutex> lock(impl_->mutex_);
  return impl_->EraseParticipantKey(participant);
}

}  // namespace carnet
