// Device tokens and enrollment codes as both ends handle them (sync/PROTOCOL.md, Devices): the
// server makes and hashes them, the tablet checks a typed code before sending it.
#pragma once

#include <string>

#include "carnet/env.h"

namespace carnet {

// Tokens: 256 random bits as 64 hex digits; the server keeps only their SHA-256.
std::string NewDeviceToken(Env* env);
std::string HashToken(const std::string& token);
// Enrollment codes: 100 random bits as 20 letters and digits of Crockford's base 32 (no I, L,
// O, U), in four groups of five ("7KQ2M-9XJ4T-..."), to be read out and typed.
std::string NewEnrollmentCode(Env* env);
// The code as hashed: upper case, without dashes and spaces. Empty if it holds anything else
// or is not 20 characters long.
std::string NormalizeEnrollmentCode(const std::string& typed);

}  // namespace carnet
