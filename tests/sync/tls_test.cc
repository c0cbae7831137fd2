// carnet-server over TLS, as a département runs it: the real binary on 127.0.0.1 with a
// certificate from a CA made for the test, tablets on the real libcurl transport, and
// `openssl s_client` probing which protocol versions and ciphers the server accepts.
//
// This process and every process it starts run under tests/sync/permissive_openssl.cnf, an
// OpenSSL configuration that allows TLS 1.0 and every cipher, as a host whose system policy was
// lowered would. The versions and ciphers refused here are therefore refused by Carnet's own
// settings, not by Debian's defaults; each such test first shows that the probe can speak what
// the server refuses.
#include <fcntl.h>
#include <openssl/conf.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "carnet/server_store.h"
#include "carnet/sync_client.h"
#include "carnet/transport.h"
#include "tests/sync/server_process.h"
#include "tests/sync/sync_fixture.h"
#include "tests/sync/test_certificate.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

// For the processes the tests start, which read it at their start. This process may have read
// its configuration before any static initializer of ours ran (libssl.so.3's own initializer
// does so in the ASan build, from the dynamic loader), so it loads the file itself too, which
// applies it to the contexts made from then on.
const bool kPermissiveOpenssl =
    setenv("OPENSSL_CONF", CARNET_PERMISSIVE_OPENSSL_CONF, 1) == 0 &&
    CONF_modules_load_file(CARNET_PERMISSIVE_OPENSSL_CONF, nullptr, 0) == 1;

// The premise of the version and cipher tests: OpenSSL here allows what Carnet must refuse.
void RequirePermissiveOpenssl() {
  REQUIRE(kPermissiveOpenssl);
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  REQUIRE(ctx);
  INFO("OpenSSL did not load " << CARNET_PERMISSIVE_OPENSSL_CONF);
  REQUIRE(SSL_CTX_get_security_level(ctx.get()) == 0);
  long min_version = SSL_CTX_get_min_proto_version(ctx.get());
  REQUIRE((min_version == 0 || min_version <= TLS1_VERSION));
}

struct CommandResult {
  int exit_code = -1;  // -1: killed at the timeout
  std::string output;  // standard output and error
};

