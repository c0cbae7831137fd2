/* Carnet's C API: what an Android (JNI), iOS (Swift) or any C host app calls.
 *
 * C99. Every name starts with carnet_ (CARNET_ for constants); handles are opaque.
 *
 * ERRORS. Every call that can fail returns a carnet_code (CARNET_OK is 0) and, when the caller
 * passes a carnet_error, fills it: the domain (where it failed), the code (what failed), whether
 * the same call may succeed later unchanged (retryable) and a message for humans and logs.
 * Branch on the code, never on the message. `error` may always be NULL. On success the error is
 * reset to CARNET_OK with an empty message. No C++ exception ever crosses this API.
 *
 * OWNERSHIP. Strings passed in are UTF-8, NUL-terminated, borrowed for the duration of the call
 * (Carnet copies what it keeps). A `char**` out parameter receives a string allocated by Carnet
 * that the caller frees with carnet_free(); it is set to NULL when the call fails. Fixed-size
 * `char[]` out parameters are buffers the caller provides. Handles are created by one function
 * and released by exactly one other, named beside it.
 *
 * THREADS (see also platform/README.md).
 *  - carnet_env and carnet_store handles may be used from any thread, several at once; a
 *    store serialises its calls internally. The exceptions are stated per call: a carnet_txn
 *    belongs to the thread that began it, and closing or freeing a handle must be the last call
 *    on it (no other thread may be using it).
 *  - Every call runs on the calling thread and may block: on the disk (milliseconds), on a
 *    transaction another thread holds open (until it ends), and carnet_sync_now on the network.
 *    Keep them off a UI thread that must not stall.
 *  - Carnet starts one long-lived thread of its own per store, and only between
 *    carnet_sync_start() and carnet_sync_stop() / carnet_store_close(): the background sync
 *    thread. A sync may hand work to short-lived threads it joins before it ends.
 *  - Callbacks arrive on the thread that caused them: status and progress callbacks on the
 *    threads doing the sync (the caller of carnet_sync_now, or the store's background sync
 *    thread, and the sync's short-lived helpers), never on an app thread that is not syncing;
 *    change callbacks on the thread that committed (the app's, or the sync thread for
 *    changes pulled from the server); log callbacks on any thread; key storage callbacks on the
 *    thread calling carnet_store_open() (the store's master key), carnet_sync_configure() or
 *    carnet_sync_forget_token(), and on the threads doing the sync, as status callbacks: a sync
 *    reads the device token, stores the one it gets for an enrollment code and each renewed
 *    one, and deletes the keys when the server orders a wipe. A JNI host attaches those threads
 *    before calling into Java.
 *  - Callbacks must return quickly and may call Carnet (read, write, ask for a sync), except
 *    the calls that wait for a sync to end: carnet_sync_now, carnet_sync_stop,
 *    carnet_sync_configure, carnet_sync_forget_token and carnet_store_close, which are refused
 *    from inside any Carnet callback with CARNET_FAILED_PRECONDITION (they would wait for the
 *    very thread they run on).
 */
#ifndef CARNET_CARNET_H_
#define CARNET_CARNET_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#if defined(CARNET_BUILDING_LIBRARY)
#define CARNET_API __declspec(dllexport)
#else
#define CARNET_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define CARNET_API __attribute__((visibility("default")))
#else
#define CARNET_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Errors
 */

