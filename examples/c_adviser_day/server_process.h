/* carnet-server as a child process, for the C example and the C API's tests: enroll a tablet
 * (`carnet-server enroll`) and serve on a free port of 127.0.0.1 (`carnet-server serve`).
 * POSIX; not part of Carnet's API. */
#ifndef CARNET_EXAMPLES_C_ADVISER_DAY_SERVER_PROCESS_H_
#define CARNET_EXAMPLES_C_ADVISER_DAY_SERVER_PROCESS_H_

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct demo_server {
  pid_t pid;     /* -1 when not running */
  int port;
  char url[64];  /* "http://127.0.0.1:PORT" */
} demo_server;

/* Runs `argv` (argv[0] a path, NULL-terminated) to completion with its standard error appended
 * to `log_path`, and keeps its standard output in `out` (out_size bytes, NUL-terminated, cut if
 * longer). 0 when it exits with status 0 within 30 seconds, -1 otherwise. */
int demo_run(char* const argv[], const char* log_path, char* out, size_t out_size);

/* `carnet-server enroll --token` of one device for `adviser` in `territory`, as a
 * device-management tool provisions a tablet; its token (the line the server prints) into
 * `token`. 0 on success. */
int demo_enroll(const char* binary, const char* store_spec, const char* device,
                const char* adviser, const char* territory, const char* log_path, char* token,
                size_t token_size);

/* `carnet-server enroll`, as an administrator enrolls a tablet: its one-time enrollment code
 * into `code`, for carnet_sync_config.enrollment_code. 0 on success. */
int demo_enroll_code(const char* binary, const char* store_spec, const char* device,
                     const char* adviser, const char* territory, const char* log_path, char* code,
                     size_t code_size);

/* Starts `carnet-server serve --store STORE_SPEC --plain-http` on a free port of 127.0.0.1 and
 * returns once it listens.
 * 0 on success; -1 (and pid -1) if it did not start within 10 seconds. */
int demo_server_start(demo_server* server, const char* binary, const char* store_spec,
                      const char* log_path);

/* SIGTERM (finish requests in flight) or SIGKILL (a crash), then reaps it. Does nothing when
 * the server is not running. */
void demo_server_stop(demo_server* server);
void demo_server_kill(demo_server* server);

#ifdef __cplusplus
}
#endif

#endif
