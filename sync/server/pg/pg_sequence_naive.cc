// The classic trap, kept to show that the tests catch it (CMake option CARNET_PG_NAIVE_SEQUENCE,
// never for production): numbers come from a plain PostgreSQL sequence, with no lock, so that a
// transaction may commit after one that drew a greater number, and a pull that passed the
// greater one never returns the smaller. See sync/SCALING.md.
#include "sync/server/pg/pg_sequence.h"

namespace carnet::pg {

void Sequence::Install(pqxx::transaction_base& txn) {
  txn.exec0("CREATE SEQUENCE IF NOT EXISTS carnet_naive_seq");
}

Sequence::Sequence(pqxx::transaction_base& txn) : txn_(txn) {}

uint64_t Sequence::Take(uint64_t n) {
  // Consecutive numbers: the sequence moves by n at once, under a lock held for that moment only.
  txn_.exec("SELECT pg_advisory_lock(4242)");
  pqxx::row row = txn_.exec_params1(
      "SELECT setval('carnet_naive_seq', nextval('carnet_naive_seq') + $1 - 1)", n);
  txn_.exec("SELECT pg_advisory_unlock(4242)");
  last_ = row[0].as<uint64_t>();
  return last_ - n + 1;
}

void Sequence::Save() {}

uint64_t Sequence::Committed(pqxx::transaction_base& txn) {
  return txn.exec1("SELECT last_value FROM carnet_naive_seq")[0].as<uint64_t>();
}

}  // namespace carnet::pg