/* What went wrong. The values are stable; a retry can help only where marked (R). */
typedef enum carnet_code {
  CARNET_OK = 0,
  CARNET_INVALID_ARGUMENT = 1,     /* the input is wrong (a NULL handle, bad JSON, a bad value) */
  CARNET_NOT_FOUND = 2,            /* the record, field, entry or secret does not exist */
  CARNET_ALREADY_EXISTS = 3,       /* the thing to create is there already */
  CARNET_FAILED_PRECONDITION = 4,  /* not now: a deleted or validated record, an open
                                      transaction, sync not configured, a call from a callback */
  CARNET_CLOCK_SKEW = 5,           /* a stamp is too far ahead of this device's time */
  CARNET_RESOURCE_EXHAUSTED = 6,   /* (R) out of memory or disk space, or too large: free
                                      something, or send less */
  CARNET_BUSY = 7,                 /* (R) another process holds the store's lock */
  CARNET_UNAVAILABLE = 8,          /* (R) no network, or the server or key storage is not
                                      reachable now */
  CARNET_IO_ERROR = 9,             /* (R) the disk failed */
  CARNET_CORRUPTION = 10,          /* stored data is unreadable */
  CARNET_PERMISSION_DENIED = 11,   /* the server refuses: outside this device's scope */
  CARNET_UNAUTHENTICATED = 12,     /* the device token is missing, unknown or revoked */
  CARNET_UPDATE_NEEDED = 13,       /* the server speaks another protocol version: update */
  CARNET_INTERNAL = 14,            /* a bug in Carnet */
  CARNET_DEVICE_REVOKED = 15,      /* the server revoked this tablet: its records, outbox and
                                      keys were erased (a wipe); close and delete the store */
  CARNET_LEASE_EXPIRED = 16        /* the offline lease ran out (carnet_host.offline_lease_days):
                                      records open again once a sync succeeds */
} carnet_code;

/* Where it went wrong. */
typedef enum carnet_domain {
  CARNET_DOMAIN_NONE = 0,   /* no error */
  CARNET_DOMAIN_API = 1,    /* refused by the C API before anything happened: a NULL argument,
                               malformed JSON, a call on the wrong thread or at the wrong time */
  CARNET_DOMAIN_STORE = 2,  /* the local store: the SQLite file, the rules of the records */
  CARNET_DOMAIN_SYNC = 3,   /* the sync with the server: network, TLS, the server's answer */
  CARNET_DOMAIN_HOST = 4    /* a callback the host app supplied failed (key storage) */
} carnet_domain;

#define CARNET_ERROR_MESSAGE_SIZE 512

/* Plain data, no pointers: put it on the stack, copy it, never free it. A longer message is cut
 * at a UTF-8 character boundary. */
typedef struct carnet_error {
  carnet_domain domain;
  carnet_code code;
  bool retryable; /* whether the same call may succeed later without any change to its input */
  char message[CARNET_ERROR_MESSAGE_SIZE]; /* NUL-terminated UTF-8; "" when code is CARNET_OK */
} carnet_error;

/* Short stable name of a code ("not_found"), the one used in logs and on the wire. Static
 * storage: never freed. An unknown value gives "unknown". */
CARNET_API const char* carnet_code_name(carnet_code code);
CARNET_API const char* carnet_domain_name(carnet_domain domain);

/* The library's version, "MAJOR.MINOR.PATCH". Static storage. */
CARNET_API const char* carnet_version(void);

/* Frees a string Carnet returned through a char** out parameter. NULL is ignored. Use this, not
 * free(): the library may not share the app's allocator. */
CARNET_API void carnet_free(void* pointer);

/* ---------------------------------------------------------------------------------------------
 * The environment: what only the host app can provide
 */

typedef enum carnet_log_level {
  CARNET_LOG_LEVEL_DEBUG = 0,
  CARNET_LOG_LEVEL_INFO = 1,
  CARNET_LOG_LEVEL_WARNING = 2,
  CARNET_LOG_LEVEL_ERROR = 3
} carnet_log_level;

/* One log line (ids and counts, never record content). `message` is borrowed for the call. Any
 * thread, possibly several at once. */
typedef void (*carnet_log_fn)(void* context, carnet_log_level level, const char* message);

/* What a key storage callback answers. */
typedef enum carnet_key_result {
  CARNET_KEY_OK = 0,         /* done (get: the secret is in the buffer, see below) */
  CARNET_KEY_NOT_FOUND = 1,  /* get or delete: no secret of that name */
  CARNET_KEY_ERROR = 2       /* the key storage failed (locked device, keychain error) */
} carnet_key_result;

/* Key storage: the Android Keystore (or EncryptedSharedPreferences) or the iOS Keychain. Carnet
 * keeps the device token there, so the app never stores it itself. Secrets are bytes, at most
 * 64 KiB; names are ASCII, at most 128 bytes ("carnet.device_token.<device id>").
 *
 * get: copies the secret into `buffer` (capacity bytes) and sets *length to its size. When the
 * secret is larger than `capacity`, set *length to its size and return CARNET_KEY_OK without
 * copying: Carnet calls again with a buffer that large. */
