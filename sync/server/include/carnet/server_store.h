// The central records behind carnet-server: merged state, devices and their progress. The HTTP
// layer (carnet/server.h) speaks only to this interface; SQLite is the default implementation,
// PostgreSQL comes next.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "carnet/audit.h"
#include "carnet/env.h"
#include "carnet/erasure.h"
#include "carnet/operation.h"
#include "carnet/schema.h"
#include "carnet/status.h"
#include "carnet/token.h"
#include "carnet/wire.h"

namespace carnet {

struct ErasureTxn;  // sync/server/erasure.h

struct Device {
  std::string id;
  std::string adviser;
  std::vector<std::string> territories;
  bool revoked = false;
  uint64_t cursor = 0;            // the cursor of its last pull: it has everything before
  uint64_t acknowledged_seq = 0;  // its highest operation applied here
  int64_t last_contact_ms = 0;
  // Its credentials (sync/PROTOCOL.md, Devices). Times in ms since the epoch; 0: none, never.
  int64_t token_issued_ms = 0;   // 0 with a code outstanding: no token redeemed yet
  int64_t token_expires_ms = 0;  // 0: the token does not expire
  int64_t code_expires_ms = 0;   // an enrollment code is outstanding until then
  int64_t revoked_ms = 0;
  int64_t wipe_confirmed_ms = 0;  // the revoked tablet confirmed it erased what it held
};

struct ServerStoreOptions {
  Env* env = nullptr;  // not owned
  const Schema* schema = nullptr;  // defaults to Schema::Programme()
  int64_t max_forward_skew_ms = 15 * 60 * 1000;
  // How long after a hand-over the former holder may still push what it wrote before it heard
  // of it, while it has not acknowledged the forget (sync/SECURITY.md, Scope).
  int64_t hand_over_grace_ms = int64_t{45} * 24 * 60 * 60 * 1000;
};

class ServerStore {
 public:
  virtual ~ServerStore() = default;

  // --- Devices and their credentials (sync/PROTOCOL.md, Devices). Only hashes of tokens and
  // codes are stored (HashToken).

  // Registers a device with the hash of a token made elsewhere (a device-management tool that
  // provisions the tablet itself; tests), valid until `token_expires_ms` (0: for ever).
  // kAlreadyExists if the id is taken. Tablets are otherwise enrolled with codes.
  virtual Status Enroll(const Device& device, const std::string& token_hash,
                        int64_t token_expires_ms = 0) = 0;
  // Gives a device a one-time enrollment code, valid until `code_expires_ms`: a new device is
  // registered without a token; a device enrolled already (a tablet whose token expired, or
  // whose key storage was lost) gets a new code, its token valid until the code is redeemed,
  // provided adviser and territories are its own (kInvalidArgument otherwise: scopes are not
  // changed this way). kFailedPrecondition for a revoked device: revoked stays revoked.
  virtual Status CreateEnrollmentCode(const Device& device, const std::string& code_hash,
                                      int64_t code_expires_ms) = 0;
  // Exchanges the code: `token_hash` becomes the device's next token (see SetNextToken), and the
  // code is spent when that token is first used, which also voids the older token; until then
  // the code may be exchanged again (a reply lost), the last token only counting.
  // kUnauthenticated for a code that is not the device's, spent or expired.
  virtual Result<Device> RedeemEnrollmentCode(const std::string& device_id,
                                              const std::string& code_hash,
                                              const std::string& token_hash,
                                              int64_t token_expires_ms) = 0;
  // Issues the device's next token: valid beside the current one until it is first used, then
  // the only one (Authenticate), any outstanding enrollment code spent with it. A next token
  // issued before and never used is replaced.
  virtual Status SetNextToken(const std::string& device_id, const std::string& token_hash,
                              int64_t token_expires_ms) = 0;
  // The device a token hash belongs to, by its current or its next token (which then becomes
  // the current one). kUnauthenticated if none, if the token expired, or if the device is
  // revoked and confirmed its wipe; a revoked device not wiped yet is returned, revoked, even
  // with an expired token: it must still be told to wipe.
  virtual Result<Device> Authenticate(const std::string& token_hash) = 0;
  virtual Result<std::vector<Device>> Devices() = 0;
  // Revokes a device: from now on it is refused, and told to wipe at its next contact.
  virtual Status Revoke(const std::string& device_id) = 0;
  // Records that the revoked device erased what it held. kFailedPrecondition if not revoked.
  virtual Status ConfirmWipe(const std::string& device_id) = 0;

