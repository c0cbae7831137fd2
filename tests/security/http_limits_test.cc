// carnet-server's HTTP face under attacks that need no token (sync/SECURITY.md, The HTTP face):
// huge bodies and header lines, slow connections, and /metrics without the operator's
// credential. Each runs against a real carnet-server process on 127.0.0.1, with raw sockets, and
// checks the server's peak memory (VmHWM) and that /healthz still answers within 3 s.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/peak_rss.h"
#include "tests/support/temp_dir.h"
#include "tests/sync/server_process.h"

using namespace carnet::testing;

namespace {

constexpr long kPeakLimitKib = 128 * 1024;
constexpr size_t kMiB = 1024 * 1024;
constexpr size_t kAttackMiB = 256;

class Socket {
 public:
  // Connects to 127.0.0.1:port; sends and receives give up after `timeout_s`.
  Socket(int port, int timeout_s) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    REQUIRE(fd_ >= 0);
    timeval timeout{timeout_s, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  }
  ~Socket() { close(fd_); }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // False once the server refuses more (closed, reset, or not reading for the timeout).
  bool Send(const std::string& bytes) {
    for (size_t sent = 0; sent < bytes.size();) {
      ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  // What the server sends until it closes (or the timeout).
  std::string ReadToEnd() {
    std::string reply;
    char buffer[4096];
    for (ssize_t n; (n = recv(fd_, buffer, sizeof buffer, 0)) > 0;) reply.append(buffer, n);
    return reply;
  }
  // Without waiting: true once the server has closed or reset the connection.
  bool ClosedByServer() {
    char buffer[4096];
    for (;;) {
      ssize_t n = recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n == 0) return true;
      if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    }
  }
  // One byte without waiting; false when the connection is gone.
  bool SendByte(char byte) {
    ssize_t n = send(fd_, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    return n == 1 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  }

 private:
  int fd_;
};

// How long /healthz took to answer 200 on a new connection, in ms; -1 when it did not within 3 s.
long HealthzMs(int port) {
  const auto start = std::chrono::steady_clock::now();
  Socket probe(port, 3);
  if (!probe.Send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")) {
    return -1;
  }
  const std::string reply = probe.ReadToEnd();
  const long ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now() - start)
                                        .count());
  return reply.rfind("HTTP/1.1 200", 0) == 0 && ms < 3000 ? ms : -1;
}

// Sends `head`, then `kAttackMiB` MiB made by `piece` one MiB at a time, until the server stops
// taking them; returns how many MiB it took.
size_t Flood(int port, const std::string& head, const std::string& piece) {
  Socket attacker(port, 10);
  if (!attacker.Send(head)) return 0;
  size_t taken = 0;
  while (taken < kAttackMiB && attacker.Send(piece)) ++taken;
  return taken;
}

std::string ChunkOfOneMiB() {
  return "100000\r\n" + std::string(kMiB, 'x') + "\r\n";  // 0x100000 bytes
}

struct Server {
  explicit Server(const std::vector<std::string>& extra = {})
      : process(CARNET_SERVER_BINARY, dir.File("server.db"), dir.File("server.log"), {}, extra) {}
  TempDir dir;
  ServerProcess process;
};

void RequireHeldUp(const Server& server) {
  const long peak_kib = PeakRssKib(server.process.pid());
  INFO("server peak memory: " << peak_kib / 1024 << " MiB");
  CHECK(peak_kib > 0);
  if (kMemoryBoundsHold) CHECK(peak_kib < kPeakLimitKib);
  CHECK(HealthzMs(server.process.port()) >= 0);
}

// A server takes `head` then pieces of a MiB, stops taking them well before 256 MiB, and holds.
void RequireFloodCutOff(const std::string& head, const std::string& piece) {
  Server server;
  const size_t taken = Flood(server.process.port(), head, piece);
  INFO("MiB the server took: " << taken);
  CHECK(taken < kAttackMiB);
  RequireHeldUp(server);
}

}  // namespace