typedef carnet_key_result (*carnet_key_get_fn)(void* context, const char* name, uint8_t* buffer,
                                               size_t capacity, size_t* length);
/* put: stores (or replaces) the secret `name`. `value` is borrowed for the call. */
typedef carnet_key_result (*carnet_key_put_fn)(void* context, const char* name,
                                               const uint8_t* value, size_t length);
/* delete: removes the secret `name`; CARNET_KEY_NOT_FOUND when there was none. */
typedef carnet_key_result (*carnet_key_delete_fn)(void* context, const char* name);

/* What the host supplies. Zero-initialise it ({0} or memset), then fill what you have. */
typedef struct carnet_host {
  /* Passed back to every callback below. Must stay valid until the env and every store opened
   * with it are closed (see carnet_env_free). */
  void* context;
  /* Log lines at or above log_level go to `log`; without it, to standard error. */
  carnet_log_fn log;
  carnet_log_level log_level;
  /* Key storage: all three or none. Without it, a device token given to carnet_sync_configure
   * lives in memory only, and must be given again after every carnet_store_open.
   * With it, each store also keeps its master key there ("carnet.master_key.<device id>", 32
   * bytes), made at the store's first open: notes and health data are encrypted in the store
   * file with keys it wraps (core/ENCRYPTION.md), and the file cannot be read without it. Keep it
   * as long as the store file; the store is opened only where the key is (a key storage without
   * it, or with another, fails carnet_store_open with CARNET_FAILED_PRECONDITION). Without key
   * storage, a store file keeps them in clear, and one encrypted already cannot be opened. */
  carnet_key_get_fn key_get;
  carnet_key_put_fn key_put;
  carnet_key_delete_fn key_delete;
  /* Folder in which a store opened with a bare file name lives (the app's private files
   * folder). NULL: $CARNET_DATA_DIR, then $XDG_DATA_HOME/carnet, then
   * $HOME/.local/share/carnet, then the working directory. Copied. */
  const char* data_directory;
  /* The offline lease of the stores opened with this env, in days: once that long has passed
   * without a successful carnet_sync_now or background sync, reading and writing records fails
   * with CARNET_LEASE_EXPIRED ("offline lease expired: sync to continue") until a sync
   * succeeds; syncing keeps working, pushing what was written before. 0: no lease. */
  uint32_t offline_lease_days;
} carnet_host;

typedef struct carnet_env carnet_env;

/* Creates an environment. `host` may be NULL (logs on standard error at warning level, no key
 * storage). The env is shared by the stores opened with it; an app needs one. Free it with
 * carnet_env_free. */
CARNET_API carnet_code carnet_env_new(const carnet_host* host, carnet_env** out_env,
                                      carnet_error* error);

/* Releases the app's hold on the env. Stores opened with it keep it alive until they close, and
 * the host's callbacks may be called until then. NULL is ignored. */
CARNET_API void carnet_env_free(carnet_env* env);

/* Network reachability, as the host sees it (Android ConnectivityManager, iOS NWPathMonitor).
 * Call it whenever the network comes or goes: when it comes back, every store of this env whose
 * background sync is started syncs at once. Starts online. Any thread. */
CARNET_API carnet_code carnet_env_set_online(carnet_env* env, bool online, carnet_error* error);

/* ---------------------------------------------------------------------------------------------
 * Stores
 */

typedef struct carnet_store carnet_store;

/* Opens (or creates) the store at `path`, one SQLite file. A bare file name lives in the env's
 * data directory. `device_id` is this tablet's id (1 to 64 characters among A-Z a-z 0-9 . _ : -,
 * as enrolled on the server); a store file belongs to one device for life, and opening it with
 * another id fails. With key storage, the store's master key is read from it (made and saved at
 * the first open); key storage that fails (a device locked since it booted) gives
 * CARNET_UNAVAILABLE in the host domain, retryable; one without this store's key, or with
 * another, CARNET_FAILED_PRECONDITION. Close it with carnet_store_close. */
CARNET_API carnet_code carnet_store_open(carnet_env* env, const char* path, const char* device_id,
                                         carnet_store** out_store, carnet_error* error);

