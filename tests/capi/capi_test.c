/* Every function of the C API, called from C, on a real SQLite file and against a real
 * carnet-server on 127.0.0.1: what each does, and how each refuses.
 *   capi_c_test          (CARNET_SERVER_BINARY and CARNET_TEST_VERSION are compiled in)
 */
#define _XOPEN_SOURCE 700

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "carnet/carnet.h"
#include "examples/c_adviser_day/server_process.h"

#define TERRITORY "vallee-nord"

static int failures = 0;
static carnet_error err; /* the last error, for the checks' messages */

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);      \
      ++failures;                                                                   \
    }                                                                               \
  } while (0)

/* `call` returns `code` and, unless it is CARNET_OK, fills `err` from `domain`. */
#define CHECK_CALL(code, domain, call) check_call(__FILE__, __LINE__, #call, (call), code, domain)
#define OK(call) CHECK_CALL(CARNET_OK, CARNET_DOMAIN_NONE, call)

static void check_call(const char* file, int line, const char* text, carnet_code got,
                       carnet_code code, carnet_domain domain) {
  if (got == code && err.code == code && err.domain == domain &&
      (code == CARNET_OK) == (err.message[0] == '\0')) {
    return;
  }
  fprintf(stderr, "%s:%d: %s\n  returned %s (error %s/%s: \"%s\"), expected %s/%s\n", file, line,
          text, carnet_code_name(got), carnet_domain_name(err.domain),
          carnet_code_name(err.code), err.message, carnet_domain_name(domain),
          carnet_code_name(code));
  ++failures;
}

static int contains(const char* text, const char* part) {
  return text != NULL && strstr(text, part) != NULL;
}

/* --- A host with key storage whose failures a test can switch on ---------------------------- */

#define SECRETS 4

typedef struct secret {
  char name[128];
  char value[512];
  size_t length; /* 0: none */
} secret;

typedef struct host_state {
  pthread_mutex_t lock;
  secret secrets[SECRETS]; /* the device token, the store's master key */
  int fail_get, fail_put, puts, gets, deletes;
  int logs;
} host_state;

/* The secret named `name`, or NULL; with `make`, a free slot for it. Under the lock. */
static secret* find_secret(host_state* h, const char* name, int make) {
  for (int i = 0; i < SECRETS; ++i) {
    if (h->secrets[i].length > 0 && strcmp(h->secrets[i].name, name) == 0) return &h->secrets[i];
  }
  for (int i = 0; make && i < SECRETS; ++i) {
    if (h->secrets[i].length == 0) return &h->secrets[i];
  }
  return NULL;
}

/* For the checks, on the test's thread once no call runs. */
static const secret* secret_named(host_state* h, const char* name) {
  return find_secret(h, name, 0);
}

static carnet_key_result key_get(void* context, const char* name, uint8_t* buffer,
                                 size_t capacity, size_t* length) {
  host_state* h = context;
  pthread_mutex_lock(&h->lock);
  h->gets++;
  carnet_key_result result = CARNET_KEY_NOT_FOUND;
  const secret* found = find_secret(h, name, 0);
  if (h->fail_get) {
    result = CARNET_KEY_ERROR;
  } else if (found != NULL) {
    *length = found->length;
    /* Answers the size first when the buffer is too small, as the contract allows. */
    if (found->length <= capacity) memcpy(buffer, found->value, found->length);
    result = CARNET_KEY_OK;
  }
  pthread_mutex_unlock(&h->lock);
  return result;
}

static carnet_key_result key_put(void* context, const char* name, const uint8_t* value,
                                 size_t length) {
  host_state* h = context;
  pthread_mutex_lock(&h->lock);
  h->puts++;
  carnet_key_result result = CARNET_KEY_ERROR;
  secret* slot = find_secret(h, name, 1);
  if (!h->fail_put && slot != NULL && length > 0 && length < sizeof slot->value &&
      strlen(name) < sizeof slot->name) {
    strcpy(slot->name, name);
    memcpy(slot->value, value, length);
    slot->length = length;
    result = CARNET_KEY_OK;
  }
  pthread_mutex_unlock(&h->lock);
  return result;
}

static carnet_key_result key_delete(void* context, const char* name) {
  host_state* h = context;
  pthread_mutex_lock(&h->lock);
  h->deletes++;
  carnet_key_result result = CARNET_KEY_NOT_FOUND;
  secret* found = find_secret(h, name, 0);
  if (found != NULL) {
    found->length = 0;
    result = CARNET_KEY_OK;
  }
  pthread_mutex_unlock(&h->lock);
  return result;
}

static void log_line(void* context, carnet_log_level level, const char* message) {
  host_state* h = context;
  (void)level, (void)message;
  pthread_mutex_lock(&h->lock);
  h->logs++;
  pthread_mutex_unlock(&h->lock);
}

/* --- The server ----------------------------------------------------------------------------- */

typedef struct fixture {
  char dir[64];
  char spec[128];
  char log[128];
  demo_server server;
  char token_c[128]; /* tab-c: adviser "chloe" */
  char token_d[128]; /* tab-d: adviser "david" */
  char token_k[128]; /* tab-k: adviser "karim", the key storage tests */
} fixture;

static void path_in(const fixture* f, const char* name, char* out, size_t size) {
  snprintf(out, size, "%s/%s", f->dir, name);
}

static carnet_sync_config quick_config(const fixture* f, const char* token) {
  carnet_sync_config config;
  carnet_sync_config_init(&config);
  config.server_url = f->server.url;
  config.token = token;
  config.connect_timeout_ms = 2000;
  config.max_attempts = 1;
  config.backoff_initial_ms = 50;
  config.backoff_max_ms = 100;
  config.nightly_length_minutes = 0;
  return config;
}

/* --- Basics --------------------------------------------------------------------------------- */

