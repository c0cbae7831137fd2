// Which devices see which records (sync/PROTOCOL.md, Scope), independent of the store that
// keeps the answer. A store implements ScopeSource; ScopeTracker decides, after each change,
// whose scope a record entered or left, and asks the store to re-sequence or forget.
#pragma once

#include <optional>
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
  virtual Status AddForget(const std::string& device, const std::string& collection,
                           const std::string& record) = 0;
  virtual Result<std::vector<Device>> ActiveDevices() = 0;
};

class ScopeTracker {
 public:
  ScopeTracker(const Schema* schema, ScopeSource* source) : schema_(schema), source_(source) {}

  // After operations changed a record: brings its stored scope up to date and, when it moved,
  // re-sequences what the devices gaining it must receive and forgets it on those losing it.
  Status Update(const std::string& collection, const std::string& record);

  // Whether the device's scope holds the record, by the stored scopes.
  Result<bool> Holds(const Device& device, const std::string& collection,
                     const std::string& record);
  // Whether the record's participant (or territory) is known.
  Result<bool> OwnerKnown(const std::string& collection, const std::string& record);

  static bool Covers(const Device& device, const RecordScope& scope,
                     const std::optional<ParticipantScope>& participant);

 private:
  Result<std::optional<std::string>> Winner(const std::string& collection,
                                            const std::string& record, const std::string& field);
  Result<RecordScope> Compute(const std::string& collection, const std::string& record);
  Result<ParticipantScope> ComputeParticipant(const std::string& participant);

  const Schema* schema_;
  ScopeSource* source_;
};

}  // namespace carnet
