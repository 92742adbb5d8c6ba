#pragma once
// The APNs wire protocol without I/O: building the HTTP/2 request of a Delivery and turning Apple's answer
// into a DeliveryResult. Pure functions; any thread.
#include <optional>
#include <string>

#include "transports/http2/pool.hpp"
#include "transports/transport.hpp"

namespace notifyd::transport::apns {

inline constexpr std::size_t kMaxPayloadBytes = 4096;

// nullopt when the payload is over 4096 bytes (the caller reports payload_rejected without sending).
// `bearer` is the provider token for token auth, empty for certificate auth.
std::optional<http2::H2Request> build_request(const Delivery& delivery, const std::string& topic,
                                              const std::string& bearer);

struct Interpretation {
  DeliveryResult result;
  bool provider_token_rejected =
      false;  // 403 ExpiredProviderToken / InvalidProviderToken: refresh, retry once
};

Interpretation interpret(const http2::H2Result& answer);

}  // namespace notifyd::transport::apns
