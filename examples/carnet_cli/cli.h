// The carnet tablet CLI: one tablet's store in a file, edited and synced from a shell.
// Commands write their output to Context::out (printed only when they succeed) and return a
// Status; kInvalidArgument is a usage error (exit 2), any other failure exits 1. main.cc parses
// the command line: a command runs with the operands and options its form in kCommands names.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "carnet/env.h"
#include "carnet/status.h"
#include "carnet/store.h"

namespace carnet_cli {

struct Context {
  carnet::Env* env = nullptr;
  std::string db;                              // --db PATH as given
  std::vector<std::string> operands;           // the command's operands, as many as its form names
  std::map<std::string, std::string> options;  // its options and flags given, by name without "--"
  std::string out;                             // what the command prints on standard output
};

// A usage error naming the expected form, e.g. Usage("get COLLECTION ID").
carnet::Status Usage(const std::string& form);

// The store of an initialised tablet; a clear error when `init` has not been run.
carnet::Result<std::unique_ptr<carnet::Store>> OpenTablet(const Context& ctx);
// A new tablet's store for `device`; kAlreadyExists if --db or its device file is there. Leaves
// nothing behind when it fails.
carnet::Result<std::unique_ptr<carnet::Store>> CreateTablet(const Context& ctx,
                                                            const std::string& device);
// Removes the files of a tablet, for an init that failed after CreateTablet.
void RemoveTablet(const Context& ctx);

// Tablet set-up and sync (sync_commands.cc).
carnet::Status InitCommand(Context& ctx);
carnet::Status SyncCommand(Context& ctx);
carnet::Status StatusCommand(Context& ctx);

// Records (record_commands.cc).
carnet::Status PutCommand(Context& ctx);
carnet::Status SetAddCommand(Context& ctx);
carnet::Status SetRemoveCommand(Context& ctx);
carnet::Status AppendCommand(Context& ctx);
carnet::Status DeleteCommand(Context& ctx);
carnet::Status GetCommand(Context& ctx);
carnet::Status ListCommand(Context& ctx);
carnet::Status ConflictsCommand(Context& ctx);
carnet::Status ResolveCommand(Context& ctx);
carnet::Status NewIdCommand(Context& ctx);

}  // namespace carnet_cli
