// carnet-server's door: who may push and pull, what a push may hold (clock, duplicates,
// versions), and how requests no tablet should send are refused while the server goes on.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <thread>

#include <catch2/catch.hpp>

#include "tests/sync/sync_fixture.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

constexpr int64_t kDayMs = 24 * 3600 * 1000;

wire::PushRequest OutboxPush(Tablet& tablet) {
  return wire::PushRequest{wire::kProtocolVersion, tablet.store().device_id(), "", 0,
                           tablet.Outbox()};
}

// What the server holds, to show that a refused request changed nothing.
struct ServerState {
  std::string entries;
  std::vector<uint64_t> acknowledged;

  explicit ServerState(ServerFixture& server) : entries(server.ScopeDump("")) {
    Result<std::vector<Device>> devices = server.store().Devices();
    SYNC_REQUIRE_OK(devices);
    for (const Device& d : *devices) acknowledged.push_back(d.acknowledged_seq);
  }
  friend bool operator==(const ServerState&, const ServerState&) = default;
};

// One adviser's tablet with a participant in its outbox, not yet pushed.
struct AdviserTablet {
  ServerFixture server;
  std::unique_ptr<Tablet> a = server.Join("tab-a", "adviser-a", {kNorth});
  ParticipantFile p = AddParticipant(a->store(), "adviser-a", kNorth, "workshop-1");
};

std::string Deflated(const std::string& raw) {
  uLongf size = compressBound(raw.size());
  std::string out(size, '\0');
  REQUIRE(compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                    reinterpret_cast<const Bytef*>(raw.data()), raw.size(), 9) == Z_OK);
  out.resize(size);
  return out;
}

// A refusal with this HTTP status and, when given, this ErrorReply code.
void CheckRefused(const RawReply& reply, int status, const std::string& code = "") {
  INFO("reply " << reply.status << " " << reply.code << ": " << reply.body.substr(0, 200));
  CHECK(reply.status == status);
  if (!code.empty()) CHECK(reply.code == code);
}

// The server still answers, and still applies a well-formed push.
void RequireStillServing(AdviserTablet& t) {
  RawClient raw(t.server.port(), t.server.Token("tab-a"));
  REQUIRE(raw.Healthy());
  RequireSynced(*t.a);
  CHECK_IN_SCOPE(t.server, *t.a);
  CHECK(t.a->Pending() == 0);
}

}  // namespace

// --- Authorization ------------------------------------------------------------------------------

TEST_CASE("Requests without a valid token are refused with 401", "[sync][server][auth]") {
  AdviserTablet t;
  ServerState before(t.server);
  auto [name, authorization] = GENERATE(table<std::string, std::string>({
      {"no header", ""},
      {"an empty bearer token", "Bearer "},
      {"an unknown token", "Bearer " + std::string(64, 'a')},
      {"another scheme", "Basic dGFiLWE6c2VjcmV0"},
  }));
  INFO(name);
  RawClient raw(t.server.port(), "");
  httplib::Headers headers = raw.Headers();
  if (!authorization.empty()) headers.emplace("Authorization", authorization);
  Result<std::string> push = wire::Encode(OutboxPush(*t.a), wire::Format::kJson);
  Result<std::string> pull = wire::Encode(wire::PullRequest{}, wire::Format::kJson);
  SYNC_REQUIRE_OK(push);
  SYNC_REQUIRE_OK(pull);

  RawReply pushed = raw.Post("/v1/push", *push, "application/json", headers);
  RawReply pulled = raw.Post("/v1/pull", *pull, "application/json", headers);
  RawReply status = raw.Get("/v1/status", headers);

  CheckRefused(pushed, 401, "unauthenticated");
  CheckRefused(pulled, 401, "unauthenticated");
  CheckRefused(status, 401);
  CHECK(ServerState(t.server) == before);
}

TEST_CASE("A push in another device's name is refused with 403 and applies nothing",
          "[sync][server][auth]") {
  AdviserTablet t;
  auto b = t.server.Join("tab-b", "adviser-a", {kNorth});
  ServerState before(t.server);
  wire::PushRequest push = OutboxPush(*t.a);
  std::string token = t.server.Token("tab-a");

  SECTION("the request names another device") { push.device = "tab-b"; }
  SECTION("the operations are signed by another device") {
    token = t.server.Token("tab-b");
    push.device = "tab-b";  // the token's device; the operations stay tab-a's
  }
  SECTION("one operation of the batch is signed by another device") {
    push.ops.back().device = "tab-b";
  }
  RawReply reply = RawClient(t.server.port(), token).Send("/v1/push", push);

  CheckRefused(reply, 403, "permission_denied");
  CHECK(ServerState(t.server) == before);
}

