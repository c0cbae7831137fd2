/* An adviser's day through Carnet's C API, against a real carnet-server process.
 *
 * Each tablet is enrolled with a one-time code from `carnet-server enroll`, which its first sync
 * exchanges for the device token, kept in the host's key storage from then on.
 * Amina records the morning's work at the office, online; her tablet syncs in the background.
 * In the afternoon both she and her colleague Bruno work offline on the same participant; when
 * the network returns Amina's tablet syncs by itself (the host reports reachability), the
 * conflict they made shows on both tablets, and Amina resolves it. At the end of the day the
 * app checks that everything is uploaded, is closed, reopened with the device token read back
 * from key storage, and the server is asked what it holds.
 *
 *   c_adviser_day --server-binary BUILD/platform/carnet-server
 */
#define _XOPEN_SOURCE 700

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carnet/carnet.h"
#include "examples/c_adviser_day/server_process.h"

#define TERRITORY "vallee-nord"

/* Prints why `call` failed and makes the enclosing function return -1. Each function using it
 * declares `carnet_error err` and passes &err to the calls it checks. */
#define TRY(call)                                       \
  do {                                                  \
    if ((call) != CARNET_OK) return report(#call, &err); \
  } while (0)

static int report(const char* call, const carnet_error* err) {
  fprintf(stderr, "c_adviser_day: %s\n  failed: %s/%s%s: %s\n", call,
          carnet_domain_name(err->domain), carnet_code_name(err->code),
          err->retryable ? " (retryable)" : "", err->message);
  return -1;
}

/* --- What the host app supplies --------------------------------------------------------------
 * The demo's key storage keeps a few secrets in memory; an app plugs the Android Keystore or the
 * iOS Keychain in here. */
enum { kMaxSecrets = 4, kMaxSecretBytes = 512 };

typedef struct keychain {
  pthread_mutex_t lock;
  int count;
  char names[kMaxSecrets][128];
  unsigned char values[kMaxSecrets][kMaxSecretBytes];
  size_t lengths[kMaxSecrets];
} keychain;

static int find_secret(keychain* keys, const char* name) {
  for (int i = 0; i < keys->count; ++i) {
    if (strcmp(keys->names[i], name) == 0) return i;
  }
  return -1;
}

/* What the app keeps per tablet: its handles, and what the callbacks saw. */
typedef struct tablet {
  const char* device;
  const char* adviser;
  char code[64]; /* the one-time enrollment code, exchanged for the token at the first sync */
  keychain keys;
  carnet_env* env;
  carnet_store* store;
  pthread_mutex_t lock; /* guards what follows: the callbacks run on the sync thread */
  pthread_cond_t changed;
  int sync_ends;
  carnet_sync_status last;
  int remote_changes;
} tablet;

static carnet_key_result key_get(void* context, const char* name, uint8_t* buffer,
                                 size_t capacity, size_t* length) {
  keychain* keys = &((tablet*)context)->keys;
  pthread_mutex_lock(&keys->lock);
  int i = find_secret(keys, name);
  if (i >= 0) {
    *length = keys->lengths[i];
    if (*length <= capacity) memcpy(buffer, keys->values[i], *length);
  }
  pthread_mutex_unlock(&keys->lock);
  return i >= 0 ? CARNET_KEY_OK : CARNET_KEY_NOT_FOUND;
}

static carnet_key_result key_put(void* context, const char* name, const uint8_t* value,
                                 size_t length) {
  keychain* keys = &((tablet*)context)->keys;
  if (length > kMaxSecretBytes || strlen(name) >= sizeof keys->names[0]) return CARNET_KEY_ERROR;
  pthread_mutex_lock(&keys->lock);
  int i = find_secret(keys, name);
  if (i < 0 && keys->count < kMaxSecrets) i = keys->count++;
  if (i >= 0) {
    strcpy(keys->names[i], name);
    memcpy(keys->values[i], value, length);
    keys->lengths[i] = length;
  }
  pthread_mutex_unlock(&keys->lock);
  return i >= 0 ? CARNET_KEY_OK : CARNET_KEY_ERROR;
}

static carnet_key_result key_delete(void* context, const char* name) {
  keychain* keys = &((tablet*)context)->keys;
  pthread_mutex_lock(&keys->lock);
  int i = find_secret(keys, name);
  if (i >= 0) {
    keys->count--;
    if (i != keys->count) {
      memcpy(keys->names[i], keys->names[keys->count], sizeof keys->names[i]);
      memcpy(keys->values[i], keys->values[keys->count], sizeof keys->values[i]);
      keys->lengths[i] = keys->lengths[keys->count];
    }
  }
  pthread_mutex_unlock(&keys->lock);
  return i >= 0 ? CARNET_KEY_OK : CARNET_KEY_NOT_FOUND;
}

static void log_line(void* context, carnet_log_level level, const char* message) {
  static const char* const kLevels[] = {"debug", "info", "warning", "error"};
  fprintf(stderr, "[%s carnet %s] %s\n", ((tablet*)context)->device, kLevels[level], message);
}

/* On the sync thread: a sync has ended when the state leaves "syncing". */
static void on_status(void* context, const carnet_sync_status* status) {
  tablet* t = context;
  pthread_mutex_lock(&t->lock);
  t->last = *status;
  if (status->state != CARNET_SYNC_SYNCING) t->sync_ends++;
  pthread_cond_broadcast(&t->changed);
  pthread_mutex_unlock(&t->lock);
}

static void on_progress(void* context, const carnet_sync_progress* p) {
  printf("  %s sync: pushed %llu of %llu, pulled %llu%s\n", ((tablet*)context)->device,
         (unsigned long long)p->pushed, (unsigned long long)p->push_total,
         (unsigned long long)p->pulled, p->pull_more ? ", more to come" : "");
}

static void on_change(void* context, const char* changes_json) {
  tablet* t = context;
  int remote = 0;
  for (const char* at = changes_json; (at = strstr(at, "\"remote\":true")) != NULL; ++at) ++remote;
  pthread_mutex_lock(&t->lock);
  t->remote_changes += remote;
  pthread_mutex_unlock(&t->lock);
}

/* Waits until a sync that ends after `ends_before` has ended; 0 if it succeeded. */
static int wait_sync(tablet* t, int ends_before) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 30;
  pthread_mutex_lock(&t->lock);
  int timed_out = 0;
  while (t->sync_ends <= ends_before && !timed_out) {
    timed_out = pthread_cond_timedwait(&t->changed, &t->lock, &deadline) != 0;
  }
  carnet_sync_status last = t->last;
  pthread_mutex_unlock(&t->lock);
  if (timed_out) {
    fprintf(stderr, "c_adviser_day: %s: no sync ended within 30 s\n", t->device);
    return -1;
  }
  if (last.state != CARNET_SYNC_IDLE) return report("background sync", &last.last_error);
  return 0;
}

