// Connections to PostgreSQL for the server store: a bounded pool, and transactions that turn
// libpqxx's exceptions into Status at this boundary and run again when PostgreSQL asks for it.
#pragma once

#include <pqxx/pqxx>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "carnet/status.h"

namespace carnet::pg {

// Statements every connection prepares when it opens: name and SQL.
using Statements = std::vector<std::pair<std::string, std::string>>;

class Pool {
 public:
  // `conninfo` as libpq takes it. At most `size` connections open, lazily.
  Pool(std::string conninfo, size_t size, Statements statements);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  enum class Isolation { kReadCommitted, kRepeatableReadReadOnly };

  // Runs `body` in a transaction on a pooled connection and commits it when it returns ok.
  // A serialization failure or a deadlock runs it again (up to 8 times: `body` must depend on
  // nothing but the database); a lost connection is dropped from the pool and reported as
  // kUnavailable; any other error of the database as kInternal. Blocks while all connections
  // are busy.
  Status Run(Isolation isolation, const std::function<Status(pqxx::transaction_base&)>& body);

  // Runs `body` outside any transaction (each statement commits by itself).
  Status RunPlain(const std::function<Status(pqxx::transaction_base&)>& body);

 private:
  struct Lease;
  Result<std::unique_ptr<pqxx::connection>> Acquire();
  void Release(std::unique_ptr<pqxx::connection> connection);

  const std::string conninfo_;
  const size_t size_;
  const Statements statements_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  size_t open_ = 0;
};

// bytea parameters travel as text in PostgreSQL's hex form ("\x0a1b...").
std::string Bytea(std::string_view bytes);
// A bytea column's bytes.
std::string Bytes(const pqxx::field& field);

}  // namespace carnet::pg
