// Throughput of the local store against raw SQLite doing the least the same job needs, both
// measured in this run on files in one temp folder with the pragmas the store uses (WAL journal,
// synchronous=FULL), so that the ratios hold whatever the machine and its disk.
//
//   core_bench [--quick] [--clear]     --quick: sizes ten times smaller
//                                      --clear: the store without encryption at rest
//
// The store is encrypted at rest, as on a tablet (core/ENCRYPTION.md): its master key in a key
// store in memory.
// Prints one line per scenario (ops/s of each side, ratio, target, PASS/MISS) and exits 0 either
// way: it measures, it does not gate.
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "carnet/posix_env.h"
#include "carnet/store.h"
#include "tests/support/memory_key_store.h"
#include "tests/support/temp_dir.h"

namespace carnet::bench {
namespace {

constexpr const char* kPragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;";
constexpr size_t kEditRecords = 100;

struct Sizes {
  size_t edits = 2000;
  size_t remote_records = 10000;  // ten operations each
  size_t batch = 1000;
};

struct Figure {
  std::string scenario;
  double carnet_ops_per_s = 0;
  double sqlite_ops_per_s = 0;
  double target = 0;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "core_bench: %s\n", what.c_str());
  std::exit(2);
}

void Check(const Status& status, const char* what) {
  if (!status.ok()) Die(std::string(what) + ": " + status.ToString());
}

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Runs both sides chunk by chunk, alternately and each first in turn, so that a disk or a
// neighbour that slows down mid-run weighs on both sides alike. Fills in both sides' ops/s.
template <typename Carnet, typename Raw>
void Race(size_t ops, size_t chunks, Carnet carnet, Raw raw, Figure* figure) {
  double carnet_s = 0, raw_s = 0;
  for (size_t c = 0; c < chunks; ++c) {
    for (int turn = 0; turn < 2; ++turn) {
      Stopwatch watch;
      bool carnet_turn = (turn == 0) == (c % 2 == 0);
      carnet_turn ? carnet(c) : raw(c);
      (carnet_turn ? carnet_s : raw_s) += watch.Seconds();
    }
  }
  figure->carnet_ops_per_s = static_cast<double>(ops) / carnet_s;
  figure->sqlite_ops_per_s = static_cast<double>(ops) / raw_s;
}

// --- Raw SQLite ---------------------------------------------------------------------------------

class RawDb {
 public:
  RawDb(const std::string& path, const char* schema) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) Die("cannot open " + path);
    Exec(kPragmas);
    Exec(schema);
  }
  ~RawDb() {
    sqlite3_finalize(insert_);
    sqlite3_close(db_);
  }

  void Exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      std::string message = error ? error : "?";
      sqlite3_free(error);
      Die(std::string("sqlite: ") + message);
    }
  }
  void PrepareInsert(const char* sql) {
    if (sqlite3_prepare_v2(db_, sql, -1, &insert_, nullptr) != SQLITE_OK) Die(sqlite3_errmsg(db_));
  }
  void Insert(const std::vector<std::string>& columns) {
    for (size_t i = 0; i < columns.size(); ++i) {
      sqlite3_bind_text(insert_, static_cast<int>(i + 1), columns[i].data(),
                        static_cast<int>(columns[i].size()), SQLITE_STATIC);
    }
    if (sqlite3_step(insert_) != SQLITE_DONE) Die(sqlite3_errmsg(db_));
    sqlite3_reset(insert_);
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
};

// --- Scenario 1: local edits, one transaction each ----------------------------------------------

const char* const kPhases[] = {"assessment",           "life_project", "health",
                               "professional_project", "job_search",   "in_work_followup"};
const char* const kStatuses[] = {"active", "suspended", "exited"};

// The i-th edit of the run, the same on both sides: (record index, field, value).
struct Edit {
  size_t record;
  std::string field;
  std::string value;
};

Edit NthEdit(size_t i) {
  size_t record = i % kEditRecords;
  switch ((i / kEditRecords) % 4) {
    case 0:
      return {record, "phase", kPhases[i % 6]};
    case 1:
      return {record, "phone", "06 12 34 " + std::to_string(10000 + i % 90000)};
    case 2:
      return {record, "status", kStatuses[i % 3]};
    default:
      return {record, "commune", "Commune " + std::to_string(i % 500)};
  }
}

KeyStore* key_store = &testing::ProcessKeyStore();  // null with --clear

std::unique_ptr<Store> OpenStore(Env* env, const std::string& path, const std::string& device) {
  StoreOptions options;
  options.path = path;
  options.device_id = device;
  options.env = env;
  options.key_store = key_store;
  Result<std::unique_ptr<Store>> store = Store::Open(options);
  Check(store.status(), "opening the store");
  return std::move(store.value());
}

