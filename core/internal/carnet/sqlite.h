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
#include <type_traits>

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

// Wraps bytes to bind as a BLOB (plain strings bind as TEXT).
struct Blob {
  std::string_view bytes;
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

  // Prepare() and bind the arguments in order: integers, text (std::string, const char*),
  // Blob, or std::optional<std::string> (a BLOB, or NULL).
  template <typename... Args>
  Result<Statement*> Query(const std::string& sql, const Args&... args) {
    Result<Statement*> st = Prepare(sql);
    if (!st.ok()) return st;
    int index = 1;
    (BindArg(**st, index++, args), ...);
    return st;
  }

  // Rows changed by the last INSERT, UPDATE or DELETE.
  int64_t Changes();

  // Whether a transaction is open. SQLite rolls one back and ends it by itself when a statement
  // fails on an I/O error, a full disk or a lack of memory.
  bool InTransaction();

  sqlite3* handle() { return db_; }

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  template <typename T>
  static void BindArg(Statement& st, int index, const T& value) {
    if constexpr (std::is_integral_v<T>) {
      st.Bind(index, static_cast<int64_t>(value));
    } else if constexpr (std::is_same_v<T, Blob>) {
      st.BindBlob(index, value.bytes);
    } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
      if (value) {
        st.BindBlob(index, *value);
      } else {
        st.BindNull(index);
      }
    } else {
      st.Bind(index, std::string_view(value));
    }
  }
  sqlite3* db_;
  std::map<std::string, std::unique_ptr<Statement>, std::less<>> cache_;
};

}  // namespace carnet::sqlite