TEST_CASE("A push touching another adviser's participant is refused with 403 and applies nothing",
          "[sync][server][auth]") {
  AdviserTablet t;
  auto office = t.server.Join("tab-office", "office", {kNorth, kSouth});
  ParticipantFile theirs = AddParticipant(office->store(), "adviser-b", kSouth, "workshop-2");
  RequireSynced(*office);
  ServerState before(t.server);
  uint64_t pending = t.a->Pending();

  // The batch starts with tablet a's own participant: all or nothing, that goes too.
  SECTION("an edit of the participant") {
    SYNC_REQUIRE_OK(
        t.a->store().Set("participants", theirs.participant, "phone", "06 11 22 33 44"));
  }
  SECTION("an edit of one of their records") {
    SYNC_REQUIRE_OK(t.a->store().Append("interviews", theirs.interview, "notes", "not mine"));
  }
  SECTION("a new interview for them") {
    SYNC_REQUIRE_OK(t.a->store().Put("interviews", t.a->store().NewId(),
                                     {{"participant", theirs.participant}, {"place", "phone"}}));
  }
  Status status = Sync(*t.a);

  CHECK(status.code() == StatusCode::kPermissionDenied);
  CHECK(t.a->Pending() > pending);  // nothing acknowledged, nothing lost
  CHECK(ServerState(t.server) == before);
}

TEST_CASE("A revoked device is told to wipe, then refused once it confirmed",
          "[sync][server][auth]") {
  AdviserTablet t;
  RequireSynced(*t.a);
  SYNC_REQUIRE_OK(t.server.store().Revoke("tab-a"));
  SYNC_REQUIRE_OK(t.a->store().Set("participants", t.p.participant, "phase", "job_search"));
  ServerState before(t.server);
  RawClient raw(t.server.port(), t.server.Token("tab-a"));

  RawReply pushed = raw.Send("/v1/push", OutboxPush(*t.a));
  RawReply pulled = raw.Send("/v1/pull", wire::PullRequest{});
  RawReply described = raw.Get("/v1/status", raw.Headers());
  RawReply renewed = raw.Send("/v1/token", wire::TokenRequest{wire::kProtocolVersion, "tab-a"});
  RawReply confirmed_by_other =
      raw.Send("/v1/wiped", wire::WipeConfirmation{wire::kProtocolVersion, "tab-b"});
  RawReply confirmed =
      raw.Send("/v1/wiped", wire::WipeConfirmation{wire::kProtocolVersion, "tab-a"});
  RawReply after = raw.Send("/v1/pull", wire::PullRequest{});

  CheckRefused(pushed, 410, "device_revoked");
  CheckRefused(pulled, 410, "device_revoked");
  CheckRefused(described, 410, "device_revoked");
  CheckRefused(renewed, 410, "device_revoked");
  CheckRefused(confirmed_by_other, 403, "permission_denied");
  CHECK(confirmed.status == 200);
  CheckRefused(after, 401, "unauthenticated");
  CHECK(ServerState(t.server) == before);
}

// --- Clocks -------------------------------------------------------------------------------------

TEST_CASE("A push stamped a day ahead is refused with 422 clock_skew and applies nothing",
          "[sync][server][clock]") {
  ServerFixture server;
  auto a = server.Join("tab-a", "adviser-a", {kNorth});
  a->env().Advance(kDayMs);  // the tablet's clock is a day fast
  AddParticipant(a->store(), "adviser-a", kNorth, "workshop-1");
  ServerState before(server);

  RawReply reply = RawClient(server.port(), server.Token("tab-a")).Send("/v1/push", OutboxPush(*a));

  CheckRefused(reply, 422, "clock_skew");
  CHECK(a->Pending() > 0);
  CHECK(ServerState(server) == before);
}

