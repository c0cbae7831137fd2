// Re-stamping the operations a clock set ahead stamped (Store::RestampAhead).
//
// Why it is safe: an operation still in the outbox that the server never accepted has been seen
// by no other replica (pushes are the only way out of a store), so its stamp is this store's to
// change. What the store must keep is the meaning of its state, and that depends on stamps only
// through their order: the register winner, "a write ends only older entries", a delete's view
// per device. The operations re-stamped are all above every other stamp the store keeps (they
// are the only ones that far ahead), and their new stamps are too (the clock starts again from
// the greatest of the others); among themselves the new stamps follow the old ones (sequence
// order is stamp order, the clock never going back between two local changes). So every
// comparison gives the same answer before and after: the state is the same, relabelled.
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "carnet/store.h"
#include "core/store_impl.h"

namespace carnet {
namespace {

struct Restamped {
  Operation op;  // as it was
  Hlc hlc = 0;   // its new stamp
};

// Stamps compare as their encoded bytes; an hlc alone encodes as the 8 bytes every stamp with
// that hlc starts with, so it sorts just below them.
std::string HlcPrefix(Hlc hlc) { return EncodeStamp(Stamp{hlc, ""}); }

std::vector<Stamp> Renamed(std::vector<Stamp> stamps, const std::map<Stamp, Stamp>& renames) {
  for (Stamp& stamp : stamps) {
    auto it = renames.find(stamp);
    if (it != renames.end()) stamp = it->second;
  }
  return stamps;
}

std::optional<std::string> EncodedRefs(const std::vector<Stamp>& refs) {
  if (refs.empty()) return std::nullopt;
  return EncodeStampList(refs);
}

// The outbox's operations stamped above `cutoff`, in sequence order.
Result<std::vector<Restamped>> OperationsAbove(sqlite::Database* db, const std::string& device,
                                               Hlc cutoff) {
  Result<sqlite::Statement*> st = db->Query(
      "SELECT seq, hlc, kind, collection, record, field, element, refs, value FROM outbox "
      "WHERE hlc > ? ORDER BY seq",
      static_cast<int64_t>(cutoff));
  if (!st.ok()) return st.status();
  sqlite::Statement* s = *st;
  std::vector<Restamped> ops;
  Status status;
  while (s->Step(&status)) {
    Restamped r;
    r.op.device = device;
    r.op.seq = static_cast<uint64_t>(s->Int(0));
    r.op.hlc = static_cast<Hlc>(s->Int(1));
    r.op.kind = static_cast<OpKind>(s->Int(2));
    r.op.collection = s->Text(3);
    r.op.record = s->Text(4);
    r.op.field = s->Text(5);
    r.op.element = s->Text(6);
    Result<std::vector<Stamp>> refs = DecodeStampList(s->Text(7));
    if (!refs.ok()) {
      s->Reset();
      return refs.status();
    }
    r.op.refs = std::move(refs.value());
    r.op.value = s->OptionalText(8);  // as stored: sealed when the field's class is S or H
    ops.push_back(std::move(r));
  }
  if (!status.ok()) return status;
  return ops;
}

// The greatest hlc the store keeps besides the stamps in `moving`: outbox operations not above
// `cutoff`, and every entry (this device's earlier ones, those observed from others).
Result<Hlc> Floor(sqlite::Database* db, Hlc cutoff, const std::map<Stamp, Stamp>& moving) {
  Hlc floor = 0;
  Status status;
  {
    Result<sqlite::Statement*> st =
        db->Query("SELECT MAX(hlc) FROM outbox WHERE hlc <= ?", static_cast<int64_t>(cutoff));
    if (!st.ok()) return st.status();
    if ((*st)->Step(&status) && !(*st)->IsNull(0)) floor = static_cast<Hlc>((*st)->Int(0));
    (*st)->Reset();
    CARNET_RETURN_IF_ERROR(status);
  }
  // Entries have no index by stamp: two scans, which a re-stamp (rare) can afford.
  const std::string prefix = HlcPrefix(cutoff);
  {
    Result<sqlite::Statement*> st =
        db->Query("SELECT MAX(stamp) FROM entries WHERE stamp <= ?", sqlite::Blob{prefix});
    if (!st.ok()) return st.status();
    std::optional<std::string> below;
    if ((*st)->Step(&status)) below = (*st)->OptionalText(0);
    (*st)->Reset();
    CARNET_RETURN_IF_ERROR(status);
    if (below) {
      Result<Stamp> stamp = DecodeStamp(*below);
      if (!stamp.ok()) return Status(StatusCode::kCorruption, "entry stamp: " + stamp.status().message());
      floor = std::max(floor, stamp->hlc);
    }
  }
  Result<sqlite::Statement*> st =
      db->Query("SELECT stamp FROM entries WHERE stamp > ?", sqlite::Blob{prefix});
  if (!st.ok()) return st.status();
  while ((*st)->Step(&status)) {
    Result<Stamp> stamp = DecodeStamp((*st)->Text(0));
    if (!stamp.ok()) {
      (*st)->Reset();
      return Status(StatusCode::kCorruption, "entry stamp: " + stamp.status().message());
    }
    if (!moving.count(*stamp)) floor = std::max(floor, stamp->hlc);
  }
  CARNET_RETURN_IF_ERROR(status);
  return floor;
}

// Moves the operation's own entry, if it made one, to its new stamp. Only the entry's own
// operation or a later one of this device can name an old stamp (no one else has seen it), and
// both live under the operation's key: an operation ends entries of its own field and element.
// A sealed value names its stamp (core/ENCRYPTION.md): it is sealed anew for the new one.
Status MoveEntry(Store::Impl* impl, const Restamped& r, const Stamp& new_stamp,
                 const std::map<Stamp, Stamp>& renames) {
  sqlite::Database* db = impl->db_.get();
  const Operation& op = r.op;
  const std::string old_key = EncodeStamp(op.stamp());
  std::optional<std::string> refs, value;
  {
    // "field = +?": see LoadHeads in store_local.cc (a bare parameter re-prepares the statement).
    Result<sqlite::Statement*> find = db->Query(
        "SELECT refs, value FROM entries WHERE collection = ? AND record = ? AND field = +? AND "
        "element = ? AND stamp = ?",
        op.collection, op.record, op.field, op.element, sqlite::Blob{old_key});
    if (!find.ok()) return find.status();
    Status status;
    bool found = (*find)->Step(&status);
    if (found) {
      refs = (*find)->OptionalText(0);
      value = (*find)->OptionalText(1);
    }
    (*find)->Reset();
    CARNET_RETURN_IF_ERROR(status);
    if (!found) return Status::Ok();  // a remove, a redaction, a restore: no entry of its own
  }
  if (refs) {
    Result<std::vector<Stamp>> decoded = DecodeStampList(*refs);
    if (!decoded.ok()) return decoded.status();
    refs = EncodedRefs(Renamed(std::move(decoded.value()), renames));
  }
  Result<std::optional<std::string>> resealed = impl->Reseal(
      EntryKey{op.collection, op.record, op.field, op.element, op.stamp()}, new_stamp, value);
  if (!resealed.ok()) return resealed.status();
  Result<sqlite::Statement*> move = db->Query(
      "UPDATE entries SET stamp = ?, refs = ?, value = ? WHERE collection = ? AND record = ? AND "
      "field = +? AND element = ? AND stamp = ?",
      sqlite::Blob{EncodeStamp(new_stamp)}, refs, *resealed, op.collection, op.record, op.field,
      op.element, sqlite::Blob{old_key});
  if (!move.ok()) return move.status();
  return (*move)->Run();
}

}  // namespace

Result<size_t> Store::RestampAhead(int64_t max_ahead_ms) {
  std::unique_lock<std::recursive_mutex> lock(impl_->mutex_);
  Impl& impl = *impl_;
  if (max_ahead_ms < 0) return InvalidArgument("RestampAhead: max_ahead_ms is negative");
  // "More than max_ahead_ms ahead", as HybridClock::CheckSkew and the server count it: by the
  // physical part alone. (Capped at millennia, so that the hlc stays a positive SQLite integer.)
  const int64_t ahead = std::min<int64_t>(max_ahead_ms, int64_t{1} << 46);
  const Hlc cutoff = MakeHlc(impl.clock_.PhysicalMs() + ahead, 0xffff);
  const Hlc clock_before = impl.clock_.Last();
  CARNET_RETURN_IF_ERROR(impl.BeginTransaction());
  size_t count = 0;
  Status status = [&]() -> Status {
    Result<std::vector<Restamped>> ops =
        OperationsAbove(impl.db_.get(), impl.options_.device_id, cutoff);
    if (!ops.ok()) return ops.status();
    if (ops->empty()) return Status::Ok();
    std::map<Stamp, Stamp> renames;
    for (const Restamped& r : *ops) renames[r.op.stamp()] = Stamp{};
    Result<Hlc> floor = Floor(impl.db_.get(), cutoff, renames);
    if (!floor.ok()) return floor.status();
    // A stamp others have seen is that far ahead too: new stamps above it would be refused all
    // the same, and below it they would change the order of the state.
    if (*floor > cutoff) {
      impl.options_.env->Log(LogLevel::kWarning,
                             "store: operations stamped ahead are not re-stamped: the store holds "
                             "a stamp as far ahead that other replicas have seen");
      return Status::Ok();
    }
    impl.clock_.Rewind(*floor);
    for (Restamped& r : *ops) {
      r.hlc = impl.clock_.Tick();
      renames[r.op.stamp()] = Stamp{r.hlc, impl.options_.device_id};
    }
    for (const Restamped& r : *ops) {
      const Stamp& new_stamp = renames.at(r.op.stamp());
      Result<std::optional<std::string>> value = impl.Reseal(
          EntryKey{r.op.collection, r.op.record, r.op.field, r.op.element, r.op.stamp()},
          new_stamp, r.op.value);
      if (!value.ok()) return value.status();
      Result<sqlite::Statement*> update =
          impl.db_->Query("UPDATE outbox SET hlc = ?, refs = ?, value = ? WHERE seq = ?",
                          static_cast<int64_t>(r.hlc), EncodedRefs(Renamed(r.op.refs, renames)),
                          *value, static_cast<int64_t>(r.op.seq));
      if (!update.ok()) return update.status();
      CARNET_RETURN_IF_ERROR((*update)->Run());
      CARNET_RETURN_IF_ERROR(MoveEntry(&impl, r, new_stamp, renames));
      impl.NoteChange(Change{r.op.collection, r.op.record, r.op.field, false});
    }
    count = ops->size();
    impl.options_.env->Log(
        LogLevel::kInfo, "store: " + std::to_string(count) +
                             " operations stamped ahead re-stamped, the first from " +
                             StampToString(ops->front().op.stamp()) + " to " +
                             StampToString(renames.at(ops->front().op.stamp())));
    return Status::Ok();
  }();
  std::vector<Change> changes;
  if (status.ok() && count == 0) {
    impl.RollbackTransaction();  // nothing written
    return size_t{0};
  }
  if (status.ok()) status = impl.CommitTransaction(&changes);  // saves the clock, set back
  if (!status.ok()) {
    impl.RollbackTransaction();  // again after a failed commit: harmless
    impl.clock_.Restore(clock_before);
    return status;
  }
  lock.unlock();
  impl.Notify(changes);
  return count;
}

}  // namespace carnet
