// Sync through a real SyncServer on 127.0.0.1, measured in one run:
//   - a tablet's first pull of every entry of its scope, against raw SQLite inserting the same
//     rows in transactions of the same size (target: at least half its speed);
//   - the push of offline edits (operations per second);
//   - bytes on the wire per operation, binary and JSON (request and reply bodies);
//   - the client's peak resident memory during each phase;
//   - the latency of small requests: an up-to-date tablet's pull, on a kept-alive connection.
// The server runs in a child process forked before any thread exists, so that the memory
// measured is the client's alone.
//
//   sync_bench [--quick]     --quick: sizes ten times smaller
//
// Prints a table and exits 0 either way: it measures, it does not gate.
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "carnet/posix_env.h"
#include "carnet/server.h"
#include "carnet/server_store.h"
#include "carnet/store.h"
#include "carnet/sync_client.h"
#include "tests/support/peak_rss.h"
#include "tests/support/temp_dir.h"
#include "tests/sync/hooked_transport.h"

namespace carnet::bench {
namespace {

constexpr const char* kPragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;";
constexpr const char* kTerritory = "bassin-nord";
constexpr const char* kAdviser = "adviser-t";
constexpr size_t kEntriesPerFile = 10;  // six participant fields, four interview fields
const char* const kPhases[] = {"assessment", "life_project", "job_search", "professional_project"};

struct Sizes {
  size_t pull_entries = 100'000;
  size_t edits = 10'000;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "sync_bench: %s\n", what.c_str());
  std::exit(2);
}

void Check(const Status& status, const char* what) {
  if (!status.ok()) Die(std::string(what) + ": " + status.ToString());
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The id of the i-th participant ('p') or interview ('i'): 32 hex digits that look drawn at
// random, as the tablets' ids are (they compress as badly), the same in the server and the client.
std::string FileId(size_t i, char kind) {
  auto mix = [](uint64_t x) {  // splitmix64
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  };
  uint64_t seed = 2 * static_cast<uint64_t>(i) + (kind == 'p' ? 0 : 1);
  char id[33];
  std::snprintf(id, sizeof id, "%016llx%016llx", static_cast<unsigned long long>(mix(seed)),
                static_cast<unsigned long long>(mix(~seed)));
  return id;
}

// --- The server, in a child process
// ---------------------------------------------------------------

// What a colleague's tablet pushed earlier: participants of the benchmark tablet's territory,
// each with an interview, ten register writes per file.
std::vector<Operation> Caseload(size_t entries, int64_t start_ms) {
  std::vector<Operation> ops;
  Hlc hlc = MakeHlc(start_ms, 0);
  auto write = [&](const char* collection, const std::string& record, const char* field,
                   std::string value) {
    Operation op;
    op.device = "bench-colleague";
    op.seq = ops.size() + 1;
    op.hlc = ++hlc;
    op.kind = OpKind::kWrite;
    op.collection = collection;
    op.record = record;
    op.field = field;
    op.value = std::move(value);
    ops.push_back(std::move(op));
  };
  for (size_t i = 0; i < entries / kEntriesPerFile; ++i) {
    std::string p = FileId(i, 'p'), n = std::to_string(i);
    write("participants", p, "first_name", "Prenom " + n);
    write("participants", p, "last_name", "Nom " + n);
    write("participants", p, "phone", "06 00 00 " + n);
    write("participants", p, "phase", kPhases[i % 4]);
    write("participants", p, "referent", "adviser-c");
    write("participants", p, "territory", kTerritory);
    std::string interview = FileId(i, 'i');
    write("interviews", interview, "participant", p);
    write("interviews", interview, "date_time", "2026-11-20T09:30:00Z");
    write("interviews", interview, "place", "office");
    write("interviews", interview, "phase", kPhases[i % 4]);
  }
  return ops;
}

struct Tokens {
  std::string colleague, binary, json;
};

// Fills a server store and serves it until `quit` reaches end of file. Runs in the child.
[[noreturn]] void ServeChild(const std::string& path, const Tokens& tokens, size_t entries,
                             int ready, int quit) {
  PosixEnv env;
  Result<std::unique_ptr<ServerStore>> store = OpenServerStore("sqlite:" + path, {&env});
  Check(store.status(), "opening the server store");
  Check(
      (*store)->Enroll({"bench-colleague", "adviser-c", {kTerritory}}, HashToken(tokens.colleague)),
      "enrolling");
  Check((*store)->Enroll({"bench-tablet", kAdviser, {kTerritory}}, HashToken(tokens.binary)),
        "enrolling");
  Check((*store)->Enroll({"bench-json", kAdviser, {kTerritory}}, HashToken(tokens.json)),
        "enrolling");
  Result<Device> colleague = (*store)->Authenticate(HashToken(tokens.colleague));
  Check(colleague.status(), "authenticating");
  // An hour ago, so that no stamp is ahead of this machine's clock.
  std::vector<Operation> ops = Caseload(entries, env.NowMillis() - 3600 * 1000);
  for (size_t at = 0; at < ops.size(); at += wire::kMaxPushOps) {
    std::vector<Operation> batch(ops.begin() + at,
                                 ops.begin() + std::min(ops.size(), at + wire::kMaxPushOps));
    Check((*store)->Push(*colleague, {wire::kProtocolVersion, colleague->id, "", 0, batch}).status(),
          "filling the server");
  }
  SyncServer server({"127.0.0.1", 0, &env, store->get()});
  Check(server.Start(), "starting the server");
  int port = server.port();
  if (write(ready, &port, sizeof port) != sizeof port) _exit(3);
  char byte;
  while (read(quit, &byte, 1) > 0) {
  }
  server.Stop();
  _exit(0);
}

class ChildServer {
 public:
  ChildServer(const std::string& path, const Tokens& tokens, size_t entries) {
    int ready[2], quit[2];
    if (pipe(ready) != 0 || pipe(quit) != 0) Die("pipe failed");
    pid_ = fork();
    if (pid_ < 0) Die("fork failed");
    if (pid_ == 0) {
      close(ready[0]);
      close(quit[1]);
      ServeChild(path, tokens, entries, ready[1], quit[0]);
    }
    close(ready[1]);
    close(quit[0]);
    quit_ = quit[1];
    if (read(ready[0], &port_, sizeof port_) != sizeof port_) Die("the server did not start");
    close(ready[0]);
  }
  ~ChildServer() {
    close(quit_);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int quit_ = -1;
  int port_ = 0;
};

// --- The client
// -----------------------------------------------------------------------------------

struct Tablet {
  std::unique_ptr<Store> store;
  std::unique_ptr<SyncClient> client;
  testing::WireBytes bytes;
  // Since the last Reset(): when the sync's first pull left, the bytes before it (the push's),
  // and the time spent waiting for replies (server and loopback network), by path.
  std::chrono::steady_clock::time_point first_pull;
  testing::WireBytes push_bytes;
  double push_wait_s = 0, pull_wait_s = 0;
  double push_slowest_s = 0, pull_slowest_s = 0;
  std::vector<double> waits_ms;  // each request's

  void Reset() {
    bytes = {};
    push_bytes = {};
    first_pull = {};
    push_wait_s = pull_wait_s = push_slowest_s = pull_slowest_s = 0;
    waits_ms.clear();
  }
};

std::unique_ptr<Tablet> OpenTablet(Env* env, const testing::TempDir& dir, const std::string& device,
                                   const std::string& url, const std::string& token,
                                   wire::Format format) {
  auto tablet = std::make_unique<Tablet>();
  StoreOptions options;
  options.path = dir.File(device + ".db");
  options.device_id = device;
  options.env = env;
  Result<std::unique_ptr<Store>> store = Store::Open(options);
  Check(store.status(), "opening the tablet's store");
  tablet->store = std::move(store.value());
  CurlOptions curl_options;
  curl_options.base_url = url;
  Result<std::unique_ptr<Transport>> curl = MakeCurlTransport(curl_options);
  Check(curl.status(), "making the transport");
  Tablet* raw = tablet.get();
  auto counted = testing::CountingTransport(std::move(curl.value()), &tablet->bytes);
  auto transport = std::make_unique<testing::HookedTransport>(
      std::move(counted), [raw](int, const HttpRequest& request, Transport& inner) {
        if (request.path == "/v1/pull" &&
            raw->first_pull == std::chrono::steady_clock::time_point{}) {
          raw->first_pull = std::chrono::steady_clock::now();
          raw->push_bytes = raw->bytes;
        }
        auto start = std::chrono::steady_clock::now();
        Result<HttpReply> reply = inner.Post(request);
        double waited = SecondsSince(start);
        raw->waits_ms.push_back(1000 * waited);
        const bool push = request.path == "/v1/push";
        (push ? raw->push_wait_s : raw->pull_wait_s) += waited;
        double& slowest = push ? raw->push_slowest_s : raw->pull_slowest_s;
        slowest = std::max(slowest, waited);
        return reply;
      });
  SyncOptions sync;
  sync.token = token;
  sync.format = format;
  tablet->client =
      std::make_unique<SyncClient>(tablet->store.get(), env, std::move(transport), sync);
  return tablet;
}

struct Phase {
  double seconds = 0;
  double waiting_s = 0;  // of which waiting for replies
  double slowest_s = 0;  // the slowest request
  uint64_t items = 0;
  testing::WireBytes bytes;
  long peak_kib = 0;  // during the phase (for a push: the whole sync)
  long base_kib = 0;  // resident when it began
};

Phase FirstPull(Tablet& tablet) {
  Phase phase;
  tablet.Reset();
  testing::ResetPeakRss();
  phase.base_kib = testing::PeakRssKib();
  auto start = std::chrono::steady_clock::now();
  Check(tablet.client->SyncNow(), "first pull");
  phase.seconds = SecondsSince(start);
  phase.peak_kib = testing::PeakRssKib();
  phase.bytes = tablet.bytes;
  phase.waiting_s = tablet.pull_wait_s;
  phase.slowest_s = tablet.pull_slowest_s;
  Result<std::string> dump = tablet.store->CanonicalDump();
  Check(dump.status(), "dumping");
  for (char c : *dump) phase.items += c == '\n';
  return phase;
}

// `edits` register writes made offline, one transaction each (not timed), then one sync; the
// push is timed up to the sync's first pull.
Phase PushEdits(Tablet& tablet, size_t edits, size_t files) {
  for (size_t i = 0; i < edits; ++i) {
    Check(tablet.store->Set("participants", FileId(i % files, 'p'), "phase", kPhases[(i + 1) % 4]),
          "an offline edit");
  }
  tablet.Reset();
  Phase phase;
  testing::ResetPeakRss();
  phase.base_kib = testing::PeakRssKib();
  auto start = std::chrono::steady_clock::now();
  Check(tablet.client->SyncNow(), "pushing the edits");
  phase.seconds = std::chrono::duration<double>(tablet.first_pull - start).count();
  phase.peak_kib = testing::PeakRssKib();
  phase.bytes = tablet.push_bytes;
  phase.waiting_s = tablet.push_wait_s;
  phase.slowest_s = tablet.push_slowest_s;
  Result<uint64_t> pending = tablet.store->PendingCount();
  Check(pending.status(), "counting the outbox");
  if (*pending != 0) Die("the push left operations in the outbox");
  phase.items = edits;
  return phase;
}

// Syncs of a tablet that is up to date: each is one pull whose reply is a few dozen bytes, on a
// kept-alive connection. What the server and the TCP stack add to a small request (a reply
// held back by a delayed acknowledgement shows as about 40 ms).
struct Latency {
  double median_ms = 0, slowest_ms = 0;
  size_t requests = 0;
};

Latency SmallRequests(Tablet& tablet, int syncs) {
  Check(tablet.client->SyncNow(), "catching up");
  tablet.Reset();
  for (int i = 0; i < syncs; ++i) Check(tablet.client->SyncNow(), "an up-to-date sync");
  std::vector<double> ms = tablet.waits_ms;
  if (ms.empty()) Die("no request measured");
  std::sort(ms.begin(), ms.end());
  return Latency{ms[ms.size() / 2], ms.back(), ms.size()};
}

// --- Raw SQLite
// -----------------------------------------------------------------------------------

struct Row {
  std::string text[4];  // collection, record, field, element
  std::string stamp, value, refs;
  int64_t kind = 0, live = 0;
  bool has_value = false, has_refs = false;
};

void Exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "?";
    sqlite3_free(error);
    Die("sqlite: " + message);
  }
}

// The entries the tablet holds after its first pull, read straight from its file.
std::vector<Row> ReadRows(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) Die("cannot open " + path);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT * FROM entries", -1, &st, nullptr) != SQLITE_OK) {
    Die(sqlite3_errmsg(db));
  }
  auto blob = [&](int column) {
    return std::string(static_cast<const char*>(sqlite3_column_blob(st, column)),
                       sqlite3_column_bytes(st, column));
  };
  std::vector<Row> rows;
  while (sqlite3_step(st) == SQLITE_ROW) {
    Row row;
    for (int c = 0; c < 4; ++c) row.text[c] = blob(c);
    row.stamp = blob(4);
    row.kind = sqlite3_column_int64(st, 5);
    row.live = sqlite3_column_int64(st, 6);
    row.has_value = sqlite3_column_type(st, 7) != SQLITE_NULL;
    row.value = blob(7);
    row.has_refs = sqlite3_column_type(st, 8) != SQLITE_NULL;
    row.refs = blob(8);
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

// The same rows into a table of the same layout, `batch` rows per transaction: the least a
// first pull has to write.
double BulkInsert(const std::string& path, const std::vector<Row>& rows, size_t batch) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) Die("cannot open " + path);
  Exec(db, kPragmas);
  Exec(db,
       "CREATE TABLE entries(collection TEXT NOT NULL, record TEXT NOT NULL, field TEXT NOT NULL, "
       "element TEXT NOT NULL, stamp BLOB NOT NULL, kind INTEGER NOT NULL, live INTEGER NOT NULL, "
       "value BLOB, refs BLOB, PRIMARY KEY(collection, record, field, element, stamp)) "
       "WITHOUT ROWID");
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "INSERT INTO entries VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &st,
                         nullptr) != SQLITE_OK) {
    Die(sqlite3_errmsg(db));
  }
  auto start = std::chrono::steady_clock::now();
  for (size_t at = 0; at < rows.size(); at += batch) {
    Exec(db, "BEGIN IMMEDIATE");
    for (size_t i = at; i < std::min(rows.size(), at + batch); ++i) {
      const Row& r = rows[i];
      for (int c = 0; c < 4; ++c) {
        sqlite3_bind_text(st, c + 1, r.text[c].data(), static_cast<int>(r.text[c].size()),
                          SQLITE_STATIC);
      }
      sqlite3_bind_blob(st, 5, r.stamp.data(), static_cast<int>(r.stamp.size()), SQLITE_STATIC);
      sqlite3_bind_int64(st, 6, r.kind);
      sqlite3_bind_int64(st, 7, r.live);
      if (r.has_value) {
        sqlite3_bind_blob(st, 8, r.value.data(), static_cast<int>(r.value.size()), SQLITE_STATIC);
      } else {
        sqlite3_bind_null(st, 8);
      }
      if (r.has_refs) {
        sqlite3_bind_blob(st, 9, r.refs.data(), static_cast<int>(r.refs.size()), SQLITE_STATIC);
      } else {
        sqlite3_bind_null(st, 9);
      }
      if (sqlite3_step(st) != SQLITE_DONE) Die(sqlite3_errmsg(db));
      sqlite3_reset(st);
    }
    Exec(db, "COMMIT");
  }
  double seconds = SecondsSince(start);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return seconds;
}

