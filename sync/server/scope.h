// Which devices see which records (sync/PROTOCOL.md, Scope), independent of the store that
// keeps the answer. A store implements ScopeSource; ScopeTracker decides, after each change,
// whose scope a record entered or left, and asks the store to re-sequence or forget.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "carnet/merge.h"
#include "carnet/schema.h"
#include "carnet/server_store.h"

namespace carnet {

// Whose a record is: a participant's (participants, and every collection with a participant
// field), or a territory's (workshops). Unknown while its participant field has not arrived.
struct RecordScope {
  std::optional<std::string> participant;
  std::optional<std::string> territory;
  friend bool operator==(const RecordScope&, const RecordScope&) = default;
};

struct ParticipantScope {
  std::optional<std::string> referent;
  std::optional<std::string> territory;
  friend bool operator==(const ParticipantScope&, const ParticipantScope&) = default;
};

// Whether a device may still write a record that left its scope (ScopeSource::InGrace), and
// whose push moved it out.
enum class Grace {
  kNone,
  kAfterAnother,  // another device's push, or the server's maintenance
  kAfterOwn,      // the device's own push, and the forget served: it knows it handed it over
};

class ScopeSource {
 public:
  virtual ~ScopeSource() = default;
  virtual Result<std::vector<Entry>> LiveHeads(const std::string& collection,
                                               const std::string& record,
                                               const std::string& field) = 0;
  virtual Result<std::optional<RecordScope>> StoredScope(const std::string& collection,
                                                         const std::string& record) = 0;
  virtual Status SaveScope(const std::string& collection, const std::string& record,
                           const std::optional<RecordScope>& scope) = 0;
  virtual Result<std::optional<ParticipantScope>> StoredParticipant(
      const std::string& participant) = 0;
  virtual Status SaveParticipant(const std::string& participant,
                                 const std::optional<ParticipantScope>& scope) = 0;
  // The records whose stored scope names this participant, the participant's own included.
  virtual Result<std::vector<std::pair<std::string, std::string>>> RecordsOf(
      const std::string& participant) = 0;
  // Gives every entry of the record a new sequence number, so that it flows again to every
  // device whose scope holds it.
  virtual Status Resequence(const std::string& collection, const std::string& record) = 0;
  // `own`: the device's own push moved the record out of its scope.
  virtual Status AddForget(const std::string& device, const std::string& collection,
                           const std::string& record, bool own) = 0;
  // Whether a forget of the record (or of its participant) waits for the device past its cursor.
  virtual Result<bool> ForgetPending(const Device& device, const std::string& collection,
                                     const std::string& record) = 0;
  // Whether the device is still within its grace for the record: a forget of it (or of its
  // participant) was made for the device less than ServerStoreOptions::hand_over_grace_ms ago,
  // and no pull of the device ever started past it; kAfterOwn if one such forget is own (its
  // push made it) and a pull served it to the device already: it knows it handed the record over.
  // Judged on what the server made and was told, never on the cursor of the last pull alone,
  // which the tablet chooses.
  virtual Result<Grace> InGrace(const Device& device, const std::string& collection,
                                const std::string& record) = 0;
  // The devices that stamped an entry of the record, dead ones included.
  virtual Result<std::set<std::string>> AuthorsOf(const std::string& collection,
                                                  const std::string& record) = 0;
  virtual Result<std::vector<Device>> ActiveDevices() = 0;
};

// What a push may do to a record, judged on the scopes before the batch (PROTOCOL.md, Push).
enum class PushAccess {
  kHeld,     // in the device's scope: edits, hand-overs
  kNew,      // not on the server, or of unknown scope (a participant without referent or
             // without territory, a record without participant): allowed, but not to end up
             // belonging to a participant refused to the device
  kGrace,    // moved out of the device's scope lately by another, and the device may not know
             // yet (InGrace): what it wrote before it heard is allowed, as a concurrent write
  kHandedOver,  // handed over lately by the device itself (InGrace): what it wrote before is
                // allowed, taking the record back into its scope is not
  kRefused,  // known to be in another's scope
};

class ScopeTracker {
 public:
  ScopeTracker(const Schema* schema, ScopeSource* source) : schema_(schema), source_(source) {}

  // After operations changed a record: brings its stored scope up to date and, when it moved,
  // re-sequences what the devices gaining it must receive and forgets it on those losing it.
  // `pusher`: the device whose push changed it ("" for the server's maintenance).
  Status Update(const std::string& collection, const std::string& record,
                const std::string& pusher = "");

  // Whether the device's scope holds the record, by the stored scopes.
  Result<bool> Holds(const Device& device, const std::string& collection,
                     const std::string& record);
  // The participant the record belongs to, by its stored scope.
  Result<std::optional<std::string>> ParticipantOf(const std::string& collection,
                                                   const std::string& record);
  // What a push by the device may do to the record, by the stored scopes.
  Result<PushAccess> Access(const Device& device, const std::string& collection,
                            const std::string& record);
  // Sends the device a forget of the record when it is known to be in another's scope and not
  // the device's, unless one is on its way already: after a push, for what the device touched.
  Status ForgetIfElsewhere(const Device& device, const std::string& collection,
                           const std::string& record);

  static bool Covers(const Device& device, const RecordScope& scope,
                     const std::optional<ParticipantScope>& participant);

 private:
  enum class Standing { kUnknown, kHeld, kElsewhere };
  Result<Standing> StandingOf(const Device& device, const std::string& collection,
                              const std::string& record);

  Result<std::optional<std::string>> Winner(const std::string& collection,
                                            const std::string& record, const std::string& field);
  Result<RecordScope> Compute(const std::string& collection, const std::string& record);
  Result<ParticipantScope> ComputeParticipant(const std::string& participant);

  const Schema* schema_;
  ScopeSource* source_;
};

// Who may push what (PROTOCOL.md, Push), for one batch inside the store's transaction: Admit()
// before any operation is applied, Check() once they are and the scopes are up to date. Either
// refuses the whole batch with kPermissionDenied, naming the record; refused() then names it
// for the audit log. Check() also sends the pusher a forget of what it touched and does not hold
// (a participant it created and handed over before pushing).
class PushGuard {
 public:
  PushGuard(const Schema* schema, ScopeTracker* scopes, const Device* device)
      : schema_(schema), scopes_(scopes), device_(device) {}

  Status Admit(const std::vector<Operation>& ops);
  Status Check();

  // The record a refusal named (collection, record); empty before one.
  const std::pair<std::string, std::string>& refused() const { return refused_; }

 private:
  using Key = std::pair<std::string, std::string>;
  // `target`, when given: the record a reference written to `record` names.
  Status Refuse(const Key& record, const Key* target = nullptr);
  // What the push may do to the record, judged before the batch; cached.
  Result<PushAccess> AccessOf(const Key& record);
  // Whether the batch may make `record` name `target` (a participant or a workshop), or belong
  // to it: the target is in the device's scope, new, or within the device's grace.
  Status MayReference(const Key& record, const Key& target);

  const Schema* schema_;
  ScopeTracker* scopes_;
  const Device* device_;
  std::set<Key> touched_;
  std::map<Key, PushAccess> access_;  // of the records touched and of those they name
  // Records of the batch the device handed over lately (kHandedOver) and whose own scope fields
  // it writes (referent, territory, participant field): they may not end in the device's.
  std::set<Key> rescoped_;
  Key refused_;
};

}  // namespace carnet
