// HTTPS for the tests that run the carnet-server process, as a département serves it: a CA made
// for the test in its folder, and the server's certificate and key for 127.0.0.1 signed by it.
// The tablets trust that CA (Tablet::Connect's ca_file).
#pragma once

#include <string>

#include "tests/support/temp_dir.h"
#include "tests/sync/server_process.h"
#include "tests/sync/test_certificate.h"

namespace carnet::testing {

class ProcessTls {
 public:
  explicit ProcessTls(const TempDir& dir)
      : ca_(dir.File("ca.pem")),
        server_{dir.File("server-cert.pem"), dir.File("server-key.pem")} {
    ca_.Issue(server_.cert_file, server_.key_file);
  }

  const ServerTls& server() const { return server_; }
  const std::string& ca_file() const { return ca_.ca_file(); }

 private:
  TestCa ca_;
  ServerTls server_;
};

}  // namespace carnet::testing