/* Stops the background sync (waiting for a request in flight to end, at worst the sync's
 * timeouts), then closes the store and frees the handle. NULL is ignored. Refused, the store
 * staying open, while a transaction of this store is open or from inside a callback. Every
 * committed change is on the disk already: closing loses nothing, and an app killed without
 * closing loses nothing either. */
CARNET_API carnet_code carnet_store_close(carnet_store* store, carnet_error* error);

/* The device id the store was opened with. Static for the store's life: valid until
 * carnet_store_close. */
CARNET_API const char* carnet_store_device_id(const carnet_store* store);

/* Sizes of the buffers that receive a record id and a log entry's stamp, NUL included. */
#define CARNET_ID_SIZE 97
#define CARNET_STAMP_SIZE 128

/* A new record id (32 hex digits, 128 random bits) into `out_id`. Records are created by
 * writing to a new id. */
CARNET_API carnet_code carnet_new_id(carnet_store* store, char out_id[CARNET_ID_SIZE],
                                     carnet_error* error);

/* The id of the attendance record of `participant` at workshop `session`: the same on every
 * tablet, so two advisers recording the same attendance offline edit the same record. */
CARNET_API carnet_code carnet_attendance_id(const char* session, const char* participant,
                                            char out_id[CARNET_ID_SIZE], carnet_error* error);

/* ---------------------------------------------------------------------------------------------
 * Reading records, as JSON
 *
 * A record:
 *   {"collection": "interviews", "id": "…",
 *    "fields": {"place": "office",                          (register: its value)
 *               "barriers": ["childcare", "mobility"],       (set: its elements, sorted)
 *               "notes": [{"stamp": "1732300000000.3@tab-1", "text": "…", "redacted": false,
 *                          "revises": null}]},               (log: its entries, by stamp)
 *    "in_conflict": ["phase"],                               (registers with conflicts)
 *    "unknown": ["phase"]}                                   (what this schema does not know)
 * Only fields ever written appear; a cleared register reads null. Strings are valid UTF-8
 * whatever was stored.
 *
 * Mixed versions (core/README.md): a newer app's field, enum value or set element, received by
 * sync, is shown as it came, its field named in "unknown" (its kind the one received); so is
 * every field of a newer app's collection, which carnet_record_get/list read once the store
 * holds records of it (CARNET_INVALID_ARGUMENT for a collection name known and held nowhere).
 * A local write of them is refused with CARNET_INVALID_ARGUMENT; a batch holding something of
 * a kind this library cannot merge fails the sync with CARNET_UPDATE_NEEDED.
 */

/* The record, into *out_json (free with carnet_free). CARNET_NOT_FOUND for a record never
 * seen, forgotten or deleted. */
CARNET_API carnet_code carnet_record_get(carnet_store* store, const char* collection,
                                         const char* id, char** out_json, carnet_error* error);

/* The records of a collection that are not deleted, by id, as a JSON array. */
CARNET_API carnet_code carnet_record_list(carnet_store* store, const char* collection,
                                          char** out_json, carnet_error* error);

/* Like carnet_record_list, only records whose register `field` holds `value`. */
CARNET_API carnet_code carnet_record_query(carnet_store* store, const char* collection,
                                           const char* field, const char* value, char** out_json,
                                           carnet_error* error);

/* The conflicts kept for review, as a JSON array of
 *   {"kind": "concurrent_write" | "edited_while_deleted", "collection", "record", "field",
 *    "kept":   {"value": string|null, "stamp": "…", "device": "…"},   (the value in force)
 *    "losing": {"value": string|null, "stamp": "…", "device": "…"}}   (the one kept aside)
 * For edited_while_deleted, "kept" is the delete (value null) and "losing" an edit it had not
 * seen. Resolve them with carnet_conflict_resolve / carnet_conflict_resolve_deleted. */
CARNET_API carnet_code carnet_conflicts(carnet_store* store, char** out_json, carnet_error* error);

