#include "tests/sim/sim_server.h"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace carnet::sim {
namespace {

constexpr int64_t kYearMs = 365LL * 24 * 3600 * 1000;

// HTTP header names compare without case.
std::string HeaderOf(const HttpRequest& request, std::string_view name) {
  for (const auto& [key, value] : request.headers) {
    if (key.size() == name.size() &&
        std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return value;
    }
  }
  return "";
}

}  // namespace

const char* PlantName(Plant plant) {
  switch (plant) {
    case Plant::kNone: return "none";
    case Plant::kLoseAckedWrite: return "lose-acked-write";
    case Plant::kApplyTwice: return "apply-twice";
    case Plant::kSkipPulledEntry: return "skip-pulled-entry";
    case Plant::kHideTombstones: return "hide-tombstones";
    case Plant::kNoSkewBound: return "no-skew-bound";
    case Plant::kRestoreOldFile: return "restore-old-file";
  }
  return "?";
}

SimServer::SimServer(std::string path, SimClock* clock, uint64_t seed, Plant plant)
    : path_(std::move(path)), clock_(clock), env_(clock, seed), rng_(seed ^ 0x5e7e7), plant_(plant) {}

Status SimServer::Open() {
  ServerStoreOptions options;
  options.env = &env_;
  if (plant_ == Plant::kNoSkewBound) options.max_forward_skew_ms = 10 * kYearMs;
  Result<std::unique_ptr<ServerStore>> store = OpenServerStore("sqlite:" + path_, options);
  if (!store.ok()) return store.status();
  store_ = std::move(store.value());
  last_purge_ms_ = 0;  // in memory only, as in SyncServer
  return Status::Ok();
}

void SimServer::Close() { store_.reset(); }

Result<std::string> SimServer::Enroll(const Device& device) {
  std::string token = NewDeviceToken(&env_);
  CARNET_RETURN_IF_ERROR(store_->Enroll(device, HashToken(token)));
  return token;
}

HttpReply SimServer::Fail(wire::Format format, const Status& status) {
  wire::ErrorReply error{StatusCodeName(status.code()), status.message(), status.retryable(),
                         env_.NowMillis()};
  Result<std::string> body = wire::Encode(error, format);
  return HttpReply{wire::HttpStatusFor(status.code()),
                   body.ok() ? wire::ContentType(format) : "text/plain",
                   body.ok() ? *body : status.ToString()};
}

template <typename Message>
HttpReply SimServer::Reply(wire::Format format, const Message& message) {
  Result<std::string> body = wire::Encode(message, format);
  if (!body.ok()) return Fail(format, body.status());
  return HttpReply{200, wire::ContentType(format), std::move(body.value())};
}

HttpReply SimServer::ErrorFor(const HttpRequest& request, const Status& status) {
  std::optional<wire::Format> accept = wire::FormatFromContentType(HeaderOf(request, "Accept"));
  return Fail(accept.value_or(wire::Format::kJson), status);
}

Delivery SimServer::Handle(const HttpRequest& request) {
  std::optional<wire::Format> in = wire::FormatFromContentType(HeaderOf(request, "Content-Type"));
  std::optional<wire::Format> out = wire::FormatFromContentType(HeaderOf(request, "Accept"));
  Formats formats{in.value_or(wire::Format::kJson), out.value_or(in.value_or(wire::Format::kJson))};
  if (!in) {
    HttpReply reply = Fail(formats.reply, InvalidArgument("unsupported content type"));
    reply.status = 415;
    return {reply, {}};
  }
  if (HeaderOf(request, "Carnet-Protocol") != std::to_string(wire::kProtocolVersion)) {
    return {Fail(formats.reply, Status(StatusCode::kUpdateNeeded, "protocol not served")), {}};
  }
  const std::string authorization = HeaderOf(request, "Authorization");
  const std::string bearer = "Bearer ";
  if (authorization.rfind(bearer, 0) != 0) {
    return {Fail(formats.reply, Status(StatusCode::kUnauthenticated, "missing bearer token")), {}};
  }
  Result<Device> device = store_->Authenticate(HashToken(authorization.substr(bearer.size())));
  if (!device.ok()) return {Fail(formats.reply, device.status()), {}};
  if (request.path == "/v1/push") return Push(*device, formats, request.body);
  if (request.path == "/v1/pull") return Pull(*device, formats, request.body);
  return {Fail(formats.reply, NotFound("no route " + request.path)), {}};
}

