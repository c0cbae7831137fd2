// carnet-server: the département's central records. STORE is sqlite:PATH (or a bare path), or a
// PostgreSQL URL postgresql://USER@HOST:PORT/DATABASE (sync/SCALING.md).
//   carnet-server serve  --store sqlite:PATH [--listen HOST:PORT] --tls-cert FILE --tls-key FILE
//   carnet-server serve  --store sqlite:PATH [--listen LOOPBACK:PORT] --plain-http
//                        [--metrics-token-file FILE]
//   carnet-server enroll --store sqlite:PATH --device ID --adviser ID --territory NAME...
//                        [--code-hours H]
//   carnet-server devices|purge --store sqlite:PATH
//   carnet-server revoke --store sqlite:PATH --device ID
//   carnet-server dump   --store sqlite:PATH [--device ID]
//   carnet-server erase  --store sqlite:PATH --participant ID --by WHO [--scrub-wait S]
//   carnet-server erasure-status --store sqlite:PATH [--participant ID]
//   carnet-server retention --store sqlite:PATH [--days N] [--action forget|erase] [--dry-run]
//   carnet-server audit  --store sqlite:PATH [--device ID] [--record ID] [--since WHEN]
//   carnet-server audit  --store sqlite:PATH --verify [--anchor ID:HASH]
#include <signal.h>
#include <sys/resource.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "carnet/posix_env.h"
#include "carnet/report.h"
#include "carnet/server.h"
#include "carnet/server_store.h"
#include "carnet/loopback.h"
#include "platform/carnet_server_audit.h"
#include "platform/carnet_server_devices.h"
#include "platform/carnet_server_erasure.h"
#include "platform/carnet_server_text.h"

namespace {

using carnet::Result;
using carnet::Status;

// A command as parsed: the options given to it, each by its name without "--".
struct Args {
  std::string command;
  const CLI::App* app = nullptr;

  // Every value given to --`name`, in order (--territory is repeated).
  std::vector<std::string> All(const std::string& name) const {
    const CLI::Option* option = app->get_option_no_throw("--" + name);
    return option == nullptr ? std::vector<std::string>{} : option->results();
  }
  std::string One(const std::string& name, const std::string& fallback = "") const {
    std::vector<std::string> values = All(name);
    return values.empty() ? fallback : values.back();
  }
  bool Has(const std::string& name) const {
    const CLI::Option* option = app->get_option_no_throw("--" + name);
    return option != nullptr && option->count() != 0;
  }
};

// Each command's options as kUsage shows them: every one takes a value, but the flags.
struct CommandSpec {
  std::string name;
  std::vector<std::string> options;
  std::vector<std::string> flags;
};

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> commands = {
      {"serve",
       {"listen", "tls-cert", "tls-key", "threads", "retention-days", "retention-action",
        "token-days", "metrics-token-file"},
       {"plain-http"}},
      {"enroll", {"device", "adviser", "territory", "code-hours", "token-days"}, {"token"}},
      {"devices", {}, {}},
      {"revoke", {"device"}, {}},
      {"purge", {}, {}},
      {"dump", {"device"}, {}},
      {"erase", {"participant", "by", "scrub-wait"}, {}},
      {"erasure-status", {"participant"}, {}},
      {"retention", {"days", "action", "scrub-wait"}, {"dry-run"}},
      {"report", {"from", "to", "format"}, {}},
      {"audit", {"device", "record", "since", "anchor"}, {"verify"}},
  };
  return commands;
}

