// Erasure (GDPR art. 17) and retention on the server: what ServerStore::Erase, Erasures and
// ApplyRetention take and return (sync/PROTOCOL.md, Erasure and Retention).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace carnet {

// What an erasure removed.
struct ErasureReport {
  bool already = false;   // erased before: nothing changed, no new order
  uint64_t records = 0;   // records erased whole, the participant's own included
  uint64_t entries = 0;   // entries removed, references in other records included
  std::vector<std::string> devices;  // the tablets sent an erasure order
  // Whether the store's files no longer hold what was removed (ServerStore::ScrubErasures): on
  // SQLite, false while a reader (a backup) holds the WAL.
  bool scrubbed = true;
};

// One tablet's part in an erasure.
struct ErasureOrderState {
  std::string device;
  bool revoked = false;  // revoked since: told to wipe instead, it will not confirm
  std::optional<int64_t> confirmed_ms;  // when its pull confirmed the order; none while owed
};

// An entry of the erasure list, as `carnet-server erasure-status` shows it.
struct ErasureState {
  std::string participant;
  int64_t at_ms = 0;       // the server's time when it was erased
  std::string ordered_by;  // who ordered it
  uint64_t records = 0;    // records erased with them (found later in pushes included)
  std::vector<ErasureOrderState> devices;  // by device id
  // SQLite: when a checkpoint took what the erasure removed out of the store's files; none while
  // pending (scrub_pending). PostgreSQL tracks no such state (sync/SECURITY.md, Erasure).
  std::optional<int64_t> scrubbed_ms;
  bool scrub_pending = false;
};

enum class RetentionAction {
  kForget,  // the participant leaves the tablets; the central records keep them
  kErase,   // the participant is erased, from the server too
};

// Participants with no contact for `days` (the newest stamp of any entry of their records) are
// retired: RetentionAction says how.
struct RetentionPolicy {
  int64_t days = 730;
  RetentionAction action = RetentionAction::kForget;
};

struct RetentionReport {
  struct Item {
    std::string participant;
    int64_t last_contact_ms = 0;
  };
  std::vector<Item> retired;      // left the tablets (or were erased) now
  std::vector<Item> reactivated;  // retired before, with a contact within the limit since
  bool scrubbed = true;  // as ErasureReport::scrubbed, for the erasures of the retired
};

}  // namespace carnet