static void test_names_and_version(void) {
  CHECK(strcmp(carnet_version(), CARNET_TEST_VERSION) == 0);
  for (int code = CARNET_OK; code <= CARNET_LEASE_EXPIRED; ++code) {
    CHECK(strcmp(carnet_code_name((carnet_code)code), "unknown") != 0);
  }
  CHECK(strcmp(carnet_code_name(CARNET_NOT_FOUND), "not_found") == 0);
  CHECK(strcmp(carnet_code_name((carnet_code)99), "unknown") == 0);
  CHECK(strcmp(carnet_domain_name(CARNET_DOMAIN_API), "api") == 0);
  CHECK(strcmp(carnet_domain_name(CARNET_DOMAIN_STORE), "store") == 0);
  CHECK(strcmp(carnet_domain_name(CARNET_DOMAIN_SYNC), "sync") == 0);
  CHECK(strcmp(carnet_domain_name(CARNET_DOMAIN_HOST), "host") == 0);
  CHECK(strcmp(carnet_domain_name(CARNET_DOMAIN_NONE), "none") == 0);
  CHECK(strcmp(carnet_domain_name((carnet_domain)42), "unknown") == 0);
  carnet_free(NULL);
}

static void test_env(void) {
  carnet_env* env = NULL;
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_env_new(NULL, NULL, &err));
  CHECK(!err.retryable);
  carnet_host host = {0};
  host.log_level = (carnet_log_level)7;
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_env_new(&host, &env, &err));
  CHECK(env == NULL);
  host.log_level = CARNET_LOG_LEVEL_WARNING;
  host.key_get = key_get; /* one of three */
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_env_new(&host, &env, &err));
  CHECK(contains(err.message, "all three"));
  OK(carnet_env_new(NULL, &env, &err));
  CHECK(env != NULL);
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_env_set_online(NULL, true, &err));
  OK(carnet_env_set_online(env, false, &err));
  OK(carnet_env_set_online(env, true, NULL)); /* a NULL error is always allowed */
  carnet_env_free(env);
  carnet_env_free(NULL);
}