static int sync_ends(tablet* t) {
  pthread_mutex_lock(&t->lock);
  int ends = t->sync_ends;
  pthread_mutex_unlock(&t->lock);
  return ends;
}

/* Opens the tablet's store and configures its sync. `code` NULL: the token is in key storage. */
static int open_tablet(tablet* t, const char* dir, const char* url, const char* code) {
  carnet_error err;
  if (t->env == NULL) {
    carnet_host host = {0};
    host.context = t;
    host.log = log_line;
    host.log_level = CARNET_LOG_LEVEL_WARNING;
    host.key_get = key_get;
    host.key_put = key_put;
    host.key_delete = key_delete;
    TRY(carnet_env_new(&host, &t->env, &err));
  }
  char path[512];
  snprintf(path, sizeof path, "%s/%s.db", dir, t->device);
  TRY(carnet_store_open(t->env, path, t->device, &t->store, &err));
  TRY(carnet_sync_set_status_callback(t->store, on_status, t, &err));
  TRY(carnet_sync_set_progress_callback(t->store, on_progress, t, &err));
  TRY(carnet_store_set_change_callback(t->store, on_change, t, &err));
  carnet_sync_config config;
  carnet_sync_config_init(&config);
  config.server_url = url;
  config.enrollment_code = code;
  config.connect_timeout_ms = 2000;
  config.max_attempts = 2;
  config.backoff_initial_ms = 100;
  config.backoff_max_ms = 400;
  config.nightly_length_minutes = 0; /* the demo's day lasts seconds: no nightly sync */
  TRY(carnet_sync_configure(t->store, &config, &err));
  return 0;
}