TEST_CASE("After a clock_skew refusal the client adopts the server's offset",
          "[sync][server][clock]") {
  ServerFixture server;
  auto a = server.Join("tab-a", "adviser-a", {kNorth});
  a->env().Advance(kDayMs);
  AddParticipant(a->store(), "adviser-a", kNorth, "workshop-1");

  // Refused once, then re-stamped at the server's time and pushed in the same sync.
  SYNC_REQUIRE_OK(Sync(*a));
  CHECK(a->client().status().clock_offset_ms == Approx(-kDayMs).margin(1000));
}

TEST_CASE("Operations stamped a day ahead are re-stamped at the server's time and pushed at once",
          "[sync][server][clock]") {
  ServerFixture server;
  auto a = server.Join("tab-a", "adviser-a", {kNorth});
  a->env().Advance(kDayMs);
  ParticipantFile p = AddParticipant(a->store(), "adviser-a", kNorth, "workshop-1");
  RequireSynced(*a);
  CHECK(a->Pending() == 0);

  // From then on the tablet stamps in the server's time, though its own clock is still wrong.
  SYNC_REQUIRE_OK(a->store().Set("participants", p.participant, "phase", "job_search"));
  CHECK(HlcPhysicalMs(a->Outbox().back().hlc) < server.env().NowMillis() + 60'000);
  RequireSynced(*a);
  CHECK(a->Pending() == 0);
  CHECK_IN_SCOPE(server, *a);
}

// --- Idempotence --------------------------------------------------------------------------------

TEST_CASE("The same push sent twice applies once and acknowledges both times",
          "[sync][server][push]") {
  AdviserTablet t;
  wire::PushRequest push = OutboxPush(*t.a);
  const auto count = static_cast<uint32_t>(push.ops.size());
  RawClient raw(t.server.port(), t.server.Token("tab-a"));

  RawReply first = raw.Send("/v1/push", push);
  std::string after_first = t.server.ScopeDump("");
  RawReply second = raw.Send("/v1/push", push, wire::Format::kBinary);

  REQUIRE(first.status == 200);
  REQUIRE(second.status == 200);
  auto one = DecodeReply<wire::PushReply>(first);
  auto two = DecodeReply<wire::PushReply>(second);
  CHECK(one.applied == count);
  CHECK(one.duplicates == 0);
  CHECK(one.acknowledged_seq == count);
  CHECK(two.applied == 0);
  CHECK(two.duplicates == count);
  CHECK(two.acknowledged_seq == count);
  CHECK(t.server.ScopeDump("") == after_first);
  // The tablet, which never saw either reply, pushes the same operations a third time.
  RequireSynced(*t.a);
  CHECK(t.server.ScopeDump("") == after_first);
  CHECK_IN_SCOPE(t.server, *t.a);
}

TEST_CASE(
    "A fresh store reusing an enrolled device's id has its operations applied or refused, never "
    "dropped",
    "[sync][server][push]") {
  AdviserTablet t;
  RequireSynced(*t.a);
  // The app is reinstalled (or its store restored from an old backup) and keeps the device's id
  // and token: it pulls its caseload again, and its operation sequence starts again from 1.
  TempDir elsewhere;
  Tablet reinstalled(elsewhere, "tab-a", t.server.env().NowMillis(), 4242);
  reinstalled.Connect(t.server.url(), ServerSyncOptions(t.server.Token("tab-a")));
  RequireSynced(reinstalled);
  REQUIRE(Holds(reinstalled, "interviews", t.p.interview));
  const uint64_t old_sequence = t.server.DeviceRow("tab-a").acknowledged_seq;
  // A day of notes: more operations than the old tablet had pushed.
  const int notes = static_cast<int>(old_sequence) + 5;
  for (int i = 1; i <= notes; ++i) {
    SYNC_REQUIRE_OK(reinstalled->Append("interviews", t.p.interview, "notes",
                                        "reinstalled note " + std::to_string(i)));
  }

  Status status = Sync(reinstalled);

  INFO(status.ToString() << "; pending " << reinstalled.Pending() << "; the server had "
                         << old_sequence << " operations of tab-a");
  std::string server_dump = t.server.ScopeDump("");
  int on_server = 0;
  for (size_t at = 0; (at = server_dump.find("reinstalled note ", at)) != std::string::npos; ++at) {
    ++on_server;
  }
  const bool kept_for_later = !status.ok() && reinstalled.Pending() == static_cast<uint64_t>(notes);
  CHECK((on_server == notes || kept_for_later));
  CHECK(on_server + reinstalled.Pending() >= static_cast<uint64_t>(notes));
}

TEST_CASE("The status endpoint tells a device what the server knows of it", "[sync][server]") {
  AdviserTablet t;
  const uint64_t ops = t.a->Pending();
  RequireSynced(*t.a);

  RawClient raw(t.server.port(), t.server.Token("tab-a"));
  RawReply reply = raw.Get("/v1/status", raw.Headers());

  REQUIRE(reply.status == 200);
  auto status = DecodeReply<wire::StatusReply>(reply);
  CHECK(status.device == "tab-a");
  CHECK(status.adviser == "adviser-a");
  CHECK(status.territories == std::vector<std::string>{kNorth});
  CHECK(status.acknowledged_seq == ops);
  CHECK(status.server_time_ms == t.server.env().NowMillis());
}

// --- Concurrency --------------------------------------------------------------------------------

TEST_CASE("Tablets syncing at the same time converge", "[sync][server][concurrency]") {
  ServerFixture server;
  auto office = server.Join("tab-office", "office", {kNorth});
  std::vector<ParticipantFile> files;
  for (int i = 0; i < 4; ++i)
    files.push_back(AddParticipant(office->store(), "adviser-a", kNorth, "w"));
  RequireSynced(*office);
  std::vector<std::unique_ptr<Tablet>> tablets;
  for (int i = 0; i < 4; ++i) {
    tablets.push_back(server.Join("tab-" + std::to_string(i), "adviser-a", {kNorth}));
    RequireSynced(*tablets.back());
  }

  // Each tablet on its own thread: edits of shared records, then a sync, five times. Catch's
  // macros are not thread-safe: failures are collected and checked after the join.
  std::vector<std::string> failures(tablets.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < tablets.size(); ++t) {
    threads.emplace_back([&, t] {
      Tablet& tablet = *tablets[t];
      for (int round = 0; round < 5 && failures[t].empty(); ++round) {
        const ParticipantFile& f = files[(t + round) % files.size()];
        std::string note = "tablet " + std::to_string(t) + " round " + std::to_string(round);
        Status status = tablet->Append("interviews", f.interview, "notes", note).status();
        if (status.ok()) status = tablet->Set("participants", f.participant, "phase", "job_search");
        if (status.ok()) status = tablet.client().SyncNow();
        if (!status.ok()) failures[t] = status.ToString();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& failure : failures) CHECK(failure == "");
  for (int round = 0; round < 2; ++round) {
    for (auto& tablet : tablets) RequireSynced(*tablet);
  }

  for (auto& tablet : tablets) {
    INFO(tablet->store().device_id());
    CHECK_IN_SCOPE(server, *tablet);
    CHECK(tablet->Dump() == tablets[0]->Dump());
  }
  size_t notes = 0;
  for (const ParticipantFile& f : files) notes += NotesOf(*tablets[0], f.interview).size();
  CHECK(notes == files.size() + 4 * 5);
}

// --- Versions -----------------------------------------------------------------------------------

TEST_CASE("A protocol version outside 1..1 gets 426 update_needed", "[sync][server][version]") {
  AdviserTablet t;
  ServerState before(t.server);
  std::string version = GENERATE(as<std::string>{}, "0", "2", "999", "", "one");
  INFO("Carnet-Protocol: '" << version << "'");
  RawClient raw(t.server.port(), t.server.Token("tab-a"));

  RawReply pushed = raw.Send("/v1/push", OutboxPush(*t.a), wire::Format::kJson, version);
  RawReply pulled = raw.Send("/v1/pull", wire::PullRequest{}, wire::Format::kBinary, version);

  CheckRefused(pushed, 426, "update_needed");
  CheckRefused(pulled, 426, "update_needed");
  CHECK(ServerState(t.server) == before);
}

TEST_CASE("An older tablet keeps and passes on the entries of a field only a newer app knows",
          "[sync][server][version]") {
  ServerFixture server;
  std::vector<CollectionSpec> collections = Schema::Programme().collections();
  for (CollectionSpec& c : collections) {
    if (c.name == "interviews") {
      FieldSpec video_link;
      video_link.name = "video_link";
      c.fields.push_back(video_link);
    }
  }
  const Schema newer(collections);
  auto old_tablet = server.Join("tab-old", "adviser-a", {kNorth});
  // The newer app's tablets: enrolled like any other, their stores opened with the newer schema.
  auto open_newer = [&](const std::string& device) {
    StoreOptions options;
    options.path = server.dir().File(device + ".db");
    options.device_id = device;
    options.env = &server.env();
    options.schema = &newer;
    Result<std::unique_ptr<Store>> store = Store::Open(options);
    SYNC_REQUIRE_OK(store);
    return std::move(store.value());
  };
  auto sync_newer = [&](Store* store, const std::string& token) {
    SyncClient client(store, &server.env(), CurlTo(server.url()), ServerSyncOptions(token));
    SYNC_REQUIRE_OK(client.SyncNow());
  };
  std::unique_ptr<Store> writer = open_newer("tab-new");
  std::string writer_token = server.Enroll("tab-new", "adviser-a", {kNorth});
  ParticipantFile p = AddParticipant(*writer, "adviser-a", kNorth, "workshop-1");
  SYNC_REQUIRE_OK(
      writer->Set("interviews", p.interview, "video_link", "https://visio.example/r/42"));
  sync_newer(writer.get(), writer_token);

  // The older tablet receives the unknown field, keeps it, and edits the same interview.
  RequireSynced(*old_tablet);
  CHECK(old_tablet->Dump().find("video_link") != std::string::npos);
  CHECK_IN_SCOPE(server, *old_tablet);
  SYNC_REQUIRE_OK(old_tablet->store().Set("interviews", p.interview, "place", "home"));
  RequireSynced(*old_tablet);
  CHECK(old_tablet->Dump().find("video_link") != std::string::npos);

  // A newer tablet that joins later gets both.
  std::unique_ptr<Store> reader = open_newer("tab-new-2");
  sync_newer(reader.get(), server.Enroll("tab-new-2", "adviser-a", {kNorth}));
  Result<Record> interview = reader->Get("interviews", p.interview);
  SYNC_REQUIRE_OK(interview);
  CHECK(interview->fields["video_link"].value == "https://visio.example/r/42");
  CHECK(interview->fields["place"].value == "home");
}

// --- Malformed input ----------------------------------------------------------------------------

TEST_CASE("Garbage bodies in either format are refused with 400 and the server keeps serving",
          "[sync][server][input]") {
  AdviserTablet t;
  ServerState before(t.server);
  Result<std::string> valid_json = wire::Encode(OutboxPush(*t.a), wire::Format::kJson);
  Result<std::string> valid_binary = wire::Encode(OutboxPush(*t.a), wire::Format::kBinary);
  SYNC_REQUIRE_OK(valid_json);
  SYNC_REQUIRE_OK(valid_binary);
  auto [name, format, body] = GENERATE_COPY(table<std::string, wire::Format, std::string>({
      {"json: not json", wire::Format::kJson, "this is not json"},
      {"json: empty", wire::Format::kJson, ""},
      {"json: wrong shape", wire::Format::kJson, R"({"message":{"protocol":"one","ops":7}})"},
      {"json: truncated", wire::Format::kJson, valid_json->substr(0, valid_json->size() / 2)},
      {"json: binary bytes", wire::Format::kJson, std::string("\x00\xff\xfe{", 4)},
      {"binary: not deflate", wire::Format::kBinary, "garbage garbage garbage"},
      {"binary: empty", wire::Format::kBinary, ""},
      {"binary: truncated", wire::Format::kBinary,
       valid_binary->substr(0, valid_binary->size() / 2)},
      {"binary: deflated garbage", wire::Format::kBinary, Deflated(std::string(300, '\xff'))},
      {"binary: trailing bytes", wire::Format::kBinary, Deflated(std::string(40, '\0') + "more")},
  }));
  INFO(name);
  RawClient raw(t.server.port(), t.server.Token("tab-a"));

  for (const char* path : {"/v1/push", "/v1/pull"}) {
    INFO(path);
    RawReply reply = raw.Post(path, body, wire::ContentType(format), raw.Headers(format));
    CheckRefused(reply, 400, "invalid_argument");
  }
  CHECK(ServerState(t.server) == before);
  RequireStillServing(t);
}

TEST_CASE("A body over the size limit is refused with 413", "[sync][server][input]") {
  AdviserTablet t;
  RawClient raw(t.server.port(), t.server.Token("tab-a"));
  std::string body = R"({"message":{"protocol":1,"device":")" +
                     std::string(wire::kMaxWireBytes, 'x') + R"(","ops":[]}})";

  RawReply reply = raw.Post("/v1/push", body, "application/json", raw.Headers());

  CheckRefused(reply, 413);
  RequireStillServing(t);
}

