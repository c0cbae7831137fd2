// How a pull's reply is cut from what changed after its cursor, the same for every store.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "carnet/merge.h"
#include "carnet/wire.h"

namespace carnet {

// `entries` and `forgets` are those of the device's scope numbered after `cursor`, in number
// order, each list cut at `limit` + 1 (the one past tells whether there is more). `present` is
// the last number of any committed change, read in the same snapshot. Fills the reply's entries,
// forgets, next_cursor and more.
//
// A batch holds entries only, or forgets only, in number order: the tablet applies a batch's
// entries before its forgets, so an entry that follows a forget waits for the next batch. With
// nothing more in scope the cursor moves to `present`, so that the device's acknowledgement lets
// the purge go forward.
void CutPullReply(std::vector<std::pair<uint64_t, Entry>> entries,
                  std::vector<std::pair<uint64_t, wire::RecordRef>> forgets, uint32_t limit,
                  uint64_t cursor, uint64_t present, wire::PullReply* reply);

}  // namespace carnet
