#pragma once
// ProviderTokenCache: the APNs provider token (ES256 JWT) of one token-auth credential. Apple wants one
// token reused for 20 to 60 minutes: a token older than 60 minutes is refused (ExpiredProviderToken) and
// minting more often than every 20 minutes is throttled (TooManyProviderTokenUpdates). So a token is reused
// until it is 50 minutes old, and a rejected token is replaced only once it is at least 20 minutes old.
// Thread-safe; the clock is injected so tests can move time.
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "transports/jwt.hpp"

namespace notifyd::transport {

class ProviderTokenCache {
 public:
  using Clock = std::function<std::int64_t()>;  // seconds since the epoch
  static constexpr std::int64_t kReuseSeconds = 50 * 60;
  static constexpr std::int64_t kMinAgeSeconds = 20 * 60;

  ProviderTokenCache(std::string p8_pem, std::string key_id, std::string team_id, Clock clock = {});

  // The token to send now (minting one when there is none, or it is due).
  JwtResult<std::string> token();
  // APNs refused `token` (403 ExpiredProviderToken / InvalidProviderToken): mint anew at the next token()
  // call, as soon as the 20-minute floor allows.
  void reject(const std::string& token);
  std::uint64_t mint_count() const;
  std::int64_t issued_at() const;

 private:
  std::string p8_pem_;
  std::string key_id_;
  std::string team_id_;
  Clock clock_;
  mutable std::mutex mu_;
  std::optional<std::string> token_;
  std::int64_t issued_at_ = 0;
  bool rejected_ = false;
  std::uint64_t mints_ = 0;
};

}  // namespace notifyd::transport