static void test_open_and_close(const fixture* f, carnet_env* env) {
  char path[256];
  path_in(f, "open.db", path, sizeof path);
  carnet_store* store = NULL;
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_store_open(NULL, path, "tab-c", &store, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_store_open(env, NULL, "tab-c", &store, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_store_open(env, path, NULL, &store, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_store_open(env, path, "tab-c", NULL, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_STORE,
             carnet_store_open(env, path, "tablet one", &store, &err));
  CHECK(store == NULL);
  carnet_code code = carnet_store_open(env, "/nonexistent-carnet-dir/x.db", "tab-c", &store, &err);
  CHECK(code != CARNET_OK && err.domain == CARNET_DOMAIN_STORE && store == NULL);

  OK(carnet_store_open(env, path, "tab-c", &store, &err));
  CHECK(strcmp(carnet_store_device_id(store), "tab-c") == 0);
  CHECK(strcmp(carnet_store_device_id(NULL), "") == 0);
  OK(carnet_store_close(store, &err));
  /* A store file belongs to one device for life. */
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_STORE,
             carnet_store_open(env, path, "tab-other", &store, &err));
  OK(carnet_store_close(NULL, &err));
}

static void test_data_directory(const fixture* f) {
  carnet_host host = {0};
  host.log_level = CARNET_LOG_LEVEL_ERROR;
  host.data_directory = f->dir;
  carnet_env* env = NULL;
  OK(carnet_env_new(&host, &env, &err));
  carnet_store* store = NULL;
  OK(carnet_store_open(env, "bare-name.db", "tab-c", &store, &err));
  char path[256];
  path_in(f, "bare-name.db", path, sizeof path);
  CHECK(access(path, F_OK) == 0);
  /* The env may go first: the store keeps it alive until it closes. */
  carnet_env_free(env);
  bool uploaded = false;
  OK(carnet_everything_uploaded(store, &uploaded, &err));
  CHECK(uploaded);
  OK(carnet_store_close(store, &err));
}

static void test_ids(carnet_store* store) {
  char a[CARNET_ID_SIZE], b[CARNET_ID_SIZE];
  OK(carnet_new_id(store, a, &err));
  OK(carnet_new_id(store, b, &err));
  CHECK(strlen(a) == 32 && strspn(a, "0123456789abcdef") == 32 && strcmp(a, b) != 0);
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_new_id(store, NULL, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_new_id(NULL, a, &err));
  char id[CARNET_ID_SIZE];
  OK(carnet_attendance_id("session1", "person2", id, &err));
  CHECK(strcmp(id, "session1:person2") == 0);
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_attendance_id("a session", "person2", id, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_attendance_id(NULL, "person2", id, &err));
  char longest[CARNET_ID_SIZE];
  memset(longest, 'x', CARNET_ID_SIZE - 1);
  longest[CARNET_ID_SIZE - 1] = '\0';
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_attendance_id(longest, "p", id, &err));
}

/* --- Writes and reads ----------------------------------------------------------------------- */

typedef struct changes_seen {
  int calls;
  char last[4096];
} changes_seen;

static void on_change(void* context, const char* changes_json) {
  changes_seen* seen = context;
  seen->calls++;
  snprintf(seen->last, sizeof seen->last, "%s", changes_json);
}

static char* get(carnet_store* store, const char* collection, const char* id) {
  char* json = NULL;
  OK(carnet_record_get(store, collection, id, &json, &err));
  return json;
}

static void test_put_refusals(carnet_txn* txn, const char* id) {
  const char* malformed[] = {"{", "[1]", "{\"phase\":[\"a\"]}", "{\"capacity\":1.5}",
                             "{\"phase\":\"health\",\"phase\":\"assessment\"}", "{}",
                             "{\"phase\":{\"x\":1}}", "\"text\""};
  for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; ++i) {
    CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
               carnet_record_put(txn, "participants", id, malformed[i], &err));
  }
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_record_put(txn, "participants", id, NULL, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_STORE,
             carnet_record_put(txn, "participants", id, "{\"no_such_field\":\"x\"}", &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_STORE,
             carnet_record_put(txn, "participants", id, "{\"phase\":\"dancing\"}", &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_STORE,
             carnet_record_put(txn, "nothing_like_this", id, "{\"phase\":\"health\"}", &err));
}

static void test_writes(carnet_store* store, char* nadia, char* interview) {
  carnet_txn* txn = NULL;
  OK(carnet_new_id(store, nadia, &err));
  OK(carnet_new_id(store, interview, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_txn_begin(store, NULL, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_txn_begin(NULL, &txn, &err));
  OK(carnet_txn_begin(store, &txn, &err));
  carnet_txn* nested = NULL;
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_API, carnet_txn_begin(store, &nested, &err));
  CHECK(nested == NULL);
  OK(carnet_record_put(txn, "participants", nadia,
                       "{\"referent\":\"chloe\",\"territory\":\"" TERRITORY "\","
                       "\"first_name\":\"Nadia\",\"last_name\":\"O\\\"Brien\\n\xc3\xa9\","
                       "\"status\":\"active\",\"rural\":false,\"phone\":\"0600000000\"}",
                       &err));
  test_put_refusals(txn, nadia);
  OK(carnet_register_set_text(txn, "participants", nadia, "phase", "job_search", &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_register_set_text(txn, "participants", nadia, "phase", NULL, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_STORE,
             carnet_register_set_text(txn, "participants", nadia, "birth_date", "31/12/1990",
                                      &err));
  OK(carnet_register_set_bool(txn, "participants", nadia, "rural", true, &err));
  OK(carnet_register_clear(txn, "participants", nadia, "phone", &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_STORE,
             carnet_register_set_int64(txn, "participants", nadia, "rural", 3, &err));
  OK(carnet_set_add(txn, "participants", nadia, "barriers", "mobility", &err));
  OK(carnet_set_add(txn, "participants", nadia, "barriers", "housing", &err));
  OK(carnet_set_remove(txn, "participants", nadia, "barriers", "housing", &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_STORE,
             carnet_set_add(txn, "participants", nadia, "barriers", "flying", &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_set_remove(txn, "participants", nadia, "barriers", NULL, &err));

  char json[256];
  snprintf(json, sizeof json,
           "{\"participant\":\"%s\",\"adviser\":\"chloe\",\"place\":\"office\"}", nadia);
  OK(carnet_record_put(txn, "interviews", interview, json, &err));
  char first[CARNET_STAMP_SIZE], revision[CARNET_STAMP_SIZE], typo[CARNET_STAMP_SIZE];
  OK(carnet_log_append(txn, "interviews", interview, "notes", "First note.", NULL, first, &err));
  CHECK(contains(first, "@tab-c"));
  OK(carnet_log_append(txn, "interviews", interview, "notes", "First note, revised.", first,
                       revision, &err));
  OK(carnet_log_append(txn, "interviews", interview, "notes", "typo", NULL, typo, &err));
  OK(carnet_log_append(txn, "interviews", interview, "notes", "no stamp wanted", NULL, NULL,
                       &err));
  OK(carnet_log_redact(txn, "interviews", interview, "notes", typo, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_log_append(txn, "interviews", interview, "notes", "x", "garbage", typo, &err));
  CHECK(typo[0] == '\0');
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_log_redact(txn, "interviews", interview, "notes", "garbage", &err));
  CHECK_CALL(CARNET_NOT_FOUND, CARNET_DOMAIN_STORE,
             carnet_log_redact(txn, "interviews", interview, "notes", "1.0@tab-x", &err));
  /* The writing thread reads its own uncommitted changes. */
  char* seen = get(store, "participants", nadia);
  CHECK(contains(seen, "\"phase\":\"job_search\""));
  carnet_free(seen);
  OK(carnet_txn_commit(txn, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_txn_commit(NULL, &err));
  OK(carnet_txn_rollback(NULL, &err));
}

static void test_reads(carnet_store* store, const char* nadia, const char* interview) {
  char* json = get(store, "participants", nadia);
  CHECK(contains(json, "\"first_name\":\"Nadia\""));
  CHECK(contains(json, "\"last_name\":\"O\\\"Brien\\n\xc3\xa9\""));
  CHECK(contains(json, "\"barriers\":[\"mobility\"]"));
  CHECK(contains(json, "\"rural\":\"true\""));
  CHECK(contains(json, "\"phone\":null")); /* cleared */
  CHECK(contains(json, "\"in_conflict\":[]"));
  carnet_free(json);
  json = get(store, "interviews", interview);
  CHECK(contains(json, "\"text\":\"First note.\""));
  CHECK(contains(json, "\"redacted\":true"));
  CHECK(contains(json, "\"revises\":\""));
  carnet_free(json);

  json = (char*)"untouched";
  CHECK_CALL(CARNET_NOT_FOUND, CARNET_DOMAIN_STORE,
             carnet_record_get(store, "participants", "0123", &json, &err));
  CHECK(json == NULL);
  CHECK(carnet_record_get(store, "nothing_like_this", nadia, &json, &err) != CARNET_OK);
  CHECK(err.domain == CARNET_DOMAIN_STORE);
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_record_get(store, "participants", nadia, NULL, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_record_get(store, NULL, nadia, &json, &err));

  OK(carnet_record_list(store, "participants", &json, &err));
  CHECK(json[0] == '[' && contains(json, nadia));
  carnet_free(json);
  OK(carnet_record_query(store, "participants", "phase", "job_search", &json, &err));
  CHECK(contains(json, nadia));
  carnet_free(json);
  OK(carnet_record_query(store, "participants", "phase", "health", &json, &err));
  CHECK(strcmp(json, "[]") == 0);
  carnet_free(json);
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_record_query(store, "participants", "phase", NULL, &json, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_record_list(NULL, "x", &json, &err));
  OK(carnet_conflicts(store, &json, &err));
  CHECK(strcmp(json, "[]") == 0);
  carnet_free(json);
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_conflicts(store, NULL, &err));
}

static void test_rollback_delete_restore(carnet_store* store, const char* nadia,
                                         const char* interview) {
  carnet_txn* txn = NULL;
  OK(carnet_txn_begin(store, &txn, &err));
  OK(carnet_register_set_text(txn, "participants", nadia, "phase", "health", &err));
  OK(carnet_txn_rollback(txn, &err));
  char* json = get(store, "participants", nadia);
  CHECK(contains(json, "\"phase\":\"job_search\""));
  carnet_free(json);

  /* A failed write leaves the transaction able to commit the writes before it. */
  OK(carnet_txn_begin(store, &txn, &err));
  OK(carnet_register_set_text(txn, "participants", nadia, "commune", "Saint-Aubin", &err));
  CHECK(carnet_register_set_text(txn, "participants", nadia, "phase", "nope", &err) != CARNET_OK);
  OK(carnet_txn_commit(txn, &err));
  json = get(store, "participants", nadia);
  CHECK(contains(json, "\"commune\":\"Saint-Aubin\""));
  carnet_free(json);

  OK(carnet_txn_begin(store, &txn, &err));
  OK(carnet_record_delete(txn, "interviews", interview, &err));
  OK(carnet_txn_commit(txn, &err));
  CHECK_CALL(CARNET_NOT_FOUND, CARNET_DOMAIN_STORE,
             carnet_record_get(store, "interviews", interview, &json, &err));
  OK(carnet_txn_begin(store, &txn, &err));
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_STORE,
             carnet_register_set_text(txn, "interviews", interview, "place", "home", &err));
  OK(carnet_record_restore(txn, "interviews", interview, &err));
  OK(carnet_txn_commit(txn, &err));
  json = get(store, "interviews", interview);
  CHECK(contains(json, "\"place\":\"office\""));
  carnet_free(json);
  OK(carnet_txn_begin(store, &txn, &err));
  CHECK(carnet_record_delete(txn, "interviews", "never-seen", &err) != CARNET_OK);
  CHECK(carnet_record_restore(txn, "interviews", interview, &err) != CARNET_OK);
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_record_delete(txn, NULL, interview, &err));
  OK(carnet_txn_rollback(txn, &err));
}

typedef struct other_thread {
  carnet_txn* txn;
  carnet_code write, commit, rollback;
} other_thread;

static void* use_from_other_thread(void* arg) {
  other_thread* o = arg;
  carnet_error e;
  o->write = carnet_register_set_text(o->txn, "participants", "x", "phase", "health", &e);
  o->commit = carnet_txn_commit(o->txn, &e);
  o->rollback = carnet_txn_rollback(o->txn, &e);
  return NULL;
}

static void test_transaction_thread_rules(carnet_store* store, const char* nadia) {
  carnet_txn* txn = NULL;
  OK(carnet_txn_begin(store, &txn, &err));
  other_thread o = {txn, CARNET_OK, CARNET_OK, CARNET_OK};
  pthread_t thread;
  CHECK(pthread_create(&thread, NULL, use_from_other_thread, &o) == 0);
  pthread_join(thread, NULL);
  CHECK(o.write == CARNET_FAILED_PRECONDITION);
  CHECK(o.commit == CARNET_FAILED_PRECONDITION);
  CHECK(o.rollback == CARNET_FAILED_PRECONDITION);
  /* The thread holding a transaction may not wait for a sync, nor close the store. */
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_API, carnet_sync_now(store, &err));
  CHECK(contains(err.message, "transaction"));
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_API, carnet_sync_stop(store, &err));
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_API, carnet_store_close(store, &err));
  OK(carnet_register_set_text(txn, "participants", nadia, "phase", "job_search", &err));
  OK(carnet_txn_commit(txn, &err));
}

static void test_change_callback(carnet_store* store, const char* nadia) {
  changes_seen seen = {0, ""};
  OK(carnet_store_set_change_callback(store, on_change, &seen, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_store_set_change_callback(NULL, on_change, &seen, &err));
  carnet_txn* txn = NULL;
  OK(carnet_txn_begin(store, &txn, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_STORE,
             carnet_register_set_int64(txn, "participants", nadia, "rsa_entry_date", 0, &err));
  OK(carnet_register_set_text(txn, "participants", nadia, "email", "n@example.org", &err));
  CHECK(seen.calls == 0); /* nothing before the commit */
  OK(carnet_txn_commit(txn, &err));
  CHECK(seen.calls == 1);
  CHECK(contains(seen.last, nadia) && contains(seen.last, "\"field\":\"email\"") &&
        contains(seen.last, "\"remote\":false"));
  OK(carnet_store_set_change_callback(store, NULL, NULL, &err));
  OK(carnet_txn_begin(store, &txn, &err));
  OK(carnet_register_set_text(txn, "participants", nadia, "email", "n2@example.org", &err));
  OK(carnet_txn_commit(txn, &err));
  CHECK(seen.calls == 1);
}

/* --- Sync ----------------------------------------------------------------------------------- */

typedef struct sync_seen {
  pthread_mutex_t lock;
  int statuses, ends, progress;
  carnet_sync_status last;
  carnet_sync_progress last_progress;
  /* Set to make the next status callback try the calls refused from callbacks. */
  carnet_store* reenter;
  carnet_code reentered[6];
  int reentries;
} sync_seen;

static void try_calls_from_callback(sync_seen* seen) {
  carnet_store* store = seen->reenter;
  carnet_error e;
  bool uploaded;
  carnet_sync_config config;
  carnet_sync_config_init(&config);
  config.server_url = "http://127.0.0.1:1";
  seen->reentered[0] = carnet_sync_now(store, &e);
  seen->reentered[1] = carnet_sync_stop(store, &e);
  seen->reentered[2] = carnet_store_close(store, &e);
  seen->reentered[3] = carnet_sync_configure(store, &config, &e);
  seen->reentered[4] = carnet_sync_forget_token(store, &e);
  seen->reentered[5] = carnet_everything_uploaded(store, &uploaded, &e);
  seen->reentries++;
  seen->reenter = NULL;
}

static void on_status(void* context, const carnet_sync_status* status) {
  sync_seen* seen = context;
  pthread_mutex_lock(&seen->lock);
  seen->statuses++;
  if (status->state != CARNET_SYNC_SYNCING) seen->ends++;
  seen->last = *status;
  if (seen->reenter != NULL) try_calls_from_callback(seen);
  pthread_mutex_unlock(&seen->lock);
}

static void on_progress(void* context, const carnet_sync_progress* progress) {
  sync_seen* seen = context;
  pthread_mutex_lock(&seen->lock);
  seen->progress++;
  seen->last_progress = *progress;
  pthread_mutex_unlock(&seen->lock);
}

static int ends_of(sync_seen* seen) {
  pthread_mutex_lock(&seen->lock);
  int ends = seen->ends;
  pthread_mutex_unlock(&seen->lock);
  return ends;
}

/* Waits up to 20 s for the background sync to end a sync after `before` ends. */
static int wait_ends(sync_seen* seen, int before) {
  for (int i = 0; i < 2000; ++i) {
    if (ends_of(seen) > before) return 1;
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return 0;
}

static void test_sync_unconfigured(carnet_store* store) {
  carnet_sync_status status;
  OK(carnet_sync_get_status(store, &status, &err));
  CHECK(status.state == CARNET_SYNC_UNCONFIGURED && status.pending > 0 && !status.running);
  CHECK(status.online && status.last_error.code == CARNET_OK);
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_sync_get_status(store, NULL, &err));
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_API, carnet_sync_now(store, &err));
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_API, carnet_sync_start(store, &err));
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_API, carnet_sync_request(store, &err));
  OK(carnet_sync_stop(store, &err));
  bool uploaded = true;
  OK(carnet_everything_uploaded(store, &uploaded, &err));
  CHECK(!uploaded);
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_everything_uploaded(store, NULL, &err));

  carnet_sync_config config;
  carnet_sync_config_init(&config);
  CHECK(config.max_attempts == 5 && config.connect_timeout_ms == 10000 && config.token == NULL);
  carnet_sync_config_init(NULL);
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_sync_configure(store, NULL, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_sync_configure(store, &config, &err));
  config.server_url = "http://records.example.org";
  config.token = "some-token";
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_SYNC,
             carnet_sync_configure(store, &config, &err));
  CHECK(contains(err.message, "loopback"));
  config.server_url = "http://127.0.0.1:9";
  config.max_attempts = 0;
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_sync_configure(store, &config, &err));
  config.max_attempts = 1;
  config.nightly_start_minute = 24 * 60;
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_sync_configure(store, &config, &err));
  config.nightly_start_minute = 0;
  config.token = "two\r\nlines";
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_sync_configure(store, &config, &err));
  config.token = NULL; /* and this env has no key storage */
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_API,
             carnet_sync_configure(store, &config, &err));
  OK(carnet_sync_get_status(store, &status, &err));
  CHECK(status.state == CARNET_SYNC_UNCONFIGURED);
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_sync_configure(NULL, &config, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_sync_now(NULL, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_sync_start(NULL, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_sync_stop(NULL, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_sync_request(NULL, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API, carnet_sync_forget_token(NULL, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_sync_set_status_callback(NULL, on_status, NULL, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_sync_set_progress_callback(NULL, on_progress, NULL, &err));
}

static void test_sync_now(const fixture* f, carnet_store* store, sync_seen* seen) {
  OK(carnet_sync_set_status_callback(store, on_status, seen, &err));
  OK(carnet_sync_set_progress_callback(store, on_progress, seen, &err));
  carnet_sync_config config = quick_config(f, "not-the-token");
  OK(carnet_sync_configure(store, &config, &err));
  CHECK_CALL(CARNET_UNAUTHENTICATED, CARNET_DOMAIN_SYNC, carnet_sync_now(store, &err));
  CHECK(!err.retryable);
  carnet_sync_status status;
  OK(carnet_sync_get_status(store, &status, &err));
  CHECK(status.state == CARNET_SYNC_ERROR && status.last_error.code == CARNET_UNAUTHENTICATED &&
        status.last_error.domain == CARNET_DOMAIN_SYNC);

  config = quick_config(f, f->token_c);
  OK(carnet_sync_configure(store, &config, &err));
  OK(carnet_sync_now(store, &err));
  bool uploaded = false;
  OK(carnet_everything_uploaded(store, &uploaded, &err));
  CHECK(uploaded);
  OK(carnet_sync_get_status(store, &status, &err));
  CHECK(status.state == CARNET_SYNC_IDLE && status.pending == 0 && status.last_success_ms > 0);
  CHECK(status.last_error.code == CARNET_OK && status.last_error.message[0] == '\0');
  pthread_mutex_lock(&seen->lock);
  CHECK(seen->ends >= 2 && seen->progress >= 1);
  CHECK(seen->last_progress.pushed > 0 && seen->last_progress.pushed == seen->last_progress.push_total);
  pthread_mutex_unlock(&seen->lock);
}

static void test_background_sync(carnet_env* env, carnet_store* store, sync_seen* seen,
                                 const char* nadia) {
  OK(carnet_sync_start(store, &err));
  OK(carnet_sync_start(store, &err)); /* started already: nothing */
  carnet_sync_status status;
  OK(carnet_sync_get_status(store, &status, &err));
  CHECK(status.running);

  int before = ends_of(seen);
  carnet_txn* txn = NULL;
  OK(carnet_txn_begin(store, &txn, &err));
  OK(carnet_register_set_text(txn, "participants", nadia, "phase", "health", &err));
  OK(carnet_txn_commit(txn, &err));
  OK(carnet_sync_request(store, &err));
  CHECK(wait_ends(seen, before));
  bool uploaded = false;
  OK(carnet_everything_uploaded(store, &uploaded, &err));
  CHECK(uploaded);

  /* The network comes back: a sync follows without being asked. */
  before = ends_of(seen);
  OK(carnet_env_set_online(env, false, &err));
  OK(carnet_sync_get_status(store, &status, &err));
  CHECK(!status.online);
  OK(carnet_env_set_online(env, true, &err));
  CHECK(wait_ends(seen, before));

  /* From a callback: reading and asking for a sync work, waiting for one is refused. */
  pthread_mutex_lock(&seen->lock);
  seen->reenter = store;
  before = seen->ends;
  pthread_mutex_unlock(&seen->lock);
  OK(carnet_sync_request(store, &err));
  CHECK(wait_ends(seen, before));
  pthread_mutex_lock(&seen->lock);
  CHECK(seen->reentries == 1);
  for (int i = 0; i < 5; ++i) CHECK(seen->reentered[i] == CARNET_FAILED_PRECONDITION);
  CHECK(seen->reentered[5] == CARNET_OK);
  pthread_mutex_unlock(&seen->lock);

  OK(carnet_sync_stop(store, &err));
  OK(carnet_sync_stop(store, &err));
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_API, carnet_sync_request(store, &err));
  OK(carnet_sync_get_status(store, &status, &err));
  CHECK(!status.running);

  /* No callback once removed. */
  OK(carnet_sync_set_status_callback(store, NULL, NULL, &err));
  OK(carnet_sync_set_progress_callback(store, NULL, NULL, &err));
  pthread_mutex_lock(&seen->lock);
  int statuses = seen->statuses, progress = seen->progress;
  pthread_mutex_unlock(&seen->lock);
  OK(carnet_sync_now(store, &err));
  pthread_mutex_lock(&seen->lock);
  CHECK(seen->statuses == statuses && seen->progress == progress);
  pthread_mutex_unlock(&seen->lock);
}

static void test_server_down(fixture* f, carnet_store* store) {
  demo_server_kill(&f->server);
  CHECK_CALL(CARNET_UNAVAILABLE, CARNET_DOMAIN_SYNC, carnet_sync_now(store, &err));
  CHECK(err.retryable);
  carnet_sync_status status;
  OK(carnet_sync_get_status(store, &status, &err));
  CHECK(status.state == CARNET_SYNC_OFFLINE && status.last_error.retryable);
  CHECK(demo_server_start(&f->server, CARNET_SERVER_BINARY, f->spec, f->log) == 0);
  carnet_sync_config config = quick_config(f, f->token_c);
  OK(carnet_sync_configure(store, &config, &err));
  OK(carnet_sync_now(store, &err));
}

/* A host whose key storage is `keys`, emptied; quiet. */
static carnet_host keyed_host(host_state* keys) {
  memset(keys, 0, sizeof *keys);
  pthread_mutex_init(&keys->lock, NULL);
  carnet_host host = {0};
  host.context = keys;
  host.log_level = CARNET_LOG_LEVEL_ERROR;
  host.key_get = key_get;
  host.key_put = key_put;
  host.key_delete = key_delete;
  return host;
}

/* The device token lives in the host's key storage: given once, read back after a restart. */
static void test_key_storage(const fixture* f) {
  host_state keys;
  carnet_host host = keyed_host(&keys);
  host.log = log_line;
  host.log_level = CARNET_LOG_LEVEL_DEBUG;
  carnet_env* env = NULL;
  OK(carnet_env_new(&host, &env, &err));
  char path[256];
  path_in(f, "keys.db", path, sizeof path);
  carnet_store* store = NULL;
  OK(carnet_store_open(env, path, "tab-k", &store, &err));
  /* The store's master key, made at its first open. */
  CHECK(secret_named(&keys, "carnet.master_key.tab-k") != NULL);
  keys.gets = keys.puts = 0;
  carnet_sync_config config = quick_config(f, NULL);
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_API,
             carnet_sync_configure(store, &config, &err));
  CHECK(keys.gets == 1);
  config.token = f->token_k;
  keys.fail_put = 1;
  CHECK_CALL(CARNET_UNAVAILABLE, CARNET_DOMAIN_HOST, carnet_sync_configure(store, &config, &err));
  CHECK(err.retryable);
  keys.fail_put = 0;
  OK(carnet_sync_configure(store, &config, &err));
  const secret* token = secret_named(&keys, "carnet.device_token.tab-k");
  CHECK(token != NULL && token->length == strlen(f->token_k) &&
        memcmp(token->value, f->token_k, token->length) == 0);
  OK(carnet_sync_now(store, &err));
  OK(carnet_store_close(store, &err));

  /* The app restarts: the token comes from key storage, through a buffer too small at first. */
  OK(carnet_store_open(env, path, "tab-k", &store, &err));
  config.token = NULL;
  keys.fail_get = 1;
  CHECK_CALL(CARNET_UNAVAILABLE, CARNET_DOMAIN_HOST, carnet_sync_configure(store, &config, &err));
  keys.fail_get = 0;
  keys.gets = 0;
  OK(carnet_sync_configure(store, &config, &err));
  CHECK(keys.gets == 1);
  OK(carnet_sync_now(store, &err));
  CHECK(keys.logs > 0); /* debug level: the sync logged */

  /* A secret larger than Carnet's first buffer: the host tells its size, Carnet asks again. */
  char long_token[301];
  memset(long_token, 'a', 300);
  long_token[300] = '\0';
  config.token = long_token;
  OK(carnet_sync_configure(store, &config, &err));
  config.token = NULL;
  keys.gets = 0;
  OK(carnet_sync_configure(store, &config, &err));
  CHECK(keys.gets == 2);
  CHECK_CALL(CARNET_UNAUTHENTICATED, CARNET_DOMAIN_SYNC, carnet_sync_now(store, &err));

  OK(carnet_sync_forget_token(store, &err));
  CHECK(secret_named(&keys, "carnet.device_token.tab-k") == NULL && keys.deletes == 1);
  CHECK(secret_named(&keys, "carnet.master_key.tab-k") != NULL); /* the store still needs it */
  carnet_sync_status status;
  OK(carnet_sync_get_status(store, &status, &err));
  CHECK(status.state == CARNET_SYNC_UNCONFIGURED);
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_API, carnet_sync_now(store, &err));
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_API,
             carnet_sync_configure(store, &config, &err));
  OK(carnet_sync_forget_token(store, &err)); /* nothing left to forget */
  OK(carnet_store_close(store, &err));
  carnet_env_free(env);
  pthread_mutex_destroy(&keys.lock);
}

/* Whether the file at `path` holds the bytes of `text`. */
static int file_holds(const char* path, const char* text) {
  FILE* file = fopen(path, "rb");
  if (file == NULL) return 0;
  size_t size = strlen(text), capacity = 1 << 20, length = 0;
  char* bytes = malloc(capacity);
  for (size_t n; bytes != NULL && (n = fread(bytes + length, 1, capacity - length, file)) > 0;) {
    length += n;
    if (length == capacity) bytes = realloc(bytes, capacity *= 2);
  }
  fclose(file);
  int found = 0;
  for (size_t i = 0; bytes != NULL && !found && i + size <= length; ++i) {
    found = memcmp(bytes + i, text, size) == 0;
  }
  free(bytes);
  return found;
}

/* With key storage, health notes are encrypted in the store file, and the file opens only with
 * its master key (core/ENCRYPTION.md). */
static void test_encryption_at_rest(const fixture* f) {
  static const char* const health = "Suivi en addictologie depuis le printemps";
  host_state keys;
  carnet_host host = keyed_host(&keys);
  host.offline_lease_days = 30;
  carnet_env* env = NULL;
  OK(carnet_env_new(&host, &env, &err));
  char path[256];
  path_in(f, "sealed.db", path, sizeof path);
  carnet_store* store = NULL;
  OK(carnet_store_open(env, path, "tab-s", &store, &err));
  char id[CARNET_ID_SIZE];
  OK(carnet_new_id(store, id, &err));
  carnet_txn* txn = NULL;
  OK(carnet_txn_begin(store, &txn, &err));
  OK(carnet_register_set_text(txn, "interviews", id, "place", "office", &err));
  OK(carnet_log_append(txn, "interviews", id, "health_notes", health, NULL, NULL, &err));
  OK(carnet_txn_commit(txn, &err));
  char* json = NULL;
  OK(carnet_record_get(store, "interviews", id, &json, &err)); /* within the lease */
  CHECK(contains(json, health));
  carnet_free(json);
  OK(carnet_store_close(store, &err)); /* the last connection: checkpointed, WAL removed */
  CHECK(!file_holds(path, health));
  CHECK(file_holds(path, "office")); /* class P stays in clear: the search works */

  OK(carnet_store_open(env, path, "tab-s", &store, &err));
  OK(carnet_record_get(store, "interviews", id, &json, &err));
  CHECK(contains(json, health));
  carnet_free(json);
  OK(carnet_store_close(store, &err));

  carnet_host bare = {0};
  bare.log_level = CARNET_LOG_LEVEL_ERROR;
  carnet_env* without_keys = NULL;
  OK(carnet_env_new(&bare, &without_keys, &err));
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_STORE,
             carnet_store_open(without_keys, path, "tab-s", &store, &err));
  CHECK(contains(err.message, "encrypted at rest"));
  carnet_env_free(without_keys);
  keys.fail_get = 1;
  CHECK_CALL(CARNET_UNAVAILABLE, CARNET_DOMAIN_HOST,
             carnet_store_open(env, path, "tab-s", &store, &err));
  CHECK(err.retryable && store == NULL);
  keys.fail_get = 0;
  carnet_env_free(env);
  pthread_mutex_destroy(&keys.lock);
}

