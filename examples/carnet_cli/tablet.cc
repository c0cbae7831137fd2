// Where a tablet lives: the store file given by --db, and beside it PATH.device, which names the
// device the store belongs to. Store::Open needs that id and cannot read it from an existing
// file, so init writes it down.
#include <filesystem>
#include <fstream>

#include "examples/carnet_cli/cli.h"

namespace carnet_cli {
namespace {

std::string DeviceFile(const std::string& db) { return db + ".device"; }

// Store::Open resolves a bare file name in the app's data directory; on a command line a bare
// name means the working directory.
std::string StorePath(const std::string& db) {
  return db.find('/') == std::string::npos ? "./" + db : db;
}

}  // namespace

carnet::Status Usage(const std::string& form) {
  return carnet::InvalidArgument("usage: carnet --db PATH " + form);
}

carnet::Result<std::unique_ptr<carnet::Store>> OpenTablet(const Context& ctx) {
  if (ctx.db.empty()) return carnet::InvalidArgument("--db PATH is required");
  std::error_code error;
  if (!std::filesystem::exists(ctx.db, error)) {
    return carnet::FailedPrecondition("no tablet store at '" + ctx.db + "': run 'carnet --db " +
                                      ctx.db + " init' first");
  }
  std::ifstream in(DeviceFile(ctx.db));
  std::string device;
  if (!in || !std::getline(in, device) || device.empty()) {
    return carnet::FailedPrecondition("cannot read the device id from '" + DeviceFile(ctx.db) +
                                      "' (written by init beside the store)");
  }
  carnet::StoreOptions options;
  options.path = StorePath(ctx.db);
  options.device_id = device;
  options.env = ctx.env;
  return carnet::Store::Open(options);
}

void RemoveTablet(const Context& ctx) {
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm", "-journal", ".device", ".device.tmp"}) {
    std::filesystem::remove(ctx.db + suffix, ignored);
  }
}

carnet::Result<std::unique_ptr<carnet::Store>> CreateTablet(const Context& ctx,
                                                            const std::string& device) {
  if (!carnet::IsValidDeviceId(device)) {
    return carnet::InvalidArgument("invalid device id '" + device.substr(0, 64) +
                                   "': 1 to 64 characters among A-Z a-z 0-9 . _ : -");
  }
  std::error_code error;
  for (const std::string& path : {ctx.db, DeviceFile(ctx.db)}) {
    if (std::filesystem::exists(path, error) || error) {
      return carnet::Status(carnet::StatusCode::kAlreadyExists,
                            "'" + path + "' exists already: init creates a new tablet only");
    }
  }
  // The id is written first, through a temporary file, so that a store never exists without it.
  const std::string temp = DeviceFile(ctx.db) + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << device << '\n';
    out.flush();
    if (!out) {
      RemoveTablet(ctx);
      return carnet::Status(carnet::StatusCode::kIoError, "cannot write '" + temp + "'");
    }
  }
  std::filesystem::rename(temp, DeviceFile(ctx.db), error);
  if (error) {
    RemoveTablet(ctx);
    return carnet::Status(carnet::StatusCode::kIoError,
                          "cannot write '" + DeviceFile(ctx.db) + "': " + error.message());
  }
  carnet::StoreOptions options;
  options.path = StorePath(ctx.db);
  options.device_id = device;
  options.env = ctx.env;
  carnet::Result<std::unique_ptr<carnet::Store>> store = carnet::Store::Open(options);
  if (!store.ok()) RemoveTablet(ctx);
  return store;
}

}  // namespace carnet_cli