TEST_CASE("A chunked body of 256 MiB to the push path is cut off at the body limit",
          "[security][http]") {
  RequireFloodCutOff(
      "POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\nCarnet-Protocol: 1\r\n"
      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
      ChunkOfOneMiB());
}

TEST_CASE("A chunked body of 256 MiB to an unknown path is not read", "[security][http]") {
  RequireFloodCutOff(
      "POST /no/such/path HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n",
      ChunkOfOneMiB());
}

TEST_CASE("A header line of 256 MiB is cut off at the header limit", "[security][http]") {
  RequireFloodCutOff("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: ",
                     std::string(kMiB, 'a'));
}

TEST_CASE("200 slow connections neither stop /healthz nor stay open past their deadlines",
          "[security][http]") {
  Server server;
  const int port = server.process.port();
  // Half send their headers one byte every 2 s; half send whole headers, then their body so.
  const std::string slow_head = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: yes\r\n\r\n";
  const std::string body_head =
      "POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\nCarnet-Protocol: 1\r\n"
      "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
  constexpr int kSlow = 200;
  std::vector<std::unique_ptr<Socket>> slow;
  std::vector<bool> open(kSlow, true);
  for (int i = 0; i < kSlow; ++i) {
    slow.push_back(std::make_unique<Socket>(port, 3));
    REQUIRE(slow.back()->Send(i % 2 == 0 ? slow_head.substr(0, 1) : body_head + "["));
  }
  // 9 rounds of 2 s: the server's deadlines (10 s for headers, 1 KiB/s past 10 s for a body)
  // close every one of them before the last round.
  long slowest_ms = 0;
  int answered = 0;
  constexpr int kRounds = 9;
  for (int round = 0; round < kRounds; ++round) {
    const auto round_start = std::chrono::steady_clock::now();
    for (int i = 0; i < kSlow; ++i) {
      if (!open[i]) continue;
      if (slow[i]->ClosedByServer() ||
          !slow[i]->SendByte(i % 2 == 0 ? slow_head[round + 1] : '[')) {
        open[i] = false;
      }
    }
    const long ms = HealthzMs(port);
    if (ms >= 0) ++answered;
    slowest_ms = std::max(slowest_ms, ms < 0 ? 3000L : ms);
    std::this_thread::sleep_until(round_start + std::chrono::seconds(2));
  }
  int still_open = 0;
  for (int i = 0; i < kSlow; ++i) still_open += open[i] && !slow[i]->ClosedByServer() ? 1 : 0;
  INFO("slowest /healthz: " << slowest_ms << " ms; slow connections still open after "
                            << 2 * kRounds << " s: " << still_open);
  CHECK(answered == kRounds);
  CHECK(still_open == 0);
  RequireHeldUp(server);
}

TEST_CASE("/metrics is served with the operator's token only", "[security][http][metrics]") {
  TempDir secrets;
  const std::string token = "operator-token-7f3a9c1e5b2d4086";
  const std::string token_file = secrets.File("metrics-token");
  std::ofstream(token_file) << token << "\n";
  Server server({"--metrics-token-file", token_file});
  auto scrape = [&](const std::string& authorization) {
    Socket scraper(server.process.port(), 5);
    REQUIRE(scraper.Send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                         authorization + "\r\n"));
    return scraper.ReadToEnd();
  };

  const std::string without = scrape("");
  const std::string wrong = scrape("Authorization: Bearer operator-token-7f3a9c1e5b2d4087\r\n");
  const std::string with = scrape("Authorization: Bearer " + token + "\r\n");

  INFO(without << "\n---\n" << wrong << "\n---\n" << with);
  CHECK(without.rfind("HTTP/1.1 401", 0) == 0);
  CHECK(without.find("carnet_requests_total") == std::string::npos);
  CHECK(wrong.rfind("HTTP/1.1 401", 0) == 0);
  CHECK(wrong.find("carnet_requests_total") == std::string::npos);
  CHECK(with.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(with.find("carnet_requests_total") != std::string::npos);
}
