#include "sync/server/pg/pg_sequence.h"

namespace carnet::pg {

void Sequence::Install(pqxx::transaction_base& txn) {
  txn.exec0("INSERT INTO counters VALUES('seq', 0) ON CONFLICT DO NOTHING");
}

Sequence::Sequence(pqxx::transaction_base& txn) : txn_(txn) {
  pqxx::row row = txn_.exec1("SELECT value FROM counters WHERE name = 'seq' FOR UPDATE");
  first_ = last_ = row[0].as<uint64_t>();
}

uint64_t Sequence::Take(uint64_t n) {
  uint64_t first = last_ + 1;
  last_ += n;
  return first;
}

void Sequence::Save() {
  if (last_ == first_) return;
  txn_.exec_params0("UPDATE counters SET value = $1 WHERE name = 'seq'", last_);
}

uint64_t Sequence::Committed(pqxx::transaction_base& txn) {
  return txn.exec1("SELECT value FROM counters WHERE name = 'seq'")[0].as<uint64_t>();
}

}  // namespace carnet::pg
