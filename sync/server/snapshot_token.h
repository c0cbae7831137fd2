// Where a snapshot pull stands (sync/PROTOCOL.md, Snapshot), as the opaque token a tablet sends
// back with its next pull. Shared by the server stores.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "carnet/merge.h"
#include "carnet/status.h"

namespace carnet {

struct SnapshotPosition {
  // The server's last sequence when the snapshot began: the cursor the tablet goes on from.
  uint64_t snapshot_seq = 0;
  // First the device's forgets up to snapshot_seq, by sequence; then its entries, by key.
  bool in_entries = false;
  uint64_t after_forget = 0;           // the last forget sent
  std::optional<EntryKey> after_entry;  // the last entry sent; none before the first
};

std::string EncodeSnapshotToken(const SnapshotPosition& position);
// kInvalidArgument for a token no server made.
Result<SnapshotPosition> DecodeSnapshotToken(const std::string& token);

}  // namespace carnet
