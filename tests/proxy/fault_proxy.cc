#include "tests/proxy/fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

namespace carnet::testing {
namespace {

constexpr int kPollMs = 50;

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double Unit(uint64_t& state) { return (SplitMix(state) >> 11) * (1.0 / 9007199254740992.0); }

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// Where the line of header `name` (lower case) is in `header`: [begin, end) of its value.
std::optional<std::pair<size_t, size_t>> FindHeader(const std::string& header,
                                                    const std::string& name) {
  const std::string key = "\r\n" + name + ":";
  size_t at = Lower(header).find(key);
  if (at == std::string::npos) return std::nullopt;
  size_t begin = at + key.size();
  return std::make_pair(begin, header.find("\r\n", begin));
}

std::string HeaderValue(const std::string& header, const std::string& name) {
  std::optional<std::pair<size_t, size_t>> at = FindHeader(header, name);
  if (!at) return "";
  std::string value = header.substr(at->first, at->second - at->first);
  value.erase(0, value.find_first_not_of(' '));
  return value;
}

// Finds where the messages of one direction of an HTTP/1.1 connection begin and end, from their
// headers and Content-Length (our server and libcurl send no chunked bodies).
class Framer {
 public:
  // Takes the next bytes of the stream; once the headers of message `target` are complete,
  // body_start() and body_size() describe it.
  void Feed(const char* data, size_t size, int target) {
    for (size_t i = 0; i < size && !located_;) {
      if (body_left_ > 0) {
        size_t skip = std::min<uint64_t>(body_left_, size - i);
        body_left_ -= skip;
        offset_ += skip;
        i += skip;
        continue;
      }
      header_ += data[i];
      ++offset_;
      ++i;
      if (header_.size() < 4 || header_.compare(header_.size() - 4, 4, "\r\n\r\n") != 0) continue;
      uint64_t length = std::strtoull(HeaderValue(header_, "content-length").c_str(), nullptr, 10);
      header_.clear();
      if (index_ == target) {
        located_ = true;
        body_start_ = offset_;
        body_size_ = length;
      }
      ++index_;
      body_left_ = length;
    }
  }
  bool located() const { return located_; }
  uint64_t body_start() const { return body_start_; }
  uint64_t body_size() const { return body_size_; }

 private:
  std::string header_;
  uint64_t offset_ = 0;     // bytes of the stream consumed
  uint64_t body_left_ = 0;  // of the message being skipped
  int index_ = 0;
  bool located_ = false;
  uint64_t body_start_ = 0;
  uint64_t body_size_ = 0;
};

// Cuts one direction of a connection into whole messages (headers, then a Content-Length body),
// for a planted rewrite.
class Splitter {
 public:
  void Feed(const char* data, size_t size) { pending_.append(data, size); }
  // The next whole message as {headers, body}, or nullopt until all of it has arrived.
  std::optional<std::pair<std::string, std::string>> Next() {
    size_t end = pending_.find("\r\n\r\n");
    if (end == std::string::npos) return std::nullopt;
    std::string header = pending_.substr(0, end + 4);
    uint64_t length = std::strtoull(HeaderValue(header, "content-length").c_str(), nullptr, 10);
    if (pending_.size() - header.size() < length) return std::nullopt;
    std::string body = pending_.substr(header.size(), length);
    pending_.erase(0, header.size() + length);
    return std::make_pair(std::move(header), std::move(body));
  }
  // What is left of a message cut short.
  std::string TakeRest() { return std::exchange(pending_, {}); }

 private:
  std::string pending_;
};

// One direction of a connection: what it forwarded, and where its fault strikes.
struct Way {
  int from = -1;
  int to = -1;
  bool open = true;  // `from` has not reached its end
  uint64_t forwarded = 0;
  Framer framer;
  bool faulted = false;  // the fault is in this direction
  bool struck = false;   // a stall already happened

