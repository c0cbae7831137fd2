// The PostgreSQL implementation of ServerStore (sync/server/pg/server_store_pg.cc), reached through
// OpenServerStore("postgresql://...").
#pragma once

#include <memory>
#include <string>

#include "carnet/server_store.h"

namespace carnet {

// `url` is a libpq connection URI (postgresql://user@host:port/database?...). Creates or
// migrates the schema. The pool holds up to 8 connections unless the URI says otherwise with
// `carnet_pool=N`, a parameter read here and not passed to libpq.
Result<std::unique_ptr<ServerStore>> OpenPostgresServerStore(const std::string& url,
                                                             const ServerStoreOptions& options);

}  // namespace carnet
