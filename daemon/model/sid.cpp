#include "daemon/model/sid.hpp"

#include <openssl/rand.h>

#include <array>
#include <stdexcept>

namespace notifyd {

std::string make_sid(std::string_view prefix) {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
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

bool is_sid(std::string_view s, std::string_view prefix) {
  if (s.size() != prefix.size() + 32 || !s.starts_with(prefix)) return false;
  for (char c : s.substr(prefix.size())) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

}  // namespace notifyd
