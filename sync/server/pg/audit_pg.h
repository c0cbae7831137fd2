// The audit log on PostgreSQL (sync/SECURITY.md, Audit): its own tables, made when the store
// opens, guarded by triggers that refuse to change or remove a row. libpqxx's exceptions are left
// to the caller's pg::Pool, which turns them into a Status.
#pragma once

#include <pqxx/pqxx>

#include <cstdint>
#include <vector>

#include "carnet/audit.h"
#include "sync/server/audit_log.h"

namespace carnet::audit {

// Makes what is missing (tables, functions, triggers) and enables a trigger found disabled; in
// the migration transaction.
void InstallPostgres(pqxx::transaction_base& txn);
// Chains `rows` after the head and writes them. Takes the head row's lock (FOR UPDATE) for the
// rest of `txn`, so that appends on every node follow one another: run it last in a push's
// transaction, or in a short transaction of its own after a pull.
void AppendPostgres(pqxx::transaction_base& txn, std::vector<AuditRow> rows);
std::vector<AuditRow> ReadPostgres(pqxx::transaction_base& txn, const AuditFilter& filter,
                                   uint64_t after_id, uint32_t limit);
AuditHead HeadPostgres(pqxx::transaction_base& txn);

}  // namespace carnet::audit
