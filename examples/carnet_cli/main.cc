// carnet: one tablet of Carnet from the command line (see kUsage).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

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

// A command and what follows its name, as a usage error shows it. The form declares the command
// to CLI11: NAME an operand, NAME... one or more, [NAME] an optional one, --option NAME a required
// option, [--a|--b] flags.
struct Command {
  const char* name;
  const char* form;
  carnet::Status (*run)(Context&);
};

constexpr Command kCommands[] = {
    {"init", "--device ID --server URL --token TOKEN", InitCommand},
    {"put", "COLLECTION ID FIELD=VALUE...", PutCommand},
    {"set-add", "COLLECTION ID FIELD VALUE", SetAddCommand},
    {"set-remove", "COLLECTION ID FIELD VALUE", SetRemoveCommand},
    {"append", "COLLECTION ID FIELD TEXT", AppendCommand},
    {"delete", "COLLECTION ID", DeleteCommand},
    {"get", "COLLECTION ID", GetCommand},
    {"list", "COLLECTION", ListCommand},
    {"conflicts", "", ConflictsCommand},
    {"resolve", "COLLECTION ID [FIELD VALUE] [--keep-deleted|--restore]", ResolveCommand},
    {"sync", "", SyncCommand},
    {"status", "", StatusCommand},
    {"new-id", "", NewIdCommand},
};

std::vector<std::string> Split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::istringstream in(text);
  for (std::string part; std::getline(in, part, separator);) parts.push_back(part);
  return parts;
}

// Declares `command` on `app` after its form.
void Declare(CLI::App& app, const Command& command) {
  CLI::App* sub = app.add_subcommand(command.name);
  const std::vector<std::string> words = Split(command.form, ' ');
  bool has_options = false;
  bool bracketed = false;
  for (size_t i = 0; i < words.size(); ++i) {
    std::string word = words[i];
    if (word.empty()) continue;
    if (word.front() == '[') {
      bracketed = true;
      word.erase(0, 1);
    }
    const bool optional = bracketed;
    if (!word.empty() && word.back() == ']') {
      bracketed = false;
      word.pop_back();
    }
    if (word.rfind("--", 0) == 0 && optional) {
      for (const std::string& flag : Split(word, '|')) sub->add_flag(flag);
      has_options = true;
    } else if (word.rfind("--", 0) == 0) {
      sub->add_option(word)->required()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
      has_options = true;
      ++i;  // the value's name
    } else if (word.size() > 3 && word.compare(word.size() - 3, 3, "...") == 0) {
      sub->add_option(word)
          ->required()
          ->expected(1, CLI::detail::expected_max_vector_size)
          ->allow_extra_args();
    } else {
      CLI::Option* operand = sub->add_option(word);
      if (!optional) operand->required();
    }
  }
  // A record's text is taken as it is once its operands begin: "-x" or "--" included.
  if (!has_options) sub->positionals_at_end();
}

// Fills `ctx` from the command CLI11 parsed: operands in order, options by name without "--".
const Command& Collect(const CLI::App& sub, Context& ctx) {
  for (const CLI::Option* option : sub.get_options()) {
    if (option->get_positional()) {
      const std::vector<std::string>& values = option->results();
      ctx.operands.insert(ctx.operands.end(), values.begin(), values.end());
    } else if (option->count() != 0) {
      ctx.options[option->get_name().substr(2)] =
          option->get_expected_min() == 0 ? "" : option->results().back();
    }
  }
  for (const Command& command : kCommands) {
    if (sub.get_name() == command.name) return command;
  }
  return kCommands[0];  // not reached: sub was declared from kCommands
}

// Errors are one line on stderr, whatever the input they quote holds.
int Fail(int exit_code, std::string_view message) {
  std::string line;
  for (char c : message) line += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  std::fprintf(stderr, "carnet: %s\n", line.c_str());
  return exit_code;
}

// The exit status and message of a command line CLI11 refused.
int Refuse(const CLI::App& app, const CLI::ParseError& error) {
  std::vector<std::string> unknown = app.remaining(false);
  if (!unknown.empty() && unknown.front().rfind("--", 0) == 0) {
    return Fail(2, "unknown option '" + unknown.front() + "' (try 'carnet --help')");
  }
  if (!unknown.empty()) {
    return Fail(2, "unknown command '" + unknown.front().substr(0, 60) + "' (try 'carnet --help')");
  }
  if (app.get_subcommands().empty()) {
    // The root has one option of its own.
    return Fail(2, error.get_name() == "ArgumentMismatch"
                       ? "--db needs a PATH"
                       : "missing command (try 'carnet --help')");
  }
  // CLI11 may stop before it stores --db's value.
  const std::vector<std::string>& db = app.get_option("--db")->results();
  if (db.empty() || db.back().empty()) return Fail(2, "--db PATH is required");
  Context parsed;
  const Command& command = Collect(*app.get_subcommands().front(), parsed);
  const std::string form = std::string(command.name) + (*command.form ? " " : "") + command.form;
  return Fail(2, Usage(form).message());
}

int Run(int argc, char** argv) {
  carnet::PosixEnv env({carnet::LogLevel::kError, ""});
  if (!env.Ready().ok()) return Fail(1, env.Ready().ToString());
  Context ctx;
  ctx.env = &env;
  CLI::App app("carnet", "carnet");
  app.set_help_flag("--help");
  app.add_option("--db", ctx.db)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.require_subcommand(1);
  app.add_subcommand("help");
  for (const Command& command : kCommands) Declare(app, command);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(kUsage, stdout);
    return 0;
  } catch (const CLI::ParseError& error) {
    return Refuse(app, error);
  }
  const CLI::App& sub = *app.get_subcommands().front();
  if (sub.get_name() == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (ctx.db.empty()) return Fail(2, "--db PATH is required");
  const Command& command = Collect(sub, ctx);
  carnet::Status status = command.run(ctx);
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
