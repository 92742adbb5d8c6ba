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

// The headers every request of one notification carries alike on one credential: the credential's shared
// headers, then apns-push-type, apns-priority, apns-expiration and apns-collapse-id (when set). Built once
// per notification and credential and shared by its requests, which then carry only their apns-id of their
// own.
struct NotificationHeaders {
  std::shared_ptr<const http2::HeaderList> credential;  // what `all` was built on
  std::string push_type;
  int priority = 10;
  std::int64_t expiration = 0;
  std::optional<std::string> collapse_id;
  http2::HeaderList all;

  // Built for `delivery`'s notification fields on these credential headers.
  bool fits(const http2::HeaderList* credential_headers, const Delivery& delivery) const;
};
std::shared_ptr<const NotificationHeaders> notification_headers(
    std::shared_ptr<const http2::HeaderList> credential_headers, const Delivery& delivery);
// The same notification fields on other credential headers (a renewed provider token).
std::shared_ptr<const NotificationHeaders> rebase(
    const NotificationHeaders& headers, std::shared_ptr<const http2::HeaderList> credential_headers);
// A request's shared headers from them (sharing their allocation).
std::shared_ptr<const http2::HeaderList> as_shared_headers(
    std::shared_ptr<const NotificationHeaders> headers);

// build_request() on shared notification headers: the request carries its path, apns-id and body of its own.
// nullopt as build_request(); nothing is taken from `delivery` then.
std::optional<http2::H2Request> build_binding_request(Delivery&& delivery,
                                                      std::shared_ptr<const NotificationHeaders> shared);

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
