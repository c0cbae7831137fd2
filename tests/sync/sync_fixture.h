// Shared setup of the server tests: a real SyncServer on 127.0.0.1 over a SQLite ServerStore,
// tablets enrolled on it that sync through libcurl, a programme's worth of records to put on
// them, and a raw HTTP client for the requests no well-behaved tablet would send.
#pragma once

#include <httplib.h>

#include <algorithm>
#include <functional>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/server.h"
#include "carnet/server_store.h"
#include "carnet/store.h"
#include "carnet/sync_client.h"
#include "carnet/wire.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_env.h"
#include "tests/sync/hooked_transport.h"
#include "tests/sync/sync_helpers.h"
#include "tests/sync/test_store.h"

namespace carnet::testing {

// Territories and advisers of the scenarios.
constexpr const char* kNorth = "bassin-nord";
constexpr const char* kSouth = "bassin-sud";
constexpr const char* kEast = "bassin-est";
// The operator's token the fixture's server serves /metrics to.
constexpr const char* kMetricsToken = "operator-metrics-token-for-tests";

inline SyncOptions ServerSyncOptions(const std::string& token) {
  SyncOptions options = TestSyncOptions(token);
  options.backoff_initial_ms = 10;
  options.backoff_max_ms = 100;
  return options;
}

// A server store (SQLite in a temporary folder, or PostgreSQL: tests/sync/test_store.h), served
// on a free port of 127.0.0.1, with its own clock. Tablets must go before it (declare them after):
// their open connections would hold Stop() up for the server's keep-alive timeout (a second).
class ServerFixture {
 public:
  explicit ServerFixture(const ServerStoreOptions& options = {}) : options_(options) {
    options_.env = &env_;
    Result<std::unique_ptr<ServerStore>> store =
        OpenServerStore(test_store_.spec(), options_);
    SYNC_REQUIRE_OK(store);
    store_ = std::move(store.value());
    Start();
  }
  ~ServerFixture() { Stop(); }

  void Start(int port = 0) {
    ServerOptions options{"127.0.0.1", port, &env_, store_.get()};
    options.metrics_token = kMetricsToken;
    if (tune_server) tune_server(&options);
    server_ = std::make_unique<SyncServer>(options);
    SYNC_REQUIRE_OK(server_->Start());
  }
  void Stop() {
    if (server_) server_->Stop();
    server_.reset();
  }

  // Stops serving and closes the store file; runs `offline` (which may copy or replace the file);
  // opens it again and serves on the same port. Close the tablets' connections first (Reconnect):
  // Stop() waits for open ones until the keep-alive timeout (a second).
  void Restart(const std::function<void(const std::string& store_path)>& offline = nullptr) {
    int port = this->port();
    Stop();
    store_.reset();
    if (offline) {
      INFO("a test that replaces the store file runs on SQLite only: tag it [sqlite]");
      REQUIRE(!TestingPostgres());
      offline(dir_.File("server.db"));
    }
    Result<std::unique_ptr<ServerStore>> store =
        OpenServerStore(test_store_.spec(), options_);
    SYNC_REQUIRE_OK(store);
    store_ = std::move(store.value());
    Start(port);
  }

  // A new client for the tablet, with default options: the old one's connection closes.
  void Reconnect(Tablet& tablet) {
    tablet.Connect(url(), ServerSyncOptions(Token(tablet.store().device_id())));
  }

  // Server options beyond the address and the store (a retention policy...), applied by Start:
  // set it, then Restart().
  std::function<void(ServerOptions*)> tune_server;