constexpr const char* kUsage =
    "usage: carnet-server COMMAND --store sqlite:PATH|postgresql://USER@HOST:PORT/DB [options]\n"
    "  serve   [--listen HOST:PORT]          serve tablets (default 127.0.0.1:8470) over HTTPS:\n"
    "          --tls-cert FILE --tls-key FILE  the server's PEM certificate chain and key\n"
    "          or --plain-http               plain HTTP, on a loopback address only\n"
    "          [--threads N]                 requests served at once (default 64)\n"
    "          [--metrics-token-file FILE]   serve GET /metrics to who presents the token in\n"
    "                                        FILE (Authorization: Bearer); without: refused\n"
    "          [--retention-days N]          participants without contact for N days leave\n"
    "                                        the tablets (default 730; 0: never)\n"
    "          [--retention-action forget|erase]  or are erased\n"
    "          [--token-days D]              device tokens last D days, renewed past half\n"
    "                                        (default 90; 0: for ever)\n"
    "  enroll  --device ID --adviser ID --territory NAME [--territory NAME...]\n"
    "          [--code-hours H]              prints a one-time enrollment code the tablet\n"
    "                                        exchanges for its token (valid 72 hours)\n"
    "          or --token [--token-days D]   prints the device token itself, valid D days\n"
    "                                        (default 90; 0: for ever), for a device-\n"
    "                                        management tool that provisions the tablet\n"
    "  devices                               list tablets, with their state\n"
    "  revoke  --device ID                   refuse a tablet from now on; at its next contact\n"
    "                                        it erases what it holds and confirms\n"
    "  purge                                 drop what every tablet has acknowledged\n"
    "  dump    [--device ID]                 live entries (of one tablet's scope)\n"
    "  erase   --participant ID --by WHO     erase a participant from the server and, by an\n"
    "                                        order each tablet confirms, from the tablets\n"
    "          [--scrub-wait S]              wait up to S seconds (default 10) for a reader of\n"
    "                                        the SQLite file; past it, exit status 4: recorded\n"
    "                                        but not yet scrubbed (sync/OPERATIONS.md)\n"
    "  erasure-status [--participant ID]     the erasures, which tablets confirmed them, and\n"
    "                                        whether they are scrubbed (it scrubs those pending)\n"
    "  retention [--days N] [--action forget|erase] [--dry-run] [--scrub-wait S]\n"
    "                                        apply the retention policy now (default 730 days)\n"
    "  report  --from DATE --to DATE [--format csv|json]\n"
    "                                        the programme's indicators for a period (dates\n"
    "                                        YYYY-MM-DD, both included; sync/REPORT.md)\n"
    "  audit   [--device ID] [--record ID] [--since WHEN]\n"
    "                                        who read or changed which record (sync/SECURITY.md),\n"
    "                                        one JSON object a line; WHEN: 2026-11-20,\n"
    "                                        2026-11-20T09:30:00Z (UTC) or milliseconds\n"
    "          --verify [--anchor ID:HASH]   check the log's hash chain (and that row ID still\n"
    "                                        holds HASH); exit status 3 when it is broken\n";

// Declares the commands on `app`; the usage text is kUsage's, not CLI11's.
void DeclareCommands(CLI::App& app) {
  app.require_subcommand(1);
  app.set_help_flag();
  for (const CommandSpec& spec : Commands()) {
    CLI::App* command = app.add_subcommand(spec.name);
    command->set_help_flag();
    // A repeated option keeps every value; those read once take the last (Args::One).
    command->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    command->add_option("--store");
    for (const std::string& name : spec.options) command->add_option("--" + name);
    for (const std::string& name : spec.flags) command->add_flag("--" + name);
  }
}

// The command and its options, or the line that says what is wrong with them.
Result<Args> Parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (!app.get_subcommands().empty()) return carnet::InvalidArgument(e.what());
    std::vector<std::string> unknown = app.remaining(false);
    if (unknown.empty()) return carnet::InvalidArgument("missing command");
    if (unknown.front().rfind("-", 0) == 0) {
      return carnet::InvalidArgument("expected COMMAND --option VALUE, got '" + unknown.front() +
                                     "'");
    }
    return carnet::InvalidArgument("unknown command '" + unknown.front() + "'");
  }
  Args args;
  args.app = app.get_subcommands().front();
  args.command = args.app->get_name();
  return args;
}

int Report(const Status& status) { return status.ok() ? 0 : carnet::server_cli::Fail(status); }

struct ServeOptions {
  std::string host;
  int port = 0;
  std::string tls_cert_file;  // both empty: plain HTTP
  std::string tls_key_file;
  int threads = carnet::ServerOptions().worker_threads;
  int64_t token_lifetime_ms = carnet::ServerOptions().token_lifetime_ms;
  std::optional<carnet::RetentionPolicy> retention;
  std::string metrics_token;  // empty: /metrics refused
};

// The operator's token for /metrics, from a file only the operator can read: not an argument
// or an environment variable, which other users of the machine can see in /proc.
Result<std::string> ReadMetricsToken(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) {
    return carnet::InvalidArgument("cannot read --metrics-token-file '" + path +
                                   "': " + std::strerror(errno));
  }
  char buffer[1024];
  const size_t n = std::fread(buffer, 1, sizeof buffer, file);
  std::fclose(file);
  std::string token(buffer, n);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.size() < 16 || token.size() >= sizeof buffer ||
      token.find_first_of(" \t\r\n") != std::string::npos) {
    return carnet::InvalidArgument("--metrics-token-file '" + path +
                                   "' must hold one token of 16 to 1000 characters, no spaces");
  }
  return token;
}