Delivery SimServer::Push(const Device& device, const Formats& formats, const std::string& body) {
  wire::PushRequest push;
  Status decoded = wire::Decode(body, formats.request, &push);
  if (!decoded.ok()) return {Fail(formats.reply, decoded), {}};
  if (push.device != device.id) {
    return {Fail(formats.reply, Status(StatusCode::kPermissionDenied, "push for another device")),
            {}};
  }
  if (plant_ == Plant::kLoseAckedWrite && rng_.Chance(0.3)) {
    for (Operation& op : push.ops) {
      if (op.kind == OpKind::kAppend && op.seq > device.acknowledged_seq) {
        op.value = "text the tablet never wrote";
        break;
      }
    }
  }
  // The operations a store's life was acknowledged already are duplicates by their number,
  // whatever they hold (PROTOCOL.md, Push): a push delivered late, or the operations a tablet
  // re-stamped after a clock_skew refusal, under their old stamps. The server applies nothing
  // of them, nor of a stale incarnation's push.
  const std::pair<std::string, std::string> life{device.id, push.incarnation};
  const uint64_t known = push.incarnation.empty() || !lives_.count(life) ? 0 : lives_.at(life);
  Result<wire::PushReply> reply = store_->Push(device, push);
  if (!reply.ok()) return {Fail(formats.reply, reply.status()), {}};
  if (!reply->stale_incarnation) {
    std::vector<Operation> judged;
    for (const Operation& op : push.ops) {
      if (op.seq > known) judged.push_back(op);
    }
    NoteApplied(judged);
    if (!push.incarnation.empty()) lives_[life] = std::max(known, reply->acknowledged_seq);
  }
  if (plant_ == Plant::kApplyTwice && rng_.Chance(0.3)) {
    for (const Operation& op : push.ops) {
      if (op.kind != OpKind::kAppend || op.seq <= device.acknowledged_seq) continue;
      Operation again = op;
      again.seq = reply->acknowledged_seq + 1;
      again.hlc += 1;
      Device now = device;
      now.acknowledged_seq = reply->acknowledged_seq;
      wire::PushRequest twice{push.protocol, push.device, push.incarnation, again.seq, {again}};
      if (store_->Push(now, twice).ok()) NoteApplied({again});
      break;
    }
  }
  return {Reply(formats.reply, *reply), {}};
}

// The server holds every operation of a batch it accepted (PROTOCOL.md, Push): none may be stamped
// beyond the skew bound, and one operation id may never stand for two operations.
void SimServer::NoteApplied(const std::vector<Operation>& ops) {
  for (const Operation& op : ops) {
    std::string id = op.device + "#" + std::to_string(op.seq);
    int64_t ahead = HlcPhysicalMs(op.hlc) - clock_->now_ms;
    if (ahead > kSkewBoundMs) {
      violations_.push_back("server accepted " + id + " stamped " + std::to_string(ahead / 1000) +
                            " s ahead of its time (bound " + std::to_string(kSkewBoundMs / 1000) +
                            " s)");
    }
    auto [it, fresh] = applied_.emplace(std::make_pair(op.device, op.seq), op);
    if (!fresh && !(it->second == op)) {
      violations_.push_back("server accepted two operations as " + id + ": " +
                            OpKindName(it->second.kind) + " at " + StampToString(it->second.stamp()) +
                            ", then " + OpKindName(op.kind) + " at " + StampToString(op.stamp()));
    }
  }
}

Delivery SimServer::Pull(const Device& device, const Formats& formats, const std::string& body) {
  wire::PullRequest pull;
  Status decoded = wire::Decode(body, formats.request, &pull);
  if (!decoded.ok()) return {Fail(formats.reply, decoded), {}};
  Result<wire::PullReply> reply = store_->Pull(device, pull.cursor, pull.limit);
  if (!reply.ok()) return {Fail(formats.reply, reply.status()), {}};
  std::vector<Entry>& entries = reply->entries;
  if (plant_ == Plant::kSkipPulledEntry && !entries.empty() && rng_.Chance(0.2)) {
    entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(rng_.Below(entries.size())));
  }
  if (plant_ == Plant::kHideTombstones) {
    std::erase_if(entries, [](const Entry& e) { return e.key.field.empty() && e.live; });
  }
  Delivery delivery{Reply(formats.reply, *reply), {}};
  for (const Entry& e : entries) delivery.pulled.push_back(e.key.stamp);
  MaybePurge();
  return delivery;
}

// As SyncServer: after a pull, at most once a minute.
void SimServer::MaybePurge() {
  int64_t now = env_.NowMillis();
  if (now - last_purge_ms_ < 60'000) return;
  last_purge_ms_ = now;
  Result<uint64_t> purged = store_->Purge();
  if (!purged.ok()) violations_.push_back("server purge failed: " + purged.status().ToString());
}

}  // namespace carnet::sim