Figure MeasureEdits(Env* env, const testing::TempDir& dir, size_t edits) {
  std::unique_ptr<Store> store = OpenStore(env, dir.File("edits.db"), "bench-local");
  RawDb raw(dir.File("edits-raw.db"),
            "CREATE TABLE fields(collection TEXT, record TEXT, field TEXT, value TEXT, "
            "PRIMARY KEY(collection, record, field)) WITHOUT ROWID;");
  raw.PrepareInsert("INSERT OR REPLACE INTO fields VALUES(?, ?, ?, ?)");
  std::vector<std::string> ids;
  for (size_t r = 0; r < kEditRecords; ++r) {
    ids.push_back(store->NewId());
    Check(store->Put("participants", ids.back(),
                     {{"first_name", "Camille"}, {"phase", "assessment"}}),
          "creating participants");
  }
  // Turns of a few edits: a commit waits on the disk, whose speed swings from one second to the
  // next on a shared machine.
  constexpr size_t kEditsPerTurn = 5;
  auto range = [&](size_t turn, auto edit_fn) {
    for (size_t i = turn * kEditsPerTurn; i < std::min(edits, (turn + 1) * kEditsPerTurn); ++i) {
      edit_fn(NthEdit(i));
    }
  };
  Figure figure{"local edits: Store::Set vs 1-row commit", 0, 0, 0.8};
  Race(
      edits, (edits + kEditsPerTurn - 1) / kEditsPerTurn,
      [&](size_t chunk) {
        range(chunk, [&](const Edit& e) {
          Check(store->Set("participants", ids[e.record], e.field, e.value), "Store::Set");
        });
      },
      [&](size_t chunk) {
        // Autocommit: one transaction per row.
        range(chunk, [&](const Edit& e) {
          raw.Insert({"participants", ids[e.record], e.field, e.value});
        });
      },
      &figure);
  return figure;
}

// --- Scenario 2: applying remote operations -----------------------------------------------------

// A remote device's outbox: each record gets six register writes, one set add or log append at
// creation, and three more operations 300 records later (two writes that replace the previous
// value of their field, so their refs chain, and one more add or append).
class RemoteDevice {
 public:
  explicit RemoteDevice(int64_t start_ms) : hlc_(MakeHlc(start_ms, 0)), random_(7) {}

  std::vector<Operation> Generate(size_t records) {
    constexpr size_t kLag = 300;
    for (size_t r = 0; r < records; ++r) {
      ids_.push_back(NewId());
      Create(r);
      if (r >= kLag) Edit(r - kLag);
    }
    for (size_t r = records > kLag ? records - kLag : 0; r < records; ++r) Edit(r);
    return std::move(ops_);
  }

 private:
  static bool IsParticipant(size_t r) { return r % 2 == 0; }

  std::string NewId() {
    char hex[33];
    std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(random_()),
                  static_cast<unsigned long long>(random_()));
    return hex;
  }

  Operation& Emit(OpKind kind, size_t r, const std::string& field) {
    Operation op;
    op.device = "tablet-remote";
    op.seq = ops_.size() + 1;
    op.hlc = ++hlc_;
    op.kind = kind;
    op.collection = IsParticipant(r) ? "participants" : "interviews";
    op.record = ids_[r];
    op.field = field;
    ops_.push_back(std::move(op));
    return ops_.back();
  }

  void Write(size_t r, const std::string& field, std::string value) {
    Operation& op = Emit(OpKind::kWrite, r, field);
    op.value = std::move(value);
    Stamp& previous = last_write_[{r, field}];
    if (previous.hlc != 0) op.refs.push_back(previous);
    previous = op.stamp();
  }

  void AddOrAppend(size_t r, size_t n) {
    if (IsParticipant(r)) {
      static const char* const kBarriers[] = {"mobility", "childcare", "housing", "language"};
      Emit(OpKind::kAdd, r, "barriers").element = kBarriers[(r + n) % 4];
    } else {
      Emit(OpKind::kAppend, r, "notes").value =
          "Note " + std::to_string(n) + ": discussed the next steps of the project.";
    }
  }

  void Create(size_t r) {
    std::string n = std::to_string(r);
    if (IsParticipant(r)) {
      Write(r, "first_name", "Prenom" + n);
      Write(r, "last_name", "Nom" + n);
      Write(r, "phone", "06 00 00 " + n);
      Write(r, "phase", kPhases[r % 6]);
      Write(r, "status", "active");
      Write(r, "territory", "bassin-" + std::to_string(r % 12));
    } else {
      Write(r, "participant", ids_[r - 1]);
      Write(r, "adviser", "adviser-" + std::to_string(r % 40));
      Write(r, "date_time", "2026-11-20T09:30:00Z");
      Write(r, "place", "office");
      Write(r, "phase", kPhases[r % 6]);
      Write(r, "kind", "regular");
    }
    AddOrAppend(r, 1);
  }

  void Edit(size_t r) {
    if (IsParticipant(r)) {
      Write(r, "phase", kPhases[(r + 1) % 6]);
      Write(r, "status", "suspended");
    } else {
      Write(r, "phase", kPhases[(r + 1) % 6]);
      Write(r, "next_appointment", "2026-12-04T14:00:00Z");
    }
    AddOrAppend(r, 2);
  }

  Hlc hlc_;
  std::mt19937_64 random_;
  std::vector<std::string> ids_;
  std::vector<Operation> ops_;
  std::map<std::pair<size_t, std::string>, Stamp> last_write_;
};