/* ---------------------------------------------------------------------------------------------
 * Writing: every change goes through a transaction
 *
 * A transaction groups changes that are saved together or not at all, and holds the store
 * (other threads' calls on it wait) from carnet_txn_begin to carnet_txn_commit or
 * carnet_txn_rollback. It belongs to the thread that began it: calls with it from another
 * thread are refused. Keep it short and never across a suspension point (a Kotlin coroutine's
 * or Swift task's await). While it is open, that thread may read the store (and sees its own
 * uncommitted changes) but may not start, stop, configure or run a sync of the store.
 *
 * A write that fails changes nothing, and the transaction can still commit the writes that
 * succeeded. Values are text in the field's type: dates "YYYY-MM-DD", date-times
 * "YYYY-MM-DDTHH:MM:SSZ" (UTC), integers in decimal, booleans "true"/"false", enum values by
 * name, references by record id.
 */

typedef struct carnet_txn carnet_txn;

/* Begins a transaction; end it with carnet_txn_commit or carnet_txn_rollback, which free it.
 * Waits while another thread holds one on this store. CARNET_FAILED_PRECONDITION if this
 * thread holds one already (they do not nest). */
CARNET_API carnet_code carnet_txn_begin(carnet_store* store, carnet_txn** out_txn,
                                        carnet_error* error);

/* Saves the transaction's changes (on the disk before it returns) and frees the handle,
 * whether or not the commit succeeds; a failed commit saves nothing. Refused from another
 * thread (the handle stays valid). */
CARNET_API carnet_code carnet_txn_commit(carnet_txn* txn, carnet_error* error);

/* Discards the transaction's changes and frees the handle. NULL is ignored. Refused from
 * another thread (the handle stays valid). */
CARNET_API carnet_code carnet_txn_rollback(carnet_txn* txn, carnet_error* error);

/* Writes registers from a JSON object of fields: {"field": value, ...} where a value is a
 * string, an integer, true/false, or null to clear the field. All the fields or none. Sets and
 * logs have their own calls below. */
CARNET_API carnet_code carnet_record_put(carnet_txn* txn, const char* collection, const char* id,
                                         const char* fields_json, carnet_error* error);

/* Typed register writes. */
CARNET_API carnet_code carnet_register_set_text(carnet_txn* txn, const char* collection,
                                                const char* id, const char* field,
                                                const char* value, carnet_error* error);
CARNET_API carnet_code carnet_register_set_int64(carnet_txn* txn, const char* collection,
                                                 const char* id, const char* field, int64_t value,
                                                 carnet_error* error);
CARNET_API carnet_code carnet_register_set_bool(carnet_txn* txn, const char* collection,
                                                const char* id, const char* field, bool value,
                                                carnet_error* error);
CARNET_API carnet_code carnet_register_clear(carnet_txn* txn, const char* collection,
                                             const char* id, const char* field,
                                             carnet_error* error);

/* Sets (add-wins): add or remove one element. A remove ends only the additions this device has
 * seen. */
CARNET_API carnet_code carnet_set_add(carnet_txn* txn, const char* collection, const char* id,
                                      const char* field, const char* element, carnet_error* error);
CARNET_API carnet_code carnet_set_remove(carnet_txn* txn, const char* collection, const char* id,
                                         const char* field, const char* element,
                                         carnet_error* error);

/* Logs (append-only): appends `text`; `revises` (NULL for none) names by stamp the entry this
 * text revises, both being kept. The new entry's stamp goes to `out_stamp` (may be NULL). */
CARNET_API carnet_code carnet_log_append(carnet_txn* txn, const char* collection, const char* id,
                                         const char* field, const char* text,
                                         const char* revises, char out_stamp[CARNET_STAMP_SIZE],
                                         carnet_error* error);
/* Removes the text of the entry stamped `stamp`, never the entry. */
CARNET_API carnet_code carnet_log_redact(carnet_txn* txn, const char* collection, const char* id,
                                         const char* field, const char* stamp,
                                         carnet_error* error);

/* Deletes a record (a tombstone; the delete wins over concurrent edits, which are kept as
 * conflicts). Refused for a validated record. */
CARNET_API carnet_code carnet_record_delete(carnet_txn* txn, const char* collection,
                                            const char* id, carnet_error* error);
/* Brings a deleted record back, with the edits made to it. */
CARNET_API carnet_code carnet_record_restore(carnet_txn* txn, const char* collection,
                                             const char* id, carnet_error* error);

/* Ends a concurrent_write conflict: writes `value` (NULL clears) over every value of the field.
 * Refused when the field has no conflict. */
