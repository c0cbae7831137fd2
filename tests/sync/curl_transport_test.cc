// The libcurl transport against a real HTTP server on 127.0.0.1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "carnet/transport.h"
#include "tests/sync/sync_helpers.h"
#include "tests/sync/test_certificate.h"

using namespace carnet;
using namespace carnet::testing;

namespace {

// A loopback port nobody listens on: bound, then released.
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t length = sizeof addr;
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0);
  close(fd);
  return ntohs(addr.sin_port);
}

HttpRequest Request(std::string body = "ping") {
  return HttpRequest{"/v1/push", {{"Content-Type", "application/vnd.carnet.bin"}}, std::move(body)};
}

// The Status of a POST that gets no usable reply.
Status FailedPost(const std::string& url, int total_timeout_ms = 0) {
  std::unique_ptr<Transport> transport = CurlTo(url, total_timeout_ms);
  Result<HttpReply> reply = transport->Post(Request());
  REQUIRE_FALSE(reply.ok());
  return reply.status();
}

// The same, from a server that answers with `handler`.
Status FailedPost(Handler handler, int total_timeout_ms = 0) {
  ScriptedServer server;
  server.Then("/v1/push", std::move(handler));
  return FailedPost(server.url(), total_timeout_ms);
}

}  // namespace

TEST_CASE("The transport posts body and headers and returns a reply of any HTTP status",
          "[sync][transport]") {
  ScriptedServer server;
  server.Then("/v1/push", TextHandler(418, "teapot", "text/plain"));
  std::unique_ptr<Transport> transport = CurlTo(server.url() + "/");
  std::string body("bin\0ary", 7);
  HttpRequest request{
      "/v1/push", {{"Authorization", "Bearer t0k"}, {"Carnet-Protocol", "1"}}, body};

  Result<HttpReply> reply = transport->Post(request);

  REQUIRE(reply.ok());
  CHECK(reply->status == 418);
  CHECK(reply->content_type == "text/plain");
  CHECK(reply->body == "teapot");
  auto seen = server.requests();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].path == "/v1/push");
  CHECK(seen[0].body == body);
  CHECK(seen[0].Header("Authorization") == "Bearer t0k");
  CHECK(seen[0].Header("Carnet-Protocol") == "1");
}

TEST_CASE("The transport keeps its connection open between requests", "[sync][transport]") {
  ScriptedServer server;
  server.Otherwise("/v1/push", TextHandler(200, "ok", "text/plain"));
  std::unique_ptr<Transport> transport = CurlTo(server.url());
  REQUIRE(transport->Post(Request()).ok());
  REQUIRE(transport->Post(Request()).ok());
  auto seen = server.requests();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].remote_port == seen[1].remote_port);
}

TEST_CASE("A refused connection is unavailable", "[sync][transport]") {
  Status status = FailedPost("http://127.0.0.1:" + std::to_string(ClosedPort()));
  CHECK(status.code() == StatusCode::kUnavailable);
  CHECK_THAT(status.message(), Catch::Contains("onnect"));
}

TEST_CASE("A reply cut mid-way is unavailable", "[sync][transport]") {
  CHECK(FailedPost(CutHandler()).code() == StatusCode::kUnavailable);
}

TEST_CASE("A reply slower than the timeout is unavailable", "[sync][transport]") {
  Status status = FailedPost(SlowHandler(400, TextHandler(200, "late", "text/plain")), 150);
  CHECK(status.code() == StatusCode::kUnavailable);
  CHECK_THAT(status.message(), Catch::Contains("imed out"));
}

TEST_CASE("A reply larger than any protocol message is abandoned", "[sync][transport]") {
  std::string huge(wire::kMaxWireBytes + 2 * 1024 * 1024, 'x');
  Status status = FailedPost(TextHandler(200, huge, "application/json"));
  CHECK(status.code() == StatusCode::kResourceExhausted);
}

TEST_CASE("The transport refuses plain http beyond loopback and malformed URLs",
          "[sync][transport]") {
  CurlOptions options;
  options.base_url = "http://records.example:8080";
  CHECK(MakeCurlTransport(options).status().code() == StatusCode::kInvalidArgument);
  options.base_url = "ftp://127.0.0.1";
  CHECK(MakeCurlTransport(options).status().code() == StatusCode::kInvalidArgument);
  options.base_url = "not a url";
  CHECK(MakeCurlTransport(options).status().code() == StatusCode::kInvalidArgument);
  options.base_url = "https://records.example:8443";
  CHECK(MakeCurlTransport(options).ok());
  options.base_url = "http://localhost:8080";
  CHECK(MakeCurlTransport(options).ok());
}

TEST_CASE("https to a server that does not speak TLS is unavailable", "[sync][transport]") {
  ScriptedServer server;
  std::string url = server.url();
  url.replace(0, 4, "https");
  CHECK(FailedPost(url).code() == StatusCode::kUnavailable);
}

TEST_CASE("https verifies the server against the CA file it is given", "[sync][transport]") {
  TempDir dir;
  std::string cert = dir.File("cert.pem"), key = dir.File("key.pem");
  WriteSelfSignedCertificate(cert, key, "IP:127.0.0.1");
  ScriptedServer server(cert, key);
  server.Otherwise("/v1/push", TextHandler(200, "secret kept", "text/plain"));
  CurlOptions options;
  options.base_url = server.url();

  SECTION("trusted through ca_file") {
    options.ca_file = cert;
    Result<std::unique_ptr<Transport>> transport = MakeCurlTransport(options);
    SYNC_REQUIRE_OK(transport);
    Result<HttpReply> reply = (*transport)->Post(Request());
    SYNC_REQUIRE_OK(reply);
    CHECK(reply->body == "secret kept");
  }
  SECTION("refused without it") {
    Status status = FailedPost(server.url());
    CHECK(status.code() == StatusCode::kUnavailable);
    CHECK_THAT(status.message(), Catch::Contains("certificate"));
    CHECK(server.requests().empty());
  }
}

