// carnet: one tablet of Carnet from the command line (see kUsage).
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "carnet/posix_env.h"
#include "examples/carnet_cli/cli.h"

namespace carnet_cli {
namespace {

constexpr const char* kUsage =
    "usage: carnet --db PATH COMMAND [ARGS...]\n"
    "  init --device ID --server URL --token TOKEN   create the tablet's store (PATH must be new)\n"
    "  put COLLECTION ID FIELD=VALUE...              write registers (FIELD= clears one)\n"
    "  set-add|set-remove COLLECTION ID FIELD VALUE  add to or remove from a set\n"
    "  append COLLECTION ID FIELD TEXT               append to a log; prints the entry's stamp\n"
    "  delete COLLECTION ID                          delete a record\n"
    "  get COLLECTION ID                             a record, as JSON\n"
    "  list COLLECTION                               the records of a collection, as JSON\n"
    "  conflicts                                     conflicts kept for review, as JSON\n"
    "  resolve COLLECTION ID FIELD VALUE             settle a concurrent write with VALUE\n"
    "  resolve COLLECTION ID --keep-deleted|--restore  settle edits made to a deleted record\n"
    "  sync                                          push and pull; progress on stderr\n"
    "  status                                        sync status, as JSON\n"
    "  new-id                                        print a fresh record id\n"
    "exit status: 0 done, 1 failed, 2 usage error or invalid input\n";

struct Command {
  const char* name;
  carnet::Status (*run)(Context&);
};

constexpr Command kCommands[] = {
    {"init", InitCommand},
    {"put", PutCommand},
    {"set-add", SetAddCommand},
    {"set-remove", SetRemoveCommand},
    {"append", AppendCommand},
    {"delete", DeleteCommand},
    {"get", GetCommand},
    {"list", ListCommand},
    {"conflicts", ConflictsCommand},
    {"resolve", ResolveCommand},
    {"sync", SyncCommand},
    {"status", StatusCommand},
    {"new-id", NewIdCommand},
};

// Errors are one line on stderr, whatever the input they quote holds.
int Fail(int exit_code, std::string_view message) {
  std::string line;
  for (char c : message) line += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  std::fprintf(stderr, "carnet: %s\n", line.c_str());
  return exit_code;
}

int Run(int argc, char** argv) {
  carnet::PosixEnv env({carnet::LogLevel::kError, ""});
  Context ctx;
  ctx.env = &env;
  int at = 1;
  for (; at < argc && std::string_view(argv[at]).rfind("--", 0) == 0; ++at) {
    std::string_view option = argv[at];
    if (option == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (option != "--db") {
      return Fail(2, "unknown option '" + std::string(option) + "' (try 'carnet --help')");
    }
    if (at + 1 >= argc) return Fail(2, "--db needs a PATH");
    ctx.db = argv[++at];
  }
  if (at >= argc) return Fail(2, "missing command (try 'carnet --help')");
  std::string_view name = argv[at];
  if (name == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const Command* command = nullptr;
  for (const Command& c : kCommands) {
    if (name == c.name) command = &c;
  }
  if (command == nullptr) {
    return Fail(2,
                "unknown command '" + std::string(name.substr(0, 60)) + "' (try 'carnet --help')");
  }
  if (ctx.db.empty()) return Fail(2, "--db PATH is required");
  ctx.operands.assign(argv + at + 1, argv + argc);
  carnet::Status status = command->run(ctx);
  if (!status.ok()) {
    bool usage = status.code() == carnet::StatusCode::kInvalidArgument;
    return Fail(usage ? 2 : 1, usage ? status.message() : status.ToString());
  }
  std::fwrite(ctx.out.data(), 1, ctx.out.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : Fail(1, "cannot write the output");
}

}  // namespace
}  // namespace carnet_cli

int main(int argc, char** argv) {
  // A library exception escaping (a full disk inside libstdc++, say) still ends with one line.
  try {
    return carnet_cli::Run(argc, argv);
  } catch (const std::exception& e) {
    return carnet_cli::Fail(1, std::string("internal error: ") + e.what());
  }
}
