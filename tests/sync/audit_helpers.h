// For the audit tests (sync/SECURITY.md, Audit): the carnet-server command line run as a child
// process, its JSON lines read back, and the store's audit tables reached behind the server's
// back, on SQLite (the file itself) or on PostgreSQL (libpqxx), as an intruder or a careless
// hand would.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pqxx/pqxx>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/sqlite.h"

namespace carnet::testing {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `carnet-server ARGS...` to its end, its standard input empty.
inline CliResult RunCli(std::vector<std::string> args) {
  args.insert(args.begin(), CARNET_SERVER_BINARY);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  int out[2], err[2];
  REQUIRE(pipe(out) == 0);
  REQUIRE(pipe(err) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    close(out[0]);
    close(out[1]);
    close(err[0]);
    close(err[1]);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, STDIN_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  CliResult result;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* into[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    if (poll(fds, 2, 60'000) <= 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[8192];
      ssize_t got = read(fds[i].fd, buffer, sizeof buffer);
      if (got > 0) {
        into[i]->append(buffer, static_cast<size_t>(got));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (const pollfd& fd : fds) {
    if (fd.fd >= 0) close(fd.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    lines.push_back(text.substr(start, end - start));
  }
  return lines;
}

// The members of one JSON line as carnet-server audit prints it (flat, strings without escapes
// in what the tests write), each as its text: "\"device\":\"tab-a\"" gives device -> tab-a.
inline std::map<std::string, std::string> JsonMembers(const std::string& line) {
  std::map<std::string, std::string> members;
  size_t at = 0;
  while ((at = line.find('"', at)) != std::string::npos) {
    size_t name_end = line.find('"', at + 1);
    if (name_end == std::string::npos || name_end + 1 >= line.size() || line[name_end + 1] != ':') {
      break;
    }
    std::string name = line.substr(at + 1, name_end - at - 1);
    size_t value = name_end + 2;
    std::string text;
    if (line[value] == '"') {
      size_t value_end = line.find('"', value + 1);
      text = line.substr(value + 1, value_end - value - 1);
      at = value_end + 1;
    } else {
      size_t value_end = line.find_first_of(",}", value);
      text = line.substr(value, value_end - value);
      at = value_end;
    }
    members[name] = text;
  }
  return members;
}

using AuditLines = std::vector<std::map<std::string, std::string>>;

// `carnet-server audit --store SPEC EXTRA...`, read back.
inline AuditLines AuditCli(const std::string& spec, std::vector<std::string> extra = {},
                           std::string* raw = nullptr) {
  std::vector<std::string> args = {"audit", "--store", spec};
  args.insert(args.end(), extra.begin(), extra.end());
  CliResult run = RunCli(args);
  INFO("carnet-server audit said: " << run.err);
  REQUIRE(run.exit_code == 0);
  if (raw) *raw = run.out;
  AuditLines lines;
  for (const std::string& line : Lines(run.out)) lines.push_back(JsonMembers(line));
  return lines;
}

// Enrolls a device through the command line; returns its token.
inline std::string EnrollCli(const std::string& spec, const std::string& device,
                             const std::string& adviser, const std::string& territory) {
  CliResult run = RunCli({"enroll", "--token", "--store", spec, "--device", device, "--adviser",
                          adviser, "--territory", territory});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  REQUIRE(run.out.size() > 1);
  return run.out.substr(0, run.out.find('\n'));
}

inline bool IsSqliteSpec(const std::string& spec) { return spec.rfind("sqlite:", 0) == 0; }

// Runs `sql` straight on the store, as an application would; returns the error, "" if none.
inline std::string TrySql(const std::string& spec, const std::string& sql) {
  if (IsSqliteSpec(spec)) {
    Result<std::unique_ptr<sqlite::Database>> db = sqlite::Database::Open(spec.substr(7), 5000);
    REQUIRE(db.ok());
    Status status = (*db)->Exec(sql);
    return status.ok() ? "" : status.message();
  }
  try {
    pqxx::connection connection(spec);
    pqxx::work txn(connection);
    txn.exec(sql);
    txn.commit();
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

// Runs `sql` on the store behind the server's back: what someone with the database's keys, or
// the file, can do. SQLite: the guarding triggers dropped first (the next opening of the store
// makes them again); PostgreSQL: disabled for the statement.
inline void Tamper(const std::string& spec, const std::string& sql) {
  if (IsSqliteSpec(spec)) {
    const std::string error = TrySql(
        spec,
        "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete; "
        "DROP TRIGGER IF EXISTS audit_head_forward; DROP TRIGGER IF EXISTS "
        "audit_head_no_delete; " + sql);
    INFO(error);
    REQUIRE(error.empty());
    return;
  }
  const std::string error =
      TrySql(spec, "ALTER TABLE audit DISABLE TRIGGER USER; ALTER TABLE audit_head DISABLE "
                   "TRIGGER USER; " + sql +
                       "; ALTER TABLE audit ENABLE TRIGGER USER; ALTER TABLE audit_head ENABLE "
                       "TRIGGER USER;");
  INFO(error);
  REQUIRE(error.empty());
}

// Every column of every row of the audit table, as text, one row a line.
inline std::string AuditTableText(const std::string& spec) {
  std::string text;
  if (IsSqliteSpec(spec)) {
    Result<std::unique_ptr<sqlite::Database>> db = sqlite::Database::Open(spec.substr(7), 5000);
    REQUIRE(db.ok());
    Result<sqlite::Statement*> st = (*db)->Query("SELECT * FROM audit ORDER BY id");
    REQUIRE(st.ok());
    Status status;
    while ((*st)->Step(&status)) {
      for (int c = 0; c < 10; ++c) text += ((*st)->IsNull(c) ? "" : (*st)->Text(c)) + "\t";
      text += "\n";
    }
    REQUIRE(status.ok());
    return text;
  }
  pqxx::connection connection(spec);
  pqxx::work txn(connection);
  for (const pqxx::row& r : txn.exec("SELECT audit::text FROM audit ORDER BY id")) {
    text += r[0].as<std::string>() + "\n";
  }
  return text;
}

}  // namespace carnet::testing
