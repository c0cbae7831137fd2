// A night of tablets syncing at once (issue "Central records at scale", Load): N tablets (500 by
// default), each its adviser's, two advisers to a territory, start from the département's
// caseload on the server. Each syncs in the morning (its first pull), works through a day
// offline, and syncs in the evening (its day's work pushed, its colleague's pulled), all at
// once against one carnet-server process on SQLite or PostgreSQL; then each syncs once more and
// its store must equal the server's view of its scope. Prints operations per second, sync
// latencies (p50, p99, worst), errors, and the server's peak memory.
//
//   load_bench [--tablets N] [--concurrency N] [--store SPEC] [--dir DIR] [--server BINARY]
//
// SPEC defaults to a SQLite file in DIR (default: a new folder in /dev/shm, else /tmp);
// tests/bench/load runs it on SQLite and on a throwaway PostgreSQL.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "carnet/posix_env.h"
#include "carnet/server_store.h"
#include "carnet/store.h"
#include "carnet/sync_client.h"
#include "carnet/transport.h"

using namespace carnet;

namespace {

constexpr int kAdvisersPerTerritory = 2;
constexpr int kParticipantsPerAdviser = 30;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "load_bench: %s\n", what.c_str());
  std::exit(1);
}

void Check(const Status& status, const std::string& what) {
  if (!status.ok()) Die(what + ": " + status.ToString());
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string DeviceId(int i) {
  char name[32];
  std::snprintf(name, sizeof name, "tab-%03d", i);
  return name;
}
std::string Adviser(int i) { return "adviser-" + std::to_string(i); }
std::string Territory(int i) { return "territory-" + std::to_string(i / kAdvisersPerTerritory); }

// carnet-server serve in a child process, plain HTTP on 127.0.0.1.
class ServerProcess {
 public:
  ServerProcess(const std::string& binary, const std::string& store, const std::string& log) {
    std::vector<std::string> args = {binary, "serve", "--store", store, "--listen", "127.0.0.1:0",
                                     "--plain-http"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    int out[2];
    if (pipe(out) != 0) Die("pipe");
    int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    pid_ = fork();
    if (pid_ < 0) Die("fork");
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
      close(out[0]);
      close(out[1]);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    close(log_fd);
    FILE* lines = fdopen(out[0], "r");
    char line[256] = {};
    if (std::fgets(line, sizeof line, lines) == nullptr) Die("carnet-server did not start: " + log);
    std::fclose(lines);
    std::string text = line;
    port_ = std::atoi(text.substr(text.rfind(':') + 1).c_str());
    if (port_ <= 0) Die("carnet-server said: " + text);
  }
  ~ServerProcess() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // VmHWM of the server process, in KiB.
  long PeakRssKib() const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

struct Options {
  int tablets = 500;
  int concurrency = 0;  // 0: all at once
  std::string store;
  std::string dir;
  std::string server = CARNET_SERVER_BINARY;
};

Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i];
    if (i + 1 >= argc) Die("missing value for " + name);
    std::string value = argv[++i];
    if (name == "--tablets") {
      o.tablets = std::atoi(value.c_str());
    } else if (name == "--concurrency") {
      o.concurrency = std::atoi(value.c_str());
    } else if (name == "--store") {
      o.store = value;
    } else if (name == "--dir") {
      o.dir = value;
    } else if (name == "--server") {
      o.server = value;
    } else {
      Die("unknown option " + name);
    }
  }
  if (o.tablets < kAdvisersPerTerritory) Die("--tablets must be at least 2");
  if (o.concurrency <= 0) o.concurrency = o.tablets;
  return o;
}

// The département's caseload before the day: each adviser's participants, made on an office
// store and pushed straight into the server's store. Returns each adviser's participant ids.
std::vector<std::vector<std::string>> SeedCaseload(ServerStore& server, Env* env,
                                                   const std::string& dir, int tablets) {
  carnet::Device office{"office", "office", {}};
  for (int t = 0; t < tablets; t += kAdvisersPerTerritory) office.territories.push_back(Territory(t));
  Check(server.Enroll(office, HashToken("office-token")), "enrolling the office");
  StoreOptions options;
  options.path = dir + "/office.db";
  options.device_id = "office";
  options.env = env;
  Result<std::unique_ptr<Store>> store = Store::Open(options);
  Check(store.status(), "opening the office store");
  std::vector<std::vector<std::string>> caseload(tablets);
  for (int a = 0; a < tablets; ++a) {
    Result<Transaction> txn = (*store)->Begin();
    Check(txn.status(), "seeding");
    for (int p = 0; p < kParticipantsPerAdviser; ++p) {
      std::string id = (*store)->NewId();
      Check(txn->Put("participants", id,
                     {{"first_name", "Prénom " + std::to_string(p)},
                      {"last_name", "Nom " + std::to_string(a)},
                      {"birth_date", "1980-01-01"},
                      {"commune", "Commune"},
                      {"referent", Adviser(a)},
                      {"territory", Territory(a)},
                      {"entry_date", "2026-03-01"},
                      {"status", "active"},
                      {"phase", "job_search"}}),
            "seeding a participant");
      caseload[a].push_back(id);
    }
    Check(txn->Commit(), "seeding");
  }
  for (;;) {
    Result<std::vector<Operation>> ops = (*store)->PendingOperations(0, wire::kMaxPushOps);
    Check(ops.status(), "reading the office outbox");
    if (ops->empty()) break;
    Result<wire::PushReply> reply =
        server.Push(office, {wire::kProtocolVersion, "office", "", 0, *ops});
    Check(reply.status(), "seeding the server");
    Check((*store)->AcknowledgeOperations(reply->acknowledged_seq), "seeding");
  }
  return caseload;
}

