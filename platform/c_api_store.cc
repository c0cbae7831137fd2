// The C API's stores and transactions: open, close, ids, and every write.
#include <cstring>
#include <initializer_list>
#include <utility>

#include "platform/c_api_internal.h"
#include "platform/c_api_json.h"

using carnet::Status;
using carnet::StatusCode;
using carnet::capi::Fail;
using carnet::capi::Guard;
using carnet::capi::Refuse;
using carnet::capi::Require;
using carnet::capi::Succeed;

namespace {

carnet_code CopyId(const std::string& id, char* out_id, carnet_error* error) {
  if (id.size() >= CARNET_ID_SIZE) {
    return Refuse(error, StatusCode::kInvalidArgument,
                  "id of " + std::to_string(id.size()) + " bytes does not fit CARNET_ID_SIZE");
  }
  std::memcpy(out_id, id.c_str(), id.size() + 1);
  return Succeed(error);
}

// Runs `write` on the transaction, after the checks every transaction call shares.
template <typename Write>
carnet_code WithTxn(carnet_txn* txn, carnet_error* error,
                    std::initializer_list<carnet::capi::Arg> args, Write write) {
  return Guard(error, [&] {
    if (txn == nullptr) return Refuse(error, StatusCode::kInvalidArgument, "txn is NULL");
    if (carnet_code missing = Require(error, args); missing != CARNET_OK) return missing;
    if (txn->owner != std::this_thread::get_id()) {
      return Refuse(error, StatusCode::kFailedPrecondition,
                    "a transaction is used on the thread that began it only");
    }
    Status status = write(*txn->txn);
    return Fail(error, CARNET_DOMAIN_STORE, status);
  });
}

// Ends the transaction: commits or rolls it back, then frees the handle.
carnet_code EndTxn(carnet_txn* txn, bool commit, carnet_error* error) {
  return Guard(error, [&] {
    if (txn == nullptr) {
      if (commit) return Refuse(error, StatusCode::kInvalidArgument, "txn is NULL");
      return Succeed(error);
    }
    if (txn->owner != std::this_thread::get_id()) {
      return Refuse(error, StatusCode::kFailedPrecondition,
                    std::string("a transaction is ") + (commit ? "committed" : "rolled back") +
                        " on the thread that began it only");
    }
    {
      // Before the commit: its change callbacks may begin a transaction on this thread.
      std::lock_guard<std::mutex> lock(txn->store->txn_mutex);
      txn->store->txn_owner.reset();
    }
    Status status = commit ? txn->txn->Commit() : Status::Ok();
    // Destroying an uncommitted Transaction rolls it back and releases the store's lock.
    txn->txn.reset();
    delete txn;
    return Fail(error, CARNET_DOMAIN_STORE, status);
  });
}

}  // namespace

