// libFuzzer target: the server's request handling after the HTTP layer. sync/server/server.cc
// keeps its handlers behind the HTTP face's sockets, so this drives what they do with a body:
// decode it, check the device, hand it to a fresh SQLite ServerStore (Push, Pull, PullSnapshot),
// purge, dump.
//
// An input is a sequence of requests, each [what: 1 byte][size: 2 bytes, little-endian][body]:
// what & 1 picks tablet-a or tablet-b, what & 2 a pull (else a push), what & 4 the binary format
// (else JSON), and what >> 3 how many minutes pass before the request. A store error is an answer like any other;
// only a crash, a sanitizer report or an exception escaping the store is a finding.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "carnet/server_store.h"
#include "carnet/wire.h"
#include "tests/support/test_env.h"

namespace {

using carnet::Device;
using carnet::Result;
using carnet::ServerStore;
using carnet::Status;
namespace wire = carnet::wire;

constexpr int kMaxRequests = 8;

struct Fixture {
  carnet::testing::TestEnv env;
  std::unique_ptr<ServerStore> store;
  Device devices[2];
};

// A store of its own for each input, so that an input replays alone.
std::unique_ptr<Fixture> Open() {
  auto f = std::make_unique<Fixture>();
  carnet::ServerStoreOptions options;
  options.env = &f->env;
  Result<std::unique_ptr<ServerStore>> store = carnet::OpenServerStore("sqlite::memory:", options);
  if (!store.ok()) std::abort();
  f->store = std::move(store.value());
  f->devices[0] = Device{"tablet-a", "amina", {"bassin-nord"}};
  f->devices[1] = Device{"tablet-b", "bruno", {"bassin-sud", "bassin-nord"}};
  for (int d = 0; d < 2; ++d) {
    if (!f->store->Enroll(f->devices[d], carnet::HashToken("token-" + std::to_string(d))).ok()) {
      std::abort();
    }
  }
  return f;
}

// As SyncServer's handlers: the device as authenticated, then the body.
void Handle(Fixture& f, uint8_t what, std::string_view body) {
  Result<Device> device = f.store->Authenticate(carnet::HashToken("token-" + std::to_string(what & 1)));
  if (!device.ok()) std::abort();
  wire::Format format = (what & 4) ? wire::Format::kBinary : wire::Format::kJson;
  f.env.Advance(int64_t{what >> 3} * 60'000);
  if ((what & 2) == 0) {
    wire::PushRequest push;
    if (!wire::Decode(body, format, &push).ok() || push.device != device->id) return;
    Result<wire::PushReply> reply = f.store->Push(*device, push);
    if (reply.ok()) (void)wire::Encode(*reply, format);
    return;
  }
  wire::PullRequest pull;
  if (!wire::Decode(body, format, &pull).ok()) return;
  if (!pull.snapshot.empty() && pull.cursor != 0) return;
  Result<wire::PullReply> reply = !pull.snapshot.empty() && f.store->ServesSnapshots()
                                      ? f.store->PullSnapshot(*device, pull.snapshot, pull.limit)
                                      : f.store->Pull(*device, pull.cursor, pull.limit);
  if (reply.ok()) (void)wire::Encode(*reply, format);
  (void)f.store->Purge();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<Fixture> f = Open();
  size_t at = 0;
  for (int request = 0; request < kMaxRequests && at + 3 <= size; ++request) {
    uint8_t what = data[at];
    size_t length = data[at + 1] | (size_t{data[at + 2]} << 8);
    at += 3;
    length = std::min(length, size - at);
    Handle(*f, what, std::string_view(reinterpret_cast<const char*>(data) + at, length));
    at += length;
  }
  for (const char* device : {"", "tablet-a", "tablet-b"}) (void)f->store->ScopeDump(device);
  return 0;
}
