/* The smallest app on the installed library: opens a store, writes a record in a transaction,
 * reads it back as JSON.
 *   consumer STORE_PATH EXPECTED_VERSION */
#include <stdio.h>
#include <string.h>

#include <carnet/carnet.h>

static int fail(const char* what, const carnet_error* error) {
  fprintf(stderr, "consumer: %s: %s: %s\n", what, carnet_code_name(error->code), error->message);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  if (strcmp(carnet_version(), argv[2]) != 0) {
    fprintf(stderr, "consumer: linked carnet %s, expected %s\n", carnet_version(), argv[2]);
    return 1;
  }
  carnet_error error;
  carnet_env* env = NULL;
  carnet_store* store = NULL;
  carnet_txn* txn = NULL;
  char id[CARNET_ID_SIZE];
  char* json = NULL;
  if (carnet_env_new(NULL, &env, &error) != CARNET_OK) return fail("env", &error);
  if (carnet_store_open(env, argv[1], "tab-consumer", &store, &error) != CARNET_OK) {
    return fail("open", &error);
  }
  if (carnet_new_id(store, id, &error) != CARNET_OK ||
      carnet_txn_begin(store, &txn, &error) != CARNET_OK ||
      carnet_record_put(txn, "workshops", id, "{\"theme\":\"CV\",\"capacity\":12}", &error) !=
          CARNET_OK ||
      carnet_txn_commit(txn, &error) != CARNET_OK ||
      carnet_record_get(store, "workshops", id, &json, &error) != CARNET_OK) {
    return fail("write and read", &error);
  }
  int found = strstr(json, "\"capacity\":\"12\"") != NULL;
  printf("carnet %s: %s\n", carnet_version(), json);
  carnet_free(json);
  carnet_store_close(store, NULL);
  carnet_env_free(env);
  return found ? 0 : 1;
}
