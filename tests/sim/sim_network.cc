#include "tests/sim/sim_network.h"

namespace carnet::sim {
namespace {

class SimTransport : public Transport {
 public:
  SimTransport(Network* network, int tablet) : network_(network), tablet_(tablet) {}
  Result<HttpReply> Post(const HttpRequest& request) override {
    return network_->Carry(tablet_, request);
  }

 private:
  Network* network_;
  int tablet_;
};

Status NoReply(const std::string& why) { return Status(StatusCode::kUnavailable, why); }

}  // namespace

Network::Network(SimServer* server, SimClock* clock, Rng rng, Trace* trace, size_t tablets)
    : server_(server), clock_(clock), rng_(rng), trace_(trace), links_(tablets) {}

std::unique_ptr<Transport> Network::Connect(int tablet) {
  return std::make_unique<SimTransport>(this, tablet);
}

std::string Network::Name(int tablet, const HttpRequest& request) const {
  return "tab-" + std::to_string(tablet) + " " + request.path;
}

Result<HttpReply> Network::Carry(int tablet, const HttpRequest& request) {
  Link& link = links_[tablet];
  if (link.crashed) return NoReply("the tablet is down");
  clock_->now_ms += rng_.Between(2, 400);  // the round trip
  if (!link.online) return NoReply("no route to the server");
  if (faulty_) {
    if (rng_.Chance(faults_.drop)) {
      trace_->Add(clock_->now_ms, Name(tablet, request) + ": request lost");
      return NoReply("connection reset");
    }
    if (rng_.Chance(faults_.hold)) {
      trace_->Add(clock_->now_ms, Name(tablet, request) + ": request held back");
      held_.push_back(Held{tablet, request});
      clock_->now_ms += 30'000;  // the client's timeout
      return NoReply("timed out");
    }
    if (rng_.Chance(faults_.busy)) return server_->ErrorFor(request, Status(StatusCode::kBusy, "busy"));
    if (rng_.Chance(faults_.portal)) {
      return HttpReply{200, "text/html", "<html><body>Wi-Fi: please log in</body></html>"};
    }
  }
  Delivery delivery = server_->Handle(request);
  if (faulty_ && rng_.Chance(faults_.duplicate)) {
    trace_->Add(clock_->now_ms, Name(tablet, request) + ": delivered twice");
    Delivery again = server_->Handle(request);
    if (rng_.Chance(0.5)) delivery = std::move(again);
  }
  trace_->Add(clock_->now_ms, Name(tablet, request) + " -> " + std::to_string(delivery.reply.status));
  if (link.crash_in > 0 && --link.crash_in == 0) {
    trace_->Add(clock_->now_ms, "tab-" + std::to_string(tablet) + " crashes awaiting the reply");
    link.crashed = true;
    return NoReply("the tablet is down");
  }
  if (faulty_ && rng_.Chance(faults_.lose_reply)) {
    trace_->Add(clock_->now_ms, Name(tablet, request) + ": reply lost");
    return NoReply("connection reset while reading the reply");
  }
  if (on_pulled_ && !delivery.pulled.empty()) on_pulled_(tablet, delivery.pulled);
  return delivery.reply;
}

void Network::Deliver(const Held& held, const char* how) {
  Delivery late = server_->Handle(held.request);
  trace_->Add(clock_->now_ms, Name(held.tablet, held.request) + ": " + how + " -> " +
                                  std::to_string(late.reply.status));
}

void Network::DeliverOneHeld() {
  if (held_.empty()) return;
  size_t at = rng_.Below(held_.size());
  Held held = std::move(held_[at]);
  held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(at));
  Deliver(held, "arrives late");
}

void Network::DeliverAllHeld() {
  for (const Held& held : held_) Deliver(held, "arrives late");
  held_.clear();
}

}  // namespace carnet::sim
