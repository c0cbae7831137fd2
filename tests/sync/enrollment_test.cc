// A tablet's life with the département, end to end over TLS: the real carnet-server process on
// 127.0.0.1 with a certificate from a CA made for the test, the administrator's commands
// (`carnet-server enroll`, `revoke`, `devices`), and tablets on the real libcurl transport with
// their token in the key store (sync/PROTOCOL.md, Devices), and the offline lease that only a
// sync with that server renews.
#include <chrono>
#include <regex>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "carnet/server_store.h"
#include "carnet/sync_client.h"
#include "carnet/transport.h"
#include "tests/sync/erasure_helpers.h"
#include "tests/sync/server_process.h"
#include "tests/sync/sync_fixture.h"
#include "tests/sync/test_certificate.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

// A département serving HTTPS, its tokens lasting `token_days`.
class Departement {
 public:
  explicit Departement(const std::string& token_days = "90") : ca_(dir_.File("ca.pem")) {
    ca_.Issue(dir_.File("cert.pem"), dir_.File("key.pem"), "IP:127.0.0.1,DNS:localhost", "P-256");
    process_ = std::make_unique<ServerProcess>(
        CARNET_SERVER_BINARY, spec(), dir_.File("server.log"),
        ServerTls{dir_.File("cert.pem"), dir_.File("key.pem")},
        std::vector<std::string>{"--token-days", token_days});
  }

  const TempDir& dir() const { return dir_; }
  std::string spec() const { return "sqlite:" + dir_.File("server.db"); }

  // `carnet-server enroll`: the code it prints.
  std::string Enroll(const std::string& device) {
    CommandResult run = Command({"enroll", "--store", spec(), "--device", device, "--adviser",
                                 "adviser-" + device, "--territory", kNorth});
    std::smatch code;
    static const std::regex kCode("[0-9A-Z]{5}(-[0-9A-Z]{5}){3}");
    REQUIRE(std::regex_search(run.out, code, kCode));
    return code.str();
  }
  CommandResult Command(const std::vector<std::string>& args) {
    CommandResult run = RunServerCommand(dir_, args);
    INFO("carnet-server " << args[0] << " said: " << run.out);
    REQUIRE(run.exit_code == 0);
    return run;
  }
  // The device's line of `carnet-server devices`.
  std::string DeviceLine(const std::string& device) {
    std::string out = Command({"devices", "--store", spec()}).out;
    size_t at = out.find("{\"device\":\"" + device + "\"");
    REQUIRE(at != std::string::npos);
    return out.substr(at, out.find('\n', at) - at);
  }

  // A client for `tablet` over HTTPS, trusting the département's CA, its token in the process's
  // key store (with its master key).
  std::unique_ptr<SyncClient> Client(Tablet& tablet, const std::string& code,
                                     KeyStore* keys = &ProcessKeyStore()) {
    CurlOptions curl;
    curl.base_url = process_->url();
    curl.ca_file = dir_.File("ca.pem");
    curl.connect_timeout_ms = 5000;
    Result<std::unique_ptr<Transport>> transport = MakeCurlTransport(curl);
    SYNC_REQUIRE_OK(transport);
    SyncOptions options = ServerSyncOptions("");
    options.enrollment_code = code;
    options.key_store = keys;
    options.max_attempts = 2;
    return std::make_unique<SyncClient>(&tablet.store(), &tablet.env(), std::move(*transport),
                                        options);
  }
  std::string url() const { return process_->url(); }

 private:
  TempDir dir_;
  TestCa ca_;
  std::unique_ptr<ServerProcess> process_;
};

std::string StoredToken(const std::string& device) {
  auto secrets = ProcessKeyStore().secrets();
  auto it = secrets.find(DeviceTokenName(device));
  return it == secrets.end() ? "" : it->second;
}

void SleepMs(int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

}  // namespace

TEST_CASE("A tablet enrolled with a one-time code syncs over TLS, and the code serves once",
          "[tls][enroll]") {
  Departement departement;
  const std::string code = departement.Enroll("enr-a");
  CHECK_THAT(departement.DeviceLine("enr-a"), Catch::Contains("\"awaiting_enrollment\""));
  Tablet tablet(departement.dir(), "enr-a");
  AddParticipant(tablet.store(), "adviser-enr-a", kNorth, "w-1");

  SYNC_REQUIRE_OK(departement.Client(tablet, code)->SyncNow());

  CHECK(tablet.Pending() == 0);
  const std::string token = StoredToken("enr-a");
  CHECK(token.size() == 64);
  CHECK(departement.Command({"devices", "--store", departement.spec()}).out.find(token) ==
        std::string::npos);  // the server keeps a hash only
  CHECK_THAT(departement.DeviceLine("enr-a"), Catch::Contains("\"enrolled\""));
  // Later syncs read the token from the key store; the code is not needed any more.
  SYNC_REQUIRE_OK(departement.Client(tablet, "")->SyncNow());

  // The same code again, from a second copy of the app (its own key store): refused.
  TempDir elsewhere;
  Tablet copy(elsewhere, "enr-a");
  MemoryKeyStore other_keys;
  Status reused = departement.Client(copy, code, &other_keys)->SyncNow();
  CHECK(reused.code() == StatusCode::kUnauthenticated);
  CHECK_THAT(reused.message(), Catch::Contains("used already"));
  // No code and no token: refused before anything is sent.
  Status none = departement.Client(copy, "", &other_keys)->SyncNow();
  CHECK(none.code() == StatusCode::kUnauthenticated);
  CHECK_THAT(none.message(), Catch::Contains("enroll"));
  SYNC_REQUIRE_OK(ProcessKeyStore().Delete(DeviceTokenName("enr-a")));
}

