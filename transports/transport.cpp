#include "transports/transport.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <iomanip>
#include <locale>
#include <sstream>

namespace notifyd::transport {

void Transport::prepare(const CredentialRecord&) {}

const char* to_string(DeliveryResult::Outcome outcome) {
  using O = DeliveryResult::Outcome;
  switch (outcome) {
    case O::delivered:
      return "delivered";
    case O::invalid_address:
      return "invalid_address";
    case O::retry_later:
      return "retry_later";
    case O::credential_rejected:
      return "credential_rejected";
    case O::payload_rejected:
      return "payload_rejected";
    case O::unsupported_channel:
      return "unsupported_channel";
  }
  return "unknown";
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now) {
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.remove_prefix(1);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // Nine digits are over 30 years; anything longer is as good as "never", and must not overflow.
    if (value.size() > 9) return std::chrono::hours(24 * 365 * 30);
    return std::chrono::seconds(std::stoll(std::string(value)));
  }
  // IMF-fixdate, the only HTTP-date form a current server sends: "Wed, 21 Oct 2015 07:28:00 GMT".
  std::tm tm{};
  std::istringstream in{std::string(value)};
  in.imbue(std::locale::classic());
  in >> std::get_time(&tm, "%a, %d %b %Y %H:%M:%S");
  std::string zone;
  in >> zone;
  if (in.fail() || zone != "GMT") return std::nullopt;
  const std::time_t at = timegm(&tm);
  if (at == static_cast<std::time_t>(-1)) return std::nullopt;
  const auto delta = std::chrono::system_clock::from_time_t(at) - now;
  return std::max(std::chrono::seconds(0), std::chrono::ceil<std::chrono::seconds>(delta));
}

std::string truncate_token(std::string_view token) {
  if (token.size() <= 8) return std::string(token);
  return std::string(token.substr(0, 8)) + "…";
}

}  // namespace notifyd::transport