  // The stream offset where the fault strikes, once known.
  std::optional<uint64_t> StrikeAt(const ProxyFault& fault) const {
    if (!faulted || !framer.located()) return std::nullopt;
    return framer.body_start() +
           static_cast<uint64_t>(fault.fraction * static_cast<double>(framer.body_size()));
  }
};

void Reset(int fd) {
  linger hard{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  close(fd);
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

int ConnectUpstream(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

}  // namespace

std::string ProxyFault::Describe() const {
  const char* names[] = {"pass",   "refuse", "cut-request",   "cut-reply",
                         "truncate-reply", "delay",  "stall-request", "stall-reply"};
  std::string text = names[static_cast<int>(kind)];
  if (kind == Kind::kPass || kind == Kind::kRefuse) return text;
  if (kind != Kind::kDelay) {
    text += " message " + std::to_string(message) + " at " +
            std::to_string(static_cast<int>(fraction * 100)) + "%";
  }
  if (delay_ms > 0) text += " for " + std::to_string(delay_ms) + " ms";
  return text;
}

ProxyFault DrawFault(uint64_t seed, uint64_t index, double chance) {
  uint64_t state = seed * 0x2545f4914f6cdd1dull + index;
  ProxyFault fault;
  if (Unit(state) >= chance) return fault;
  using Kind = ProxyFault::Kind;
  // Weights: what breaks a sync in the middle comes first.
  static const std::pair<Kind, int> kWeights[] = {
      {Kind::kCutReply, 25},     {Kind::kCutRequest, 20},   {Kind::kTruncateReply, 15},
      {Kind::kStallReply, 10},   {Kind::kStallRequest, 10}, {Kind::kDelay, 10},
      {Kind::kRefuse, 10}};
  int pick = static_cast<int>(SplitMix(state) % 100);
  for (const auto& [kind, weight] : kWeights) {
    if (pick < weight) {
      fault.kind = kind;
      break;
    }
    pick -= weight;
  }
  // Most syncs send a push and a pull or two on one connection.
  fault.message = static_cast<int>(SplitMix(state) % 3);
  fault.fraction = Unit(state);
  if (fault.kind == Kind::kDelay) fault.delay_ms = 5 + static_cast<int>(SplitMix(state) % 60);
  if (fault.kind == Kind::kStallRequest || fault.kind == Kind::kStallReply) {
    fault.delay_ms = 200 + static_cast<int>(SplitMix(state) % 1300);
  }
  return fault;
}

FaultProxy::FaultProxy(int upstream_port, uint64_t seed, double chance)
    : upstream_port_(upstream_port), seed_(seed), chance_(chance) {}

FaultProxy::~FaultProxy() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> connections;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    connections.swap(connections_);
  }
  for (std::thread& t : connections) t.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

bool FaultProxy::Start() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listen_fd_, 64) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    return false;
  }
  port_ = ntohs(address.sin_port);
  acceptor_ = std::thread([this] { Accept(); });
  return true;
}

std::vector<std::string> FaultProxy::Journal() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return journal_;
}

void FaultProxy::Accept() {
  uint64_t index = 0;
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, kPollMs) <= 0) continue;
    int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::lock_guard<std::mutex> lock(mutex_);
    ProxyFault fault = healed_       ? ProxyFault{}
                       : has_forced_ ? forced_
                                     : DrawFault(seed_, index, chance_);
    using Kind = ProxyFault::Kind;
    if (fault.kind == Kind::kRefuse || fault.kind == Kind::kCutRequest ||
        fault.kind == Kind::kCutReply || fault.kind == Kind::kTruncateReply) {
      ++broken_;
    }
    journal_.push_back("connection " + std::to_string(index) + ": " + fault.Describe());
    ++index;
    connections_.emplace_back([this, client, fault] { Serve(client, fault); });
  }
}

