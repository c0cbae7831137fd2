// The audit log on PostgreSQL. Several nodes append at once (pushes under the store-wide lock,
// pulls beside them): every append locks the head row first, so that appends follow one another
// and each chains on the one committed before it. In READ COMMITTED, a transaction that waited
// for the lock reads the head its predecessor wrote.
#include <algorithm>
#include <string>

#include "sync/server/pg/audit_pg.h"

namespace carnet::audit {
namespace {

// The tables, functions and triggers are created when missing, and a trigger found disabled is
// enabled again (locks are taken only then): the triggers stop the application (and a mistaken
// hand) from changing or removing a row, and the head from going back. A role that can disable
// them can rewrite the table, which the chain, the head and an anchor kept elsewhere reveal.
constexpr const char* kInstallSql = R"sql(
CREATE TABLE IF NOT EXISTS audit(
  id bigint PRIMARY KEY, at_ms bigint NOT NULL, device text COLLATE "C" NOT NULL,
  adviser text COLLATE "C" NOT NULL, action text NOT NULL, collection text COLLATE "C" NOT NULL,
  record text COLLATE "C" NOT NULL, field text COLLATE "C" NOT NULL, count integer NOT NULL,
  hash text NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_record ON audit(record);
CREATE TABLE IF NOT EXISTS audit_head(
  one boolean PRIMARY KEY CHECK(one), last_id bigint NOT NULL, hash text NOT NULL);
INSERT INTO audit_head VALUES(true, 0, '') ON CONFLICT DO NOTHING;
DO $install$
DECLARE
  wanted text[][] := ARRAY[
    ['audit', 'audit_append_only',
     'BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION carnet_audit_append_only()'],
    ['audit', 'audit_no_truncate',
     'BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION carnet_audit_append_only()'],
    ['audit_head', 'audit_head_forward',
     'BEFORE UPDATE ON audit_head FOR EACH ROW EXECUTE FUNCTION carnet_audit_head_forward()'],
    ['audit_head', 'audit_head_kept',
     'BEFORE DELETE ON audit_head FOR EACH ROW EXECUTE FUNCTION carnet_audit_append_only()'],
    ['audit_head', 'audit_head_no_truncate',
     'BEFORE TRUNCATE ON audit_head FOR EACH STATEMENT EXECUTE FUNCTION '
     'carnet_audit_append_only()']];
  state "char";
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'carnet_audit_append_only') THEN
    CREATE FUNCTION carnet_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $f$
    BEGIN
      RAISE EXCEPTION 'the audit log is append-only: % refused on %', TG_OP, TG_TABLE_NAME;
    END $f$;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'carnet_audit_head_forward') THEN
    CREATE FUNCTION carnet_audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $f$
    BEGIN
      IF NEW.last_id <= OLD.last_id OR NEW.one <> OLD.one THEN
        RAISE EXCEPTION 'the audit log''s head only moves forward';
      END IF;
      RETURN NEW;
    END $f$;
  END IF;
  FOR i IN 1 .. array_length(wanted, 1) LOOP
    SELECT tgenabled INTO state FROM pg_trigger
      WHERE tgrelid = wanted[i][1]::regclass AND tgname = wanted[i][2];
    IF NOT FOUND THEN
      EXECUTE format('CREATE TRIGGER %I %s', wanted[i][2], wanted[i][3]);
    ELSIF state = 'D' THEN
      EXECUTE format('ALTER TABLE %I ENABLE TRIGGER %I', wanted[i][1], wanted[i][2]);
    END IF;
  END LOOP;
END $install$;
)sql";

constexpr const char* kColumns =
    "id, at_ms, device, adviser, action, collection, record, field, count, hash";

}  // namespace

void InstallPostgres(pqxx::transaction_base& txn) { txn.exec0(kInstallSql); }

AuditHead HeadPostgres(pqxx::transaction_base& txn) {
  pqxx::row head = txn.exec1("SELECT last_id, hash FROM audit_head");
  return AuditHead{head[0].as<uint64_t>(), head[1].as<std::string>()};
}

void AppendPostgres(pqxx::transaction_base& txn, std::vector<AuditRow> rows) {
  if (rows.empty()) return;
  pqxx::row locked = txn.exec1("SELECT last_id, hash FROM audit_head FOR UPDATE");
  const AuditHead next =
      Chain(AuditHead{locked[0].as<uint64_t>(), locked[1].as<std::string>()}, &rows);
  // A few hundred rows a statement: a first snapshot's page serves a thousand records.
  constexpr size_t kRows = 500, kColumnCount = 10;
  for (size_t at = 0; at < rows.size(); at += kRows) {
    const size_t n = std::min(kRows, rows.size() - at);
    std::vector<std::string> params;
    params.reserve(n * kColumnCount);
    std::string sql = std::string("INSERT INTO audit(") + kColumns + ") VALUES";
    for (size_t i = 0; i < n; ++i) {
      const AuditRow& r = rows[at + i];
      sql += i ? ",(" : "(";
      for (size_t c = 1; c <= kColumnCount; ++c) {
        sql += "$" + std::to_string(i * kColumnCount + c) +
               (c <= 2 ? "::bigint" : c == 9 ? "::integer" : "") + (c < kColumnCount ? "," : ")");
      }
      for (const std::string& value :
           {std::to_string(r.id), std::to_string(r.at_ms), r.device, r.adviser, r.action,
            r.collection, r.record, r.field, std::to_string(r.count), r.hash}) {
        params.push_back(value);
      }
    }
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const std::string& p : params) values.push_back(p.c_str());
    txn.exec_params0(sql, pqxx::prepare::make_dynamic_params(values));
  }
  txn.exec_params0("UPDATE audit_head SET last_id = $1, hash = $2", next.last_id, next.hash);
}

std::vector<AuditRow> ReadPostgres(pqxx::transaction_base& txn, const AuditFilter& filter,
                                   uint64_t after_id, uint32_t limit) {
  // An unnamed statement is planned with its parameters' values: an empty filter folds away.
  const std::string sql = std::string("SELECT ") + kColumns +
                          " FROM audit WHERE id > $1 AND at_ms >= $2 AND ($3 = '' OR device = "
                          "$3) AND ($4 = '' OR record = $4) ORDER BY id LIMIT $5";
  std::vector<AuditRow> rows;
  for (const pqxx::row& r : txn.exec_params(sql, after_id, filter.since_ms, filter.device,
                                             filter.record, int64_t{limit})) {
    rows.push_back(AuditRow{r[0].as<uint64_t>(), r[1].as<int64_t>(), r[2].as<std::string>(),
                            r[3].as<std::string>(), r[4].as<std::string>(),
                            r[5].as<std::string>(), r[6].as<std::string>(),
                            r[7].as<std::string>(), r[8].as<uint32_t>(), r[9].as<std::string>()});
  }
  return rows;
}

}  // namespace carnet::audit