CARNET_API carnet_code carnet_conflict_resolve(carnet_txn* txn, const char* collection,
                                               const char* id, const char* field,
                                               const char* value, carnet_error* error);
/* Ends the edited_while_deleted conflicts of a record: keep it deleted, or restore it with its
 * edits. */
CARNET_API carnet_code carnet_conflict_resolve_deleted(carnet_txn* txn, const char* collection,
                                                       const char* id, bool keep_deleted,
                                                       carnet_error* error);

/* Called after each commit that changed records, with a JSON array of
 * {"collection", "record", "field" ("" for a delete or restore), "remote": bool}. `changes_json`
 * is borrowed for the call. On the committing thread: the app's for its own writes, the sync
 * thread for changes pulled from the server. NULL removes the callback. Once this returns, the
 * previous callback is not called again; if it is running on another thread, this waits for it
 * to return (except when called from inside a callback). */
typedef void (*carnet_change_fn)(void* context, const char* changes_json);
CARNET_API carnet_code carnet_store_set_change_callback(carnet_store* store, carnet_change_fn fn,
                                                        void* context, carnet_error* error);

/* ---------------------------------------------------------------------------------------------
 * Sync with carnet-server
 */

typedef struct carnet_sync_config {
  const char* server_url; /* "https://records.example:8443"; plain http only to a loopback host */
  /* The device token, when a device-management tool provisions it (`carnet-server enroll
   * --token`). Given: saved in the host's key storage (replacing any) and used. NULL: read from
   * key storage; with none there, enrollment_code below is needed. */
  const char* token;
  const char* ca_file;        /* PEM bundle to verify the server with; NULL: the system's */
  /* Public-key pinning on top of the CA: "sha256//BASE64", BASE64 being the SHA-256 of the
   * server key's DER SubjectPublicKeyInfo, several separated by ';' (the current key and the
   * next, for a rotation). NULL: no pin. Needs an https server_url. A server holding another
   * key fails the sync with CARNET_UNAVAILABLE, as a certificate that does not verify does. */
  const char* pinned_public_key;
  int32_t connect_timeout_ms; /* default 10000 */
  int32_t stall_timeout_ms;   /* a transfer below 1 KiB/s this long is abandoned; 30000 */
  int32_t max_attempts;       /* per request, for failures a retry can fix; default 5 */
  int64_t backoff_initial_ms; /* first wait between attempts, doubling; default 500 */
  int64_t backoff_max_ms;     /* default 60000 */
  /* Background sync: once in a nightly window (minutes after midnight UTC; length 0: never),
   * and after a failure every retry_after_failure_ms while online. Defaults 120, 180, 900000. */
  int32_t nightly_start_minute;
  int32_t nightly_length_minutes;
  int64_t retry_after_failure_ms;
  /* The one-time code printed by `carnet-server enroll` ("7KQ2M-9XJ4T-..."), which the first
   * sync exchanges for the device token, kept in the host's key storage from then on (in
   * memory without key storage). Used only while no token is known; NULL: none.
   * CARNET_FAILED_PRECONDITION from configure when neither a token nor a code is known. The
   * token is renewed by the syncs on its own. A sync that finds the tablet revoked erases the
   * store (its records, outbox and keys), tells the server, deletes the token, and fails with
   * CARNET_DEVICE_REVOKED: close the store and delete its file. */
  const char* enrollment_code;
} carnet_sync_config;

/* Fills `config` with the defaults and NULL strings. Start every config from it. */
CARNET_API void carnet_sync_config_init(carnet_sync_config* config);

/* Configures (or reconfigures) the store's sync. The strings are copied. A background sync
 * that was started is restarted with the new settings; callbacks are kept. Any thread but one
 * holding a transaction of this store, and not from a callback. Errors: CARNET_DOMAIN_SYNC for
 * a refused URL, a malformed pin or a CA file that cannot be read, CARNET_DOMAIN_HOST when key
 * storage fails, CARNET_DOMAIN_API for a missing token or a malformed one. */
CARNET_API carnet_code carnet_sync_configure(carnet_store* store, const carnet_sync_config* config,
                                             carnet_error* error);

/* Un-enrolls: stops and removes the store's sync and deletes the device token from key
 * storage. The records stay. Same thread rules as carnet_sync_configure. */
