#include "transports/fcm/access_token_source.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>
#include <mutex>

#include "daemon/model/log.hpp"
#include "daemon/model/time.hpp"
#include "transports/fcm/fcm_protocol.hpp"
#include "transports/jwt.hpp"

namespace notifyd::transport::fcm {

struct AccessTokenSource::State {
  ServiceAccount account;
  std::shared_ptr<http1::Http1Pool> endpoint;
  Clock clock;
  std::mutex mu;
  std::optional<AccessToken> cached;
  bool refreshing = false;
  std::uint64_t generation = 0;  // bumped by every finished refresh, so waiters know it is done
  TokenResult last_failure;
  std::uint64_t fetches = 0;
};

AccessTokenSource::AccessTokenSource(ServiceAccount account, std::shared_ptr<http1::Http1Pool> token_endpoint,
                                     Clock clock)
    : state_(std::make_shared<State>()) {
  state_->account = std::move(account);
  state_->endpoint = std::move(token_endpoint);
  state_->clock = clock ? std::move(clock) : Clock(&now_seconds);
}

namespace {

boost::asio::awaitable<TokenResult> fetch(std::shared_ptr<AccessTokenSource::State> s);

}  // namespace

boost::asio::awaitable<TokenResult> AccessTokenSource::get() {
  auto s = state_;
  std::uint64_t seen_generation = 0;
  {
    std::lock_guard lk(s->mu);
    std::int64_t now = s->clock();
    if (s->cached && s->cached->expires_at - kRefreshMarginSeconds > now)
      co_return TokenResult{s->cached->token, false, {}};
    if (!s->refreshing) {
      s->refreshing = true;
      ++s->fetches;
    } else {
      seen_generation = s->generation + 1;  // wait for the refresh in flight
    }
  }
  if (seen_generation == 0) co_return co_await fetch(s);

  // Another sender is refreshing: poll briefly (bounded) rather than fetch twice. A refresh is rare (hourly).
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  for (int i = 0; i < 6000; ++i) {  // 6000 × 10 ms = 60 s, beyond any request timeout
    timer.expires_after(std::chrono::milliseconds(10));
    co_await timer.async_wait(boost::asio::use_awaitable);
    std::lock_guard lk(s->mu);
    if (s->generation >= seen_generation) {
      if (s->cached && s->cached->expires_at > s->clock()) co_return TokenResult{s->cached->token, false, {}};
      co_return s->last_failure;
    }
  }
  co_return TokenResult{{}, false, "timed out waiting for the access token refresh"};
}

void AccessTokenSource::invalidate(const std::string& token) {
  std::lock_guard lk(state_->mu);
  if (state_->cached && state_->cached->token == token) state_->cached.reset();
}

std::uint64_t AccessTokenSource::fetch_count() const {
  std::lock_guard lk(state_->mu);
  return state_->fetches;
}

namespace {

boost::asio::awaitable<TokenResult> fetch(std::shared_ptr<AccessTokenSource::State> s) {
  // However this coroutine ends (even destroyed mid-way), the refresh is over for the waiters.
  struct FinishRefresh {
    AccessTokenSource::State* state;
    TokenResult* result;
    ~FinishRefresh() {
      std::lock_guard lk(state->mu);
      state->refreshing = false;
      ++state->generation;
      state->last_failure = result->token.empty() ? *result : TokenResult{};
    }
  };
  TokenResult out{{}, false, "access token refresh abandoned"};
  FinishRefresh finish{s.get(), &out};
  std::int64_t now = s->clock();
  auto assertion =
      make_google_assertion(s->account.private_key, s->account.client_email, s->account.token_uri, now);
  if (!assertion) {
    out = {{}, true, "assertion: " + assertion.error().message};
  } else {
    http1::Http1Request request;
    request.method = "POST";
    auto uri = boost::urls::parse_absolute_uri(s->account.token_uri);
    request.target = uri ? std::string(uri->encoded_resource()) : "/";
    if (request.target.empty()) request.target = "/";
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
    request.body = token_request_body(*assertion);
    http1::Http1Result answer = co_await s->endpoint->send(std::move(request));
    if (!answer.ok()) {
      out = {{},
             false,
             std::string("token endpoint: ") + http1::to_string(answer.failure) + " " + answer.detail};
    } else if (answer.status == 200) {
      if (auto token = parse_token_response(answer.body, s->clock())) {
        out = {token->token, false, {}};
        std::lock_guard lk(s->mu);
        s->cached = *token;
      } else {
        out = {{}, false, "token endpoint: malformed answer"};
      }
    } else {
      // 400 invalid_grant, 401 invalid_client: the service account itself is refused. 5xx/429: try later.
      bool permanent = answer.status == 400 || answer.status == 401 || answer.status == 403;
      out = {{}, permanent, "token endpoint answered HTTP " + std::to_string(answer.status)};
    }
  }
  if (out.token.empty()) {
    module_logger("fcm")->warn("access token for {} not obtained: {}", s->account.client_email, out.error);
  }
  co_return out;
}

}  // namespace
}  // namespace notifyd::transport::fcm
