// A département's first sync: a tablet pushes a large caseload, a fresh tablet pulls it all
// through the real server, and the puller's memory stays bounded by the batch, not the total.
#include <algorithm>
#include <chrono>

#include <catch2/catch.hpp>

#include "tests/support/peak_rss.h"
#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// `ops` register writes on participants of `territory`, ten per participant, committed a hundred
// participants at a time.
void WriteCaseload(Store& store, size_t ops, const std::string& referent,
                   const std::string& territory) {
  static const char* const kPhases[] = {"assessment", "life_project", "job_search"};
  for (size_t done = 0; done < ops;) {
    Result<Transaction> txn = store.Begin();
    SYNC_REQUIRE_OK(txn);
    for (int i = 0; i < 100 && done < ops; ++i, done += 10) {
      std::string n = std::to_string(done / 10);
      SYNC_REQUIRE_OK(txn->Put("participants", store.NewId(),
                               {{"first_name", "Prenom " + n},
                                {"last_name", "Nom " + n},
                                {"birth_date", "1985-04-12"},
                                {"gender", "undisclosed"},
                                {"commune", "Saint-Flour"},
                                {"phone", "06 00 00 " + n},
                                {"email", "p" + n + "@example.org"},
                                {"referent", referent},
                                {"territory", territory},
                                {"phase", kPhases[done % 3]}}));
    }
    SYNC_REQUIRE_OK(txn->Commit());
  }
}

void FirstSync(size_t ops) {
  ServerFixture server;
  auto writer = server.Join("tab-writer", "adviser-w", {kNorth},
                            [](SyncOptions* o) { o->push_batch = wire::kMaxPushOps; });
  auto reader = server.Join("tab-reader", "adviser-r", {kNorth},
                            [](SyncOptions* o) { o->pull_batch = 2000; });
  WriteCaseload(writer->store(), ops, "adviser-w", kNorth);
  REQUIRE(writer->Pending() == ops);

  auto start = std::chrono::steady_clock::now();
  RequireSynced(*writer);
  double push_s = Seconds(start);
  CHECK(writer->Pending() == 0);

  long before_kib = PeakRssKib();
  bool reset = ResetPeakRss();
  long from_kib = PeakRssKib();
  start = std::chrono::steady_clock::now();
  RequireSynced(*reader);
  double pull_s = Seconds(start);
  long after_kib = PeakRssKib();

  WARN("first sync of " << ops << " operations: push " << push_s << " s ("
                        << static_cast<long>(ops / push_s) << " ops/s), pull " << pull_s << " s ("
                        << static_cast<long>(ops / pull_s) << " entries/s); peak RSS "
                        << (reset ? "during the pull " : "of the process ") << from_kib << " -> "
                        << after_kib << " KiB (peak before the pull " << before_kib << " KiB)");
  // Pulls come in batches: what the puller holds at once does not grow with the total.
  if (reset && kMemoryBoundsHold) CHECK(after_kib - from_kib < 64 * 1024);
  std::string dump = reader->Dump();
  CHECK(static_cast<size_t>(std::count(dump.begin(), dump.end(), '\n')) == ops);
  CHECK(dump == writer->Dump());
  CHECK_IN_SCOPE(server, *reader);
}

}  // namespace

// About 20 s on two cores: in the default run, tagged so that it can be left out ("~[slow]").
TEST_CASE("A first sync of 100k operations completes and a fresh tablet pulls them all",
          "[sync][server][load][slow]") {
  FirstSync(100'000);
}
