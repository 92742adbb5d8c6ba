#pragma once
// AccessTokenSource: the OAuth2 access token of one Firebase service account, for FCM HTTP v1. The token is
// fetched from the account's token_uri with an RS256 JWT assertion, cached until 5 minutes before it expires,
// and refreshed by one request at a time however many senders need it (the others wait for that one).
// Thread-safe; get() may be awaited from any coroutine. Failures are values.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "daemon/model/credential_validation.hpp"
#include "transports/http1/client.hpp"

namespace notifyd::transport::fcm {

struct TokenResult {
  std::string token;               // empty on failure
  bool permanent_failure = false;  // the endpoint refused the assertion (400/401/403): the credential is bad
  std::string error;               // why it failed, for logs (never a secret)
};

class AccessTokenSource {
 public:
  using Clock = std::function<std::int64_t()>;  // epoch seconds
  static constexpr std::int64_t kRefreshMarginSeconds = 300;

  // `token_endpoint` is a pool to the service account's token_uri origin (shared between sources).
  AccessTokenSource(ServiceAccount account, std::shared_ptr<http1::Http1Pool> token_endpoint,
                    Clock clock = {});

  boost::asio::awaitable<TokenResult> get();
  // The provider refused `token` (401): the next get() fetches a new one.
  void invalidate(const std::string& token);
  std::uint64_t fetch_count() const;

  struct State;  // public so the refresh coroutine (a free function) can hold it

 private:
  std::shared_ptr<State> state_;
};

}  // namespace notifyd::transport::fcm