TEST_CASE("A binary body that inflates past the limit is refused with 413 resource_exhausted",
          "[sync][server][input]") {
  AdviserTablet t;
  RawClient raw(t.server.port(), t.server.Token("tab-a"));
  std::string bomb = Deflated(std::string(wire::kMaxBodyBytes + 1024 * 1024, '\0'));
  REQUIRE(bomb.size() < 100 * 1024);

  RawReply reply = raw.Post("/v1/push", bomb, wire::ContentType(wire::Format::kBinary),
                            raw.Headers(wire::Format::kBinary));

  CheckRefused(reply, 413, "resource_exhausted");
  RequireStillServing(t);
}

TEST_CASE("A request with a Content-Encoding is refused with 415", "[sync][server][input]") {
  AdviserTablet t;
  std::string encoding = GENERATE(as<std::string>{}, "gzip", "deflate", "br");
  RawClient raw(t.server.port(), t.server.Token("tab-a"));
  Result<std::string> body = wire::Encode(OutboxPush(*t.a), wire::Format::kJson);
  SYNC_REQUIRE_OK(body);
  httplib::Headers headers = raw.Headers();
  headers.emplace("Content-Encoding", encoding);

  RawReply reply = raw.Post("/v1/push", *body, "application/json", headers);

  CheckRefused(reply, 415);
  CHECK(t.server.ScopeDump("").empty());
  RequireStillServing(t);
}

