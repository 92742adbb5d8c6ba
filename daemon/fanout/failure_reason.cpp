#include "daemon/fanout/failure_reason.hpp"

#include <cctype>

namespace notifyd::fanout {
namespace {

constexpr std::size_t kSidLength = 34;  // two-letter prefix and 32 hex digits
constexpr std::size_t kMaxKeyLength = 96;

bool sid_at(std::string_view s, std::size_t i) {
  if (i + kSidLength > s.size()) return false;
  if (!std::isupper(static_cast<unsigned char>(s[i])) ||
      !std::isupper(static_cast<unsigned char>(s[i + 1]))) {
    return false;
  }
  for (std::size_t k = i + 2; k < i + kSidLength; ++k) {
    if (!std::isxdigit(static_cast<unsigned char>(s[k]))) return false;
  }
  // A SID is a word of its own, not the middle of a longer token.
  bool starts_word = i == 0 || !std::isalnum(static_cast<unsigned char>(s[i - 1]));
  bool ends_word = i + kSidLength == s.size() || !std::isalnum(static_cast<unsigned char>(s[i + kSidLength]));
  return starts_word && ends_word;
}

}  // namespace

std::string failure_reason_key(std::string_view reason) {
  if (reason.empty()) return "unknown";
  std::string key;
  key.reserve(reason.size());
  for (std::size_t i = 0; i < reason.size();) {
    if (sid_at(reason, i)) {
      key += "<sid>";
      i += kSidLength;
    } else {
      key += reason[i++];
    }
  }
  if (key.size() > kMaxKeyLength) key.resize(kMaxKeyLength);
  return key;
}

}  // namespace notifyd::fanout