// Checked before the store is opened, so that a refused command leaves nothing behind.
Result<ServeOptions> ParseServe(const Args& args) {
  ServeOptions serve;
  std::string listen = args.One("listen", "127.0.0.1:8470");
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return carnet::InvalidArgument("--listen HOST:PORT");
  serve.host = listen.substr(0, colon);
  if (serve.host.size() >= 2 && serve.host.front() == '[' && serve.host.back() == ']') {
    serve.host = serve.host.substr(1, serve.host.size() - 2);  // [::1]:8470
  }
  serve.port = std::atoi(listen.c_str() + colon + 1);
  serve.tls_cert_file = args.One("tls-cert");
  serve.tls_key_file = args.One("tls-key");
  if (args.Has("threads")) {
    serve.threads = std::atoi(args.One("threads").c_str());
    if (serve.threads < 1 || serve.threads > 4096) {
      return carnet::InvalidArgument("--threads takes a number from 1 to 4096");
    }
  }
  const bool tls = !serve.tls_cert_file.empty() || !serve.tls_key_file.empty();
  const bool plain = args.Has("plain-http");
  if (plain && tls) {
    return carnet::InvalidArgument("--plain-http and --tls-cert/--tls-key exclude each other");
  }
  if (!plain && (serve.tls_cert_file.empty() || serve.tls_key_file.empty())) {
    return carnet::InvalidArgument(
        "serve needs --tls-cert FILE and --tls-key FILE to serve HTTPS, or --plain-http to "
        "serve plain HTTP on a loopback address");
  }
  // A device token in clear must not cross a network (DESIGN.md: TLS wherever the network is
  // not loopback). Plain HTTP is for tests and for a TLS proxy on the same machine.
  if (plain && !carnet::IsLoopbackHost(serve.host)) {
    return carnet::InvalidArgument(
        "--plain-http is refused on '" + serve.host +
        "': plain HTTP is served on a loopback address only (127.0.0.0/8, ::1, localhost); "
        "serve HTTPS with --tls-cert FILE --tls-key FILE");
  }
  Result<std::optional<carnet::RetentionPolicy>> retention = carnet::server_cli::ParseRetention(
      args.One("retention-days"), args.One("retention-action"), true);
  if (!retention.ok()) return retention.status();
  serve.retention = *retention;
  if (args.Has("token-days")) {
    // Decimal, so that a test can make tokens of a few seconds.
    const std::string days = args.One("token-days");
    char* end = nullptr;
    const double value = std::strtod(days.c_str(), &end);
    if (days.empty() || *end != '\0' || !(value >= 0) || value > 3650) {
      return carnet::InvalidArgument("--token-days '" + days + "': a number of days, 0 to 3650");
    }
    serve.token_lifetime_ms = static_cast<int64_t>(value * 24 * 60 * 60 * 1000);
  }
  if (args.Has("metrics-token-file")) {
    Result<std::string> token = ReadMetricsToken(args.One("metrics-token-file"));
    if (!token.ok()) return token.status();
    serve.metrics_token = *token;
  }
  return serve;
}

int Serve(carnet::ServerStore* store, carnet::Env* env, const ServeOptions& serve) {
  // Signals are taken by sigwait below, not by handlers, so shutdown runs on the main thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // OpenSSL writes to the socket with write(), not send(MSG_NOSIGNAL): a tablet that goes away
  // in the middle of a reply must cost one connection, not the server.
  signal(SIGPIPE, SIG_IGN);
  // Each connection is a file descriptor, and the soft limit is often 1024: thousands of idle
  // tablets need the hard limit (the server's own cap, HttpLimits::max_connections, still holds).
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  carnet::ServerOptions options{serve.host, serve.port, env, store};
  options.tls_cert_file = serve.tls_cert_file;
  options.tls_key_file = serve.tls_key_file;
  options.worker_threads = serve.threads;
  options.retention = serve.retention;
  options.token_lifetime_ms = serve.token_lifetime_ms;
  options.metrics_token = serve.metrics_token;
  carnet::SyncServer server(options);
  Status started = server.Start();
  if (!started.ok()) return Report(started);
  std::printf("carnet-server listening on %s:%d (%s)\n", serve.host.c_str(), server.port(),
              serve.tls_cert_file.empty() ? "plain http" : "https");
  std::fflush(stdout);
  int received = 0;
  sigwait(&signals, &received);
  std::fprintf(stderr, "carnet-server: stopping (signal %d), finishing requests in flight\n",
               received);
  server.Stop();
  return 0;
}

