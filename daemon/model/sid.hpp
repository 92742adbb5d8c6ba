#pragma once
// SIDs (two-letter prefix + 32 lowercase hex: a millisecond timestamp, then OpenSSL CSPRNG bytes) and their
// syntax check. Thread-safe.
#include <string>
#include <string_view>

namespace notifyd {

std::string make_sid(std::string_view prefix);
// True when `s` is `prefix` followed by exactly 32 hex digits (either case, as the spec's patterns allow).
bool is_sid(std::string_view s, std::string_view prefix);
// A random (version 4) UUID in its lowercase 8-4-4-4-12 form, e.g. for apns-id.
std::string make_uuid();

}  // namespace notifyd
