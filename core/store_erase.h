// Erasure on the tablet (GDPR art. 17; sync/PROTOCOL.md, Erasure): what Store::Erase and
// Store::ApplyPulled share.
#pragma once

#include <cstddef>

#include "carnet/store.h"
#include "core/store_impl.h"

namespace carnet {

// The participant id and the records named by an erasure are well formed.
Status ValidateErasure(const Erasure& erasure);

// Outside any transaction, before the erasure's own: erases the participant's health key
// (Store::EraseParticipantKey, core/ENCRYPTION.md), which commits by itself. It can be done
// again, so that an erasure cut between the two is carried out whole when it comes again.
Status EraseKeyBeforeErasure(Store::Impl& impl, const Erasure& erasure);

// In the store's open transaction: removes every entry of the participant, of the records whose
// participant field's winning value names them (as Forget), and of the records the erasure
// lists; then, in every other record, the entries of fields of type ref that name them (a
// losing head of a participant field, the participant among a workshop's registered). Returns
// how many entries went. kFailedPrecondition, nothing removed, while the outbox holds an
// operation on any of those records or naming the participant: push first (the server drops
// them, and counts them).
Result<size_t> EraseFromReplica(Store::Impl& impl, const Erasure& erasure);

// Outside any transaction, after an erasure committed: copies the WAL into the file and
// truncates it, so that the erased rows are in neither (PRAGMA secure_delete has zeroed them in
// the pages the erasure wrote). A checkpoint another connection holds back is logged and left
// to the next one: the erasure itself is committed.
void ScrubAfterErasure(Store::Impl& impl);

}  // namespace carnet