  // Applies a device's operations, all or nothing (sync/PROTOCOL.md, Push). `push.device` is
  // not read: the caller has checked it is `device`.
  virtual Result<wire::PushReply> Push(const Device& device, const wire::PushRequest& push) = 0;
  // The device's scope changed after `cursor` (opaque: 0, or the next_cursor of a reply; one the
  // store cannot vouch for, after a restore from a backup, is served from the start); records
  // the cursor as acknowledged.
  virtual Result<wire::PullReply> Pull(const Device& device, uint64_t cursor, uint32_t limit) = 0;
  // A page of the device's scope in key order (sync/PROTOCOL.md, Snapshot); `token` is
  // wire::kSnapshotBegin or the token of the previous page. Only when ServesSnapshots(): the
  // server answers an ordinary pull from cursor 0 otherwise.
  virtual bool ServesSnapshots() const { return false; }
  virtual Result<wire::PullReply> PullSnapshot(const Device& device, const std::string& token,
                                               uint32_t limit) {
    (void)device, (void)token, (void)limit;
    return Internal("this store serves no snapshots");
  }

  // Drops what every device that must see it has pulled past (sync/PROTOCOL.md, Purge).
  // Returns how many entries went.
  virtual Result<uint64_t> Purge() = 0;

  // The audit log (carnet/audit.h; sync/SECURITY.md, Audit). Push, Pull and PullSnapshot append
  // to it, a push in its own transaction and a pull in its own or just after it; no call changes
  // or removes a row. The rows after `after_id` that match `filter`, in order, at most `limit`.
  virtual Result<std::vector<AuditRow>> ReadAudit(const AuditFilter& filter, uint64_t after_id,
                                                  uint32_t limit) = 0;
  // The log's head as the store keeps it beside the log.
  virtual Result<AuditHead> ReadAuditHead() = 0;

  // The live entries of a device's scope, one line each in key order: what a tablet that is
  // up to date holds (its own Store::CanonicalDump(true)). Empty device: everything.
  virtual Result<std::string> ScopeDump(const std::string& device_id) = 0;

  // Every live entry of `collection`, tombstones included, by record then key: what the
  // programme report (carnet/report.h) reads the winning values from.
  virtual Result<std::vector<Entry>> LiveEntries(const std::string& collection) = 0;
  // Registers holding a value kept for review (sync/server/conflicts.h), for /metrics.
  virtual Result<uint64_t> CountConflicts() = 0;

  // --- Erasure and retention (sync/PROTOCOL.md, Erasure and Retention; carnet/erasure.h),
  // written once over InErasureTransaction (sync/server/erasure.cc).

  // Erases a participant (GDPR art. 17), in one transaction: the participant and every record
  // that belongs to them, with their history and conflicts (entries, scope, forgets owed), and
  // the references to them in other records; puts them on the erasure list (when, who ordered
  // it, which records), from which later pushes touching them are dropped (Push, counted in
  // PushReply::erased); and sends every enrolled tablet not revoked an erasure order, which its
  // pull carries and a later pull confirms. Again for an erased participant: `already`, nothing
  // done. kInvalidArgument for an id that is not a record id.
  Result<ErasureReport> Erase(const std::string& participant, const std::string& ordered_by);
  // The erasure list, by participant, with each tablet's order confirmed or owed. `participant`:
  // that one only.
  Result<std::vector<ErasureState>> Erasures(const std::string& participant = "");
  // Retires the participants whose last contact is older than the policy's limit, as of the
  // Env's time: they leave every tablet (a forget to each device holding them, and out of every
  // scope) or, by the policy, are erased. A retired participant with a contact within the limit
  // since (a tablet that still held them recorded something) is brought back into scope. With
  // `dry_run`, only says who would be.
  Result<RetentionReport> ApplyRetention(const RetentionPolicy& policy, bool dry_run);

  // Takes what erasures removed out of the store's files, retrying for up to `wait_ms` while
  // something holds them; records every erasure so scrubbed as scrubbed, now. Returns whether
  // none is left pending. Erase and ApplyRetention try once; erasure-status tries again.
  // SQLite: checkpoints the WAL into the main file (whose freed cells secure_delete zeroed) and
  // truncates it, which a reader's open transaction holds back. PostgreSQL: true, nothing to do
  // here (what VACUUM does and does not do: sync/SECURITY.md, Erasure).
  virtual Result<bool> ScrubErasures(int64_t wait_ms);

 protected:
  // Runs `body` in one transaction of the store, with the sources the erasure code reads and
  // writes through (sync/server/erasure.h). A `write` transaction takes new sequence numbers and
  // commits when `body` returns ok; another is rolled back.
  virtual Status InErasureTransaction(bool write,
                                      const std::function<Status(ErasureTxn&)>& body) = 0;
};

// "sqlite:PATH" (or a bare path). Creates the file if needed.
Result<std::unique_ptr<ServerStore>> OpenServerStore(const std::string& spec,
                                                     const ServerStoreOptions& options);

}  // namespace carnet
