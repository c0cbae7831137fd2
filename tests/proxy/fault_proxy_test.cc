// The proxy itself, against an httplib server and client: each fault does what it says.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/proxy/fault_proxy.h"

namespace {

using carnet::testing::FaultProxy;
using carnet::testing::ProxyFault;
using Kind = ProxyFault::Kind;

// A server that echoes a 64 KiB body and counts the requests it received whole.
class EchoServer {
 public:
  EchoServer() {
    server_.Post("/echo", [this](const httplib::Request& req, httplib::Response& res) {
      ++received_;
      res.set_content(req.body, "application/octet-stream");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~EchoServer() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  int received() const { return received_; }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> received_{0};
};

const std::string kBody(64 * 1024, 'x');

httplib::Result Post(const FaultProxy& proxy) {
  httplib::Client client("127.0.0.1", proxy.port());
  client.set_read_timeout(5, 0);
  return client.Post("/echo", kBody, "application/octet-stream");
}

ProxyFault Fault(Kind kind, double fraction = 0.5, int delay_ms = 0) {
  ProxyFault fault;
  fault.kind = kind;
  fault.fraction = fraction;
  fault.delay_ms = delay_ms;
  return fault;
}

}  // namespace

TEST_CASE("The proxy forwards a connection without a fault untouched", "[proxy]") {
  EchoServer server;
  FaultProxy proxy(server.port(), 1, 0.0);
  REQUIRE(proxy.Start());
  httplib::Result reply = Post(proxy);
  REQUIRE(reply);
  CHECK(reply->body == kBody);
}

TEST_CASE("A request cut in the middle of its body never reaches the handler", "[proxy]") {
  EchoServer server;
  FaultProxy proxy(server.port(), 1, 0.0);
  REQUIRE(proxy.Start());
  proxy.Force(Fault(Kind::kCutRequest));
  CHECK(!Post(proxy));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(server.received() == 0);
}

TEST_CASE("A reply cut or truncated in the middle of its body fails after the handler ran",
          "[proxy]") {
  EchoServer server;
  FaultProxy proxy(server.port(), 1, 0.0);
  REQUIRE(proxy.Start());
  proxy.Force(Fault(GENERATE(Kind::kCutReply, Kind::kTruncateReply)));
  CHECK(!Post(proxy));
  CHECK(server.received() == 1);
}

TEST_CASE("A stalled reply arrives whole, late", "[proxy]") {
  EchoServer server;
  FaultProxy proxy(server.port(), 1, 0.0);
  REQUIRE(proxy.Start());
  proxy.Force(Fault(Kind::kStallReply, 0.3, 300));
  auto start = std::chrono::steady_clock::now();
  httplib::Result reply = Post(proxy);
  REQUIRE(reply);
  CHECK(reply->body == kBody);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(300));
}

TEST_CASE("The faults of a seed are the same on every run", "[proxy]") {
  for (uint64_t index = 0; index < 50; ++index) {
    CHECK(carnet::testing::DrawFault(7, index, 0.5).Describe() ==
          carnet::testing::DrawFault(7, index, 0.5).Describe());
  }
  int faulty = 0;
  for (uint64_t index = 0; index < 1000; ++index) {
    faulty += carnet::testing::DrawFault(7, index, 0.5).kind != Kind::kPass;
  }
  CHECK(faulty > 400);
  CHECK(faulty < 600);
}