CARNET_API carnet_code carnet_sync_forget_token(carnet_store* store, carnet_error* error);

/* Starts the background sync thread: it syncs on carnet_sync_request, when the network comes
 * back (carnet_env_set_online), once in the nightly window, and after a failure every
 * retry_after_failure_ms while online. Starting a started sync does nothing. */
CARNET_API carnet_code carnet_sync_start(carnet_store* store, carnet_error* error);

/* Stops and joins the background sync thread: a backoff wait ends within a quarter of a
 * second, a request in flight at the transport's timeouts. Stopping a stopped sync does
 * nothing. Not from a callback, nor from a thread holding a transaction of this store. */
CARNET_API carnet_code carnet_sync_stop(carnet_store* store, carnet_error* error);

/* Asks the background sync thread to sync now, and returns at once. CARNET_FAILED_PRECONDITION
 * when the background sync is not started. Any thread, callbacks included. */
CARNET_API carnet_code carnet_sync_request(carnet_store* store, carnet_error* error);

/* Syncs on the calling thread: pushes every local change, then pulls until caught up. Returns
 * CARNET_OK only on full success; otherwise the error says why (CARNET_DOMAIN_SYNC), and what
 * was done is kept: the next sync resumes. One sync runs at a time per store: this waits for a
 * background sync in progress. Not from a callback, nor from a thread holding a transaction. */
CARNET_API carnet_code carnet_sync_now(carnet_store* store, carnet_error* error);

typedef enum carnet_sync_state {
  CARNET_SYNC_IDLE = 0,        /* the last sync succeeded, or none ran yet */
  CARNET_SYNC_SYNCING = 1,
  CARNET_SYNC_OFFLINE = 2,     /* the last sync could not reach the server */
  CARNET_SYNC_ERROR = 3,       /* the last sync failed otherwise: see last_error */
  CARNET_SYNC_UNCONFIGURED = 4 /* carnet_sync_configure was not called */
} carnet_sync_state;

typedef struct carnet_sync_status {
  carnet_sync_state state;
  bool running;             /* the background sync is started */
  bool online;              /* as last told by carnet_env_set_online */
  int64_t last_success_ms;  /* Unix ms of the last successful sync of this session; 0: none */
  uint64_t pending;         /* local changes not yet acknowledged by the server */
  int64_t clock_offset_ms;  /* the server's time minus this device's, as last measured */
  carnet_error last_error;  /* why the last sync failed; CARNET_OK after a success */
} carnet_sync_status;

typedef struct carnet_sync_progress {
  uint64_t pushed;     /* changes acknowledged by the server in this sync */
  uint64_t push_total; /* changes to push in this sync (grows if the app edits meanwhile) */
  uint64_t pulled;     /* entries and forgets applied from the server in this sync */
  bool pull_more;      /* the server has more to pull */
} carnet_sync_progress;

/* The sync's status now. Works unconfigured too (state CARNET_SYNC_UNCONFIGURED). */
CARNET_API carnet_code carnet_sync_get_status(carnet_store* store, carnet_sync_status* out_status,
                                              carnet_error* error);

/* Whether every local change has been acknowledged by the server (nothing left to upload):
 * what an app checks before letting an adviser sign out or hand the tablet back. */
CARNET_API carnet_code carnet_everything_uploaded(carnet_store* store, bool* out_uploaded,
                                                  carnet_error* error);

/* Called when a sync starts and ends and when the pending count changes (status), and after
 * each batch pushed or pulled (progress), on the thread running the sync. The structure is
 * borrowed for the call. NULL removes the callback; the rule of carnet_store_set_change_callback
 * applies: once this returns, the previous callback is not called again. Kept across
 * carnet_sync_configure. */
typedef void (*carnet_sync_status_fn)(void* context, const carnet_sync_status* status);
typedef void (*carnet_sync_progress_fn)(void* context, const carnet_sync_progress* progress);
CARNET_API carnet_code carnet_sync_set_status_callback(carnet_store* store,
                                                       carnet_sync_status_fn fn, void* context,
                                                       carnet_error* error);
CARNET_API carnet_code carnet_sync_set_progress_callback(carnet_store* store,
                                                         carnet_sync_progress_fn fn,
                                                         void* context, carnet_error* error);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CARNET_CARNET_H_ */
