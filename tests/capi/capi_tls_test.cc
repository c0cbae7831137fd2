// The C API's TLS settings (carnet_sync_config.ca_file and .pinned_public_key) on libcarnet,
// against a real carnet-server serving HTTPS with a certificate from a CA made for the test.
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "carnet/carnet.h"
#include "examples/c_adviser_day/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/sync/server_process.h"
#include "tests/sync/test_certificate.h"

namespace {

using carnet::testing::PublicKeyPin;
using carnet::testing::ServerProcess;
using carnet::testing::ServerTls;
using carnet::testing::TempDir;
using carnet::testing::TestCa;

// A carnet-server over HTTPS with one enrolled tablet, and that tablet's store on libcarnet,
// holding one participant not yet uploaded.
class HttpsFixture {
 public:
  HttpsFixture() : ca_(dir_.File("ca.pem")) {
    ca_.Issue(cert_file(), dir_.File("server-key.pem"));
    const std::string spec = "sqlite:" + dir_.File("central.db");
    const std::string log = dir_.File("server.log");
    char token[128];
    REQUIRE(demo_enroll(CARNET_SERVER_BINARY, spec.c_str(), "tab-t", "tab-t", "vallee-nord",
                        log.c_str(), token, sizeof token) == 0);
    token_ = token;
    server_ = std::make_unique<ServerProcess>(CARNET_SERVER_BINARY, spec, log,
                                              ServerTls{cert_file(), dir_.File("server-key.pem")});
    url_ = server_->url();
    carnet_host host{};
    host.log = [](void*, carnet_log_level, const char*) {};  // the failures are checked, not shown
    REQUIRE(carnet_env_new(&host, &env_, nullptr) == CARNET_OK);
    const std::string path = dir_.File("tab-t.db");
    REQUIRE(carnet_store_open(env_, path.c_str(), "tab-t", &store_, nullptr) == CARNET_OK);
    char id[CARNET_ID_SIZE];
    REQUIRE(carnet_new_id(store_, id, nullptr) == CARNET_OK);
    carnet_txn* txn = nullptr;
    REQUIRE(carnet_txn_begin(store_, &txn, nullptr) == CARNET_OK);
    REQUIRE(carnet_record_put(txn, "participants", id,
                              "{\"referent\":\"tab-t\",\"territory\":\"vallee-nord\","
                              "\"first_name\":\"Nadia\",\"status\":\"active\"}",
                              nullptr) == CARNET_OK);
    REQUIRE(carnet_txn_commit(txn, nullptr) == CARNET_OK);
  }
  ~HttpsFixture() {
    carnet_store_close(store_, nullptr);
    carnet_env_free(env_);
  }

  carnet_sync_config Config() const {
    carnet_sync_config config;
    carnet_sync_config_init(&config);
    config.server_url = url_.c_str();
    config.token = token_.c_str();
    config.ca_file = ca_.ca_file().c_str();
    config.connect_timeout_ms = 5000;
    config.max_attempts = 1;
    config.nightly_length_minutes = 0;
    return config;
  }
  carnet_store* store() { return store_; }
  std::string cert_file() const { return dir_.File("server-cert.pem"); }
  // A certificate of the same CA for another key.
  std::string OtherCertificate() const {
    ca_.Issue(dir_.File("other-cert.pem"), dir_.File("other-key.pem"));
    return dir_.File("other-cert.pem");
  }
  bool Uploaded() {
    bool uploaded = false;
    REQUIRE(carnet_everything_uploaded(store_, &uploaded, nullptr) == CARNET_OK);
    return uploaded;
  }
  const std::string& url() const { return url_; }

 private:
  TempDir dir_;
  TestCa ca_;
  std::string token_;
  std::unique_ptr<ServerProcess> server_;
  std::string url_;
  carnet_env* env_ = nullptr;
  carnet_store* store_ = nullptr;
};

}  // namespace

TEST_CASE("The C API syncs over HTTPS with the département's CA and a pinned key", "[capi]") {
  HttpsFixture f;
  REQUIRE(f.url().rfind("https://", 0) == 0);
  const std::string right = PublicKeyPin(f.cert_file());
  const std::string wrong = PublicKeyPin(f.OtherCertificate());
  carnet_sync_config config = f.Config();
  carnet_error error{};

  SECTION("the CA alone") {
    REQUIRE(carnet_sync_configure(f.store(), &config, &error) == CARNET_OK);
    INFO(error.message);
    CHECK(carnet_sync_now(f.store(), &error) == CARNET_OK);
    CHECK(f.Uploaded());
  }
  SECTION("the CA and the server's key pinned") {
    config.pinned_public_key = right.c_str();
    REQUIRE(carnet_sync_configure(f.store(), &config, &error) == CARNET_OK);
    INFO(error.message);
    CHECK(carnet_sync_now(f.store(), &error) == CARNET_OK);
    CHECK(f.Uploaded());
  }
  SECTION("another key pinned") {
    config.pinned_public_key = wrong.c_str();
    REQUIRE(carnet_sync_configure(f.store(), &config, &error) == CARNET_OK);
    CHECK(carnet_sync_now(f.store(), &error) == CARNET_UNAVAILABLE);
    INFO(error.message);
    CHECK(error.domain == CARNET_DOMAIN_SYNC);
    CHECK(std::string(error.message).find("not the pinned one") != std::string::npos);
    CHECK_FALSE(f.Uploaded());
  }
  SECTION("no CA file: the system's CAs do not know the département's") {
    config.ca_file = nullptr;
    REQUIRE(carnet_sync_configure(f.store(), &config, &error) == CARNET_OK);
    CHECK(carnet_sync_now(f.store(), &error) == CARNET_UNAVAILABLE);
    INFO(error.message);
    CHECK(std::string(error.message).find("certificate") != std::string::npos);
    CHECK_FALSE(f.Uploaded());
  }
}

TEST_CASE("The C API refuses a malformed pin, a pin over plain http and a missing CA file",
          "[capi]") {
  HttpsFixture f;
  carnet_sync_config config = f.Config();
  carnet_error error{};

  config.pinned_public_key = "sha256//not-a-hash";
  CHECK(carnet_sync_configure(f.store(), &config, &error) == CARNET_INVALID_ARGUMENT);
  CHECK(error.domain == CARNET_DOMAIN_SYNC);
  CHECK(std::string(error.message).find("malformed public-key pin") != std::string::npos);

  const std::string pin = PublicKeyPin(f.cert_file());
  config.pinned_public_key = pin.c_str();
  config.server_url = "http://127.0.0.1:9";
  CHECK(carnet_sync_configure(f.store(), &config, &error) == CARNET_INVALID_ARGUMENT);
  CHECK(std::string(error.message).find("https") != std::string::npos);

  config = f.Config();
  config.ca_file = "/nonexistent/ca.pem";
  CHECK(carnet_sync_configure(f.store(), &config, &error) == CARNET_INVALID_ARGUMENT);
  CHECK(std::string(error.message).find("cannot read the CA file") != std::string::npos);
}
