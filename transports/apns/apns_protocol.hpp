#pragma once
// The APNs wire protocol without I/O: building the HTTP/2 request of a Delivery and turning Apple's answer
// into a DeliveryResult. Pure functions; any thread.
#include <memory>
#include <optional>
#include <string>

#include "transports/http2/pool.hpp"
#include "transports/transport.hpp"

namespace notifyd::transport::apns {

inline constexpr std::size_t kMaxPayloadBytes = 4096;

// The headers every request of one credential carries alike (apns-topic, content-type and, for token auth,
// `authorization: bearer <token>`; none when `bearer` is empty), built once and shared by its requests.
std::shared_ptr<const http2::HeaderList> shared_headers(const std::string& topic, const std::string& bearer);

// nullopt when the payload is over 4096 bytes (the caller reports payload_rejected without sending; nothing
// is taken from `delivery` then). Otherwise the request takes the delivery's device token, payload, apns-id,
// collapse id and push type: the caller no longer needs them, and a resend reuses the request itself.
std::optional<http2::H2Request> build_request(Delivery&& delivery,
                                              std::shared_ptr<const http2::HeaderList> shared);
// The same from a copy; `bearer` is the provider token for token auth, empty for certificate auth.
std::optional<http2::H2Request> build_request(const Delivery& delivery, const std::string& topic,
                                              const std::string& bearer);

struct Interpretation {
  DeliveryResult result;
  bool provider_token_rejected =
      false;  // 403 ExpiredProviderToken / InvalidProviderToken: refresh, retry once
};

Interpretation interpret(const http2::H2Result& answer);

}  // namespace notifyd::transport::apns
