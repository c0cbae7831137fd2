// A TCP proxy on 127.0.0.1 that forwards to a server and breaks connections on purpose: it cuts
// a request or a reply in the middle of its body, truncates a reply, refuses, delays and stalls.
// The fault of each connection is a function of the seed and of the connection's number alone,
// so a run whose clients connect in the same order meets the same faults.
//
// Threads: one that accepts, and one per connection; all of them stop and are joined by the
// destructor. The other members may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace carnet::testing {

struct ProxyFault {
  enum class Kind {
    kPass,              // forwarded untouched
    kRefuse,            // accepted, then reset before a byte goes through
    kCutRequest,        // the request reset after `fraction` of its body reached the server
    kCutReply,          // the reply reset after `fraction` of its body reached the client
    kTruncateReply,     // the reply ended cleanly (FIN) after `fraction` of its body
    kDelay,             // every chunk, both ways, held `delay_ms`
    kStallRequest,      // the request held `delay_ms` at `fraction` of its body, then resumed
    kStallReply,        // the reply held `delay_ms` at `fraction` of its body, then resumed
  };
  Kind kind = Kind::kPass;
  int message = 0;        // which request (or reply) of the kept-alive connection, from 0
  double fraction = 0;    // where in that message's body, 0 to 1
  int delay_ms = 0;

  std::string Describe() const;
};

// The fault of connection `index` (from 0) under `seed`; `chance` is the probability of any
// fault at all.
ProxyFault DrawFault(uint64_t seed, uint64_t index, double chance);

class FaultProxy {
 public:
  FaultProxy(int upstream_port, uint64_t seed, double chance);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // Listens on a free port of 127.0.0.1; false if it cannot.
  bool Start();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // While healed, every connection passes untouched (connections still count).
  void Heal(bool healed) { healed_ = healed; }
  // Every connection from now on meets `fault` instead of the seed's (for the proxy's own tests).
  void Force(const ProxyFault& fault) {
    std::lock_guard<std::mutex> lock(mutex_);
    forced_ = fault;
    has_forced_ = true;
  }
  // A bug planted on purpose, for the tests that show an oracle catches it (never a fault of the
  // network): every whole 200 reply to a request whose target starts with `path` reaches the
  // client as `rewrite` makes it from its Content-Type and body, its Content-Length set again.
  // The proxy then holds each reply until it has all of it; a fault strikes the rewritten reply.
  // `rewrite` is called from the connections' threads. Call before Start().
  using Rewrite = std::function<std::string(const std::string& content_type, std::string body)>;
  void Plant(std::string path, Rewrite rewrite) {
    plant_path_ = std::move(path);
    plant_ = std::move(rewrite);
  }
  // Replies that went through the plant's rewrite.
  int rewritten() const { return rewritten_; }
  // One line per connection so far: its number and the fault it met.
  std::vector<std::string> Journal() const;
  // Connections that met a fault that breaks a message (refuse, cut, truncate).
  int broken() const { return broken_; }

 private:
  void Accept();
  void Serve(int client, ProxyFault fault);

  const int upstream_port_;
  const uint64_t seed_;
  const double chance_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> healed_{false};
  std::atomic<int> broken_{0};
  std::atomic<int> rewritten_{0};
  std::string plant_path_;
  Rewrite plant_;
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::vector<std::thread> connections_;
  std::vector<std::string> journal_;
  ProxyFault forced_;
  bool has_forced_ = false;
};

}  // namespace carnet::testing
