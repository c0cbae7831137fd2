#include "sync/server/pull.h"

#include <algorithm>

namespace carnet {

void CutPullReply(std::vector<std::pair<uint64_t, Entry>> entries,
                  std::vector<std::pair<uint64_t, wire::RecordRef>> forgets, uint32_t limit,
                  uint64_t cursor, uint64_t present, wire::PullReply* reply) {
  size_t e = 0, f = 0;
  uint64_t last = cursor;
  const bool forgets_first =
      !forgets.empty() && (entries.empty() || forgets[0].first < entries[0].first);
  while (reply->entries.size() + reply->forget.size() < limit) {
    if (forgets_first) {
      if (f == forgets.size() || (e < entries.size() && entries[e].first < forgets[f].first)) break;
      last = forgets[f].first;
      reply->forget.push_back(std::move(forgets[f++].second));
    } else {
      if (e == entries.size() || (f < forgets.size() && forgets[f].first < entries[e].first)) break;
      last = entries[e].first;
      reply->entries.push_back(std::move(entries[e++].second));
    }
  }
  reply->more = e < entries.size() || f < forgets.size();
  reply->next_cursor = reply->more ? last : std::max(last, present);
}

}  // namespace carnet