TEST_CASE("https refuses a trusted certificate issued for another host", "[sync][transport]") {
  TempDir dir;
  std::string cert = dir.File("cert.pem"), key = dir.File("key.pem");
  WriteSelfSignedCertificate(cert, key, "DNS:records.example");
  ScriptedServer server(cert, key);
  CurlOptions options;
  options.base_url = server.url();
  options.ca_file = cert;
  Result<std::unique_ptr<Transport>> transport = MakeCurlTransport(options);
  SYNC_REQUIRE_OK(transport);

  Result<HttpReply> reply = (*transport)->Post(Request());

  REQUIRE_FALSE(reply.ok());
  CHECK(reply.status().code() == StatusCode::kUnavailable);
  CHECK_THAT(reply.status().message(), Catch::Contains("127.0.0.1"));
  CHECK(server.requests().empty());
}

TEST_CASE("Loopback is 127.0.0.0/8, ::1 and localhost, not a name that looks like them",
          "[sync][transport]") {
  for (const char* host : {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost",
                           "::ffff:127.0.0.1"}) {
    INFO(host);
    CHECK(IsLoopbackHost(host));
  }
  for (const char* host : {"127.example.org", "127.0.0.1.nip.io", "localhost.example", "0.0.0.0",
                           "::", "10.0.0.1", "128.0.0.1", "", "[::2]"}) {
    INFO(host);
    CHECK_FALSE(IsLoopbackHost(host));
  }
  CurlOptions options;
  options.base_url = "http://127.example.org:8080";
  CHECK(MakeCurlTransport(options).status().code() == StatusCode::kInvalidArgument);
  options.base_url = "http://[::1]:8080";
  CHECK(MakeCurlTransport(options).ok());
}

TEST_CASE("https with a pinned public key talks only to the server holding that key",
          "[sync][transport]") {
  TempDir dir;
  TestCa ca(dir.File("ca.pem"));
  ca.Issue(dir.File("cert.pem"), dir.File("key.pem"));
  ca.Issue(dir.File("other-cert.pem"), dir.File("other-key.pem"));
  ScriptedServer server(dir.File("cert.pem"), dir.File("key.pem"));
  server.Otherwise("/v1/push", TextHandler(200, "pinned", "text/plain"));
  CurlOptions options;
  options.base_url = server.url();
  options.ca_file = ca.ca_file();

  SECTION("its key") {
    options.pinned_public_key = PublicKeyPin(dir.File("cert.pem"));
    Result<std::unique_ptr<Transport>> transport = MakeCurlTransport(options);
    SYNC_REQUIRE_OK(transport);
    Result<HttpReply> reply = (*transport)->Post(Request());
    SYNC_REQUIRE_OK(reply);
    CHECK(reply->body == "pinned");
  }
  SECTION("another key, though the CA vouches for the server") {
    options.pinned_public_key = PublicKeyPin(dir.File("other-cert.pem"));
    Result<std::unique_ptr<Transport>> transport = MakeCurlTransport(options);
    SYNC_REQUIRE_OK(transport);
    Result<HttpReply> reply = (*transport)->Post(Request());
    REQUIRE_FALSE(reply.ok());
    CHECK(reply.status().code() == StatusCode::kUnavailable);
    CHECK_THAT(reply.status().message(),
               Catch::Contains("the server's public key is not the pinned one"));
    CHECK(server.requests().empty());
  }
}

TEST_CASE("A malformed pin, a pin over plain http or an unreadable CA file is refused at once",
          "[sync][transport]") {
  TempDir dir;
  const std::string good = "sha256//" + std::string(43, 'A') + "=";
  CurlOptions options;
  options.base_url = "https://127.0.0.1:8443";
  options.pinned_public_key = good + ";" + good;
  CHECK(MakeCurlTransport(options).ok());
  for (const std::string& pin :
       {std::string("sha256//tooshort="), "md5//" + std::string(43, 'A') + "=",
        "sha256//" + std::string(44, 'A'), "sha256//" + std::string(42, 'A') + "!=", good + ";",
        dir.File("key.pem")}) {
    INFO(pin);
    options.pinned_public_key = pin;
    Result<std::unique_ptr<Transport>> transport = MakeCurlTransport(options);
    REQUIRE_FALSE(transport.ok());
    CHECK(transport.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(transport.status().message(), Catch::Contains("malformed public-key pin"));
  }
  options.base_url = "http://127.0.0.1:8080";
  options.pinned_public_key = good;
  CHECK(MakeCurlTransport(options).status().code() == StatusCode::kInvalidArgument);

  options.base_url = "https://127.0.0.1:8443";
  options.pinned_public_key = "";
  options.ca_file = dir.File("missing-ca.pem");
  Result<std::unique_ptr<Transport>> transport = MakeCurlTransport(options);
  REQUIRE_FALSE(transport.ok());
  CHECK(transport.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(transport.status().message(), Catch::Contains("cannot read the CA file"));
}