TEST_CASE("A tablet renews its token past half its life; an expired one ends its syncs",
          "[tls][enroll]") {
  Departement departement("0.0001");  // 8.64 seconds
  Tablet tablet(departement.dir(), "enr-b");
  std::unique_ptr<SyncClient> client = departement.Client(tablet, departement.Enroll("enr-b"));
  SYNC_REQUIRE_OK(client->SyncNow());
  const std::string first = StoredToken("enr-b");
  REQUIRE(first.size() == 64);

  SleepMs(4600);  // past half its life
  SYNC_REQUIRE_OK(client->SyncNow());
  const std::string second = StoredToken("enr-b");
  SYNC_REQUIRE_OK(client->SyncNow());  // with the new token, which now replaces the old

  CHECK(second.size() == 64);
  CHECK(second != first);
  RawReply old = [&] {
    CurlOptions curl;
    curl.base_url = departement.url();
    curl.ca_file = departement.dir().File("ca.pem");
    Result<std::unique_ptr<Transport>> transport = MakeCurlTransport(curl);
    SYNC_REQUIRE_OK(transport);
    Result<std::string> body = wire::Encode(wire::PullRequest{}, wire::Format::kJson);
    SYNC_REQUIRE_OK(body);
    Result<HttpReply> reply = (*transport)->Post(
        {"/v1/pull",
         {{"Authorization", "Bearer " + first}, {"Carnet-Protocol", "1"},
          {"Content-Type", "application/json"}},
         *body});
    SYNC_REQUIRE_OK(reply);
    return RawReply{reply->status, reply->content_type, reply->body, ""};
  }();
  CHECK(old.status == 401);

  SleepMs(9000);  // the new token has expired too: the tablet stayed offline too long
  Status expired = client->SyncNow();
  CHECK(expired.code() == StatusCode::kUnauthenticated);
  CHECK_THAT(expired.message(), Catch::Contains("expired"));
  SYNC_REQUIRE_OK(ProcessKeyStore().Delete(DeviceTokenName("enr-b")));
}

TEST_CASE("A revoked tablet erases what it holds at its next contact, and the server shows it",
          "[tls][enroll]") {
  Departement departement("0.00003");  // 2.6 seconds: the token has expired by the revocation
  Tablet tablet(departement.dir(), "enr-c");
  std::unique_ptr<SyncClient> client = departement.Client(tablet, departement.Enroll("enr-c"));
  const std::string participant =
      AddParticipant(tablet.store(), "adviser-enr-c", kNorth, "w-1").participant;
  SYNC_REQUIRE_OK(client->SyncNow());
  SYNC_REQUIRE_OK(tablet->Set("participants", participant, "phase", "job_search"));  // unpushed
  const std::string path = departement.dir().File("enr-c.db");
  REQUIRE(HasBytes(FileBytes({path, path + "-wal"}), participant));
  REQUIRE(ProcessKeyStore().secrets().count(MasterKeyName("enr-c")) == 1);
  SleepMs(3000);
  departement.Command({"revoke", "--store", departement.spec(), "--device", "enr-c"});

  Status status = client->SyncNow();

  CHECK(status.code() == StatusCode::kDeviceRevoked);
  CHECK_THAT(status.message(), Catch::Contains("server was told"));
  CHECK(tablet->IsWiped());
  // No byte of the records left in the file or its WAL, nor the keys in the key store.
  const std::string bytes = FileBytes({path, path + "-wal", path + "-journal"});
  CHECK_FALSE(HasBytes(bytes, participant));
  CHECK_FALSE(HasBytes(bytes, "adviser-enr-c"));
  CHECK(ProcessKeyStore().secrets().count(MasterKeyName("enr-c")) == 0);
  CHECK(StoredToken("enr-c").empty());
  const std::string line = departement.DeviceLine("enr-c");
  CHECK_THAT(line, Catch::Contains("\"state\":\"wiped\""));
  CHECK_THAT(line, Catch::Contains("\"wipe_confirmed_at\":\"20"));
  // The file cannot be opened again as a store: the app deletes it.
  StoreOptions reopen;
  reopen.path = path;
  reopen.device_id = "enr-c";
  reopen.env = &tablet.env();
  reopen.key_store = &ProcessKeyStore();
  CHECK(Store::Open(reopen).status().code() == StatusCode::kDeviceRevoked);
}

TEST_CASE("A tablet past its offline lease opens no record until it syncs with the server",
          "[tls][enroll]") {
  Departement departement;
  Tablet tablet(departement.dir(), "enr-d", kTabletStartMs, 1, /*lease_days=*/2);
  std::unique_ptr<SyncClient> client = departement.Client(tablet, departement.Enroll("enr-d"));
  const std::string participant =
      AddParticipant(tablet.store(), "adviser-enr-d", kNorth, "w-1").participant;
  SYNC_REQUIRE_OK(client->SyncNow());
  SYNC_REQUIRE_OK(tablet->Get("participants", participant));

  tablet.env().Advance(3 * 24 * 3600 * 1000LL);  // three days in a drawer

  Status dark = tablet->Get("participants", participant).status();
  CHECK(dark.code() == StatusCode::kLeaseExpired);
  CHECK_THAT(dark.message(), Catch::Contains("offline lease expired"));
  CHECK(tablet->Begin().status().code() == StatusCode::kLeaseExpired);
  SYNC_REQUIRE_OK(client->SyncNow());  // over TLS, with its token from the key store
  SYNC_REQUIRE_OK(tablet->Get("participants", participant));
  SYNC_REQUIRE_OK(ProcessKeyStore().Delete(DeviceTokenName("enr-d")));
}
