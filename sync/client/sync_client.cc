#include "carnet/sync_client.h"

#include <algorithm>
#include <charconv>
#include <future>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "sync/client/sync_client_impl.h"

namespace carnet {
namespace {

constexpr const char* kPullCursorKey = "pull_cursor";
// The token of a first pull in progress (PROTOCOL.md, Snapshot), saved with each page.
constexpr const char* kPullSnapshotKey = "pull_snapshot";
// A forget refused because the outbox still changes the record: push, then pull the same
// cursor again. The pushes empty the outbox, so one more round normally suffices; the bound
// only keeps a misbehaving server from looping us forever.
constexpr int kMaxForgetRounds = 3;
// After a clock_skew refusal, the outbox's operations stamped further than this ahead of the
// server's time (just adopted from its reply) are re-stamped (PROTOCOL.md, The client): the
// protocol's bound (15 minutes: the server's, and the core's HlcOptions default), plus a margin
// for the error of the measured offset (half a round trip, a slow upload's included). Past it,
// no server can have accepted an operation, not even in a push whose reply was lost, so no
// other replica holds its stamp. Below the bound the server accepts them; between the two they
// wait until time catches up with them, at most the margin, less than the retry after a
// failed sync.
constexpr int64_t kRestampAheadMs = HlcOptions{}.max_forward_skew_ms + 5 * 60'000;

Result<uint64_t> ParseCursor(const std::optional<std::string>& text) {
  if (!text) return uint64_t{0};
  uint64_t cursor = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), cursor);
  if (ec != std::errc() || end != text->data() + text->size()) {
    return Status(StatusCode::kCorruption, "stored pull cursor '" + *text + "' is not a number");
  }
  return cursor;
}

}  // namespace

const char* SyncStateName(SyncState state) {
  switch (state) {
    case SyncState::kIdle:
      return "idle";
    case SyncState::kSyncing:
      return "syncing";
    case SyncState::kOffline:
      return "offline";
    case SyncState::kError:
      return "error";
  }
  return "unknown";
}

SyncClient::Impl::Impl(Store* store, Env* env, std::unique_ptr<Transport> transport,
                       SyncOptions options)
    : store_(store), env_(env), transport_(std::move(transport)), options_(std::move(options)) {
  status_.pending = Pending().value_or(0);
  clock_offset_ms_ = LoadClockOffset();
  status_.clock_offset_ms = clock_offset_ms_;
}

Status SyncClient::Impl::Sync() {
  std::lock_guard<std::mutex> lock(sync_mutex_);
  std::optional<uint64_t> pending = Pending();
  Publish([&](SyncStatus* s) {
    s->state = SyncState::kSyncing;
    if (pending) s->pending = *pending;
  });
  env_->Log(LogLevel::kInfo, "sync: started");
  Status status = store_->IsWiped() ? Status(StatusCode::kDeviceRevoked, "wiped before")
                                    : PushThenPull();
  if (status.code() == StatusCode::kDeviceRevoked) status = CarryOutWipe(status);
  // A whole sync with the server: the offline lease (StoreOptions::lease_days) starts again.
  if (status.ok()) status = store_->NoteServerContact();
  pending = Pending();
  int64_t now = env_->NowMillis();
  {
    // Before the status event: whoever hears of the end may move the clock at once.
    std::lock_guard<std::mutex> lock(schedule_mutex_);
    last_failed_ = !status.ok();
    last_attempt_ms_ = now;
  }
  Publish([&](SyncStatus* s) {
    if (pending) s->pending = *pending;
    s->last_error = status;
    if (status.ok()) {
      s->state = SyncState::kIdle;
      s->last_success_ms = now;
    } else {
      s->state =
          status.code() == StatusCode::kUnavailable ? SyncState::kOffline : SyncState::kError;
    }
  });
  env_->Log(status.ok() ? LogLevel::kInfo : LogLevel::kWarning,
            "sync: " + (status.ok() ? std::string("done") : "failed: " + status.ToString()));
  return status;
}

