#include "transports/transport.hpp"

namespace notifyd::transport {

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

std::string truncate_token(std::string_view token) {
  if (token.size() <= 8) return std::string(token);
  return std::string(token.substr(0, 8)) + "…";
}

}  // namespace notifyd::transport