// Reads the rows and inserts them in a child process, so that their memory never counts as the
// client's. Returns the insert's seconds.
double BulkInsertInChild(const std::string& tablet_path, const std::string& raw_path,
                         size_t batch) {
  int result[2];
  if (pipe(result) != 0) Die("pipe failed");
  pid_t pid = fork();
  if (pid < 0) Die("fork failed");
  if (pid == 0) {
    close(result[0]);
    double seconds = BulkInsert(raw_path, ReadRows(tablet_path), batch);
    if (write(result[1], &seconds, sizeof seconds) != sizeof seconds) _exit(3);
    _exit(0);
  }
  close(result[1]);
  double seconds = 0;
  if (read(result[0], &seconds, sizeof seconds) != sizeof seconds) Die("the bulk insert failed");
  close(result[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return seconds;
}

// --- Report
// ---------------------------------------------------------------------------------------

double PerItem(const testing::WireBytes& bytes, uint64_t items) {
  return items ? static_cast<double>(bytes.total()) / static_cast<double>(items) : 0;
}

double Rate(const Phase& phase) { return static_cast<double>(phase.items) / phase.seconds; }

struct Report {
  Sizes sizes;
  Phase pull, pull_json, push, push_json;
  double raw_seconds = 0;
  Latency small;
};

void Print(const Report& r) {
  const double raw_rate = static_cast<double>(r.pull.items) / r.raw_seconds;
  const double ratio = Rate(r.pull) / raw_rate;
  std::printf(
      "Carnet sync benchmark: first pull of %zu entries, push of %zu offline edits\n"
      "(SyncServer in a child process on 127.0.0.1; SQLite WAL, synchronous=FULL on both "
      "sides;\n client defaults: pull batches of %u, push batches of %zu)\n\n",
      r.sizes.pull_entries, r.sizes.edits, SyncOptions().pull_batch, SyncOptions().push_batch);
  std::printf("%-40s %11s %11s %6s %8s  %-6s %s\n", "scenario", "carnet /s", "sqlite /s", "ratio",
              "target", "result", "waiting for replies");
  auto waiting = [](const Phase& p) {
    return std::to_string(static_cast<int>(100 * p.waiting_s / p.seconds)) + "%, slowest " +
           std::to_string(static_cast<int>(1000 * p.slowest_s)) + " ms";
  };
  std::printf("%-40s %11.0f %11.0f %6.2f  >= 0.50  %-6s %s\n", "first pull, binary, vs bulk insert",
              Rate(r.pull), raw_rate, ratio, ratio >= 0.5 ? "PASS" : "MISS",
              waiting(r.pull).c_str());
  std::printf("%-40s %11.0f %11.0f %6.2f  %8s  %-6s %s\n", "first pull, JSON", Rate(r.pull_json),
              raw_rate, Rate(r.pull_json) / raw_rate, "", "", waiting(r.pull_json).c_str());
  std::printf("%-40s %11.0f %11s %6s  %8s  %-6s %s\n", "push of offline edits, binary (ops)",
              Rate(r.push), "", "", "", "", waiting(r.push).c_str());
  std::printf("%-40s %11.0f %11s %6s  %8s  %-6s %s\n\n", "push of offline edits, JSON (ops)",
              Rate(r.push_json), "", "", "", "", waiting(r.push_json).c_str());

  std::printf("%-40s %11s %11s %11s\n", "bytes on the wire (bodies, both ways)", "binary", "JSON",
              "JSON/binary");
  double pull_b = PerItem(r.pull.bytes, r.pull.items);
  double pull_j = PerItem(r.pull_json.bytes, r.pull_json.items);
  double push_b = PerItem(r.push.bytes, r.push.items);
  double push_j = PerItem(r.push_json.bytes, r.push_json.items);
  std::printf("%-40s %11.1f %11.1f %11.2f\n", "  per entry pulled", pull_b, pull_j,
              pull_j / pull_b);
  std::printf("%-40s %11.1f %11.1f %11.2f\n\n", "  per operation pushed", push_b, push_j,
              push_j / push_b);

  std::printf("%-40s %11s %11s %11s\n", "client resident memory (KiB)", "at start", "peak",
              "growth");
  for (const auto& [name, p] :
       {std::pair<const char*, const Phase*>{"  first pull, binary", &r.pull},
        {"  first pull, JSON", &r.pull_json},
        {"  push of offline edits, binary", &r.push},
        {"  push of offline edits, JSON", &r.push_json}}) {
    std::printf("%-40s %11ld %11ld %11ld\n", name, p->base_kib, p->peak_kib,
                p->peak_kib - p->base_kib);
  }

  std::printf("\n%-40s %11s %11s %11s\n", "small requests (ms)", "median", "slowest",
              "requests");
  std::printf("%-40s %11.2f %11.2f %11zu\n", "  pull of an up-to-date tablet", r.small.median_ms,
              r.small.slowest_ms, r.small.requests);
}

int Main(int argc, char** argv) {
  Report report;
  Sizes& sizes = report.sizes;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") != 0) Die(std::string("unknown argument ") + argv[i]);
    sizes.pull_entries /= 10;
    sizes.edits /= 10;
  }
  testing::TempDir dir;
  PosixEnv env;
  Tokens tokens{NewDeviceToken(&env), NewDeviceToken(&env), NewDeviceToken(&env)};
  // Forked before this process starts any thread.
  ChildServer server(dir.File("server.db"), tokens, sizes.pull_entries);
  const size_t files = sizes.pull_entries / kEntriesPerFile;

  auto binary =
      OpenTablet(&env, dir, "bench-tablet", server.url(), tokens.binary, wire::Format::kBinary);
  auto json = OpenTablet(&env, dir, "bench-json", server.url(), tokens.json, wire::Format::kJson);
  report.pull = FirstPull(*binary);
  if (report.pull.items != sizes.pull_entries) Die("the first pull missed entries");
  report.raw_seconds =
      BulkInsertInChild(dir.File("bench-tablet.db"), dir.File("raw.db"), SyncOptions().pull_batch);
  report.pull_json = FirstPull(*json);
  report.push = PushEdits(*binary, sizes.edits, files);
  report.push_json = PushEdits(*json, sizes.edits, files);
  report.small = SmallRequests(*binary, 30);
  binary.reset();
  json.reset();
  Print(report);
  return 0;
}

}  // namespace
}  // namespace carnet::bench

int main(int argc, char** argv) { return carnet::bench::Main(argc, argv); }
