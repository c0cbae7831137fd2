#include "sync/server/pg/pg_pool.h"

namespace carnet::pg {

Pool::Pool(std::string conninfo, size_t size, Statements statements)
    : conninfo_(std::move(conninfo)), size_(size < 1 ? 1 : size),
      statements_(std::move(statements)) {}

Pool::~Pool() = default;

Result<std::unique_ptr<pqxx::connection>> Pool::Acquire() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    freed_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
    if (!idle_.empty()) {
      std::unique_ptr<pqxx::connection> connection = std::move(idle_.back());
      idle_.pop_back();
      return connection;
    }
    ++open_;
  }
  // Opening takes a round trip or more: not under the lock.
  try {
    auto connection = std::make_unique<pqxx::connection>(conninfo_);
    for (const auto& [name, sql] : statements_) connection->prepare(name, sql);
    return connection;
  } catch (const std::exception& e) {
    Release(nullptr);
    return Status(StatusCode::kUnavailable, std::string("cannot connect to PostgreSQL: ") + e.what());
  }
}

void Pool::Release(std::unique_ptr<pqxx::connection> connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (connection && connection->is_open()) {
    idle_.push_back(std::move(connection));
  } else {
    --open_;
  }
  freed_.notify_one();
}

namespace {

constexpr int kAttempts = 8;

template <typename Txn>
Status RunOnce(pqxx::connection& connection,
               const std::function<Status(pqxx::transaction_base&)>& body, bool commit) {
  Txn txn(connection);
  Status status = body(txn);
  if (status.ok() && commit) txn.commit();
  return status;  // the transaction's destructor rolls back what is not committed
}

}  // namespace

Status Pool::Run(Isolation isolation, const std::function<Status(pqxx::transaction_base&)>& body) {
  for (int attempt = 1;; ++attempt) {
    Result<std::unique_ptr<pqxx::connection>> connection = Acquire();
    if (!connection.ok()) return connection.status();
    std::unique_ptr<pqxx::connection> held = std::move(connection.value());
    Status status;
    bool again = false;
    try {
      if (isolation == Isolation::kReadCommitted) {
        status = RunOnce<pqxx::work>(*held, body, true);
      } else {
        status = RunOnce<pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>>(*held, body,
                                                                                    true);
      }
    } catch (const pqxx::transaction_rollback& e) {
      // Serialization failure or deadlock: PostgreSQL rolled back, the work may simply run again.
      again = attempt < kAttempts;
      status = Status(StatusCode::kBusy, std::string("PostgreSQL: ") + e.what());
    } catch (const pqxx::broken_connection& e) {
      held.reset();
      status = Status(StatusCode::kUnavailable, std::string("PostgreSQL connection lost: ") + e.what());
    } catch (const pqxx::in_doubt_error& e) {
      held.reset();
      status = Status(StatusCode::kUnavailable,
                      std::string("PostgreSQL connection lost at commit: ") + e.what());
    } catch (const std::exception& e) {
      status = Internal(std::string("PostgreSQL: ") + e.what());
    }
    Release(std::move(held));
    if (!again) return status;
  }
}

Status Pool::RunPlain(const std::function<Status(pqxx::transaction_base&)>& body) {
  Result<std::unique_ptr<pqxx::connection>> connection = Acquire();
  if (!connection.ok()) return connection.status();
  std::unique_ptr<pqxx::connection> held = std::move(connection.value());
  Status status;
  try {
    status = RunOnce<pqxx::nontransaction>(*held, body, false);
  } catch (const pqxx::broken_connection& e) {
    held.reset();
    status = Status(StatusCode::kUnavailable, std::string("PostgreSQL connection lost: ") + e.what());
  } catch (const std::exception& e) {
    status = Internal(std::string("PostgreSQL: ") + e.what());
  }
  Release(std::move(held));
  return status;
}

std::string Bytea(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + 2 * bytes.size());
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string Bytes(const pqxx::field& field) { return pqxx::binarystring(field).str(); }

}  // namespace carnet::pg