Figure MeasureRemote(Env* env, const testing::TempDir& dir, const std::vector<Operation>& ops,
                     size_t batch) {
  std::unique_ptr<Store> store = OpenStore(env, dir.File("remote.db"), "bench-local");
  RawDb raw(dir.File("remote-raw.db"),
            "CREATE TABLE rows(collection TEXT, record TEXT, field TEXT, value TEXT, "
            "PRIMARY KEY(collection, record, field, value)) WITHOUT ROWID;");
  raw.PrepareInsert("INSERT OR REPLACE INTO rows VALUES(?, ?, ?, ?)");
  size_t batches = (ops.size() + batch - 1) / batch;
  auto slice = [&](size_t b) {
    return std::vector<Operation>(ops.begin() + b * batch,
                                  ops.begin() + std::min((b + 1) * batch, ops.size()));
  };
  Figure figure{"remote ops: ApplyRemote vs bulk insert", 0, 0, 0.5};
  Race(
      ops.size(), batches,
      [&](size_t b) {
        std::vector<Operation> part = slice(b);
        Result<ApplyStats> stats = store->ApplyRemote(part);
        Check(stats.status(), "Store::ApplyRemote");
        if (stats->applied != part.size()) {
          Die("ApplyRemote counted fresh operations as duplicates");
        }
      },
      [&](size_t b) {
        raw.Exec("BEGIN IMMEDIATE");
        for (const Operation& op : slice(b)) {
          raw.Insert({op.collection, op.record, op.field, op.value.value_or(op.element)});
        }
        raw.Exec("COMMIT");
      },
      &figure);
  return figure;
}

// --- Report -------------------------------------------------------------------------------------

void Print(const std::vector<Figure>& figures) {
  std::printf("%-40s %13s %13s %6s %8s  %s\n", "scenario", "carnet ops/s", "sqlite ops/s", "ratio",
              "target", "result");
  for (const Figure& f : figures) {
    double ratio = f.carnet_ops_per_s / f.sqlite_ops_per_s;
    std::string target = ">= " + std::to_string(f.target).substr(0, 4);
    std::printf("%-40s %13.0f %13.0f %6.2f %8s  %s\n", f.scenario.c_str(), f.carnet_ops_per_s,
                f.sqlite_ops_per_s, ratio, target.c_str(), ratio >= f.target ? "PASS" : "MISS");
  }
}

int Main(int argc, char** argv) {
  Sizes sizes;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--clear") == 0) {
      key_store = nullptr;
      continue;
    }
    if (std::strcmp(argv[i], "--quick") != 0) Die(std::string("unknown argument ") + argv[i]);
    sizes.edits /= 10;
    sizes.remote_records /= 10;
  }
  testing::TempDir dir;
  PosixEnv env;
  std::vector<Figure> figures;

  figures.push_back(MeasureEdits(&env, dir, sizes.edits));

  // An hour ago, so that no stamp is refused as ahead of this machine's clock.
  RemoteDevice device(env.NowMillis() - 3600 * 1000);
  std::vector<Operation> ops = device.Generate(sizes.remote_records);
  figures.push_back(MeasureRemote(&env, dir, ops, sizes.batch));

  std::printf("Carnet core benchmark: %zu local edits, %zu remote operations in batches of %zu\n",
              sizes.edits, ops.size(), sizes.batch);
  std::printf("Files in %s, journal_mode=WAL, synchronous=FULL; the two sides run in turns.\n",
              dir.path().parent_path().c_str());
  std::printf("The store %s.\n", key_store ? "encrypted at rest (notes and barriers sealed)"
                                             : "in clear (--clear)");
  std::printf(
      "  local edits: Store::Set, one transaction each with its outbox row\n"
      "               vs INSERT OR REPLACE of one row per transaction\n");
  std::printf(
      "  remote ops:  Store::ApplyRemote, %zu operations per call\n"
      "               vs INSERT of their (collection, record, field, value), %zu per "
      "transaction\n\n",
      sizes.batch, sizes.batch);
  Print(figures);
  return 0;
}

}  // namespace
}  // namespace carnet::bench

int main(int argc, char** argv) { return carnet::bench::Main(argc, argv); }
