// For the erasure and retention tests (sync/PROTOCOL.md, Erasure and Retention): the
// carnet-server command line run as a child process, the bytes of a store's files, and the rows
// of a server store read behind the server's back with plain SQL, on SQLite or PostgreSQL.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pqxx/pqxx>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/sqlite.h"
#include "tests/support/temp_dir.h"

namespace carnet::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;  // standard output and error, interleaved
};

// Runs `carnet-server ARGS...` to its end; its output goes through a file in `dir`.
inline CommandResult RunServerCommand(const TempDir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), CARNET_SERVER_BINARY);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const std::string out_path = dir.File("command.out");
  int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE(out >= 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(out, STDOUT_FILENO);
    dup2(out, STDERR_FILENO);
    close(out);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out);
  int status = 0;
  waitpid(pid, &status, 0);
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(out_path);
  result.out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return result;
}

// `carnet-server enroll`; returns the token it prints.
inline std::string EnrollWithCommand(const TempDir& dir, const std::string& store,
                                     const std::string& device, const std::string& adviser,
                                     const std::string& territory) {
  CommandResult enrolled = RunServerCommand(
      dir, {"enroll", "--token", "--store", store, "--device", device, "--adviser", adviser,
            "--territory", territory});
  INFO(enrolled.out);
  REQUIRE(enrolled.exit_code == 0);
  std::string token = enrolled.out.substr(0, enrolled.out.find('\n'));
  REQUIRE(token.size() == 64);
  return token;
}

// The bytes of files, one after the other; a missing file adds nothing.
inline std::string FileBytes(const std::vector<std::string>& paths) {
  std::string bytes;
  for (const std::string& path : paths) {
    std::ifstream in(path, std::ios::binary);
    bytes.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return bytes;
}

inline bool HasBytes(const std::string& bytes, const std::string& what) {
  return bytes.find(what) != std::string::npos;
}

inline std::string Hex(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// The tables of a server store with a row that holds `needle` anywhere (as text, or as bytes in a
// binary column), leaving out those named in `except`.
inline std::set<std::string> TablesMentioning(const std::string& spec, const std::string& needle,
                                              const std::set<std::string>& except) {
  std::set<std::string> found;
  if (spec.rfind("sqlite:", 0) == 0) {
    Result<std::unique_ptr<sqlite::Database>> db = sqlite::Database::Open(spec.substr(7), 5000);
    REQUIRE(db.ok());
    std::vector<std::string> tables;
    {
      Result<sqlite::Statement*> st = (*db)->Prepare(
          "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
      REQUIRE(st.ok());
      Status status;
      while ((*st)->Step(&status)) tables.push_back((*st)->Text(0));
      REQUIRE(status.ok());
    }
    for (const std::string& table : tables) {
      if (except.count(table)) continue;
      std::vector<std::string> columns;
      {
        Result<sqlite::Statement*> st = (*db)->Prepare("PRAGMA table_info(" + table + ")");
        REQUIRE(st.ok());
        Status status;
        while ((*st)->Step(&status)) columns.push_back((*st)->Text(1));
        REQUIRE(status.ok());
      }
      std::string where;
      for (const std::string& column : columns) {
        where += (where.empty() ? "" : " OR ") + std::string("instr(CAST(") + column +
                 " AS BLOB), CAST(?1 AS BLOB)) > 0";
      }
      Result<sqlite::Statement*> st =
          (*db)->Query("SELECT count(*) FROM " + table + " WHERE " + where, needle);
      REQUIRE(st.ok());
      Status status;
      if ((*st)->Step(&status) && (*st)->Int(0) > 0) found.insert(table);
      (*st)->Reset();
      REQUIRE(status.ok());
    }
    return found;
  }
  pqxx::connection connection(spec);
  pqxx::work txn(connection);
  for (const pqxx::row& t : txn.exec(
           "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND "
           "table_type = 'BASE TABLE'")) {
    const std::string table = t[0].as<std::string>();
    if (except.count(table)) continue;
    // A row as text shows bytea columns in hex.
    pqxx::row count = txn.exec_params1("SELECT count(*) FROM " + table + " r WHERE strpos(r::text, "
                                       "$1) > 0 OR strpos(r::text, $2) > 0",
                                       needle, Hex(needle));
    if (count[0].as<int64_t>() > 0) found.insert(table);
  }
  return found;
}

}  // namespace carnet::testing