Status SyncClient::Impl::PushThenPull() {
  SyncProgress progress;
  Result<uint64_t> total = store_->PendingCount();
  if (!total.ok()) return total.status();
  progress.push_total = *total;
  CARNET_RETURN_IF_ERROR(LoadToken(/*may_enroll=*/true));
  rotate_token_ = false;
  CARNET_RETURN_IF_ERROR(PushAll(&progress));
  CARNET_RETURN_IF_ERROR(PullAll(&progress));
  if (rotate_token_) {
    // The current token has half its life left: a failure here costs nothing yet.
    Status renewed = RenewToken();
    if (!renewed.ok()) {
      env_->Log(LogLevel::kWarning, "sync: renewing the device token: " + renewed.ToString());
    }
  }
  return Status::Ok();
}

Status SyncClient::Impl::PushAll(SyncProgress* progress) {
  size_t batch = std::clamp<size_t>(options_.push_batch, 1, wire::kMaxPushOps);
  Result<std::string> incarnation = PushIncarnation(false);
  if (!incarnation.ok()) return incarnation.status();
  bool renewed = false;
  bool restamped = false;
  for (;;) {
    Result<std::vector<Operation>> ops = store_->PendingOperations(0, batch);
    if (!ops.ok()) return ops.status();
    if (ops->empty()) return Status::Ok();
    uint64_t first = ops->front().seq;
    // The outbox holds the store's operations from `first` to the last it made, without gaps.
    Result<uint64_t> outbox_size = store_->PendingCount();
    if (!outbox_size.ok()) return outbox_size.status();
    wire::PushRequest request{wire::kProtocolVersion, store_->device_id(), *incarnation,
                              first + std::max<uint64_t>(*outbox_size, 1) - 1, std::move(*ops)};
    wire::PushReply reply;
    Status status = Exchange("/v1/push", request, &reply);
    // Too large for the server (413) or for the wire: the same operations in smaller batches.
    if (status.code() == StatusCode::kResourceExhausted && batch > 1) {
      batch /= 2;
      env_->Log(LogLevel::kInfo, "sync: push batch too large, now " + std::to_string(batch));
      continue;
    }
    // Stamped by a clock set ahead, and refused: once re-stamped, the same operations again.
    if (status.code() == StatusCode::kClockSkew && !restamped) {
      restamped = true;
      Result<size_t> moved = store_->RestampAhead(kRestampAheadMs);
      if (!moved.ok()) return moved.status();
      if (*moved > 0) {
        env_->Log(LogLevel::kWarning, "sync: " + std::to_string(*moved) +
                                          " operations stamped by a clock set ahead, re-stamped "
                                          "at the server's time");
        continue;
      }
    }
    CARNET_RETURN_IF_ERROR(status);
    if (reply.stale_incarnation) {
      // This store is a copy restored from a backup: from here its sequence numbers name
      // operations the server has already acknowledged. A new life numbers them afresh.
      if (renewed) return Internal("the server refused a store incarnation drawn just now");
      env_->Log(LogLevel::kWarning,
                "sync: the server has acknowledged more of this store than it made (restored "
                "from a backup?): pushing again under a new incarnation");
      incarnation = PushIncarnation(true);
      if (!incarnation.ok()) return incarnation.status();
      renewed = true;
      continue;
    }
    if (reply.acknowledged_seq < first) {
      return Internal("server acknowledged up to " + std::to_string(reply.acknowledged_seq) +
                      ", before the pushed batch starting at " + std::to_string(first));
    }
    CARNET_RETURN_IF_ERROR(store_->AcknowledgeOperations(reply.acknowledged_seq));
    if (reply.erased > 0) {
      env_->Log(LogLevel::kWarning, "sync: the server dropped " + std::to_string(reply.erased) +
                                        " operations on participants erased on its side");
    }
    for (const Operation& op : request.ops) progress->pushed += op.seq <= reply.acknowledged_seq;
    std::optional<uint64_t> pending = Pending();
    if (pending) {
      // Edits made during the sync join the outbox, and this sync's total.
      progress->push_total = std::max(progress->push_total, progress->pushed + *pending);
      Publish([&](SyncStatus* s) { s->pending = *pending; });
    }
    Report(*progress);
  }
}