// A day of one adviser: interviews with notes, updates of the caseload, actions agreed.
Status WorkADay(Store& store, const std::string& adviser, const std::vector<std::string>& mine) {
  for (int i = 0; i < 8; ++i) {
    const std::string& participant = mine[static_cast<size_t>(i * 3) % mine.size()];
    std::string interview = store.NewId();
    CARNET_RETURN_IF_ERROR(store.Put("interviews", interview,
                                     {{"participant", participant},
                                      {"adviser", adviser},
                                      {"date_time", "2026-11-23T09:30:00Z"},
                                      {"place", i % 2 ? "home" : "company"},
                                      {"phase", "job_search"},
                                      {"kind", "regular"}}));
    for (int n = 0; n < 2; ++n) {
      Result<Stamp> note = store.Append("interviews", interview, "notes",
                                        "Entretien: démarches et suite, note " +
                                            std::to_string(n));
      if (!note.ok()) return note.status();
    }
    CARNET_RETURN_IF_ERROR(store.Set("participants", participant, "phone", "06000000" +
                                                                           std::to_string(i)));
    std::string action = store.NewId();
    CARNET_RETURN_IF_ERROR(store.Put("actions", action,
                                     {{"participant", participant},
                                      {"label", "Envoyer le CV"},
                                      {"due_date", "2026-12-01"},
                                      {"status", "open"}}));
  }
  return Status::Ok();
}

struct Tablet {
  std::unique_ptr<PosixEnv> env;
  std::unique_ptr<Store> store;
  std::unique_ptr<SyncClient> client;
};

struct Results {
  std::mutex mutex;
  std::vector<double> morning_ms, evening_ms, final_ms;
  std::vector<std::string> errors;
  uint64_t ops_pushed = 0;
};

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t at = std::min(values.size() - 1, static_cast<size_t>(p * (values.size() - 1) + 0.5));
  return values[at];
}

// Runs `step(i)` for every tablet, at most `concurrency` at once, all starting together.
void RunAll(int tablets, int concurrency, const std::function<void(int)>& step) {
  std::atomic<int> next{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < concurrency; ++w) {
    workers.emplace_back([&] {
      for (int i = next++; i < tablets; i = next++) step(i);
    });
  }
  for (std::thread& worker : workers) worker.join();
}

}  // namespace