  TestEnv& env() { return env_; }
  ServerStore& store() { return *store_; }
  const TempDir& dir() const { return dir_; }
  const std::string& store_spec() const { return test_store_.spec(); }
  int port() const { return server_->port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

  // Enrolls a device and returns its token.
  std::string Enroll(const std::string& device, const std::string& adviser,
                     const std::vector<std::string>& territories) {
    std::string token = NewDeviceToken(&env_);
    SYNC_REQUIRE_OK(store_->Enroll(Device{device, adviser, territories}, HashToken(token)));
    return token;
  }

  // An enrolled tablet, its clock at the server's, connected to this server.
  std::unique_ptr<Tablet> Join(const std::string& device, const std::string& adviser,
                               const std::vector<std::string>& territories,
                               const std::function<void(SyncOptions*)>& tune = nullptr) {
    std::string token = Enroll(device, adviser, territories);
    auto tablet = std::make_unique<Tablet>(dir_, device, env_.NowMillis(),
                                           std::hash<std::string>{}(device) | 1);
    SyncOptions options = ServerSyncOptions(token);
    if (tune) tune(&options);
    tablet->Connect(url(), options);
    tokens_.emplace_back(device, token);
    return tablet;
  }

  std::string Token(const std::string& device) const {
    for (const auto& [id, token] : tokens_) {
      if (id == device) return token;
    }
    FAIL("no token for " << device);
    return "";
  }

  // What a tablet of `device` holds once up to date; "" for everything the server holds.
  std::string ScopeDump(const std::string& device) {
    Result<std::string> dump = store_->ScopeDump(device);
    SYNC_REQUIRE_OK(dump);
    return *dump;
  }

  Device DeviceRow(const std::string& device) {
    Result<std::vector<Device>> devices = store_->Devices();
    SYNC_REQUIRE_OK(devices);
    for (const Device& d : *devices) {
      if (d.id == device) return d;
    }
    FAIL("no device " << device);
    return {};
  }

 private:
  TempDir dir_;
  TestStore test_store_{dir_};
  TestEnv env_{kTabletStartMs, 99};
  ServerStoreOptions options_;
  std::unique_ptr<ServerStore> store_;
  std::unique_ptr<SyncServer> server_;
  std::vector<std::pair<std::string, std::string>> tokens_;
};

// The lines of two canonical dumps that differ: "-" only in `tablet`, "+" only in `server`;
// empty when they are equal. Readable where a whole dump is not.
inline std::string DumpDiff(const std::string& tablet, const std::string& server) {
  auto lines = [](const std::string& dump) {
    std::multiset<std::string> out;
    size_t start = 0;
    for (size_t end; (end = dump.find('\n', start)) != std::string::npos; start = end + 1) {
      out.insert(dump.substr(start, end - start));
    }
    return out;
  };
  std::multiset<std::string> a = lines(tablet), b = lines(server);
  std::vector<std::string> only_a, only_b;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only_a));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(only_b));
  std::string diff;
  for (const std::string& line : only_a) diff += "- " + line + "\n";
  for (const std::string& line : only_b) diff += "+ " + line + "\n";
  if (diff.empty() && tablet != server) diff = "same lines in another order\n";
  return diff;
}

// The difference between what the tablet holds and the server's view of its scope.
#define CHECK_IN_SCOPE(server, tablet) \
  CHECK(DumpDiff((tablet).Dump(), (server).ScopeDump((tablet).store().device_id())) == "")

inline Status Sync(Tablet& tablet) { return tablet.client().SyncNow(); }

inline void RequireSynced(Tablet& tablet) {
  Status status = Sync(tablet);
  INFO(status.ToString());
  REQUIRE(status.ok());
}

// Whether the tablet holds the record (deleted records count as not held).
inline bool Holds(Tablet& tablet, const std::string& collection, const std::string& id) {
  Result<Record> record = tablet->Get(collection, id);
  if (!record.ok()) {
    INFO(record.status().ToString());
    REQUIRE(record.status().code() == StatusCode::kNotFound);
  }
  return record.ok();
}

inline std::vector<std::string> NotesOf(Tablet& tablet, const std::string& interview) {
  Result<Record> record = tablet->Get("interviews", interview);
  SYNC_REQUIRE_OK(record);
  std::vector<std::string> notes;
  for (const LogEntry& e : record->fields["notes"].entries) notes.push_back(e.text);
  return notes;
}

// --- Records
// --------------------------------------------------------------------------------------

// One participant's file: the participant and one record of each collection that belongs to them.
struct ParticipantFile {
  std::string participant;
  std::string entry_situation, consent, interview, action, attendance, followup, exit;

  std::vector<std::pair<std::string, std::string>> Records() const {
    return {{"participants", participant}, {"entry_situations", entry_situation},
            {"consents", consent},         {"interviews", interview},
            {"actions", action},           {"attendance", attendance},
            {"followups", followup},       {"exits", exit}};
  }
};

inline std::string AddWorkshop(Store& store, const std::string& territory) {
  std::string id = store.NewId();
  SYNC_REQUIRE_OK(store.Put("workshops", id,
                            {{"theme", "CV et lettre de motivation"},
                             {"date_time", "2026-12-03T09:00:00Z"},
                             {"place", "Maison France Services"},
                             {"facilitator", "adviser-a"},
                             {"capacity", "12"},
                             {"territory", territory}}));
  return id;
}