TEST_CASE("An unknown content type is refused with 415", "[sync][server][input]") {
  AdviserTablet t;
  RawClient raw(t.server.port(), t.server.Token("tab-a"));

  RawReply reply = raw.Post("/v1/push", "<push/>", "application/xml", raw.Headers());

  CheckRefused(reply, 415, "invalid_argument");
  RequireStillServing(t);
}

TEST_CASE("Deeply nested JSON is refused with 400", "[sync][server][input]") {
  AdviserTablet t;
  RawClient raw(t.server.port(), t.server.Token("tab-a"));
  const size_t depth = GENERATE(100, 100'000);
  std::string body = R"({"message":{"protocol":1,"device":"tab-a","ops":)" +
                     std::string(depth, '[') + std::string(depth, ']') + "}}";

  RawReply reply = raw.Post("/v1/push", body, "application/json", raw.Headers());

  CheckRefused(reply, 400, "invalid_argument");
  RequireStillServing(t);
}

TEST_CASE("A push of more operations than the protocol allows is refused with 413",
          "[sync][server][input]") {
  AdviserTablet t;
  wire::PushRequest push = OutboxPush(*t.a);
  Operation op = push.ops.front();
  push.ops.clear();
  for (uint64_t seq = 1; seq <= wire::kMaxPushOps + 1; ++seq) {
    op.seq = seq;
    op.hlc += 1;
    push.ops.push_back(op);
  }

  const wire::Format format = GENERATE(wire::Format::kJson, wire::Format::kBinary);

  RawReply reply =
      RawClient(t.server.port(), t.server.Token("tab-a")).Send("/v1/push", push, format);

  // PROTOCOL.md, Limits: "a push holds at most kMaxPushOps (5,000) operations ... Past a limit:
  // 413 with code resource_exhausted", the answer on which a client splits its batch.
  CheckRefused(reply, 413, "resource_exhausted");
  CHECK(t.server.ScopeDump("").empty());
}

// --- Connections --------------------------------------------------------------------------------

TEST_CASE("An idle kept-alive connection is given up after the second the server announces",
          "[sync][server][connection]") {
  AdviserTablet t;
  int sock = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(sock >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(t.server.port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A guard against a hang, not a measure: a connection still open after this is a failure.
  timeval guard{30, 0};
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
  REQUIRE(connect(sock, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  REQUIRE(send(sock, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));

  // Read the reply, then stay idle the way a tablet between two syncs does, until the server
  // closes its side: Stop() waits for the workers holding such connections.
  std::string received;
  char buffer[512];
  ssize_t n;
  while ((n = recv(sock, buffer, sizeof buffer, 0)) > 0) received.append(buffer, n);
  const bool closed_by_server = n == 0;
  close(sock);

  INFO(received);
  CHECK(received.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(received.find("\r\nKeep-Alive: timeout=1,") != std::string::npos);
  CHECK(closed_by_server);
}