int main(int argc, char** argv) {
  Options options = ParseOptions(argc, argv);
  const bool own_dir = options.dir.empty();
  if (own_dir) {
    std::string base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string pattern = base + "/carnet-load-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) Die("cannot make a folder in " + base);
    options.dir = pattern;
  }
  std::filesystem::create_directories(options.dir);
  if (options.store.empty()) options.store = "sqlite:" + options.dir + "/server.db";
  PosixEnv env({LogLevel::kWarning, ""});

  std::vector<std::vector<std::string>> caseload;
  std::vector<std::string> tokens(options.tablets);
  {
    Result<std::unique_ptr<ServerStore>> server = OpenServerStore(options.store, {&env});
    Check(server.status(), "opening the server store " + options.store);
    for (int i = 0; i < options.tablets; ++i) {
      tokens[i] = NewDeviceToken(&env);
      Check((*server)->Enroll(carnet::Device{DeviceId(i), Adviser(i), {Territory(i)}},
                              HashToken(tokens[i])),
            "enrolling " + DeviceId(i));
    }
    caseload = SeedCaseload(**server, &env, options.dir, options.tablets);
  }
  ServerProcess server(options.server, options.store, options.dir + "/server.log");

  std::vector<Tablet> tablets(options.tablets);
  for (int i = 0; i < options.tablets; ++i) {
    Tablet& t = tablets[i];
    t.env = std::make_unique<PosixEnv>(PosixEnvOptions{LogLevel::kError, ""});
    StoreOptions store_options;
    store_options.path = options.dir + "/" + DeviceId(i) + ".db";
    store_options.device_id = DeviceId(i);
    store_options.env = t.env.get();
    Result<std::unique_ptr<Store>> store = Store::Open(store_options);
    Check(store.status(), "opening " + store_options.path);
    t.store = std::move(store.value());
    CurlOptions curl;
    curl.base_url = server.url();
    Result<std::unique_ptr<Transport>> transport = MakeCurlTransport(curl);
    Check(transport.status(), "making a transport");
    SyncOptions sync;
    sync.token = tokens[i];
    sync.backoff_initial_ms = 200;
    sync.backoff_max_ms = 5'000;
    sync.max_attempts = 8;
    t.client = std::make_unique<SyncClient>(t.store.get(), t.env.get(),
                                            std::move(transport.value()), sync);
  }

  Results results;
  auto sync = [&](int i, std::vector<double>* latencies, const char* when) {
    auto start = std::chrono::steady_clock::now();
    Status status = tablets[i].client->SyncNow();
    double ms = 1000 * SecondsSince(start);
    std::lock_guard<std::mutex> lock(results.mutex);
    latencies->push_back(ms);
    if (!status.ok()) results.errors.push_back(DeviceId(i) + " " + when + ": " + status.ToString());
  };

  std::printf("load: %d tablets (%d at once), %d participants each, 2 advisers a territory, "
              "store %s\n",
              options.tablets, options.concurrency, kParticipantsPerAdviser,
              options.store.rfind("sqlite:", 0) == 0 ? "SQLite" : "PostgreSQL");
  auto morning = std::chrono::steady_clock::now();
  RunAll(options.tablets, options.concurrency,
         [&](int i) { sync(i, &results.morning_ms, "morning"); });
  double morning_s = SecondsSince(morning);

  for (int i = 0; i < options.tablets; ++i) {
    Check(WorkADay(*tablets[i].store, Adviser(i), caseload[i]), "working on " + DeviceId(i));
    Result<uint64_t> pending = tablets[i].store->PendingCount();
    Check(pending.status(), "counting the outbox");
    results.ops_pushed += *pending;
  }

  auto evening = std::chrono::steady_clock::now();
  RunAll(options.tablets, options.concurrency,
         [&](int i) { sync(i, &results.evening_ms, "evening"); });
  double evening_s = SecondsSince(evening);
  RunAll(options.tablets, options.concurrency,
         [&](int i) { sync(i, &results.final_ms, "final"); });
  const long server_peak_kib = server.PeakRssKib();

  // The tablets hold exactly their scope as the server has it: a hundred of them, spread over
  // all, since each comparison reads the server's whole store.
  int diverged = 0, compared = 0;
  {
    Result<std::unique_ptr<ServerStore>> view = OpenServerStore(options.store, {&env});
    Check(view.status(), "opening the server store to compare");
    const int step = std::max(1, options.tablets / 100);
    for (int i = 0; i < options.tablets; i += step, ++compared) {
      Result<std::string> mine = tablets[i].store->CanonicalDump(true);
      Result<std::string> theirs = (*view)->ScopeDump(DeviceId(i));
      Check(mine.status(), "dumping " + DeviceId(i));
      Check(theirs.status(), "dumping the server's view of " + DeviceId(i));
      Result<uint64_t> pending = tablets[i].store->PendingCount();
      if (*mine != *theirs || !pending.ok() || *pending != 0) ++diverged;
    }
  }

  auto line = [](const char* name, const std::vector<double>& ms, double wall_s) {
    std::printf("  %-8s syncs %zu in %.1f s: p50 %.0f ms, p99 %.0f ms, worst %.0f ms\n", name,
                ms.size(), wall_s, Percentile(ms, 0.5), Percentile(ms, 0.99),
                ms.empty() ? 0.0 : *std::max_element(ms.begin(), ms.end()));
  };
  line("morning", results.morning_ms, morning_s);
  line("evening", results.evening_ms, evening_s);
  std::printf("  evening: %llu operations pushed, %.0f operations/s (a day's work of every "
              "tablet, pushed and the colleague's pulled)\n",
              static_cast<unsigned long long>(results.ops_pushed),
              results.ops_pushed / std::max(evening_s, 1e-9));
  std::printf("  server peak memory: %.1f MiB\n", server_peak_kib / 1024.0);
  std::printf("  errors: %zu; after a last sync, tablets compared with the server's view of "
              "their scope: %d, not equal: %d\n",
              results.errors.size(), compared, diverged);
  for (size_t i = 0; i < std::min<size_t>(results.errors.size(), 10); ++i) {
    std::printf("    %s\n", results.errors[i].c_str());
  }
  tablets.clear();
  std::error_code ignored;
  if (own_dir) std::filesystem::remove_all(options.dir, ignored);
  return results.errors.empty() && diverged == 0 ? 0 : 1;
}
