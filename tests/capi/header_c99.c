/* carnet.h alone, compiled as strict C99 (and as C++ by the same test): it must need nothing
 * but the C standard headers it includes, and raise no warning. */
#include "carnet/carnet.h"

/* Every type and constant the header defines, used once, so that a wrong one fails here. */
int carnet_header_check(void);
int carnet_header_check(void) {
  carnet_error error = {CARNET_DOMAIN_NONE, CARNET_OK, false, ""};
  static carnet_host host; /* zero-initialised, as the header asks */
  carnet_sync_config config;
  carnet_sync_status status;
  carnet_sync_progress progress = {0, 0, 0, false};
  carnet_key_result result = CARNET_KEY_OK;
  carnet_log_level level = CARNET_LOG_LEVEL_DEBUG;
  carnet_sync_state state = CARNET_SYNC_UNCONFIGURED;
  char id[CARNET_ID_SIZE];
  char stamp[CARNET_STAMP_SIZE];
  carnet_env* env = 0;
  carnet_store* store = 0;
  carnet_txn* txn = 0;
  carnet_sync_config_init(&config);
  (void)host, (void)status, (void)progress, (void)result, (void)level, (void)state, (void)id,
      (void)stamp, (void)env, (void)store, (void)txn;
  return (int)sizeof error.message == CARNET_ERROR_MESSAGE_SIZE ? 0 : 1;
}