typedef struct cast {
  char nadia[CARNET_ID_SIZE];
  char interview[CARNET_ID_SIZE];
  char workshop[CARNET_ID_SIZE];
  char attendance[CARNET_ID_SIZE];
  char exit[CARNET_ID_SIZE];
} cast;

static int morning_records(carnet_txn* txn, const cast* c) {
  carnet_error err;
  char json[1024];
  /* The scope fields (referent, territory; participant) come first: the server places each
   * record in the advisers' scopes by them. */
  TRY(carnet_record_put(txn, "participants", c->nadia,
                        "{\"referent\":\"amina\",\"territory\":\"" TERRITORY "\","
                        "\"first_name\":\"Nadia\",\"last_name\":\"Benali\","
                        "\"status\":\"active\",\"phase\":\"assessment\","
                        "\"entry_date\":\"2025-02-03\",\"commune\":\"Saint-Aubin\"}",
                        &err));
  TRY(carnet_set_add(txn, "participants", c->nadia, "barriers", "mobility", &err));
  TRY(carnet_set_add(txn, "participants", c->nadia, "barriers", "childcare", &err));
  snprintf(json, sizeof json,
           "{\"participant\":\"%s\",\"adviser\":\"amina\",\"date_time\":\"2025-03-14T09:00:00Z\","
           "\"place\":\"office\",\"phase\":\"assessment\",\"kind\":\"regular\"}",
           c->nadia);
  TRY(carnet_record_put(txn, "interviews", c->interview, json, &err));
  TRY(carnet_log_append(txn, "interviews", c->interview, "notes",
                        "Wants to train as a care assistant; driving licence in progress.", NULL,
                        NULL, &err));
  TRY(carnet_record_put(txn, "workshops", c->workshop,
                        "{\"territory\":\"" TERRITORY "\",\"theme\":\"CV and job interview\","
                        "\"date_time\":\"2025-03-14T14:00:00Z\",\"facilitator\":\"amina\","
                        "\"capacity\":12}",
                        &err));
  TRY(carnet_set_add(txn, "workshops", c->workshop, "registered", c->nadia, &err));
  snprintf(json, sizeof json,
           "{\"participant\":\"%s\",\"session\":\"%s\",\"status\":\"registered\"}", c->nadia,
           c->workshop);
  TRY(carnet_record_put(txn, "attendance", c->attendance, json, &err));
  return 0;
}

/* Runs `write` in one transaction on the tablet: committed if it succeeds, rolled back if not. */
static int in_transaction(tablet* t, const cast* c, int (*write)(carnet_txn*, const cast*)) {
  carnet_error err;
  carnet_txn* txn = NULL;
  TRY(carnet_txn_begin(t->store, &txn, &err));
  if (write(txn, c) != 0) {
    carnet_txn_rollback(txn, NULL);
    return -1;
  }
  TRY(carnet_txn_commit(txn, &err));
  return 0;
}

static int morning(tablet* amina, cast* c) {
  carnet_error err;
  TRY(carnet_new_id(amina->store, c->nadia, &err));
  TRY(carnet_new_id(amina->store, c->interview, &err));
  TRY(carnet_new_id(amina->store, c->workshop, &err));
  TRY(carnet_attendance_id(c->workshop, c->nadia, c->attendance, &err));
  if (in_transaction(amina, c, morning_records) != 0) return -1;
  printf("tablet-amina: Nadia, her first interview and the CV workshop, in one transaction\n");
  int ends = sync_ends(amina);
  TRY(carnet_sync_request(amina->store, &err));
  if (wait_sync(amina, ends) != 0) return -1;
  bool uploaded = false;
  TRY(carnet_everything_uploaded(amina->store, &uploaded, &err));
  printf("tablet-amina: background sync done, everything uploaded: %s\n", uploaded ? "yes" : "no");
  return uploaded ? 0 : -1;
}

