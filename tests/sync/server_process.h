// The carnet-server binary in a child process, for tests that kill it mid-sync and start it
// again on the same store, as a crash and a restart by the service manager would; over plain
// HTTP on 127.0.0.1 (--plain-http), or HTTPS with a certificate the test made.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace carnet::testing {

// How the server process serves: plain HTTP when cert_file is empty.
struct ServerTls {
  std::string cert_file;
  std::string key_file;
};

class ServerProcess {
 public:
  // Starts `carnet-server serve` on a free port of 127.0.0.1; its logs go to `log_path`. `store`
  // is a store spec (sqlite:PATH, postgresql://...) or a SQLite file's path. `extra`: more serve
  // options. The retention policy is off unless `extra` sets one: tablets in tests write at a
  // fixed date (kTabletStartMs), which the default policy would retire once the real clock is two
  // years past it.
  ServerProcess(const std::string& binary, const std::string& store, const std::string& log_path,
                const ServerTls& tls = {}, const std::vector<std::string>& extra = {})
      : scheme_(tls.cert_file.empty() ? "http" : "https") {
    const bool spec = store.rfind("sqlite:", 0) == 0 || store.find("://") != std::string::npos;
    std::vector<std::string> args = {binary, "serve", "--store", spec ? store : "sqlite:" + store,
                                     "--listen", "127.0.0.1:0"};
    if (tls.cert_file.empty()) {
      args.push_back("--plain-http");
    } else {
      args.insert(args.end(), {"--tls-cert", tls.cert_file, "--tls-key", tls.key_file});
    }
    args.insert(args.end(), extra.begin(), extra.end());
    if (std::find(extra.begin(), extra.end(), "--retention-days") == extra.end()) {
      args.insert(args.end(), {"--retention-days", "0"});
    }
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    int out[2];
    REQUIRE(pipe(out) == 0);
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    REQUIRE(log >= 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec.
      dup2(out[1], STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
      close(out[0]);
      close(out[1]);
      close(log);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    close(log);
    // "carnet-server listening on 127.0.0.1:PORT"
    FILE* lines = fdopen(out[0], "r");
    REQUIRE(lines != nullptr);
    char line[256] = {};
    bool got = std::fgets(line, sizeof line, lines) != nullptr;
    std::fclose(lines);
    INFO("carnet-server said: " << line);
    REQUIRE(got);
    std::string text = line;
    size_t colon = text.rfind(':');
    REQUIRE(colon != std::string::npos);
    port_ = std::stoi(text.substr(colon + 1));
    REQUIRE(port_ > 0);
  }
  ~ServerProcess() { Kill(); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string url() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }

  // SIGKILL: no request in flight finishes, nothing is flushed.
  void Kill() { End(SIGKILL); }
  // SIGTERM: the server finishes the requests in flight and exits.
  void Stop() { End(SIGTERM); }
  // Sends `signal` without waiting; Wait() then gives the exit status (waitpid's).
  void Signal(int signal) {
    if (pid_ > 0) kill(pid_, signal);
  }
  int Wait() {
    int status = -1;
    if (pid_ > 0) waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  void End(int signal) {
    if (pid_ <= 0) return;
    kill(pid_, signal);
    Wait();
  }

  std::string scheme_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace carnet::testing