/* --- Enrollment and wipe ------------------------------------------------------------------- */

/* A tablet enrolled with a one-time code keeps the token it got in key storage; revoked, its
 * next sync erases the store and its keys (sync/PROTOCOL.md, Devices). */
static void test_enrollment_and_wipe(const fixture* f) {
  host_state keys;
  carnet_host host = keyed_host(&keys);
  carnet_env* env = NULL;
  OK(carnet_env_new(&host, &env, &err));
  char path[256], code[64];
  path_in(f, "wiped.db", path, sizeof path);
  CHECK(demo_enroll_code(CARNET_SERVER_BINARY, f->spec, "tab-w", "walter", TERRITORY, f->log, code,
                         sizeof code) == 0);
  carnet_store* store = NULL;
  OK(carnet_store_open(env, path, "tab-w", &store, &err));
  carnet_sync_config config = quick_config(f, NULL);
  config.enrollment_code = "not a code";
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_sync_configure(store, &config, &err));
  config.enrollment_code = code;
  OK(carnet_sync_configure(store, &config, &err));
  char id[CARNET_ID_SIZE];
  OK(carnet_new_id(store, id, &err));
  carnet_txn* txn = NULL;
  OK(carnet_txn_begin(store, &txn, &err));
  OK(carnet_register_set_text(txn, "participants", id, "referent", "walter", &err));
  OK(carnet_register_set_text(txn, "participants", id, "territory", TERRITORY, &err));
  OK(carnet_register_set_text(txn, "participants", id, "first_name", "Walid", &err));
  OK(carnet_txn_commit(txn, &err));
  OK(carnet_sync_now(store, &err));
  const secret* token = secret_named(&keys, "carnet.device_token.tab-w");
  CHECK(token != NULL && token->length == 64);

  char out[256];
  char* revoke[] = {CARNET_SERVER_BINARY, "revoke", "--store", (char*)f->spec,
                    "--device",           "tab-w",  NULL};
  CHECK(demo_run(revoke, f->log, out, sizeof out) == 0);
  CHECK_CALL(CARNET_DEVICE_REVOKED, CARNET_DOMAIN_SYNC, carnet_sync_now(store, &err));
  CHECK(contains(err.message, "erased"));
  CHECK(secret_named(&keys, "carnet.device_token.tab-w") == NULL);
  CHECK(secret_named(&keys, "carnet.master_key.tab-w") == NULL);
  char* json = NULL;
  CHECK_CALL(CARNET_DEVICE_REVOKED, CARNET_DOMAIN_STORE,
             carnet_record_get(store, "participants", id, &json, &err));
  OK(carnet_store_close(store, &err));
  CHECK(!file_holds(path, id));
  CHECK_CALL(CARNET_DEVICE_REVOKED, CARNET_DOMAIN_STORE,
             carnet_store_open(env, path, "tab-w", &store, &err));
  carnet_env_free(env);
  pthread_mutex_destroy(&keys.lock);
}

