// Server sequence numbers on PostgreSQL. A pull returns what changed after a cursor, so a number
// must never become visible after a greater one: with concurrent transactions drawing from a
// plain sequence, a pull could pass a number whose transaction commits later (sync/SCALING.md).
// Here the last number given lives in one row that a write transaction locks first: transactions
// that give numbers run one after another, on every node, and commit in the order of their
// numbers.
#pragma once

#include <pqxx/pqxx>

#include <cstdint>

namespace carnet::pg {

class Sequence {
 public:
  // Sets up what the sequence needs; run once in the migration transaction.
  static void Install(pqxx::transaction_base& txn);
  // Takes the store-wide lock for the rest of `txn` (which must be a write transaction), and
  // reads the last number given.
  explicit Sequence(pqxx::transaction_base& txn);
  // The first of `n` consecutive new numbers.
  uint64_t Take(uint64_t n = 1);
  // The last number given so far, this transaction's included.
  uint64_t Last() const { return last_; }
  // Writes the last number given: call before committing.
  void Save();
  // The last number of any committed transaction, in `txn`'s snapshot: everything at or below it
  // that `txn` sees is all there will ever be.
  static uint64_t Committed(pqxx::transaction_base& txn);

 private:
  pqxx::transaction_base& txn_;
  uint64_t first_ = 0;
  uint64_t last_ = 0;
};

}  // namespace carnet::pg
