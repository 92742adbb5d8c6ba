#include "transports/apns/provider_token.hpp"

#include "daemon/model/time.hpp"

namespace notifyd::transport {

ProviderTokenCache::ProviderTokenCache(std::string p8_pem, std::string key_id, std::string team_id,
                                       Clock clock)
    : p8_pem_(std::move(p8_pem)),
      key_id_(std::move(key_id)),
      team_id_(std::move(team_id)),
      clock_(clock ? std::move(clock) : Clock(&now_seconds)) {}

JwtResult<std::string> ProviderTokenCache::token() {
  std::lock_guard lk(mu_);
  std::int64_t now = clock_();
  std::int64_t age = now - issued_at_;
  bool due = !token_ || age >= kReuseSeconds || (rejected_ && age >= kMinAgeSeconds);
  if (!due) return jwt_ok(*token_);
  auto minted = make_apns_provider_token(p8_pem_, key_id_, team_id_, now);
  if (!minted) return minted.error();
  token_ = *minted;
  issued_at_ = now;
  rejected_ = false;
  ++mints_;
  return jwt_ok(*token_);
}

void ProviderTokenCache::reject(const std::string& token) {
  std::lock_guard lk(mu_);
  if (token_ && *token_ == token) rejected_ = true;
}

std::uint64_t ProviderTokenCache::mint_count() const {
  std::lock_guard lk(mu_);
  return mints_;
}

std::int64_t ProviderTokenCache::issued_at() const {
  std::lock_guard lk(mu_);
  return issued_at_;
}

}  // namespace notifyd::transport
