// The network between the tablets and the server, in-process: every request a SyncClient POSTs
// goes through Network::Carry, which may drop it, delay it past the client's patience and
// deliver it later (out of order), deliver it twice, answer as a captive portal or a busy
// server, lose the reply after the server applied the request, cut a tablet off (partition),
// or let the tablet die right after the server got its request (a crash mid-sync).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "carnet/transport.h"
#include "tests/sim/sim_env.h"
#include "tests/sim/sim_random.h"
#include "tests/sim/sim_server.h"
#include "tests/sim/sim_trace.h"

namespace carnet::sim {

// Probabilities, per request, of each fault.
struct NetworkFaults {
  double drop = 0.03;        // the request never arrives
  double hold = 0.03;       // it arrives later, after the client gave up on it
  double duplicate = 0.04;   // it arrives twice
  double busy = 0.02;        // 503 busy
  double portal = 0.01;      // a captive portal answers 200 with a web page
  double lose_reply = 0.05;  // the server applied it; the reply never comes back
};

class Network {
 public:
  Network(SimServer* server, SimClock* clock, Rng rng, Trace* trace, size_t tablets);

  // A transport for tablet `tablet`, to hand to its SyncClient.
  std::unique_ptr<Transport> Connect(int tablet);

  void SetOnline(int tablet, bool online) { links_[tablet].online = online; }
  bool online(int tablet) const { return links_[tablet].online; }
  // Off: every request arrives once and every reply comes back (the network has healed).
  void SetFaulty(bool faulty) { faulty_ = faulty; }
  void SetFaults(const NetworkFaults& faults) { faults_ = faults; }

  // The tablet dies right after its `nth` next request reached the server; nothing leaves it
  // until Revive().
  void ArmCrash(int tablet, int nth) { links_[tablet].crash_in = nth; }
  bool crashed(int tablet) const { return links_[tablet].crashed; }
  void Revive(int tablet) { links_[tablet] = Link{links_[tablet].online, 0, false}; }

  // Requests held back, delivered late: one chosen at random, or all in the order sent.
  size_t held() const { return held_.size(); }
  void DeliverOneHeld();
  void DeliverAllHeld();

  // Called with the stamps of each pull reply that reaches a tablet.
  void OnPulled(std::function<void(int tablet, const std::vector<Stamp>&)> callback) {
    on_pulled_ = std::move(callback);
  }

  Result<HttpReply> Carry(int tablet, const HttpRequest& request);

 private:
  struct Link {
    bool online = true;
    int crash_in = 0;  // 0: no crash armed
    bool crashed = false;
  };
  struct Held {
    int tablet;
    HttpRequest request;
  };

  void Deliver(const Held& held, const char* how);
  std::string Name(int tablet, const HttpRequest& request) const;

  SimServer* server_;
  SimClock* clock_;
  Rng rng_;
  Trace* trace_;
  NetworkFaults faults_;
  bool faulty_ = true;
  std::vector<Link> links_;
  std::vector<Held> held_;
  std::function<void(int, const std::vector<Stamp>&)> on_pulled_;
};

}  // namespace carnet::sim
