// A Transport that hands every request to a hook before (or instead of) the real one: fault
// injection and byte counting for tests and benchmarks, without touching the client.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "carnet/transport.h"

namespace carnet::testing {

class HookedTransport : public Transport {
 public:
  // `hook` receives each request with its number (from 1) and the wrapped transport; it returns
  // what the client sees.
  using Hook = std::function<Result<HttpReply>(int n, const HttpRequest&, Transport& inner)>;

  HookedTransport(std::unique_ptr<Transport> inner, Hook hook)
      : inner_(std::move(inner)), hook_(std::move(hook)) {}

  Result<HttpReply> Post(const HttpRequest& request) override {
    return hook_(++requests_, request, *inner_);
  }

 private:
  std::unique_ptr<Transport> inner_;
  Hook hook_;
  int requests_ = 0;
};

// Bodies on the wire, both ways (headers left out: they do not grow with the data).
struct WireBytes {
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t requests = 0;
  uint64_t total() const { return sent + received; }
};

inline std::unique_ptr<Transport> CountingTransport(std::unique_ptr<Transport> inner,
                                                    WireBytes* bytes) {
  return std::make_unique<HookedTransport>(
      std::move(inner), [bytes](int, const HttpRequest& request, Transport& real) {
        Result<HttpReply> reply = real.Post(request);
        bytes->sent += request.body.size();
        bytes->requests += 1;
        if (reply.ok()) bytes->received += reply->body.size();
        return reply;
      });
}

}  // namespace carnet::testing