/* --- Conflicts between two tablets ---------------------------------------------------------- */

static void sync_both(carnet_store* a, carnet_store* b) {
  OK(carnet_sync_now(a, &err));
  OK(carnet_sync_now(b, &err));
  OK(carnet_sync_now(a, &err));
}

static void write_text(carnet_store* store, const char* collection, const char* id,
                       const char* field, const char* value) {
  carnet_txn* txn = NULL;
  OK(carnet_txn_begin(store, &txn, &err));
  OK(carnet_register_set_text(txn, collection, id, field, value, &err));
  OK(carnet_txn_commit(txn, &err));
}

static void test_conflicts(const fixture* f, carnet_env* env, carnet_store* c,
                           const char* nadia, const char* interview) {
  char path[256];
  path_in(f, "tab-d.db", path, sizeof path);
  carnet_store* d = NULL;
  OK(carnet_store_open(env, path, "tab-d", &d, &err));
  carnet_sync_config config = quick_config(f, f->token_d);
  OK(carnet_sync_configure(d, &config, &err));
  OK(carnet_sync_now(d, &err));
  char* json = get(d, "participants", nadia);
  CHECK(contains(json, "Nadia"));
  carnet_free(json);

  /* Both change the phase offline. */
  write_text(c, "participants", nadia, "phase", "life_project");
  write_text(d, "participants", nadia, "phase", "professional_project");
  sync_both(c, d);
  OK(carnet_conflicts(c, &json, &err));
  CHECK(contains(json, "\"kind\":\"concurrent_write\"") && contains(json, "\"field\":\"phase\""));
  CHECK(contains(json, "\"device\":\"tab-d\"") && contains(json, "\"device\":\"tab-c\""));
  carnet_free(json);
  json = get(c, "participants", nadia);
  CHECK(contains(json, "\"in_conflict\":[\"phase\"]"));
  carnet_free(json);
  carnet_txn* txn = NULL;
  OK(carnet_txn_begin(c, &txn, &err));
  OK(carnet_conflict_resolve(txn, "participants", nadia, "phase", "job_search", &err));
  CHECK_CALL(CARNET_FAILED_PRECONDITION, CARNET_DOMAIN_STORE,
             carnet_conflict_resolve(txn, "participants", nadia, "status", "active", &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_conflict_resolve(txn, "participants", nadia, NULL, "x", &err));
  OK(carnet_txn_commit(txn, &err));
  sync_both(c, d);
  OK(carnet_conflicts(d, &json, &err));
  CHECK(strcmp(json, "[]") == 0);
  carnet_free(json);

  /* One deletes the interview, the other adds a note to it meanwhile. */
  OK(carnet_txn_begin(c, &txn, &err));
  OK(carnet_record_delete(txn, "interviews", interview, &err));
  OK(carnet_txn_commit(txn, &err));
  OK(carnet_txn_begin(d, &txn, &err));
  OK(carnet_log_append(txn, "interviews", interview, "notes", "Called her back.", NULL, NULL,
                       &err));
  OK(carnet_txn_commit(txn, &err));
  sync_both(c, d);
  OK(carnet_conflicts(c, &json, &err));
  CHECK(contains(json, "\"kind\":\"edited_while_deleted\"") &&
        contains(json, "Called her back."));
  carnet_free(json);
  OK(carnet_txn_begin(c, &txn, &err));
  OK(carnet_conflict_resolve_deleted(txn, "interviews", interview, false, &err));
  CHECK_CALL(CARNET_INVALID_ARGUMENT, CARNET_DOMAIN_API,
             carnet_conflict_resolve_deleted(txn, NULL, interview, true, &err));
  OK(carnet_txn_commit(txn, &err));
  json = get(c, "interviews", interview);
  CHECK(contains(json, "Called her back."));
  carnet_free(json);
  sync_both(c, d);
  json = get(d, "interviews", interview);
  CHECK(contains(json, "Called her back."));
  carnet_free(json);
  OK(carnet_store_close(d, &err));
}

/* --- Main ----------------------------------------------------------------------------------- */

static int remove_entry(const char* path, const struct stat* st, int flag, struct FTW* ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static int start_server(fixture* f) {
  snprintf(f->spec, sizeof f->spec, "sqlite:%s/central.db", f->dir);
  snprintf(f->log, sizeof f->log, "%s/server.log", f->dir);
  if (demo_enroll(CARNET_SERVER_BINARY, f->spec, "tab-c", "chloe", TERRITORY, f->log, f->token_c,
                  sizeof f->token_c) != 0 ||
      demo_enroll(CARNET_SERVER_BINARY, f->spec, "tab-d", "david", TERRITORY, f->log, f->token_d,
                  sizeof f->token_d) != 0 ||
      demo_enroll(CARNET_SERVER_BINARY, f->spec, "tab-k", "karim", TERRITORY, f->log, f->token_k,
                  sizeof f->token_k) != 0) {
    return -1;
  }
  return demo_server_start(&f->server, CARNET_SERVER_BINARY, f->spec, f->log);
}

int main(void) {
  fixture f;
  memset(&f, 0, sizeof f);
  strcpy(f.dir, "/tmp/carnet-capi-XXXXXX");
  if (mkdtemp(f.dir) == NULL || start_server(&f) != 0) {
    fprintf(stderr, "capi_c_test: cannot start carnet-server (%s)\n", f.log);
    return 1;
  }
  test_names_and_version();
  test_env();

  carnet_host quiet = {0};
  quiet.log_level = CARNET_LOG_LEVEL_ERROR;
  carnet_env* env = NULL;
  OK(carnet_env_new(&quiet, &env, &err));
  test_open_and_close(&f, env);
  test_data_directory(&f);

  char path[256];
  path_in(&f, "tab-c.db", path, sizeof path);
  carnet_store* store = NULL;
  OK(carnet_store_open(env, path, "tab-c", &store, &err));
  char nadia[CARNET_ID_SIZE], interview[CARNET_ID_SIZE];
  test_ids(store);
  test_writes(store, nadia, interview);
  test_reads(store, nadia, interview);
  test_rollback_delete_restore(store, nadia, interview);
  test_transaction_thread_rules(store, nadia);
  test_change_callback(store, nadia);

  sync_seen seen;
  memset(&seen, 0, sizeof seen);
  pthread_mutex_init(&seen.lock, NULL);
  test_sync_unconfigured(store);
  test_sync_now(&f, store, &seen);
  test_background_sync(env, store, &seen, nadia);
  test_server_down(&f, store);
  test_key_storage(&f);
  test_encryption_at_rest(&f);
  test_enrollment_and_wipe(&f);
  test_conflicts(&f, env, store, nadia, interview);

  /* Closing a store with a background sync running stops it. */
  OK(carnet_sync_start(store, &err));
  OK(carnet_store_close(store, &err));
  carnet_env_free(env);
  demo_server_stop(&f.server);
  pthread_mutex_destroy(&seen.lock);
  if (failures > 0) {
    fprintf(stderr, "capi_c_test: %d check(s) failed; files kept in %s\n", failures, f.dir);
    return 1;
  }
  nftw(f.dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  printf("capi_c_test: every check passed\n");
  return 0;
}
