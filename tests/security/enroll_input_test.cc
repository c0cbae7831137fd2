// /v1/enroll is the one route that answers without a token (sync/SECURITY.md, Devices): what it
// is sent is checked before it is decoded at length, logged or echoed. Against a carnet-server
// process on 127.0.0.1, its log in a file the test reads.
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "tests/sync/audit_helpers.h"
#include "tests/sync/server_process.h"
#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

struct EnrollingServer {
  TempDir dir;
  TestStore store{dir};
  ServerProcess process{CARNET_SERVER_BINARY, store.spec(), dir.File("server.log")};

  RawReply Enroll(const std::string& device, const std::string& code) {
    return RawClient(process.port(), "")
        .Send("/v1/enroll", wire::EnrollRequest{wire::kProtocolVersion, device, code});
  }

  std::string Log() {
    std::ifstream in(dir.File("server.log"));
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
};

// A code of the right shape that no device was given.
constexpr const char* kSomeCode = "7KQ2M-9XJ4T-3CRWA-HP6ZD";

}  // namespace

TEST_CASE("An enrollment with an oversized device id is refused without logging or echoing it",
          "[security][enroll]") {
  EnrollingServer s;
  const std::string id(2'000, 'x');  // within the size of an enrollment, not of an id

  RawReply reply = s.Enroll(id, kSomeCode);

  INFO(reply.body.substr(0, 300));
  CHECK(reply.status == 400);
  CHECK(reply.code == "invalid_argument");
  CHECK(reply.body.size() < 1000);
  CHECK(s.Log().find(std::string(100, 'x')) == std::string::npos);
}

TEST_CASE("An enrollment body larger than any enrollment is refused before it is decoded",
          "[security][enroll]") {
  EnrollingServer s;
  const std::string code(2'000'000, '7');

  RawReply reply = s.Enroll("tab-a", code);

  INFO(reply.body.substr(0, 300));
  CHECK(reply.status == 413);
  CHECK(reply.code == "resource_exhausted");
  CHECK(s.Log().size() < 10'000);
}

TEST_CASE("An enrollment with a well-formed id and an unknown code is refused as before",
          "[security][enroll]") {
  EnrollingServer s;

  RawReply reply = s.Enroll("tab-a", kSomeCode);

  CHECK(reply.status == 401);
  CHECK(reply.code == "unauthenticated");
  CHECK(s.Log().find("enrollment of tab-a refused") != std::string::npos);
}