static int amina_offline(carnet_txn* txn, const cast* c) {
  carnet_error err;
  char stamp[CARNET_STAMP_SIZE];
  TRY(carnet_register_set_text(txn, "participants", c->nadia, "phase", "professional_project",
                               &err));
  TRY(carnet_register_set_bool(txn, "participants", c->nadia, "rural", true, &err));
  TRY(carnet_log_append(txn, "interviews", c->interview, "notes",
                        "Visited the care home: trial day agreed for 20 March.", NULL, NULL,
                        &err));
  /* A note typed in the wrong file: its text is redacted, the entry stays. */
  TRY(carnet_log_append(txn, "interviews", c->interview, "notes", "Call Mr Martin back", NULL,
                        stamp, &err));
  TRY(carnet_log_redact(txn, "interviews", c->interview, "notes", stamp, &err));
  TRY(carnet_register_set_text(txn, "attendance", c->attendance, "status", "present", &err));
  return 0;
}

static int bruno_offline(carnet_txn* txn, const cast* c) {
  carnet_error err;
  TRY(carnet_register_set_text(txn, "participants", c->nadia, "phase", "job_search", &err));
  TRY(carnet_set_remove(txn, "participants", c->nadia, "barriers", "childcare", &err));
  TRY(carnet_register_set_int64(txn, "workshops", c->workshop, "capacity", 14, &err));
  return 0;
}

static int offline_afternoon(tablet* amina, tablet* bruno, const cast* c) {
  carnet_error err;
  /* The host's reachability monitor reports the network gone. */
  TRY(carnet_env_set_online(amina->env, false, &err));
  TRY(carnet_env_set_online(bruno->env, false, &err));
  if (in_transaction(amina, c, amina_offline) != 0) return -1;
  printf("tablet-amina (offline): Nadia -> professional_project, rural; two notes, one redacted;"
         " Nadia present at the workshop\n");
  if (in_transaction(bruno, c, bruno_offline) != 0) return -1;
  printf("tablet-bruno (offline): Nadia -> job_search, childcare barrier lifted; workshop "
         "capacity 14\n");
  carnet_sync_status status;
  TRY(carnet_sync_get_status(amina->store, &status, &err));
  printf("tablet-amina: %llu changes waiting for the network\n",
         (unsigned long long)status.pending);
  return status.pending > 0 ? 0 : -1;
}

/* Prints the conflicts a tablet holds; returns how many there are, -1 on error. */
static int show_conflicts(tablet* t) {
  carnet_error err;
  char* json = NULL;
  TRY(carnet_conflicts(t->store, &json, &err));
  int count = 0;
  for (const char* at = json; (at = strstr(at, "\"kind\":")) != NULL; ++at) ++count;
  printf("%s: %d conflict(s) %s\n", t->device, count, json);
  carnet_free(json);
  return count;
}

static int resolve_phase(carnet_txn* txn, const cast* c) {
  carnet_error err;
  TRY(carnet_conflict_resolve(txn, "participants", c->nadia, "phase", "job_search", &err));
  return 0;
}

