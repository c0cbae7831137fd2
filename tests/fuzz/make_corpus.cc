// Writes the seed corpus of the fuzz targets (tests/fuzz/README.md): valid messages of every type
// in both formats, made by a real tablet store and a real server store.
//   fuzz_make_corpus tests/fuzz/corpus
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "carnet/server_store.h"
#include "carnet/store.h"
#include "carnet/wire.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_env.h"

namespace {

using carnet::Result;
namespace wire = carnet::wire;

template <typename T>
T Must(Result<T> result, const char* what) {
  if (!result.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, result.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(result.value());
}

void Must(const carnet::Status& status, const char* what) {
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, status.ToString().c_str());
    std::exit(1);
  }
}

void Write(const std::filesystem::path& path, const std::string& data) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

template <typename Message>
std::string Encoded(const Message& message, wire::Format format) {
  return Must(wire::Encode(message, format), "encode");
}

// A request of server_request_fuzz.cc: [what][size, little-endian][body].
std::string Request(int what, const std::string& body) {
  std::string framed;
  framed += static_cast<char>(what);
  framed += static_cast<char>(body.size() & 0xff);
  framed += static_cast<char>((body.size() >> 8) & 0xff);
  return framed + body;
}

// A tablet's day: participants, an interview with notes, attendance, a deleted action.
std::vector<carnet::Operation> TabletDay(carnet::testing::TestEnv& env, const std::string& dir,
                                         const std::string& device, const std::string& adviser,
                                         const std::string& territory) {
  carnet::StoreOptions options;
  options.path = dir + "/" + device + ".db";
  options.device_id = device;
  options.env = &env;
  std::unique_ptr<carnet::Store> store = Must(carnet::Store::Open(options), "open tablet");
  const std::string p = "p-" + device;
  Must(store->Put("participants", p,
                  {{"referent", adviser}, {"territory", territory}, {"first_name", "Nadia"},
                   {"phase", "assessment"}}),
       "put participant");
  Must(store->Add("participants", p, "barriers", "mobility"), "add barrier");
  Must(store->Remove("participants", p, "barriers", "mobility"), "remove barrier");
  Must(store->Put("interviews", "i-" + device, {{"participant", p}, {"place", "office"}}),
       "put interview");
  carnet::Stamp note =
      Must(store->Append("interviews", "i-" + device, "notes", "First meeting."), "append");
  Must(store->Append("interviews", "i-" + device, "notes", "Revised.", note), "revise");
  Must(store->Redact("interviews", "i-" + device, "notes", note), "redact");
  Must(store->Put("actions", "a-" + device, {{"participant", p}, {"label", "call"}}), "action");
  Must(store->Delete("actions", "a-" + device), "delete");
  Must(store->Restore("actions", "a-" + device), "restore");
  Must(store->Set("participants", p, "phase", std::nullopt), "clear");
  return Must(store->PendingOperations(0, 1000), "pending");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_FOLDER\n", argv[0]);
    return 2;
  }
  const std::filesystem::path corpus = argv[1];
  carnet::testing::TempDir dir;
  carnet::testing::TestEnv env;

  carnet::ServerStoreOptions options;
  options.env = &env;
  std::unique_ptr<carnet::ServerStore> server =
      Must(carnet::OpenServerStore("sqlite::memory:", options), "open server");
  carnet::Device a{"tablet-a", "amina", {"bassin-nord"}};
  carnet::Device b{"tablet-b", "bruno", {"bassin-sud", "bassin-nord"}};
  Must(server->Enroll(a, carnet::HashToken("token-0")), "enroll a");
  Must(server->Enroll(b, carnet::HashToken("token-1")), "enroll b");
  a = Must(server->Authenticate(carnet::HashToken("token-0")), "authenticate a");
  b = Must(server->Authenticate(carnet::HashToken("token-1")), "authenticate b");

  wire::PushRequest push_a{wire::kProtocolVersion, "tablet-a", "", 0,
                           TabletDay(env, dir.path().string(), "tablet-a", "amina", "bassin-nord")};
  wire::PushRequest push_b{wire::kProtocolVersion, "tablet-b", "", 0,
                           TabletDay(env, dir.path().string(), "tablet-b", "bruno", "bassin-sud")};
  wire::PushReply push_reply = Must(server->Push(a, push_a), "push a");
  Must(server->Push(b, push_b), "push b");
  wire::PullRequest pull_first{wire::kProtocolVersion, 0, 1000, ""};
  wire::PullReply pull_reply = Must(server->Pull(b, 0, 1000), "pull b");
  wire::PullRequest pull_next{wire::kProtocolVersion, pull_reply.next_cursor, 3, ""};
  wire::PullRequest pull_snapshot{wire::kProtocolVersion, 0, 4, wire::kSnapshotBegin};
  pull_reply.forget.push_back(wire::RecordRef{"participants", "p-gone"});
  pull_reply.erase.push_back(
      wire::ErasureOrder{"p-erased", {{"participants", "p-erased"}, {"interviews", "i-erased"}}});
  push_reply.erased = 2;
  wire::StatusReply status{"tablet-a", "amina", {"bassin-nord"}, 3, 11, env.NowMillis()};
  wire::ErrorReply error{"clock_skew", "stamp 20 minutes ahead", true, env.NowMillis()};
  pull_reply.rotate_token = true;
  wire::EnrollRequest enroll{wire::kProtocolVersion, "tablet-a", "7KQ2M-9XJ4T-0ABCD-EFGHJ"};
  wire::TokenRequest renew{wire::kProtocolVersion, "tablet-a"};
  wire::TokenReply token{NewDeviceToken(&env), env.NowMillis() + 90LL * 24 * 3600 * 1000,
                         env.NowMillis()};
  wire::WipeConfirmation wiped{wire::kProtocolVersion, "tablet-a"};

  const std::pair<wire::Format, const char*> formats[] = {{wire::Format::kJson, "json"},
                                                          {wire::Format::kBinary, "bin"}};
  for (const auto& [format, suffix] : formats) {
    const std::filesystem::path d = corpus / "wire_decode";
    const std::string s = std::string(".") + suffix;
    Write(d / ("push_request" + s), Encoded(push_a, format));
    Write(d / ("push_reply" + s), Encoded(push_reply, format));
    Write(d / ("pull_request" + s), Encoded(pull_next, format));
    Write(d / ("pull_request_snapshot" + s), Encoded(pull_snapshot, format));
    Write(d / ("pull_reply" + s), Encoded(pull_reply, format));
    Write(d / ("status_reply" + s), Encoded(status, format));
    Write(d / ("error_reply" + s), Encoded(error, format));
    Write(d / ("enroll_request" + s), Encoded(enroll, format));
    Write(d / ("token_request" + s), Encoded(renew, format));
    Write(d / ("token_reply" + s), Encoded(token, format));
    Write(d / ("wipe_confirmation" + s), Encoded(wiped, format));

    // server_request: what & 3 = 0 push a, 1 push b, 2 pull a, 3 pull b; & 4 binary; >> 3 minutes.
    const int bin = format == wire::Format::kBinary ? 4 : 0;
    const std::filesystem::path r = corpus / "server_request";
    Write(r / ("push_then_pulls" + s),
          Request(0 | bin, Encoded(push_a, format)) + Request(1 | bin, Encoded(push_b, format)) +
              Request(2 | bin, Encoded(pull_first, format)) +
              Request(3 | bin | (90 << 3), Encoded(pull_first, format)));
    Write(r / ("snapshot" + s), Request(1 | bin, Encoded(push_b, format)) +
                                    Request(2 | bin, Encoded(pull_snapshot, format)) +
                                    Request(2 | bin, Encoded(pull_next, format)));
    Write(r / ("push_twice" + s), Request(0 | bin, Encoded(push_a, format)) +
                                      Request(0 | bin, Encoded(push_a, format)) +
                                      Request(3 | bin, Encoded(pull_first, format)));
  }
  std::printf("corpus written to %s\n", corpus.c_str());
  return 0;
}
