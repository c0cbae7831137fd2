#include "examples/field_day_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <cerrno>
#include <cstring>
#include <string>

namespace field_day {
namespace {

using carnet::Result;
using carnet::Status;
using carnet::StatusCode;

struct Child {
  pid_t pid = -1;
  int stdout_fd = -1;  // read end of the child's standard output
};

int64_t MonotonicMs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1'000'000;
}

Status Errno(const std::string& what) {
  return Status(StatusCode::kIoError, what + ": " + std::strerror(errno));
}

Result<Child> Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  // Everything the child needs is prepared before fork: after it, only exec-safe calls.
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return Errno("pipe");
  int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) {
    close(out[0]);
    close(out[1]);
    return Errno("open " + log_path);
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    execvp(args[0], args.data());
    _exit(127);
  }
  int fork_errno = errno;
  close(out[1]);
  close(log);
  if (pid < 0) {
    close(out[0]);
    errno = fork_errno;
    return Errno("fork");
  }
  return Child{pid, out[0]};
}

// Reads from `fd` until `done(text)` holds, end of file, or the deadline. False on timeout.
template <typename Done>
bool ReadUntil(int fd, int64_t deadline_ms, std::string* text, Done done) {
  char buffer[4096];
  while (!done(*text)) {
    int64_t left = deadline_ms - MonotonicMs();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) return false;
    if (ready < 0) return true;  // nothing more can be read
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;  // end of file: the child closed its output
    text->append(buffer, static_cast<size_t>(n));
  }
  return true;
}

std::string DescribeExit(int wait_status) {
  if (WIFEXITED(wait_status)) return "exit status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return "killed by signal " + std::to_string(WTERMSIG(wait_status));
  return "status " + std::to_string(wait_status);
}

// Waits for `pid` until the deadline; false if it is still running.
bool WaitUntil(pid_t pid, int64_t deadline_ms, int* wait_status) {
  for (;;) {
    pid_t done = waitpid(pid, wait_status, WNOHANG);
    if (done == pid || (done < 0 && errno != EINTR)) return true;
    if (MonotonicMs() >= deadline_ms) return false;
    usleep(20'000);
  }
}

}  // namespace

Result<std::string> RunProgram(const std::vector<std::string>& argv, const std::string& log_path,
                               int timeout_ms) {
  const std::string what = argv[0] + (argv.size() > 1 ? " " + argv[1] : "");
  Result<Child> child = Spawn(argv, log_path);
  if (!child.ok()) return child.status();
  int64_t deadline = MonotonicMs() + timeout_ms;
  std::string out;
  bool finished =
      ReadUntil(child->stdout_fd, deadline, &out, [](const std::string&) { return false; });
  close(child->stdout_fd);
  int wait_status = 0;
  if (!finished || !WaitUntil(child->pid, deadline, &wait_status)) {
    kill(child->pid, SIGKILL);
    waitpid(child->pid, &wait_status, 0);
    return Status(StatusCode::kUnavailable, what + " did not finish in time");
  }
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
    return Status(StatusCode::kInternal,
                  what + " failed (" + DescribeExit(wait_status) + "), see " + log_path);
  }
  return out;
}

ServerProcess::ServerProcess(std::string binary, std::string store_spec, std::string log_path,
                             std::vector<std::string> serve_options)
    : binary_(std::move(binary)),
      store_spec_(std::move(store_spec)),
      log_path_(std::move(log_path)),
      serve_options_(std::move(serve_options)) {}

ServerProcess::~ServerProcess() { (void)Stop(); }

Status ServerProcess::Start(int port) {
  if (running()) return carnet::FailedPrecondition("the server is running already");
  std::vector<std::string> argv = {binary_,    "serve",
                                   "--store",  store_spec_,
                                   "--listen", "127.0.0.1:" + std::to_string(port)};
  argv.insert(argv.end(), serve_options_.begin(), serve_options_.end());
  Result<Child> child = Spawn(argv, log_path_);
  if (!child.ok()) return child.status();
  pid_ = child->pid;
  stdout_fd_ = child->stdout_fd;
  // "carnet-server listening on 127.0.0.1:PORT" once it accepts connections.
  std::string line;
  ReadUntil(stdout_fd_, MonotonicMs() + 10'000, &line,
            [](const std::string& text) { return text.find('\n') != std::string::npos; });
  size_t listening = line.find("listening on ");
  size_t colon = line.rfind(':');
  if (listening == std::string::npos || colon == std::string::npos) {
    Kill();
    return Status(StatusCode::kUnavailable, "carnet-server did not start on port " +
                                                std::to_string(port) + ", see " + log_path_);
  }
  port_ = std::atoi(line.c_str() + colon + 1);
  return Status::Ok();
}

void ServerProcess::Kill() {
  if (!running()) return;
  kill(pid_, SIGKILL);
  int wait_status = 0;
  while (waitpid(pid_, &wait_status, 0) < 0 && errno == EINTR) {
  }
  Close();
}

Status ServerProcess::Stop(int timeout_ms) {
  if (!running()) return Status::Ok();
  kill(pid_, SIGTERM);
  int wait_status = 0;
  if (!WaitUntil(pid_, MonotonicMs() + timeout_ms, &wait_status)) {
    Kill();
    return Status(StatusCode::kInternal, "carnet-server ignored SIGTERM and was killed");
  }
  Close();
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
    return Status(StatusCode::kInternal,
                  "carnet-server stopped with " + DescribeExit(wait_status) + ", see " + log_path_);
  }
  return Status::Ok();
}

void ServerProcess::Close() {
  if (stdout_fd_ >= 0) close(stdout_fd_);
  stdout_fd_ = -1;
  pid_ = -1;
}

}  // namespace field_day
