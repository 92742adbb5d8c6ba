#include "daemon/store/store.hpp"

#include <array>

namespace notifyd {

bool is_implicit_tag(std::string_view tag) {
  static constexpr std::array<std::string_view, 7> kImplicit = {
      "all", "apn", "gcm", "sms", "fcm", "facebook-messenger", "alexa"};
  for (auto t : kImplicit) {
    if (t == tag) return true;
  }
  return false;
}

}  // namespace notifyd
