#include "daemon/model/sid.hpp"

#include <openssl/rand.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <stdexcept>

namespace notifyd {

std::string make_sid(std::string_view prefix) {
  // 48 bits of milliseconds, then 80 random bits: SIDs made later sort later, so the store's unique
  // SID index is appended to instead of written at a random page for every insert.
  std::array<unsigned char, 16> bytes{};
  auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  for (int i = 0; i < 6; ++i)
    bytes[static_cast<std::size_t>(i)] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  if (RAND_bytes(bytes.data() + 6, static_cast<int>(bytes.size() - 6)) != 1) {
    throw std::runtime_error("RAND_bytes failed");  // the CSPRNG failing is not recoverable
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string sid(prefix);
  for (unsigned char b : bytes) {
    sid.push_back(kHex[b >> 4]);
    sid.push_back(kHex[b & 0xf]);
  }
  return sid;
}

namespace {

std::string format_uuid(std::array<unsigned char, 16> b) {
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  // Made once per delivery at fan-out rates: written into a buffer, then one string made of it.
  char out[36];
  std::size_t at = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[at++] = '-';
    out[at++] = kHex[b[i] >> 4];
    out[at++] = kHex[b[i] & 0xf];
  }
  return std::string(out, sizeof out);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 0;
}

}  // namespace

std::string make_uuid() {
  std::array<unsigned char, 16> b{};
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  return format_uuid(b);
}

std::string apns_id_for(std::string_view notification_sid, std::int64_t binding_seq) {
  return ApnsIds(notification_sid).for_binding(binding_seq);
}

ApnsIds::ApnsIds(std::string_view notification_sid) {
  // The SID's 32 hex digits as 16 bytes (a short or odd SID leaves zeros).
  std::string_view hex = notification_sid.size() >= 32 ? notification_sid.substr(notification_sid.size() - 32)
                                                       : notification_sid;
  for (std::size_t i = 0; i + 1 < hex.size() && i / 2 < sid_bytes_.size(); i += 2)
    sid_bytes_[i / 2] = static_cast<unsigned char>(hex_value(hex[i]) << 4 | hex_value(hex[i + 1]));
}

std::string ApnsIds::for_binding(std::int64_t binding_seq) const {
  // The binding's seq added into the last 6 bytes (mod 2^48): those are random bits of the SID, so ids of
  // different notifications do not meet, and seqs of one notification differ there.
  std::array<unsigned char, 16> b = sid_bytes_;
  std::uint64_t tail = 0;
  for (std::size_t i = 10; i < 16; ++i) tail = tail << 8 | b[i];
  tail = (tail + static_cast<std::uint64_t>(binding_seq)) & 0xffffffffffffULL;
  for (std::size_t i = 16; i-- > 10;) {
    b[i] = static_cast<unsigned char>(tail & 0xff);
    tail >>= 8;
  }
  return format_uuid(b);
}

bool is_sid(std::string_view s, std::string_view prefix) {
  if (s.size() != prefix.size() + 32 || !s.starts_with(prefix)) return false;
  for (char c : s.substr(prefix.size())) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

}  // namespace notifyd