Status SyncClient::Impl::PullAll(SyncProgress* progress) {
  uint32_t limit = std::clamp<uint32_t>(options_.pull_batch, 1, wire::kMaxPullEntries);
  int forget_rounds = 0;
  // Erasures carried out and not confirmed yet: a pull by sequence from the cursor saved with
  // them confirms them (PROTOCOL.md, Erasure). One more is made for them at the end if need be,
  // so that the server knows at once; bounded like the forget rounds.
  bool unconfirmed = false;
  int confirm_rounds = 0;
  // A pull sent ahead while the previous reply was being written. Only a request that
  // acknowledges nothing new is sent ahead: its cursor is the one already saved (a snapshot's
  // pages all have cursor 0), so the server never learns of a cursor the tablet could still lose.
  struct Ahead {
    wire::PullRequest request;
    std::future<std::pair<Status, wire::PullReply>> reply;
  };
  std::optional<Ahead> ahead;
  auto send_ahead = [this](const wire::PullRequest& request) {
    return std::async(std::launch::async, [this, request] {
      std::pair<Status, wire::PullReply> result;
      result.first = Exchange("/v1/pull", request, &result.second);
      return result;
    });
  };
  // Whatever happens, no request is left running on the transport.
  struct Join {
    std::optional<Ahead>* ahead;
    ~Join() {
      if (*ahead) (*ahead)->reply.wait();
    }
  } join{&ahead};

  for (;;) {
    Result<std::optional<std::string>> stored = store_->GetSyncState(kPullCursorKey);
    if (!stored.ok()) return stored.status();
    Result<uint64_t> cursor = ParseCursor(*stored);
    if (!cursor.ok()) return cursor.status();
    Result<std::optional<std::string>> snapshot = store_->GetSyncState(kPullSnapshotKey);
    if (!snapshot.ok()) return snapshot.status();
    wire::PullRequest request{wire::kProtocolVersion, *cursor, limit, snapshot->value_or("")};
    if (*cursor == 0 && request.snapshot.empty() && options_.snapshot_first_pull) {
      request.snapshot = wire::kSnapshotBegin;
    }

    wire::PullReply reply;
    Status status;
    if (ahead && ahead->request.cursor == request.cursor &&
        ahead->request.snapshot == request.snapshot && ahead->request.limit == request.limit) {
      std::tie(status, reply) = ahead->reply.get();
    } else {
      if (ahead) ahead->reply.wait();  // not the page needed now (a forget round): dropped
      status = Exchange("/v1/pull", request, &reply);
    }
    ahead.reset();
    // A reply too large for the server or for our reply cap: ask for fewer entries.
    if (status.code() == StatusCode::kResourceExhausted && limit > 1) {
      limit /= 2;
      continue;
    }
    CARNET_RETURN_IF_ERROR(status);
    if (reply.rotate_token) rotate_token_ = true;
    if (reply.more && reply.next_cursor <= *cursor && reply.entries.empty() &&
        reply.forget.empty() && reply.snapshot == request.snapshot) {
      return Internal("server asked to pull more without moving the cursor past " +
                      std::to_string(*cursor));
    }
    if (reply.more && reply.next_cursor == *cursor && !reply.snapshot.empty() &&
        options_.snapshot_first_pull) {
      ahead = Ahead{{wire::kProtocolVersion, *cursor, limit, reply.snapshot}, {}};
      ahead->reply = send_ahead(ahead->request);
    }
    std::vector<std::pair<std::string, std::string>> forget;
    forget.reserve(reply.forget.size());
    for (wire::RecordRef& ref : reply.forget) {
      forget.emplace_back(std::move(ref.collection), std::move(ref.record));
    }
    std::vector<Erasure> erase;
    erase.reserve(reply.erase.size());
    for (wire::ErasureOrder& order : reply.erase) {
      Erasure e{std::move(order.participant), {}};
      for (wire::RecordRef& ref : order.records) {
        e.records.emplace_back(std::move(ref.collection), std::move(ref.record));
      }
      erase.push_back(std::move(e));
    }
    // The cursor and the snapshot token are saved with the page they follow.
    Result<ApplyStats> applied =
        store_->ApplyPulled(reply.entries, forget,
                            {{kPullCursorKey, std::to_string(reply.next_cursor)},
                             {kPullSnapshotKey, reply.snapshot}},
                            erase);
    if (applied.status().code() == StatusCode::kFailedPrecondition &&
        ++forget_rounds <= kMaxForgetRounds) {
      // Nothing was saved, the cursor included: the same pull follows the push.
      if (ahead) {
        ahead->reply.wait();
        ahead.reset();
      }
      CARNET_RETURN_IF_ERROR(PushAll(progress));
      continue;
    }
    if (!applied.ok()) return applied.status();
    progress->pulled += reply.entries.size() + forget.size();
    progress->pull_more = reply.more;
    Report(*progress);
    if (!erase.empty()) {
      env_->Log(LogLevel::kInfo, "sync: " + std::to_string(erase.size()) +
                                     " participants erased on the server's order");
    }
    if (request.snapshot.empty() && request.cursor != 0) unconfirmed = false;
    if (!erase.empty()) unconfirmed = true;
    if (!reply.more && unconfirmed && ++confirm_rounds <= kMaxForgetRounds) continue;
    if (!reply.more) return Status::Ok();
  }
}