int ReportCommand(carnet::ServerStore* store, const Args& args) {
  const std::string format = args.Has("format") ? args.One("format") : "csv";
  if (format != "csv" && format != "json") {
    return Report(carnet::InvalidArgument("--format is csv or json, not '" + format + "'"));
  }
  Result<carnet::ProgrammeReport> report =
      carnet::ComputeProgrammeReport(*store, args.One("from"), args.One("to"));
  if (!report.ok()) return Report(report.status());
  const std::string text = format == "csv" ? ReportCsv(*report) : ReportJson(*report);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

int Run(int argc, char** argv) {
  CLI::App app("carnet-server", "carnet-server");
  DeclareCommands(app);
  Result<Args> args = Parse(app, argc, argv);
  if (!args.ok()) {
    std::fprintf(stderr, "carnet-server: %s\n%s", args.status().message().c_str(), kUsage);
    return 2;
  }
  const std::string spec = args->One("store");
  if (spec.empty()) {
    std::fprintf(stderr, "carnet-server: --store is required\n%s", kUsage);
    return 2;
  }
  const std::string& command = args->command;
  Result<ServeOptions> serve = ServeOptions{};
  if (command == "serve") {
    serve = ParseServe(*args);
    if (!serve.ok()) {
      std::fprintf(stderr, "carnet-server: %s\n", serve.status().message().c_str());
      return 2;
    }
  }
  carnet::PosixEnv env({carnet::LogLevel::kInfo, "", /*json_lines=*/true});
  if (!env.Ready().ok()) return Report(env.Ready());
  Result<std::unique_ptr<carnet::ServerStore>> store = carnet::OpenServerStore(spec, {&env});
  if (!store.ok()) return Report(store.status());
  if (command == "serve") return Serve(store->get(), &env, *serve);
  if (command == "enroll") {
    carnet::Device device;
    device.id = args->One("device");
    device.adviser = args->One("adviser");
    device.territories = args->All("territory");
    if (args->Has("token")) {
      return carnet::server_cli::EnrollWithToken(store->get(), &env, device,
                                                 args->One("token-days"));
    }
    return carnet::server_cli::Enroll(store->get(), &env, device, args->One("code-hours"));
  }
  if (command == "devices") return carnet::server_cli::Devices(store->get());
  if (command == "audit") {
    return carnet::server_cli::Audit(store->get(),
                                     {args->Has("verify"), args->One("device"), args->One("record"),
                                      args->One("since"), args->One("anchor")});
  }
  if (command == "revoke") return Report((*store)->Revoke(args->One("device")));
  if (command == "purge") {
    Result<uint64_t> purged = (*store)->Purge();
    if (!purged.ok()) return Report(purged.status());
    std::printf("purged %llu entries\n", static_cast<unsigned long long>(*purged));
    return 0;
  }
  if (command == "report") return ReportCommand(store->get(), *args);
  if (command == "erase") {
    return carnet::server_cli::Erase(store->get(), args->One("participant"), args->One("by"),
                                     args->One("scrub-wait"));
  }
  if (command == "erasure-status") {
    return carnet::server_cli::ErasureStatus(store->get(), args->One("participant"));
  }
  if (command == "retention") {
    Result<std::optional<carnet::RetentionPolicy>> policy =
        carnet::server_cli::ParseRetention(args->One("days"), args->One("action"), false);
    if (!policy.ok()) return Report(policy.status());
    return carnet::server_cli::Retention(store->get(), **policy, args->Has("dry-run"),
                                         args->One("scrub-wait"));
  }
  if (command == "dump") {
    Result<std::string> dump = (*store)->ScopeDump(args->One("device"));
    if (!dump.ok()) return Report(dump.status());
    std::fwrite(dump->data(), 1, dump->size(), stdout);
    return 0;
  }
  std::fprintf(stderr, "carnet-server: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
