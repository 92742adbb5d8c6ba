#pragma once
// The FCM HTTP v1 wire protocol without I/O: the messages:send request of a Delivery, Google's answer as a
// DeliveryResult, and the OAuth2 token endpoint's request and answer. Pure functions; any thread.
#include <chrono>
#include <optional>
#include <string>

#include "transports/http2/pool.hpp"
#include "transports/transport.hpp"

namespace notifyd::transport::fcm {

inline constexpr std::size_t kMaxPayloadBytes = 4096;

// POST /v1/projects/{project_id}/messages:send with {"message": delivery.body + "token": address}.
// nullopt when delivery.body is not a JSON object or the message is over 4096 bytes.
std::optional<http2::H2Request> build_request(const Delivery& delivery, const std::string& project_id,
                                              const std::string& access_token);

struct Interpretation {
  DeliveryResult result;
  bool access_token_rejected = false;  // 401: refresh the OAuth2 token and retry once
};

Interpretation interpret(const http2::H2Result& answer);

// The token endpoint's form body for a signed assertion.
std::string token_request_body(const std::string& assertion);

struct AccessToken {
  std::string token;
  std::int64_t expires_at = 0;  // epoch seconds
};
// Parses {"access_token": "...", "expires_in": 3599, "token_type": "Bearer"}; nullopt when malformed.
std::optional<AccessToken> parse_token_response(const std::string& body, std::int64_t now);

}  // namespace notifyd::transport::fcm