std::optional<uint64_t> SyncClient::Impl::Pending() {
  Result<uint64_t> count = store_->PendingCount();
  if (!count.ok()) return std::nullopt;
  return *count;
}

void SyncClient::Impl::Publish(const std::function<void(SyncStatus*)>& change) {
  SyncStatus copy;
  std::function<void(const SyncStatus&)> callback;
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    change(&status_);
    copy = status_;
    callback = on_status_;
  }
  if (callback) callback(copy);
}

void SyncClient::Impl::Report(const SyncProgress& progress) {
  std::function<void(const SyncProgress&)> callback;
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    callback = on_progress_;
  }
  if (callback) callback(progress);
}

SyncClient::SyncClient(Store* store, Env* env, std::unique_ptr<Transport> transport,
                       SyncOptions options)
    : impl_(std::make_unique<Impl>(store, env, std::move(transport), std::move(options))) {}

SyncClient::~SyncClient() { Stop(); }

Status SyncClient::SyncNow() { return impl_->Sync(); }

Result<bool> SyncClient::EverythingUploaded() {
  Result<uint64_t> count = impl_->store_->PendingCount();
  if (!count.ok()) return count.status();
  return *count == 0;
}

SyncStatus SyncClient::status() {
  // Local edits fill the outbox without the client knowing: count it now.
  std::optional<uint64_t> pending = impl_->Pending();
  std::lock_guard<std::mutex> lock(impl_->status_mutex_);
  if (pending) impl_->status_.pending = *pending;
  return impl_->status_;
}

void SyncClient::OnProgress(std::function<void(const SyncProgress&)> callback) {
  std::lock_guard<std::mutex> lock(impl_->status_mutex_);
  impl_->on_progress_ = std::move(callback);
}

void SyncClient::OnStatus(std::function<void(const SyncStatus&)> callback) {
  std::lock_guard<std::mutex> lock(impl_->status_mutex_);
  impl_->on_status_ = std::move(callback);
}

}  // namespace carnet