extern "C" {

carnet_code carnet_store_open(carnet_env* env, const char* path, const char* device_id,
                              carnet_store** out_store, carnet_error* error) {
  return Guard(error, [&] {
    if (carnet_code missing =
            Require(error, {{"env", env}, {"path", path}, {"device_id", device_id},
                            {"out_store", out_store}});
        missing != CARNET_OK) {
      return missing;
    }
    *out_store = nullptr;
    carnet::StoreOptions options;
    options.path = path;
    options.device_id = device_id;
    options.env = env->env.get();
    // Used by Open only: the store keeps its master key in memory once opened.
    carnet::capi::HostKeyStore keys(env->env.get());
    if (env->env->has_key_storage()) options.key_store = &keys;
    options.lease_days = env->env->lease_days();
    carnet::Result<std::unique_ptr<carnet::Store>> opened = carnet::Store::Open(options);
    if (!opened.ok()) {
      // kUnavailable comes from the host's key storage alone (a locked device): retryable.
      const bool host = opened.status().code() == StatusCode::kUnavailable;
      return Fail(error, host ? CARNET_DOMAIN_HOST : CARNET_DOMAIN_STORE, opened.status());
    }
    auto store = std::make_unique<carnet_store>();
    store->env = env->env;
    store->host_keys = std::make_unique<carnet::capi::HostKeyStore>(env->env.get());
    store->store = std::move(*opened);
    carnet_store* raw = store.get();
    store->observer = store->store->AddObserver([raw](const std::vector<carnet::Change>& changes) {
      // Runs inside a commit, maybe on the sync thread: nothing may escape.
      try {
        if (raw->on_change.empty()) return;
        std::string json = carnet::capi::ChangesJson(changes);
        raw->on_change.Call(json.c_str());
      } catch (...) {
      }
    });
    env->env->Register(raw);
    *out_store = store.release();
    return Succeed(error);
  });
}

carnet_code carnet_store_close(carnet_store* store, carnet_error* error) {
  return Guard(error, [&] {
    if (store == nullptr) return Succeed(error);
    if (carnet::capi::InCallback()) {
      return Refuse(error, StatusCode::kFailedPrecondition,
                    "carnet_store_close cannot be called from a Carnet callback");
    }
    if (store->AnyTransaction()) {
      return Refuse(error, StatusCode::kFailedPrecondition,
                    "the store has an open transaction: commit or roll it back first");
    }
    store->env->Unregister(store);
    std::shared_ptr<carnet::SyncClient> client;
    {
      std::lock_guard<std::mutex> lock(store->sync_mutex);
      client = std::move(store->client);
      store->started = false;
    }
    if (client) client->Stop();
    client.reset();
    store->store->RemoveObserver(store->observer);
    delete store;
    return Succeed(error);
  });
}

const char* carnet_store_device_id(const carnet_store* store) {
  if (store == nullptr) return "";
  return store->store->device_id().c_str();
}

carnet_code carnet_new_id(carnet_store* store, char out_id[CARNET_ID_SIZE], carnet_error* error) {
  return Guard(error, [&] {
    if (carnet_code missing = Require(error, {{"store", store}, {"out_id", out_id}});
        missing != CARNET_OK) {
      return missing;
    }
    return CopyId(store->store->NewId(), out_id, error);
  });
}

carnet_code carnet_attendance_id(const char* session, const char* participant,
                                 char out_id[CARNET_ID_SIZE], carnet_error* error) {
  return Guard(error, [&] {
    if (carnet_code missing = Require(
            error, {{"session", session}, {"participant", participant}, {"out_id", out_id}});
        missing != CARNET_OK) {
      return missing;
    }
    if (!carnet::IsValidRecordId(session) || !carnet::IsValidRecordId(participant)) {
      return Refuse(error, StatusCode::kInvalidArgument,
                    "session and participant must be record ids");
    }
    std::string id = carnet::AttendanceId(session, participant);
    if (!carnet::IsValidRecordId(id)) {
      return Refuse(error, StatusCode::kInvalidArgument,
                    "session and participant ids are too long to name an attendance");
    }
    return CopyId(id, out_id, error);
  });
}

carnet_code carnet_txn_begin(carnet_store* store, carnet_txn** out_txn, carnet_error* error) {
  return Guard(error, [&] {
    if (carnet_code missing = Require(error, {{"store", store}, {"out_txn", out_txn}});
        missing != CARNET_OK) {
      return missing;
    }
    *out_txn = nullptr;
    if (store->HoldsTransaction()) {
      return Refuse(error, StatusCode::kFailedPrecondition,
                    "this thread holds a transaction of the store already; they do not nest");
    }
    auto txn = std::make_unique<carnet_txn>();
    txn->store = store;
    txn->owner = std::this_thread::get_id();
    // Waits while another thread holds a transaction.
    carnet::Result<carnet::Transaction> begun = store->store->Begin();
    if (!begun.ok()) return Fail(error, CARNET_DOMAIN_STORE, begun.status());
    txn->txn.emplace(std::move(*begun));
    {
      std::lock_guard<std::mutex> lock(store->txn_mutex);
      store->txn_owner = txn->owner;
    }
    *out_txn = txn.release();
    return Succeed(error);
  });
}

carnet_code carnet_txn_commit(carnet_txn* txn, carnet_error* error) {
  return EndTxn(txn, true, error);
}

carnet_code carnet_txn_rollback(carnet_txn* txn, carnet_error* error) {
  return EndTxn(txn, false, error);
}

carnet_code carnet_record_put(carnet_txn* txn, const char* collection, const char* id,
                              const char* fields_json, carnet_error* error) {
  return Guard(error, [&] {
    if (fields_json == nullptr) {
      return Refuse(error, StatusCode::kInvalidArgument, "fields_json is NULL");
    }
    carnet::Result<carnet::capi::FieldWrites> fields = carnet::capi::ParseFields(fields_json);
    if (!fields.ok()) return Fail(error, CARNET_DOMAIN_API, fields.status());
    return WithTxn(txn, error, {{"collection", collection}, {"id", id}},
                   [&](carnet::Transaction& t) { return t.Put(collection, id, *fields); });
  });
}

carnet_code carnet_register_set_text(carnet_txn* txn, const char* collection, const char* id,
                                     const char* field, const char* value, carnet_error* error) {
  return WithTxn(txn, error,
                 {{"collection", collection}, {"id", id}, {"field", field}, {"value", value}},
                 [&](carnet::Transaction& t) { return t.Set(collection, id, field, value); });
}

carnet_code carnet_register_set_int64(carnet_txn* txn, const char* collection, const char* id,
                                      const char* field, int64_t value, carnet_error* error) {
  return WithTxn(txn, error, {{"collection", collection}, {"id", id}, {"field", field}},
                 [&](carnet::Transaction& t) {
                   return t.Set(collection, id, field, std::to_string(value));
                 });
}

carnet_code carnet_register_set_bool(carnet_txn* txn, const char* collection, const char* id,
                                     const char* field, bool value, carnet_error* error) {
  return WithTxn(txn, error, {{"collection", collection}, {"id", id}, {"field", field}},
                 [&](carnet::Transaction& t) {
                   return t.Set(collection, id, field, value ? "true" : "false");
                 });
}

carnet_code carnet_register_clear(carnet_txn* txn, const char* collection, const char* id,
                                  const char* field, carnet_error* error) {
  return WithTxn(txn, error, {{"collection", collection}, {"id", id}, {"field", field}},
                 [&](carnet::Transaction& t) { return t.Set(collection, id, field, std::nullopt); });
}

carnet_code carnet_set_add(carnet_txn* txn, const char* collection, const char* id,
                           const char* field, const char* element, carnet_error* error) {
  return WithTxn(txn, error,
                 {{"collection", collection}, {"id", id}, {"field", field}, {"element", element}},
                 [&](carnet::Transaction& t) { return t.Add(collection, id, field, element); });
}

carnet_code carnet_set_remove(carnet_txn* txn, const char* collection, const char* id,
                              const char* field, const char* element, carnet_error* error) {
  return WithTxn(txn, error,
                 {{"collection", collection}, {"id", id}, {"field", field}, {"element", element}},
                 [&](carnet::Transaction& t) { return t.Remove(collection, id, field, element); });
}

carnet_code carnet_log_append(carnet_txn* txn, const char* collection, const char* id,
                              const char* field, const char* text, const char* revises,
                              char out_stamp[CARNET_STAMP_SIZE], carnet_error* error) {
  if (out_stamp != nullptr) out_stamp[0] = '\0';
  return Guard(error, [&] {
    std::optional<carnet::Stamp> original;
    if (revises != nullptr) {
      carnet::Result<carnet::Stamp> parsed = carnet::StampFromString(revises);
      if (!parsed.ok()) return Fail(error, CARNET_DOMAIN_API, parsed.status());
      original = *parsed;
    }
    return WithTxn(
        txn, error, {{"collection", collection}, {"id", id}, {"field", field}, {"text", text}},
        [&](carnet::Transaction& t) -> Status {
          carnet::Result<carnet::Stamp> stamp = t.Append(collection, id, field, text, original);
          if (!stamp.ok()) return stamp.status();
          std::string written = carnet::StampToString(*stamp);
          if (out_stamp != nullptr && written.size() < CARNET_STAMP_SIZE) {
            std::memcpy(out_stamp, written.c_str(), written.size() + 1);
          }
          return Status::Ok();
        });
  });
}

carnet_code carnet_log_redact(carnet_txn* txn, const char* collection, const char* id,
                              const char* field, const char* stamp, carnet_error* error) {
  return Guard(error, [&] {
    if (stamp == nullptr) return Refuse(error, StatusCode::kInvalidArgument, "stamp is NULL");
    carnet::Result<carnet::Stamp> entry = carnet::StampFromString(stamp);
    if (!entry.ok()) return Fail(error, CARNET_DOMAIN_API, entry.status());
    return WithTxn(txn, error, {{"collection", collection}, {"id", id}, {"field", field}},
                   [&](carnet::Transaction& t) { return t.Redact(collection, id, field, *entry); });
  });
}

carnet_code carnet_record_delete(carnet_txn* txn, const char* collection, const char* id,
                                 carnet_error* error) {
  return WithTxn(txn, error, {{"collection", collection}, {"id", id}},
                 [&](carnet::Transaction& t) { return t.Delete(collection, id); });
}

carnet_code carnet_record_restore(carnet_txn* txn, const char* collection, const char* id,
                                  carnet_error* error) {
  return WithTxn(txn, error, {{"collection", collection}, {"id", id}},
                 [&](carnet::Transaction& t) { return t.Restore(collection, id); });
}

carnet_code carnet_conflict_resolve(carnet_txn* txn, const char* collection, const char* id,
                                    const char* field, const char* value, carnet_error* error) {
  return WithTxn(txn, error, {{"collection", collection}, {"id", id}, {"field", field}},
                 [&](carnet::Transaction& t) {
                   std::optional<std::string> resolved;
                   if (value != nullptr) resolved = value;
                   return t.Resolve(collection, id, field, resolved);
                 });
}

carnet_code carnet_conflict_resolve_deleted(carnet_txn* txn, const char* collection,
                                            const char* id, bool keep_deleted,
                                            carnet_error* error) {
  return WithTxn(txn, error, {{"collection", collection}, {"id", id}},
                 [&](carnet::Transaction& t) {
                   return t.ResolveDeleted(collection, id, keep_deleted);
                 });
}

carnet_code carnet_store_set_change_callback(carnet_store* store, carnet_change_fn fn,
                                             void* context, carnet_error* error) {
  return carnet::capi::SetCallback(store, &carnet_store::on_change, fn, context, error);
}

}  // extern "C"
