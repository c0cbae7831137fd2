#define _POSIX_C_SOURCE 200809L

#include "examples/c_adviser_day/server_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long monotonic_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Starts `argv` with its standard output on a pipe (returned in *out_fd) and its standard
 * error appended to `log_path`. */
static pid_t spawn(char* const argv[], const char* log_path, int* out_fd) {
  int out[2];
  if (pipe(out) != 0) return -1;
  int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (log < 0) {
    close(out[0]);
    close(out[1]);
    return -1;
  }
  pid_t pid = fork();
  if (pid == 0) {
    /* Only async-signal-safe calls between fork and exec. */
    dup2(out[1], STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    close(out[0]);
    close(out[1]);
    close(log);
    execv(argv[0], argv);
    _exit(127);
  }
  close(out[1]);
  close(log);
  if (pid < 0) {
    close(out[0]);
    return -1;
  }
  *out_fd = out[0];
  return pid;
}

/* Reads from `fd` into `out` until end of file, `stop_at_newline` and a newline, or the
 * deadline. Returns the number of bytes read, -1 on timeout. */
static long read_until(int fd, char* out, size_t out_size, int stop_at_newline,
                       long long deadline_ms) {
  size_t used = 0;
  out[0] = '\0';
  for (;;) {
    if (stop_at_newline && strchr(out, '\n') != NULL) return (long)used;
    long long left = deadline_ms - monotonic_ms();
    if (left <= 0) return -1;
    struct pollfd p = {fd, POLLIN, 0};
    int ready = poll(&p, 1, (int)left);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return ready == 0 ? -1 : (long)used;
    char buffer[512];
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return (long)used;
    size_t keep = (size_t)n;
    if (used + keep >= out_size) keep = out_size - 1 - used;
    memcpy(out + used, buffer, keep);
    used += keep;
    out[used] = '\0';
  }
}

int demo_run(char* const argv[], const char* log_path, char* out, size_t out_size) {
  int fd = -1;
  pid_t pid = spawn(argv, log_path, &fd);
  if (pid < 0) return -1;
  long got = read_until(fd, out, out_size, 0, monotonic_ms() + 30000);
  close(fd);
  if (got < 0) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return got >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* `carnet-server enroll`, with `--token` or not; the line it prints into `out`. */
static int enroll(const char* binary, const char* store_spec, const char* device,
                  const char* adviser, const char* territory, const char* log_path, int token,
                  char* out, size_t out_size) {
  char* argv[] = {(char*)binary,    "enroll",         "--store",   (char*)store_spec,
                  "--device",       (char*)device,    "--adviser", (char*)adviser,
                  "--territory",    (char*)territory, token ? "--token" : NULL,
                  NULL};
  if (demo_run(argv, log_path, out, out_size) != 0) return -1;
  out[strcspn(out, "\r\n")] = '\0';
  return out[0] == '\0' ? -1 : 0;
}

int demo_enroll(const char* binary, const char* store_spec, const char* device,
                const char* adviser, const char* territory, const char* log_path, char* token,
                size_t token_size) {
  return enroll(binary, store_spec, device, adviser, territory, log_path, 1, token, token_size);
}

int demo_enroll_code(const char* binary, const char* store_spec, const char* device,
                     const char* adviser, const char* territory, const char* log_path, char* code,
                     size_t code_size) {
  return enroll(binary, store_spec, device, adviser, territory, log_path, 0, code, code_size);
}

int demo_server_start(demo_server* server, const char* binary, const char* store_spec,
                      const char* log_path) {
  /* Plain HTTP, which carnet-server serves on loopback only and only when asked. */
  char* argv[] = {(char*)binary, "serve", "--store", (char*)store_spec, "--listen",
                  "127.0.0.1:0", "--plain-http", NULL};
  int fd = -1;
  server->pid = spawn(argv, log_path, &fd);
  server->port = 0;
  server->url[0] = '\0';
  if (server->pid < 0) return -1;
  /* "carnet-server listening on 127.0.0.1:PORT" once it accepts connections. */
  char line[256];
  long got = read_until(fd, line, sizeof line, 1, monotonic_ms() + 10000);
  close(fd);
  const char* colon = strrchr(line, ':');
  if (got < 0 || strstr(line, "listening on ") == NULL || colon == NULL) {
    demo_server_kill(server);
    return -1;
  }
  server->port = atoi(colon + 1);
  snprintf(server->url, sizeof server->url, "http://127.0.0.1:%d", server->port);
  return 0;
}

static void end(demo_server* server, int sig) {
  if (server->pid <= 0) return;
  kill(server->pid, sig);
  int status = 0;
  while (waitpid(server->pid, &status, 0) < 0 && errno == EINTR) {
  }
  server->pid = -1;
}

void demo_server_stop(demo_server* server) { end(server, SIGTERM); }
void demo_server_kill(demo_server* server) { end(server, SIGKILL); }