void FaultProxy::Serve(int client, ProxyFault fault) {
  using Kind = ProxyFault::Kind;
  int upstream = fault.kind == Kind::kRefuse ? -1 : ConnectUpstream(upstream_port_);
  if (upstream < 0) {
    Reset(client);
    return;
  }
  auto sleep = [this](int ms) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!stop_ && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, 10)));
    }
  };
  Way up;
  up.from = client;
  up.to = upstream;
  Way down;
  down.from = upstream;
  down.to = client;
  up.faulted = fault.kind == Kind::kCutRequest || fault.kind == Kind::kStallRequest;
  down.faulted = fault.kind == Kind::kCutReply || fault.kind == Kind::kTruncateReply ||
                 fault.kind == Kind::kStallReply;
  // Forwards `size` bytes one way, striking with the fault where it falls among them.
  enum class Outcome { kGoOn, kEnded, kTruncated };
  auto forward = [&](Way& way, const char* data, size_t size) {
    way.framer.Feed(data, size, fault.message);
    if (fault.kind == Kind::kDelay) sleep(fault.delay_ms);
    size_t pass = size;
    std::optional<uint64_t> strike = way.StrikeAt(fault);
    bool strikes = strike && !way.struck && *strike < way.forwarded + size;
    if (strikes) pass = static_cast<size_t>(*strike - way.forwarded);
    if (!WriteAll(way.to, data, pass)) return Outcome::kEnded;
    way.forwarded += pass;
    if (!strikes) return Outcome::kGoOn;
    if (fault.kind == Kind::kStallRequest || fault.kind == Kind::kStallReply) {
      way.struck = true;
      sleep(fault.delay_ms);
      if (!WriteAll(way.to, data + pass, size - pass)) return Outcome::kEnded;
      way.forwarded += size - pass;
      return Outcome::kGoOn;
    }
    return fault.kind == Kind::kTruncateReply ? Outcome::kTruncated : Outcome::kEnded;
  };
  // With a plant: the requests' targets in order (libcurl does not pipeline, so the next reply
  // answers the oldest), and the replies held until whole.
  const bool planted = static_cast<bool>(plant_);
  Splitter requests;
  Splitter replies;
  std::vector<std::string> targets;
  auto rewrite = [&](const char* data, size_t size) {
    std::string out;
    replies.Feed(data, size);
    while (std::optional<std::pair<std::string, std::string>> message = replies.Next()) {
      auto& [header, body] = *message;
      std::string target = targets.empty() ? "" : targets.front();
      if (!targets.empty()) targets.erase(targets.begin());
      if (target.rfind(plant_path_, 0) == 0 && header.rfind("HTTP/1.1 200", 0) == 0) {
        body = plant_(HeaderValue(header, "content-type"), std::move(body));
        ++rewritten_;
        std::optional<std::pair<size_t, size_t>> length = FindHeader(header, "content-length");
        if (length) {
          header.replace(length->first, length->second - length->first,
                         " " + std::to_string(body.size()));
        }
      }
      out += header + body;
    }
    return out;
  };
  bool ended = false;  // by the fault
  char buffer[16384];
  while (!stop_ && !ended && (up.open || down.open)) {
    pollfd p[2] = {{up.open ? client : -1, POLLIN, 0}, {down.open ? upstream : -1, POLLIN, 0}};
    int ready = poll(p, 2, kPollMs);
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < 2 && !ended; ++i) {
      if (p[i].revents == 0) continue;
      Way& way = i == 0 ? up : down;
      ssize_t n = recv(way.from, buffer, sizeof buffer, 0);
      if (n < 0 && errno == EINTR) continue;
      std::string held;  // what a planted rewrite lets through now
      if (n <= 0) {
        // One side finished sending: pass the end on (and a reply held cut short), keep the
        // other way going.
        way.open = false;
        if (planted && i == 1 && !(held = replies.TakeRest()).empty()) {
          WriteAll(way.to, held.data(), held.size());
        }
        shutdown(way.to, SHUT_WR);
        continue;
      }
      const char* data = buffer;
      size_t size = static_cast<size_t>(n);
      if (planted && i == 0) {
        requests.Feed(buffer, size);
        while (std::optional<std::pair<std::string, std::string>> message = requests.Next()) {
          const std::string& header = message->first;
          size_t begin = header.find(' ') + 1;
          targets.push_back(header.substr(begin, header.find(' ', begin) - begin));
        }
      }
      if (planted && i == 1) {
        held = rewrite(buffer, size);
        data = held.data();
        size = held.size();
        if (size == 0) continue;
      }
      Outcome outcome = forward(way, data, size);
      if (outcome == Outcome::kEnded) ended = true;
      if (outcome == Outcome::kTruncated) {
        shutdown(client, SHUT_RDWR);
        close(client);
        Reset(upstream);
        return;
      }
    }
  }
  if (ended) {
    Reset(client);
    Reset(upstream);
    return;
  }
  close(client);
  close(upstream);
}

}  // namespace carnet::testing
