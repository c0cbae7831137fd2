// libFuzzer target: wire::Decode of every message type, in both formats, on any bytes. Decoding
// must return a Status (never throw, crash or allocate past the body's limits), and what decodes
// must encode again into a body that decodes to the same message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "carnet/wire.h"

namespace {

using carnet::Result;
using carnet::Status;
namespace wire = carnet::wire;

// A decoded message survives a round trip: encoding it and decoding that gives an encoding equal
// to the first.
template <typename Message>
void RoundTrip(const Message& message, wire::Format format) {
  Result<std::string> once = wire::Encode(message, format);
  if (!once.ok()) return;  // larger than a body may be once encoded
  Message again;
  if (!wire::Decode(*once, format, &again).ok()) std::abort();
  Result<std::string> twice = wire::Encode(again, format);
  if (!twice.ok() || *twice != *once) std::abort();
}

template <typename Message>
void DecodeAs(std::string_view body) {
  for (wire::Format format : {wire::Format::kJson, wire::Format::kBinary}) {
    Message message;
    Status decoded = wire::Decode(body, format, &message);
    if (decoded.ok()) RoundTrip(message, format);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  DecodeAs<wire::PushRequest>(body);
  DecodeAs<wire::PushReply>(body);
  DecodeAs<wire::PullRequest>(body);
  DecodeAs<wire::PullReply>(body);
  DecodeAs<wire::StatusReply>(body);
  DecodeAs<wire::ErrorReply>(body);
  DecodeAs<wire::EnrollRequest>(body);
  DecodeAs<wire::TokenRequest>(body);
  DecodeAs<wire::TokenReply>(body);
  DecodeAs<wire::WipeConfirmation>(body);
  return 0;
}
