#pragma once
// SIDs (two-letter prefix + 32 lowercase hex: a millisecond timestamp, then OpenSSL CSPRNG bytes) and their
// syntax check. Thread-safe.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace notifyd {

std::string make_sid(std::string_view prefix);
// True when `s` is `prefix` followed by exactly 32 hex digits (either case, as the spec's patterns allow).
bool is_sid(std::string_view s, std::string_view prefix);
// A random (version 4) UUID in its lowercase 8-4-4-4-12 form, e.g. for apns-id.
std::string make_uuid();
// The apns-id of one binding's delivery of one notification: a UUID derived from the notification SID's
// random digits and the binding's store sequence number, so that it is the same on every attempt, before
// and after a restart, without being stored. Distinct for distinct bindings of one notification.
std::string apns_id_for(std::string_view notification_sid, std::int64_t binding_seq);

// apns_id_for() for many bindings of one notification: the SID is decoded once, not once per binding.
class ApnsIds {
 public:
  explicit ApnsIds(std::string_view notification_sid);
  std::string for_binding(std::int64_t binding_seq) const;

 private:
  std::array<unsigned char, 16> sid_bytes_{};
};

}  // namespace notifyd
