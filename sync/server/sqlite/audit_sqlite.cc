// The audit log on SQLite. The store's single connection and BEGIN IMMEDIATE make one writer at a
// time, so an append reads the head and writes after it within the caller's transaction.
#include "sync/server/sqlite/audit_sqlite.h"

#include <string>

namespace carnet::audit {
namespace {

// The triggers stop the application (and a mistaken hand) from changing or removing a row, and
// the head from going back; whoever can drop them can rewrite the file, which the chain, the
// head and an anchor kept elsewhere reveal.
constexpr const char* kInstallSql = R"sql(
CREATE TABLE IF NOT EXISTS audit(
  id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, device TEXT NOT NULL, adviser TEXT NOT NULL,
  action TEXT NOT NULL, collection TEXT NOT NULL, record TEXT NOT NULL, field TEXT NOT NULL,
  count INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_record ON audit(record);
CREATE TABLE IF NOT EXISTS audit_head(
  one INTEGER PRIMARY KEY CHECK(one = 1), last_id INTEGER NOT NULL, hash TEXT NOT NULL);
INSERT OR IGNORE INTO audit_head VALUES(1, 0, '');
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: a row cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: a row cannot be removed'); END;
CREATE TRIGGER IF NOT EXISTS audit_head_forward BEFORE UPDATE ON audit_head
  WHEN NEW.last_id <= OLD.last_id OR NEW.one <> OLD.one
  BEGIN SELECT RAISE(ABORT, 'the audit log''s head only moves forward'); END;
CREATE TRIGGER IF NOT EXISTS audit_head_no_delete BEFORE DELETE ON audit_head
  BEGIN SELECT RAISE(ABORT, 'the audit log''s head cannot be removed'); END;
)sql";

constexpr const char* kColumns =
    "id, at_ms, device, adviser, action, collection, record, field, count, hash";

// Rows go in by statements of 32, 16, ..., 1 rows, each prepared once (the connection caches
// statements by their text): a first snapshot's page appends a few hundred rows.
constexpr size_t kMostRowsAStatement = 32;

std::string InsertSql(size_t rows) {
  std::string sql = "INSERT INTO audit VALUES";
  for (size_t i = 0; i < rows; ++i) sql += i ? ",(?,?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?,?)";
  return sql;
}

}  // namespace

Status InstallSqlite(sqlite::Database* db) {
  CARNET_RETURN_IF_ERROR(db->Exec("BEGIN IMMEDIATE"));
  Status status = db->Exec(kInstallSql);
  if (status.ok()) status = db->Exec("COMMIT");
  if (!status.ok() && db->InTransaction()) (void)db->Exec("ROLLBACK");
  return status;
}

Result<AuditHead> HeadSqlite(sqlite::Database* db) {
  Result<sqlite::Statement*> st = db->Query("SELECT last_id, hash FROM audit_head WHERE one = 1");
  if (!st.ok()) return st.status();
  Status status;
  AuditHead head;
  if ((*st)->Step(&status)) head = {static_cast<uint64_t>((*st)->Int(0)), (*st)->Text(1)};
  (*st)->Reset();
  CARNET_RETURN_IF_ERROR(status);
  return head;
}

Status AppendSqlite(sqlite::Database* db, std::vector<AuditRow> rows) {
  if (rows.empty()) return Status::Ok();
  Result<AuditHead> head = HeadSqlite(db);
  if (!head.ok()) return head.status();
  const AuditHead next = Chain(*head, &rows);
  size_t chunk = kMostRowsAStatement;
  for (size_t at = 0; at < rows.size(); at += chunk) {
    while (chunk > rows.size() - at) chunk /= 2;
    Result<sqlite::Statement*> st = db->Prepare(InsertSql(chunk));
    if (!st.ok()) return st.status();
    int index = 1;
    for (size_t i = at; i < at + chunk; ++i) {
      const AuditRow& r = rows[i];
      (*st)->Bind(index++, static_cast<int64_t>(r.id));
      (*st)->Bind(index++, r.at_ms);
      for (const std::string* text : {&r.device, &r.adviser, &r.action, &r.collection, &r.record,
                                      &r.field}) {
        (*st)->Bind(index++, *text);
      }
      (*st)->Bind(index++, int64_t{r.count});
      (*st)->Bind(index++, r.hash);
    }
    CARNET_RETURN_IF_ERROR((*st)->Run());
  }
  Result<sqlite::Statement*> moved =
      db->Query("UPDATE audit_head SET last_id = ?, hash = ? WHERE one = 1", next.last_id,
                next.hash);
  return moved.ok() ? (*moved)->Run() : moved.status();
}

Result<std::vector<AuditRow>> ReadSqlite(sqlite::Database* db, const AuditFilter& filter,
                                         uint64_t after_id, uint32_t limit) {
  std::string sql = std::string("SELECT ") + kColumns + " FROM audit WHERE id > ?";
  if (!filter.device.empty()) sql += " AND device = ?";
  if (!filter.record.empty()) sql += " AND record = ?";
  sql += " AND at_ms >= ? ORDER BY id LIMIT ?";
  Result<sqlite::Statement*> st = db->Prepare(sql);
  if (!st.ok()) return st.status();
  int index = 1;
  (*st)->Bind(index++, static_cast<int64_t>(after_id));
  if (!filter.device.empty()) (*st)->Bind(index++, filter.device);
  if (!filter.record.empty()) (*st)->Bind(index++, filter.record);
  (*st)->Bind(index++, filter.since_ms);
  (*st)->Bind(index++, int64_t{limit});
  std::vector<AuditRow> rows;
  Status status;
  while ((*st)->Step(&status)) {
    const sqlite::Statement& s = **st;
    rows.push_back(AuditRow{static_cast<uint64_t>(s.Int(0)), s.Int(1), s.Text(2), s.Text(3),
                            s.Text(4), s.Text(5), s.Text(6), s.Text(7),
                            static_cast<uint32_t>(s.Int(8)), s.Text(9)});
  }
  CARNET_RETURN_IF_ERROR(status);
  return rows;
}

}  // namespace carnet::audit
