// carnet-server inside the simulation: the real ServerStore on a real SQLite file, behind the
// request handling of sync/server/server.cc (authentication, protocol and format negotiation, wire
// encoding, error replies, the purge after pulls), called in-process instead of over a socket so
// that the whole run stays on one thread and replays from its seed.
//
// It also watches what it accepts, for the oracles: every operation applied (never twice, never
// stamped beyond the skew bound) and the stamps each pull hands out.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "carnet/server_store.h"
#include "carnet/transport.h"
#include "carnet/wire.h"
#include "tests/sim/sim_env.h"
#include "tests/sim/sim_random.h"

namespace carnet::sim {

// A bug planted on purpose, to show that the oracle meant for it catches it. None in a real run.
enum class Plant {
  kNone,
  kLoseAckedWrite,   // the server stores another text than the acknowledged append's
  kApplyTwice,       // the server applies an append a second time under a new stamp
  kSkipPulledEntry,  // a pull reply leaves out an entry but moves the cursor past it
  kHideTombstones,   // pull replies leave out live delete tombstones
  kNoSkewBound,      // the server accepts stamps years ahead
  kRestoreOldFile,   // a tablet's file comes back from an older copy after a crash
};
const char* PlantName(Plant plant);

// The real skew bound (core/README.md): what the oracle holds the server to.
constexpr int64_t kSkewBoundMs = 15 * 60 * 1000;

// What a request did: the reply, and the stamps of the entries a pull reply hands out.
struct Delivery {
  HttpReply reply;
  std::vector<Stamp> pulled;
};

class SimServer {
 public:
  SimServer(std::string path, SimClock* clock, uint64_t seed, Plant plant);

  // Opens the store file; again after Close(), as a restarted server process does.
  Status Open();
  void Close();
  bool open() const { return store_ != nullptr; }
  ServerStore& store() { return *store_; }

  // Enrolls a device and returns its token.
  Result<std::string> Enroll(const Device& device);

  // Serves one request, as SyncServer does for POST /v1/push and /v1/pull.
  Delivery Handle(const HttpRequest& request);
  // The error reply the server would give to `request`.
  HttpReply ErrorFor(const HttpRequest& request, const Status& status);

  // Every operation the server accepted in a batch, by (device, seq): judged by what it holds,
  // not known as a duplicate by its number (an incarnation's acknowledged operations).
  const std::map<std::pair<std::string, uint64_t>, Operation>& applied() const { return applied_; }
  // What the server did that it must never do, as it happened.
  std::vector<std::string> TakeViolations() { return std::exchange(violations_, {}); }

 private:
  struct Formats {
    wire::Format request = wire::Format::kJson;
    wire::Format reply = wire::Format::kJson;
  };

  Delivery Push(const Device& device, const Formats& formats, const std::string& body);
  Delivery Pull(const Device& device, const Formats& formats, const std::string& body);
  void NoteApplied(const std::vector<Operation>& ops);
  void MaybePurge();
  HttpReply Fail(wire::Format format, const Status& status);
  template <typename Message>
  HttpReply Reply(wire::Format format, const Message& message);

  std::string path_;
  SimClock* clock_;
  SimEnv env_;
  Rng rng_;
  Plant plant_;
  std::unique_ptr<ServerStore> store_;
  int64_t last_purge_ms_ = 0;
  std::map<std::pair<std::string, uint64_t>, Operation> applied_;
  // Per (device, store incarnation), the highest sequence number acknowledged to it.
  std::map<std::pair<std::string, std::string>, uint64_t> lives_;
  std::vector<std::string> violations_;
};

}  // namespace carnet::sim
