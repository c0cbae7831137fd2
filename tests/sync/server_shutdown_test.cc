// A graceful stop (sync/OPERATIONS.md): SIGTERM while a push is in flight lets that push finish
// and be answered, then the server exits 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "carnet/server_store.h"
#include "tests/sync/server_process.h"
#include "tests/sync/sync_helpers.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

int ConnectTo(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  return fd;
}

void SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    REQUIRE(n > 0);
    sent += static_cast<size_t>(n);
  }
}

std::string ReadToEnd(int fd) {
  std::string reply;
  char buffer[4096];
  for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;) reply.append(buffer, n);
  return reply;
}

}  // namespace

TEST_CASE("SIGTERM lets a push in flight finish and be answered, then the server exits 0",
          "[server][shutdown][sqlite]") {
  TempDir dir;
  const std::string store_path = dir.File("server.db");
  const std::string token = "shutdown-test-token";
  {
    TestEnv env(kTabletStartMs, 3);
    Result<std::unique_ptr<ServerStore>> store = OpenServerStore("sqlite:" + store_path, {&env});
    SYNC_REQUIRE_OK(store);
    SYNC_REQUIRE_OK((*store)->Enroll(Device{"tab-a", "adviser-a", {"bassin-nord"}},
                                     HashToken(token)));
  }
  Tablet tablet(dir, "tab-a");
  const std::string participant = tablet->NewId();
  SYNC_REQUIRE_OK(tablet->Put("participants", participant,
                              {{"referent", "adviser-a"}, {"territory", "bassin-nord"},
                               {"first_name", "Aïcha"}}));
  const std::vector<Operation> ops = tablet.Outbox();
  Result<std::string> body =
      wire::Encode(wire::PushRequest{wire::kProtocolVersion, "tab-a", "", 0, ops},
                   wire::Format::kJson);
  SYNC_REQUIRE_OK(body);

  ServerProcess server(CARNET_SERVER_BINARY, store_path, dir.File("server.log"));
  // The server names its port before its accept loop runs: a connection made at once could
  // still wait in the listen queue when the signal comes, and be reset with the listening
  // socket, no request in flight (seen under ThreadSanitizer, where threads start slowly). A
  // health check answered first shows that the server takes connections.
  int probe = ConnectTo(server.port());
  SendAll(probe, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  REQUIRE(ReadToEnd(probe).rfind("HTTP/1.1 200", 0) == 0);
  close(probe);
  int fd = ConnectTo(server.port());
  SendAll(fd, "POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token +
                  "\r\nCarnet-Protocol: 1\r\nContent-Type: application/json\r\nAccept: "
                  "application/json\r\nConnection: close\r\nContent-Length: " +
                  std::to_string(body->size()) + "\r\n\r\n" + body->substr(0, body->size() / 2));
  // The request is being read when the signal comes; its second half comes after.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  server.Signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  SendAll(fd, body->substr(body->size() / 2));
  const std::string reply = ReadToEnd(fd);
  close(fd);
  INFO(reply);
  CHECK(reply.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(reply.find("\"applied\": " + std::to_string(ops.size())) != std::string::npos);
  const int status = server.Wait();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);

  // The push is in the store, whole.
  TestEnv env(kTabletStartMs, 4);
  Result<std::unique_ptr<ServerStore>> store = OpenServerStore("sqlite:" + store_path, {&env});
  SYNC_REQUIRE_OK(store);
  Result<std::string> dump = (*store)->ScopeDump("");
  SYNC_REQUIRE_OK(dump);
  CHECK(dump->find(participant) != std::string::npos);
  CHECK(dump->find("Aïcha") != std::string::npos);
}