// Runs `argv` with its standard input empty and returns what it printed; kills it after
// `timeout_ms`, so that a server that should have refused to start cannot hang the test.
CommandResult Run(std::vector<std::string> argv, int timeout_ms = 20'000) {
  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  int out[2];
  REQUIRE(pipe(out) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(out[1], STDERR_FILENO);
    close(out[0]);
    close(out[1]);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, STDIN_FILENO);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  CommandResult result;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool timed_out = false;
  for (;;) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd fd{out[0], POLLIN, 0};
    if (poll(&fd, 1, left) <= 0) continue;
    char buffer[4096];
    ssize_t got = read(out[0], buffer, sizeof buffer);
    if (got <= 0) break;
    result.output.append(buffer, static_cast<size_t>(got));
  }
  close(out[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = !timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// What `openssl s_client` saw of a handshake with 127.0.0.1:port.
struct Probe {
  bool connected = false;
  std::string protocol;  // "TLSv1.3"
  std::string cipher;
  std::string output;
};

std::string LineValue(const std::string& text, const std::string& label) {
  size_t at = text.find(label);
  if (at == std::string::npos) return "";
  at += label.size();
  return text.substr(at, text.find('\n', at) - at);
}

Probe SClient(int port, const std::string& ca_file, std::vector<std::string> options) {
  std::vector<std::string> argv = {"openssl",
                                   "s_client",
                                   "-connect",
                                   "127.0.0.1:" + std::to_string(port),
                                   "-CAfile",
                                   ca_file,
                                   "-verify_return_error",
                                   "-brief"};
  argv.insert(argv.end(), options.begin(), options.end());
  CommandResult run = Run(argv);
  Probe probe;
  probe.output = run.output;
  probe.connected =
      run.exit_code == 0 && run.output.find("CONNECTION ESTABLISHED") != std::string::npos;
  probe.protocol = LineValue(run.output, "Protocol version: ");
  probe.cipher = LineValue(run.output, "Ciphersuite: ");
  return probe;
}

// `openssl s_server` on a free port of 127.0.0.1: the server a test compares carnet-server with,
// or an old one that speaks only what it is told.
class OpensslServer {
 public:
  OpensslServer(const std::string& cert_file, const std::string& key_file,
                std::vector<std::string> options) {
    std::vector<std::string> argv = {"openssl", "s_server", "-accept", "127.0.0.1:0", "-www",
                                     "-cert",   cert_file,  "-key",    key_file};
    argv.insert(argv.end(), options.begin(), options.end());
    std::vector<char*> args;
    for (std::string& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    int out[2];
    REQUIRE(pipe(out) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(out[1], STDERR_FILENO);
      close(out[0]);
      close(out[1]);
      execvp(args[0], args.data());
      _exit(127);
    }
    close(out[1]);
    // "ACCEPT 127.0.0.1:PORT" once it listens.
    std::string said;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (said.find("ACCEPT") == std::string::npos ||
           said.find('\n', said.find("ACCEPT")) == std::string::npos) {
      pollfd fd{out[0], POLLIN, 0};
      if (std::chrono::steady_clock::now() > deadline || poll(&fd, 1, 100) < 0) break;
      char buffer[512];
      if (fd.revents == 0) continue;
      ssize_t got = read(out[0], buffer, sizeof buffer);
      if (got <= 0) break;
      said.append(buffer, static_cast<size_t>(got));
    }
    close(out[0]);
    INFO("openssl s_server said: " << said);
    size_t accept = said.find("ACCEPT");
    REQUIRE(accept != std::string::npos);
    std::string line = said.substr(accept, said.find('\n', accept) - accept);
    port_ = std::stoi(line.substr(line.rfind(':') + 1));
  }
  ~OpensslServer() {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  OpensslServer(const OpensslServer&) = delete;
  OpensslServer& operator=(const OpensslServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// A département: its CA, carnet-server's certificate, a SQLite store with one tablet enrolled,
// and the server process serving it over HTTPS.
class HttpsServer {
 public:
  explicit HttpsServer(const std::string& key_type = "P-256")
      : ca_(dir_.File("ca.pem")), env_(kTabletStartMs, 3) {
    ca_.Issue(cert_file(), key_file(), "IP:127.0.0.1,DNS:localhost", key_type);
    Result<std::unique_ptr<ServerStore>> store = OpenServerStore(store_spec(), {&env_});
    SYNC_REQUIRE_OK(store);
    token_ = NewDeviceToken(&env_);
    SYNC_REQUIRE_OK((*store)->Enroll({"tab-a", "adviser-a", {kNorth}}, HashToken(token_)));
    store->reset();
    process_ =
        std::make_unique<ServerProcess>(CARNET_SERVER_BINARY, store_spec(), dir_.File("server.log"),
                                        ServerTls{cert_file(), key_file()});
  }

  const TempDir& dir() const { return dir_; }
  const TestCa& ca() const { return ca_; }
  std::string cert_file() const { return dir_.File("server-cert.pem"); }
  std::string key_file() const { return dir_.File("server-key.pem"); }
  std::string store_spec() const { return "sqlite:" + dir_.File("server.db"); }
  int port() const { return process_->port(); }
  std::string url() const { return process_->url(); }
  const std::string& token() const { return token_; }

  // Stops the server and returns its view of the tablet's scope.
  std::string StopAndDump(const std::string& device) {
    process_->Stop();
    Result<std::unique_ptr<ServerStore>> store = OpenServerStore(store_spec(), {&env_});
    SYNC_REQUIRE_OK(store);
    Result<std::string> dump = (*store)->ScopeDump(device);
    SYNC_REQUIRE_OK(dump);
    return *dump;
  }
  // Whether a request of the tablet reached the server: its last contact is recorded.
  bool Contacted(const std::string& device) {
    Result<std::unique_ptr<ServerStore>> store = OpenServerStore(store_spec(), {&env_});
    SYNC_REQUIRE_OK(store);
    Result<std::vector<Device>> devices = (*store)->Devices();
    SYNC_REQUIRE_OK(devices);
    for (const Device& d : *devices) {
      if (d.id == device) return d.last_contact_ms != 0 || d.cursor != 0;
    }
    FAIL("no device " << device);
    return false;
  }

 private:
  TempDir dir_;
  TestCa ca_;
  TestEnv env_;
  std::string token_;
  std::unique_ptr<ServerProcess> process_;
};

// A sync of `tablet` with these transport options; the Status it ends with.
Status SyncWith(Tablet& tablet, const std::string& token, CurlOptions curl) {
  curl.connect_timeout_ms = 5000;
  Result<std::unique_ptr<Transport>> transport = MakeCurlTransport(curl);
  SYNC_REQUIRE_OK(transport);
  SyncOptions options = ServerSyncOptions(token);
  options.max_attempts = 2;
  SyncClient client(&tablet.store(), &tablet.env(), std::move(*transport), options);
  return client.SyncNow();
}

}  // namespace

TEST_CASE("A tablet that trusts the département's CA syncs with carnet-server over HTTPS",
          "[tls]") {
  HttpsServer server;
  Tablet tablet(server.dir(), "tab-a");
  AddParticipant(tablet.store(), "adviser-a", kNorth, "w-1");
  CurlOptions curl;
  curl.base_url = server.url();
  curl.ca_file = server.ca().ca_file();

  SYNC_REQUIRE_OK(SyncWith(tablet, server.token(), curl));

  CHECK(tablet.Pending() == 0);
  CHECK(DumpDiff(tablet.Dump(), server.StopAndDump("tab-a")) == "");
  CHECK(server.Contacted("tab-a"));
}

TEST_CASE("A tablet without the département's CA refuses the server and says why", "[tls]") {
  HttpsServer server;
  Tablet tablet(server.dir(), "tab-a");
  AddParticipant(tablet.store(), "adviser-a", kNorth, "w-1");
  CurlOptions curl;
  curl.base_url = server.url();

  SECTION("with the system's CAs only") {
    Status status = SyncWith(tablet, server.token(), curl);
    CHECK(status.code() == StatusCode::kUnavailable);
    CHECK_THAT(status.message(), Catch::Contains("does not verify against the system's CAs"));
    CHECK_THAT(status.message(), Catch::Contains("certificate"));
  }
  SECTION("with another CA") {
    TestCa other(server.dir().File("other-ca.pem"), "another CA");
    curl.ca_file = other.ca_file();
    Status status = SyncWith(tablet, server.token(), curl);
    CHECK(status.code() == StatusCode::kUnavailable);
    CHECK_THAT(status.message(),
               Catch::Contains("does not verify against the CA file '" + other.ca_file() + "'"));
  }
  SECTION("with a certificate of the right CA issued for another host") {
    // The same CA, but the server presents a certificate for records.example only.
    const TestCa& ca = server.ca();
    std::string cert = server.dir().File("elsewhere-cert.pem");
    std::string key = server.dir().File("elsewhere-key.pem");
    ca.Issue(cert, key, "DNS:records.example");
    ServerProcess elsewhere(CARNET_SERVER_BINARY, server.store_spec(),
                            server.dir().File("elsewhere.log"), ServerTls{cert, key});
    curl.base_url = elsewhere.url();
    curl.ca_file = ca.ca_file();
    Status status = SyncWith(tablet, server.token(), curl);
    CHECK(status.code() == StatusCode::kUnavailable);
    CHECK_THAT(status.message(), Catch::Contains("does not verify"));
    CHECK_THAT(status.message(),
               Catch::Contains("subject name matches target host name '127.0.0.1'"));
  }
  CHECK(tablet.Pending() > 0);
  CHECK_FALSE(server.Contacted("tab-a"));
}

TEST_CASE("A tablet with a pinned public key syncs only with the server holding that key",
          "[tls]") {
  HttpsServer server;
  Tablet tablet(server.dir(), "tab-a");
  AddParticipant(tablet.store(), "adviser-a", kNorth, "w-1");
  CurlOptions curl;
  curl.base_url = server.url();
  curl.ca_file = server.ca().ca_file();
  // A key the same CA vouches for, but not the server's: a pin is stricter than the CA.
  std::string other_cert = server.dir().File("other-cert.pem");
  server.ca().Issue(other_cert, server.dir().File("other-key.pem"));
  const std::string right = PublicKeyPin(server.cert_file());
  const std::string wrong = PublicKeyPin(other_cert);
  REQUIRE(right != wrong);

  SECTION("the server's key") {
    curl.pinned_public_key = right;
    SYNC_REQUIRE_OK(SyncWith(tablet, server.token(), curl));
    CHECK(tablet.Pending() == 0);
  }
  SECTION("the server's key among others, as during a key rotation") {
    curl.pinned_public_key = wrong + ";" + right;
    SYNC_REQUIRE_OK(SyncWith(tablet, server.token(), curl));
    CHECK(tablet.Pending() == 0);
  }
  SECTION("another key") {
    curl.pinned_public_key = wrong;
    Status status = SyncWith(tablet, server.token(), curl);
    CHECK(status.code() == StatusCode::kUnavailable);
    CHECK_THAT(status.message(), Catch::Contains("public key is not the pinned one"));
    CHECK(tablet.Pending() > 0);
    CHECK_FALSE(server.Contacted("tab-a"));
  }
}

TEST_CASE("carnet-server speaks TLS 1.2 and 1.3 only, and 1.3 when the client has it", "[tls]") {
  RequirePermissiveOpenssl();
  HttpsServer server;
  const std::string ca = server.ca().ca_file();

  SECTION("TLS 1.0 and 1.1 are refused") {
    // The probe speaks them: an OpenSSL server left to this host's configuration accepts them.
    OpensslServer lax(server.cert_file(), server.key_file(), {});
    for (const char* version : {"-tls1", "-tls1_1"}) {
      INFO(version);
      Probe control = SClient(lax.port(), ca, {version});
      INFO("against openssl s_server: " << control.output);
      REQUIRE(control.connected);
      Probe probe = SClient(server.port(), ca, {version});
      INFO("against carnet-server: " << probe.output);
      CHECK_FALSE(probe.connected);
      CHECK_THAT(probe.output, Catch::Contains("protocol version"));
    }
  }
  SECTION("TLS 1.2 is accepted") {
    Probe probe = SClient(server.port(), ca, {"-tls1_2"});
    INFO(probe.output);
    CHECK(probe.connected);
    CHECK(probe.protocol == "TLSv1.2");
  }
  SECTION("TLS 1.3 is accepted, and chosen when the client offers everything") {
    Probe probe = SClient(server.port(), ca, {"-tls1_3"});
    INFO(probe.output);
    CHECK(probe.connected);
    CHECK(probe.protocol == "TLSv1.3");
    Probe any = SClient(server.port(), ca, {});
    INFO(any.output);
    CHECK(any.connected);
    CHECK(any.protocol == "TLSv1.3");
  }
}

TEST_CASE("carnet-server accepts only ECDHE key exchange with AEAD ciphers in TLS 1.2", "[tls]") {
  RequirePermissiveOpenssl();
  const std::string key_type = GENERATE(as<std::string>{}, "P-256", "RSA");
  INFO("server key " << key_type);
  HttpsServer server(key_type);
  const std::string ca = server.ca().ca_file();
  const std::string ecdhe = key_type == "RSA" ? "ECDHE-RSA" : "ECDHE-ECDSA";
  OpensslServer lax(server.cert_file(), server.key_file(), {});

  // CBC, static RSA key exchange, finite-field DHE: all spoken by the probe and by an OpenSSL
  // server left to this host's configuration.
  std::vector<std::string> refused = {ecdhe + "-AES128-SHA", ecdhe + "-AES256-SHA384"};
  if (key_type == "RSA") {
    refused.insert(refused.end(), {"AES128-GCM-SHA256", "AES256-SHA", "DHE-RSA-AES128-GCM-SHA256"});
  }
  for (const std::string& cipher : refused) {
    INFO(cipher);
    Probe control = SClient(lax.port(), ca, {"-tls1_2", "-cipher", cipher});
    INFO("against openssl s_server: " << control.output);
    REQUIRE(control.connected);
    Probe probe = SClient(server.port(), ca, {"-tls1_2", "-cipher", cipher});
    INFO("against carnet-server: " << probe.output);
    CHECK_FALSE(probe.connected);
  }
  for (const std::string& cipher :
       {ecdhe + "-AES128-GCM-SHA256", ecdhe + "-AES256-GCM-SHA384", ecdhe + "-CHACHA20-POLY1305"}) {
    Probe probe = SClient(server.port(), ca, {"-tls1_2", "-cipher", cipher});
    INFO(probe.output);
    CHECK(probe.connected);
    CHECK(probe.cipher == cipher);
  }
}

TEST_CASE("The client refuses a server that offers no more than TLS 1.1", "[tls]") {
  RequirePermissiveOpenssl();
  TempDir dir;
  TestCa ca(dir.File("ca.pem"));
  ca.Issue(dir.File("cert.pem"), dir.File("key.pem"));
  OpensslServer old(dir.File("cert.pem"), dir.File("key.pem"), {"-tls1_1"});
  // The control: the same OpenSSL as the client's, without Carnet's settings, would go ahead.
  Probe control = SClient(old.port(), ca.ca_file(), {});
  INFO("openssl s_client against it: " << control.output);
  REQUIRE(control.connected);
  REQUIRE(control.protocol == "TLSv1.1");

  CurlOptions curl;
  curl.base_url = old.url();
  curl.ca_file = ca.ca_file();
  Result<std::unique_ptr<Transport>> transport = MakeCurlTransport(curl);
  SYNC_REQUIRE_OK(transport);
  Result<HttpReply> reply = (*transport)->Post({"/v1/status", {}, ""});

  REQUIRE_FALSE(reply.ok());
  CHECK(reply.status().code() == StatusCode::kUnavailable);
  CHECK_THAT(reply.status().message(), Catch::Contains("TLS handshake failed"));
  CHECK_THAT(reply.status().message(), Catch::Contains("protocol version"));
}

TEST_CASE("carnet-server serves plain HTTP only when asked, and only on loopback", "[tls]") {
  TempDir dir;
  const std::string store = "sqlite:" + dir.File("server.db");
  auto serve = [&](std::vector<std::string> options) {
    std::vector<std::string> argv = {CARNET_SERVER_BINARY, "serve", "--store", store};
    argv.insert(argv.end(), options.begin(), options.end());
    // A server that starts instead of refusing is killed at the timeout: exit code -1.
    return Run(argv, 5'000);
  };

  SECTION("without TLS and without --plain-http") {
    CommandResult run = serve({"--listen", "127.0.0.1:0"});
    CHECK(run.exit_code == 2);
    CHECK_THAT(run.output, Catch::Contains("--tls-cert FILE and --tls-key FILE"));
    CHECK_THAT(run.output, Catch::Contains("--plain-http"));
  }
  SECTION("--plain-http beyond loopback") {
    for (const char* listen : {"0.0.0.0:0", "[::]:0", "192.0.2.1:8470", "127.example.org:0"}) {
      INFO(listen);
      CommandResult run = serve({"--listen", listen, "--plain-http"});
      CHECK(run.exit_code == 2);
      CHECK_THAT(run.output, Catch::Contains("plain HTTP is served on a loopback address only"));
    }
  }
  SECTION("--plain-http with a certificate") {
    CommandResult run = serve({"--plain-http", "--tls-cert", "c.pem", "--tls-key", "k.pem"});
    CHECK(run.exit_code == 2);
    CHECK_THAT(run.output, Catch::Contains("exclude each other"));
  }
  SECTION("a certificate without its key") {
    CommandResult run = serve({"--tls-cert", dir.File("cert.pem")});
    CHECK(run.exit_code == 2);
  }
  // A refused command leaves no store behind.
  CHECK_FALSE(std::filesystem::exists(dir.File("server.db")));
}

TEST_CASE("carnet-server refuses a certificate or key it cannot use, and says which", "[tls]") {
  TempDir dir;
  TestCa ca(dir.File("ca.pem"));
  ca.Issue(dir.File("cert.pem"), dir.File("key.pem"));
  ca.Issue(dir.File("other-cert.pem"), dir.File("other-key.pem"));
  const std::string store = "sqlite:" + dir.File("server.db");
  auto serve = [&](const std::string& cert, const std::string& key) {
    return Run({CARNET_SERVER_BINARY, "serve", "--store", store, "--listen", "127.0.0.1:0",
                "--tls-cert", cert, "--tls-key", key},
               5'000);
  };

  CommandResult missing = serve(dir.File("missing.pem"), dir.File("key.pem"));
  CHECK(missing.exit_code == 2);
  CHECK_THAT(missing.output,
             Catch::Contains("cannot read the TLS certificate '" + dir.File("missing.pem") + "'"));
  CommandResult swapped = serve(dir.File("key.pem"), dir.File("cert.pem"));
  CHECK(swapped.exit_code == 2);
  CHECK_THAT(swapped.output, Catch::Contains("cannot use the TLS certificate"));
  CommandResult mismatched = serve(dir.File("cert.pem"), dir.File("other-key.pem"));
  CHECK(mismatched.exit_code == 2);
  CHECK_THAT(mismatched.output, Catch::Contains("TLS key '" + dir.File("other-key.pem")));
}
