// Store::Wipe: a revoked tablet erases what it holds on the server's order (sync/PROTOCOL.md,
// Devices). Everything goes, in one transaction, with the rows zeroed in their pages (PRAGMA
// secure_delete, set at open); then the file is rebuilt and the WAL emptied, and the master key
// leaves the key store, so that even a copy of the file taken before reads as noise.
#include "core/store_impl.h"

namespace carnet {

const char* const kWipedMetaKey = "wiped_at_ms";

Status Store::Impl::RefuseIfWiped() const {
  if (!wiped_) return Status::Ok();
  return Status(StatusCode::kDeviceRevoked,
                "this tablet was revoked and its store wiped: close it and delete the file");
}

Status Store::Wipe(KeyStore* key_store) {
  std::unique_lock<std::recursive_mutex> lock(impl_->mutex_);
  Store::Impl& impl = *impl_;
  if (!impl.wiped_) {
    // Not Begin(): the server's order is carried out even once the offline lease has run out.
    CARNET_RETURN_IF_ERROR(impl.BeginTransaction());
    Status status = impl.db_->Exec(
        "DELETE FROM entries; DELETE FROM outbox; DELETE FROM sync_state; DELETE FROM data_keys; "
        "DELETE FROM meta;");
    // What is left says what happened, so that the file opens as wiped, not as a new store.
    if (status.ok()) {
      status = impl.PutMeta(kWipedMetaKey, std::to_string(impl.options_.env->NowMillis()));
    }
    if (status.ok()) status = impl.db_->Exec("COMMIT");
    if (!status.ok()) {
      impl.RollbackTransaction();
      return status;
    }
    impl.wiped_ = true;
    impl.encrypted_ = false;
    impl.keys_by_id_.clear();
    impl.key_rows_.clear();
    impl.key_owners_.clear();
  }
  // Done again by a later call if cut short: the rows are gone already, their bytes may not be.
  CARNET_RETURN_IF_ERROR(impl.Scrub());
  if (key_store != nullptr) {
    Status deleted = key_store->Delete(MasterKeyName(impl.options_.device_id));
    if (!deleted.ok()) {
      return Status(deleted.code(),
                    "wipe: the records are erased, but the master key could not "
                    "be deleted from the key store: " +
                        deleted.message());
    }
  }
  return Status::Ok();
}

bool Store::IsWiped() {
  std::lock_guard<std::recursive_mutex> lock(impl_->mutex_);
  return impl_->wiped_;
}

}  // namespace carnet
