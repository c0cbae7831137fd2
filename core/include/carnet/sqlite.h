// A thin RAII layer over SQLite, shared by the core's store and the server's SQLite store (it is
// not part of the app API): one connection, prepared statements
// cached by their SQL text, SQLite result codes turned into carnet::Status.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "carnet/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace carnet::sqlite {

// Maps an SQLite result code to a Status whose code says whether a retry can help.
Status FromCode(int code, std::string_view what, sqlite3* db);

class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binding is 1-based, as in SQLite. Text and blobs are copied.
  void Bind(int index, int64_t value);
  void Bind(int index, std::string_view text);
  void BindBlob(int index, std::string_view bytes);
  void BindNull(int index);
  void BindOptional(int index, const std::optional<std::string>& text);

  // Advances: true with a row, false when done; *status carries an error.
  bool Step(Status* status);
  // Runs to completion (for statements without rows).
  Status Run();
  // Clears bindings and rewinds, ready for reuse. Called by the cache on every Prepare.
  void Reset();

  int64_t Int(int column) const;
  std::string Text(int column) const;
  std::optional<std::string> OptionalText(int column) const;
  bool IsNull(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class Database {
 public:
  static Result<std::unique_ptr<Database>> Open(const std::string& path, int busy_timeout_ms);
  ~Database();

  // Runs SQL with no results (several statements allowed).
  Status Exec(const std::string& sql);
  // A cached statement, reset and unbound. Valid until the Database is destroyed; do not hold two
  // uses of the same SQL at once.
  Result<Statement*> Prepare(const std::string& sql);

  sqlite3* handle() { return db_; }

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::map<std::string, std::unique_ptr<Statement>, std::less<>> cache_;
};

}  // namespace carnet::sqlite
