#include "sync/server_store_pg.h"

namespace carnet {

Result<std::unique_ptr<ServerStore>> OpenPostgresServerStore(const std::string& url,
                                                             const ServerStoreOptions&) {
  return FailedPrecondition("the PostgreSQL store is not built yet: " + url);
}

}  // namespace carnet