static int evening(tablet* amina, tablet* bruno, const cast* c) {
  carnet_error err;
  /* The network returns: Amina's tablet syncs by itself. */
  int ends = sync_ends(amina);
  TRY(carnet_env_set_online(amina->env, true, &err));
  if (wait_sync(amina, ends) != 0) return -1;
  printf("tablet-amina: the network is back, synced by itself\n");
  TRY(carnet_env_set_online(bruno->env, true, &err));
  TRY(carnet_sync_now(bruno->store, &err));
  printf("tablet-bruno: synced\n");
  ends = sync_ends(amina);
  TRY(carnet_sync_request(amina->store, &err));
  if (wait_sync(amina, ends) != 0) return -1;
  if (show_conflicts(amina) != 1 || show_conflicts(bruno) != 1) return -1;
  if (in_transaction(amina, c, resolve_phase) != 0) return -1;
  printf("tablet-amina: resolved, Nadia's phase is job_search\n");
  ends = sync_ends(amina);
  TRY(carnet_sync_request(amina->store, &err));
  if (wait_sync(amina, ends) != 0) return -1;
  TRY(carnet_sync_now(bruno->store, &err));
  if (show_conflicts(amina) != 0 || show_conflicts(bruno) != 0) return -1;
  char* json = NULL;
  TRY(carnet_record_get(bruno->store, "participants", c->nadia, &json, &err));
  printf("tablet-bruno: %s\n", json);
  int merged = strstr(json, "\"phase\":\"job_search\"") != NULL &&
               strstr(json, "\"barriers\":[\"mobility\"]") != NULL &&
               strstr(json, "\"rural\":\"true\"") != NULL;
  carnet_free(json);
  return merged ? 0 : -1;
}

static int exit_record(carnet_txn* txn, const cast* c) {
  carnet_error err;
  char json[256];
  snprintf(json, sizeof json,
           "{\"participant\":\"%s\",\"exit_date\":\"2025-03-14\",\"category\":\"training\","
           "\"validation\":\"validated\"}",
           c->nadia);
  TRY(carnet_record_put(txn, "exits", c->exit, json, &err));
  return 0;
}

/* Nadia starts a training course: her exit is recorded and validated. A validated record is
 * frozen; deleting it is refused, and the app shows why. */
static int exit_of_the_day(tablet* amina, cast* c) {
  carnet_error err;
  TRY(carnet_new_id(amina->store, c->exit, &err));
  if (in_transaction(amina, c, exit_record) != 0) return -1;
  carnet_txn* txn = NULL;
  TRY(carnet_txn_begin(amina->store, &txn, &err));
  carnet_code refused = carnet_record_delete(txn, "exits", c->exit, &err);
  carnet_txn_rollback(txn, NULL);
  printf("tablet-amina: Nadia's exit validated; deleting it is refused (%s: %s)\n",
         carnet_code_name(refused), err.message);
  return refused == CARNET_FAILED_PRECONDITION ? 0 : -1;
}

/* End of the day: everything uploaded? Then the app is closed and opened again: the device
 * token comes back from key storage, the app never held it. */
static int end_of_day(tablet* amina, const char* dir, const char* url) {
  carnet_error err;
  int ends = sync_ends(amina);
  TRY(carnet_sync_request(amina->store, &err));
  if (wait_sync(amina, ends) != 0) return -1;
  bool uploaded = false;
  TRY(carnet_everything_uploaded(amina->store, &uploaded, &err));
  printf("tablet-amina: everything uploaded: %s\n", uploaded ? "yes" : "no");
  if (!uploaded) return -1;
  TRY(carnet_store_close(amina->store, &err));
  amina->store = NULL;
  if (open_tablet(amina, dir, url, NULL) != 0) return -1;
  TRY(carnet_sync_now(amina->store, &err));
  carnet_sync_status status;
  TRY(carnet_sync_get_status(amina->store, &status, &err));
  printf("tablet-amina: reopened, token from key storage, synced: %llu pending, %d remote "
         "changes received today\n",
         (unsigned long long)status.pending, amina->remote_changes);
  return 0;
}

/* What carnet-server holds of Amina's scope must include the day's work. */
static int check_server(const char* binary, const char* spec, const char* log, const cast* c) {
  static char dump[1 << 20];
  char* argv[] = {(char*)binary, "dump", "--store", (char*)spec, "--device", "tablet-amina",
                  NULL};
  if (demo_run(argv, log, dump, sizeof dump) != 0) {
    fprintf(stderr, "c_adviser_day: carnet-server dump failed, see %s\n", log);
    return -1;
  }
  int found = strstr(dump, c->nadia) && strstr(dump, c->exit) && strstr(dump, "job_search") &&
              strstr(dump, "trial day agreed");
  printf("carnet-server holds the day's work: %s\n", found ? "yes" : "no");
  return found ? 0 : -1;
}

