// PosixEnv's log lines: JSON objects, one a line, for carnet-server's log collector.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>

#include "carnet/posix_env.h"
#include "tests/support/temp_dir.h"

using namespace carnet;

namespace {

// What `log` wrote on standard error.
template <typename F>
std::string CaptureStderr(const testing::TempDir& dir, F log) {
  const std::string path = dir.File("stderr.txt");
  std::fflush(stderr);
  int saved = dup(STDERR_FILENO);
  REQUIRE(std::freopen(path.c_str(), "w", stderr) != nullptr);
  log();
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("With json_lines, each log line is one JSON object with time, level and message",
          "[platform][log]") {
  testing::TempDir dir;
  PosixEnvOptions options;
  options.min_level = LogLevel::kInfo;
  options.json_lines = true;
  PosixEnv env(options);
  const std::string text = CaptureStderr(dir, [&] {
    env.Log(LogLevel::kWarning, "push from \"tab-1\" refused:\nline\\two\x01");
    env.Log(LogLevel::kDebug, "below the level");
  });
  INFO(text);
  REQUIRE(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK(text.rfind("{\"time\":\"20", 0) == 0);
  CHECK(text.find("Z\",\"level\":\"warning\",\"message\":\"push from \\\"tab-1\\\" refused:\\nline"
                  "\\\\two\\u0001\"}\n") != std::string::npos);
}

TEST_CASE("PosixEnv draws its random numbers from libsodium, ready once constructed",
          "[platform][random]") {
  PosixEnv env;
  REQUIRE(env.Ready().ok());
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(env.RandomU64());
  // 1,000 draws of 64 bits collide with odds of about 2^-44: a repeat means no randomness.
  CHECK(seen.size() == 1000);
}