// A participant followed by `referent` in `territory`, with an interview (and its notes), an
// action, an entry situation, a consent, a follow-up, an exit, and attendance at `workshop`.
inline ParticipantFile AddParticipant(Store& store, const std::string& referent,
                                      const std::string& territory, const std::string& workshop) {
  ParticipantFile f;
  f.participant = store.NewId();
  f.entry_situation = store.NewId();
  f.consent = store.NewId();
  f.interview = store.NewId();
  f.action = store.NewId();
  f.attendance = AttendanceId(workshop, f.participant);
  f.followup = store.NewId();
  f.exit = store.NewId();
  const std::string& p = f.participant;
  Result<Transaction> txn = store.Begin();
  SYNC_REQUIRE_OK(txn);
  SYNC_REQUIRE_OK(txn->Put("participants", p,
                           {{"first_name", "Camille"},
                            {"last_name", "Martin"},
                            {"referent", referent},
                            {"territory", territory},
                            {"status", "active"},
                            {"phase", "assessment"}}));
  SYNC_REQUIRE_OK(txn->Add("participants", p, "barriers", "mobility"));
  SYNC_REQUIRE_OK(
      txn->Put("entry_situations", f.entry_situation,
               {{"participant", p}, {"labour_status", "unemployed"}, {"validation", "draft"}}));
  SYNC_REQUIRE_OK(txn->Put("consents", f.consent, {{"participant", p}}));
  SYNC_REQUIRE_OK(txn->Append("consents", f.consent, "events", "information notice given"));
  SYNC_REQUIRE_OK(txn->Put("interviews", f.interview,
                           {{"participant", p},
                            {"adviser", referent},
                            {"date_time", "2026-11-20T09:30:00Z"},
                            {"place", "office"},
                            {"phase", "assessment"},
                            {"kind", "regular"}}));
  SYNC_REQUIRE_OK(txn->Append("interviews", f.interview, "notes", "first interview"));
  SYNC_REQUIRE_OK(txn->Put("actions", f.action,
                           {{"participant", p},
                            {"label", "driving licence"},
                            {"due_date", "2027-01-15"},
                            {"status", "open"}}));
  SYNC_REQUIRE_OK(txn->Put("attendance", f.attendance,
                           {{"session", workshop}, {"participant", p}, {"status", "registered"}}));
  SYNC_REQUIRE_OK(txn->Put("followups", f.followup,
                           {{"participant", p},
                            {"employer", "Boulangerie Petit"},
                            {"contract", "subsidised"},
                            {"start_date", "2026-10-01"}}));
  SYNC_REQUIRE_OK(txn->Put("exits", f.exit,
                           {{"participant", p},
                            {"exit_date", "2026-11-30"},
                            {"category", "durable_employment"},
                            {"validation", "draft"}}));
  SYNC_REQUIRE_OK(txn->Commit());
  return f;
}

// --- Raw HTTP
// ---------------------------------------------------------------------------------------

struct RawReply {
  int status = 0;  // 0: no reply
  std::string content_type;
  std::string body;
  std::string code;  // the ErrorReply's code; "" when the body is not one
};

// A request as a tablet would send it, with every header overridable.
class RawClient {
 public:
  RawClient(int port, std::string token) : client_("127.0.0.1", port), token_(std::move(token)) {
    client_.set_read_timeout(30, 0);
  }

  httplib::Headers Headers(wire::Format format = wire::Format::kJson,
                           const std::string& protocol = "1") const {
    httplib::Headers headers{{"Carnet-Protocol", protocol}, {"Accept", wire::ContentType(format)}};
    if (!token_.empty()) headers.emplace("Authorization", "Bearer " + token_);
    return headers;
  }

  RawReply Post(const std::string& path, const std::string& body, const std::string& content_type,
                const httplib::Headers& headers) {
    return Read(client_.Post(path.c_str(), headers, body, content_type.c_str()));
  }

  RawReply Get(const std::string& path, const httplib::Headers& headers) {
    return Read(client_.Get(path.c_str(), headers));
  }

  template <typename Message>
  RawReply Send(const std::string& path, const Message& message,
                wire::Format format = wire::Format::kJson, const std::string& protocol = "1") {
    Result<std::string> body = wire::Encode(message, format);
    SYNC_REQUIRE_OK(body);
    return Post(path, *body, wire::ContentType(format), Headers(format, protocol));
  }

  bool Healthy() {
    httplib::Result result = client_.Get("/healthz");
    return result && result->status == 200;
  }

 private:
  static RawReply Read(const httplib::Result& result) {
    RawReply reply;
    if (!result) return reply;
    reply.status = result->status;
    reply.content_type = result->get_header_value("Content-Type");
    reply.body = result->body;
    wire::ErrorReply error;
    std::optional<wire::Format> format = wire::FormatFromContentType(reply.content_type);
    if (reply.status != 200 && format && wire::Decode(reply.body, *format, &error).ok()) {
      reply.code = error.code;
    }
    return reply;
  }

  httplib::Client client_;
  std::string token_;
};

template <typename Message>
Message DecodeReply(const RawReply& reply) {
  std::optional<wire::Format> format = wire::FormatFromContentType(reply.content_type);
  REQUIRE(format.has_value());
  Message message;
  SYNC_REQUIRE_OK(wire::Decode(reply.body, *format, &message));
  return message;
}

}  // namespace carnet::testing
