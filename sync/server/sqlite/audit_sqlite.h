// The audit log on SQLite (sync/SECURITY.md, Audit): its own tables, made when the store opens,
// guarded by triggers that refuse to change or remove a row.
#pragma once

#include <cstdint>
#include <vector>

#include "carnet/audit.h"
#include "carnet/sqlite.h"
#include "sync/server/audit_log.h"

namespace carnet::audit {

// Makes what is missing (tables, triggers), in a transaction of its own.
Status InstallSqlite(sqlite::Database* db);
// Chains `rows` after the head and writes them, in the caller's write transaction.
Status AppendSqlite(sqlite::Database* db, std::vector<AuditRow> rows);
Result<std::vector<AuditRow>> ReadSqlite(sqlite::Database* db, const AuditFilter& filter,
                                         uint64_t after_id, uint32_t limit);
Result<AuditHead> HeadSqlite(sqlite::Database* db);

}  // namespace carnet::audit