static int remove_entry(const char* path, const struct stat* st, int flag, struct FTW* ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static void init_tablet(tablet* t, const char* device, const char* adviser) {
  memset(t, 0, sizeof *t);
  t->device = device;
  t->adviser = adviser;
  pthread_mutex_init(&t->keys.lock, NULL);
  pthread_mutex_init(&t->lock, NULL);
  pthread_cond_init(&t->changed, NULL);
}

static void close_tablet(tablet* t) {
  carnet_store_close(t->store, NULL);
  carnet_env_free(t->env);
  pthread_cond_destroy(&t->changed);
  pthread_mutex_destroy(&t->lock);
  pthread_mutex_destroy(&t->keys.lock);
}

static int day(const char* binary, const char* dir, tablet* amina, tablet* bruno) {
  char spec[600], log[600];
  snprintf(spec, sizeof spec, "sqlite:%s/central.db", dir);
  snprintf(log, sizeof log, "%s/server.log", dir);
  tablet* tablets[] = {amina, bruno};
  for (int i = 0; i < 2; ++i) {
    if (demo_enroll_code(binary, spec, tablets[i]->device, tablets[i]->adviser, TERRITORY, log,
                         tablets[i]->code, sizeof tablets[i]->code) != 0) {
      fprintf(stderr, "c_adviser_day: enrolling %s failed, see %s\n", tablets[i]->device, log);
      return -1;
    }
  }
  demo_server server;
  if (demo_server_start(&server, binary, spec, log) != 0) {
    fprintf(stderr, "c_adviser_day: carnet-server did not start, see %s\n", log);
    return -1;
  }
  printf("carnet-server on %s; tablet-amina and tablet-bruno enrolled in %s (carnet %s)\n",
         server.url, TERRITORY, carnet_version());
  cast c;
  carnet_error err;
  int failed = open_tablet(amina, dir, server.url, amina->code) != 0 ||
               open_tablet(bruno, dir, server.url, bruno->code) != 0;
  /* Amina's app syncs in the background; Bruno's app syncs when asked. */
  if (!failed && carnet_sync_start(amina->store, &err) != CARNET_OK) {
    failed = report("carnet_sync_start(amina)", &err);
  }
  failed = failed || morning(amina, &c) != 0;
  if (!failed && carnet_sync_now(bruno->store, &err) != CARNET_OK) {
    failed = report("carnet_sync_now(bruno)", &err);
  }
  if (!failed) printf("tablet-bruno: synced, Nadia is in his territory too\n");
  failed = failed || offline_afternoon(amina, bruno, &c) != 0 || evening(amina, bruno, &c) != 0 ||
           exit_of_the_day(amina, &c) != 0 || end_of_day(amina, dir, server.url) != 0 ||
           check_server(binary, spec, log, &c) != 0;
  demo_server_stop(&server);
  return failed ? -1 : 0;
}

int main(int argc, char** argv) {
  if (argc != 3 || strcmp(argv[1], "--server-binary") != 0) {
    fprintf(stderr, "usage: c_adviser_day --server-binary PATH/carnet-server\n");
    return 2;
  }
  char dir[] = "/tmp/carnet-adviser-day-XXXXXX";
  if (mkdtemp(dir) == NULL) {
    perror("c_adviser_day: mkdtemp");
    return 1;
  }
  tablet amina, bruno;
  init_tablet(&amina, "tablet-amina", "amina");
  init_tablet(&bruno, "tablet-bruno", "bruno");
  int failed = day(argv[2], dir, &amina, &bruno);
  close_tablet(&amina);
  close_tablet(&bruno);
  if (failed) {
    fprintf(stderr, "c_adviser_day: FAILED; logs and stores kept in %s\n", dir);
    return 1;
  }
  nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  printf("the adviser's day is done\n");
  return 0;
}
