// The audit log's rows as the stores make them (carnet/audit.h; sync/SECURITY.md, Audit): what a
// push or a pull puts in the log, and how rows are chained. sync/server/sqlite/audit_sqlite.h and
// sync/server/pg/audit_pg.h keep them.
#pragma once

#include <cstdint>
#include <vector>

#include "carnet/audit.h"
#include "carnet/operation.h"
#include "carnet/server_store.h"
#include "carnet/wire.h"

namespace carnet::audit {

// The rows of a push's fresh operations (those not acknowledged to the device's store before):
// one per record, field and operation kind, with how many operations. Never a value, nor a set
// element (an element is a value: a barrier, an attendance status...).
std::vector<AuditRow> PushRows(const Device& device, int64_t now_ms,
                               const std::vector<Operation>& ops);
// The rows of a pull's reply (a page of a snapshot as well): one "read" per record whose entries
// it serves, with how many, and one "forget" per record it tells the device to drop.
std::vector<AuditRow> PullRows(const Device& device, const wire::PullReply& reply);

// The row of a push refused for its scope (sync/SECURITY.md, Scope): "refused", the record the
// refusal named, and how many operations the refused batch held. Kept though nothing applied.
AuditRow RefusalRow(const Device& device, int64_t now_ms, const std::string& collection,
                    const std::string& record, size_t ops);

// Gives `rows` their ids and hashes, following `head`; returns the new head.
AuditHead Chain(const AuditHead& head, std::vector<AuditRow>* rows);

}  // namespace carnet::audit
