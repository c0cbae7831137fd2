// The device's credentials on the tablet (PROTOCOL.md, Devices): the token read from the key
// store, obtained with an enrollment code, renewed, and forgotten after a wipe.
#include "sync/client/sync_client_impl.h"

namespace carnet {

std::string DeviceTokenName(const std::string& device_id) {
  return "carnet.device_token." + device_id;
}

std::string SyncClient::Impl::Token() {
  std::lock_guard<std::mutex> lock(token_mutex_);
  return token_;
}

Status SyncClient::Impl::LoadToken(bool may_enroll) {
  std::string token = Token();
  if (token.empty()) token = options_.token;
  if (KeyStore* keys = options_.key_store) {
    const std::string name = DeviceTokenName(store_->device_id());
    Result<std::string> stored = keys->Get(name);
    if (stored.ok()) {
      token = *stored;
    } else if (stored.status().code() != StatusCode::kNotFound) {
      return Status(stored.status().code(),
                    "reading the device token from the key store: " + stored.status().message());
    } else if (!token.empty()) {
      // A token given, or obtained when the key store could not take it: kept from now on.
      Status saved = keys->Put(name, token);
      if (!saved.ok()) {
        return Status(saved.code(), "saving the device token in the key store: " + saved.message());
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(token_mutex_);
    token_ = token;
  }
  if (!token.empty() || !may_enroll) return Status::Ok();
  if (options_.enrollment_code.empty()) {
    return Status(StatusCode::kUnauthenticated,
                  "this tablet has no device token: enroll it with a code from carnet-server "
                  "enroll");
  }
  wire::EnrollRequest request{wire::kProtocolVersion, store_->device_id(),
                              options_.enrollment_code};
  wire::TokenReply reply;
  Status enrolled = Exchange("/v1/enroll", request, &reply);
  if (!enrolled.ok()) return Status(enrolled.code(), "enrollment: " + enrolled.message());
  env_->Log(LogLevel::kInfo, "sync: enrolled with the server");
  return SaveToken(reply.token);
}

Status SyncClient::Impl::SaveToken(const std::string& token) {
  if (token.empty()) return Internal("the server gave an empty device token");
  Status saved = Status::Ok();
  if (options_.key_store != nullptr) {
    saved = options_.key_store->Put(DeviceTokenName(store_->device_id()), token);
  }
  if (!saved.ok() && !Token().empty()) {
    // Renewing: the current token stays valid, and the server's next one is simply never used.
    return Status(saved.code(), "saving the new device token in the key store: " + saved.message());
  }
  // Enrolling: the code is spent, so the token is kept in memory whatever happens, and written
  // to the key store at the next sync (LoadToken) if it could not be now.
  {
    std::lock_guard<std::mutex> lock(token_mutex_);
    token_ = token;
  }
  if (!saved.ok()) {
    return Status(saved.code(),
                  "saving the device token in the key store (kept in memory, saved "
                  "at the next sync): " +
                      saved.message());
  }
  return Status::Ok();
}

Status SyncClient::Impl::RenewToken() {
  wire::TokenRequest request{wire::kProtocolVersion, store_->device_id()};
  wire::TokenReply reply;
  CARNET_RETURN_IF_ERROR(Exchange("/v1/token", request, &reply));
  CARNET_RETURN_IF_ERROR(SaveToken(reply.token));
  env_->Log(LogLevel::kInfo, "sync: device token renewed");
  return Status::Ok();
}

Status SyncClient::Impl::CarryOutWipe(const Status& revoked) {
  if (wipe_confirmed_) {
    return Status(StatusCode::kDeviceRevoked,
                  "this tablet was revoked, and its store wiped: close it and delete the file");
  }
  env_->Log(LogLevel::kWarning, "sync: " + revoked.ToString() + ": wiping this tablet's store");
  CARNET_RETURN_IF_ERROR(store_->Wipe(options_.key_store));
  CARNET_RETURN_IF_ERROR(LoadToken(/*may_enroll=*/false));
  if (Token().empty()) {
    return Status(StatusCode::kDeviceRevoked,
                  "this tablet was revoked: its records, outbox and keys are erased");
  }
  wire::WipeConfirmation confirmation{wire::kProtocolVersion, store_->device_id()};
  wire::StatusReply reply;
  Status confirmed = Exchange("/v1/wiped", confirmation, &reply);
  if (!confirmed.ok()) {
    // The token is kept until the server knows: the next sync confirms.
    return Status(StatusCode::kDeviceRevoked,
                  "this tablet was revoked: its records, outbox and keys are erased; the "
                  "server could not be told yet (" +
                      confirmed.ToString() + ")");
  }
  if (options_.key_store != nullptr) {
    Status deleted = options_.key_store->Delete(DeviceTokenName(store_->device_id()));
    if (!deleted.ok()) {
      env_->Log(LogLevel::kWarning, "sync: deleting the device token: " + deleted.ToString());
    }
  }
  {
    std::lock_guard<std::mutex> lock(token_mutex_);
    token_.clear();
  }
  wipe_confirmed_ = true;
  env_->Log(LogLevel::kWarning, "sync: wipe done and confirmed to the server");
  return Status(StatusCode::kDeviceRevoked,
                "this tablet was revoked: its records, outbox and keys are erased, and the "
                "server was told");
}

}  // namespace carnet
