#include "transports/fcm/fcm_transport.hpp"

#include <boost/url/parse.hpp>
#include <map>
#include <mutex>

#include "daemon/model/credential_validation.hpp"
#include "daemon/model/log.hpp"
#include "transports/fcm/access_token_source.hpp"
#include "transports/fcm/fcm_protocol.hpp"
#include "transports/http2/tls_context.hpp"

namespace notifyd::transport {
namespace {

auto fcm_log() { return module_logger("fcm"); }

// What one credential needs: its project, its token source and its connections.
struct CredentialState {
  std::string project_id;
  std::shared_ptr<fcm::AccessTokenSource> tokens;
  std::shared_ptr<http2::Http2Pool> pool;
};

}  // namespace

struct FcmTransport::Impl {
  boost::asio::any_io_executor executor;
  FcmOptions options;
  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<CredentialState>> credentials;   // sid/date_updated
  std::map<std::string, std::shared_ptr<http1::Http1Pool>> token_pools;  // token_uri origin
  bool draining = false;

  // nullptr and `why` when the credential cannot be used (bad JSON, bad URL): a credential problem.
  std::shared_ptr<CredentialState> state_for(const CredentialRecord& c, std::string& why) {
    std::string key = c.sid + "/" + std::to_string(c.date_updated);
    std::lock_guard lk(mu);
    if (auto it = credentials.find(key); it != credentials.end()) return it->second;
    auto account = validate_service_account_json(c.secret);
    if (!account) {
      why = account.error().message;
      return nullptr;
    }
    auto token_uri = boost::urls::parse_absolute_uri(account->token_uri);
    auto fcm_url = boost::urls::parse_absolute_uri(options.url);
    if (!token_uri || !fcm_url || fcm_url->scheme() != "https") {
      why = "token_uri or the FCM url is not usable";
      return nullptr;
    }
    std::string origin =
        std::string(token_uri->scheme()) + "://" + std::string(token_uri->encoded_authority());
    try {
      auto& token_pool = token_pools[origin];
      if (!token_pool) {
        http1::Http1Options o;
        o.base_url = origin;
        o.ca_file = options.ca_file;
        o.request_timeout = options.request_timeout;
        o.log_prefix = "[oauth]";
        token_pool = std::make_shared<http1::Http1Pool>(executor, std::move(o));
      }
      auto state = std::make_shared<CredentialState>();
      state->project_id = account->project_id;
      state->tokens = std::make_shared<fcm::AccessTokenSource>(*account, token_pool);
      http2::PoolOptions po;
      po.host = std::string(fcm_url->host_address());
      po.port = fcm_url->has_port() ? fcm_url->port_number() : 443;
      po.tls = http2::make_client_tls_context(options.ca_file);
      po.max_connections = options.max_connections;
      po.request_timeout = options.request_timeout;
      po.log_prefix = "[" + c.sid + "]";
      state->pool = std::make_shared<http2::Http2Pool>(executor, std::move(po));
      credentials.emplace(key, state);
      fcm_log()->info("[{}] FCM pool to {} for project {}", c.sid, options.url, state->project_id);
      return state;
    } catch (const std::exception& e) {
      why = e.what();
      return nullptr;
    }
  }
};

FcmTransport::FcmTransport(boost::asio::any_io_executor executor, FcmOptions options)
    : impl_(std::make_shared<Impl>()) {
  impl_->executor = std::move(executor);
  impl_->options = std::move(options);
}

FcmTransport::~FcmTransport() = default;

boost::asio::awaitable<DeliveryResult> FcmTransport::deliver(Delivery d) {
  using Outcome = DeliveryResult::Outcome;
  auto impl = impl_;
  auto fail = [](Outcome outcome, std::string reason) {
    DeliveryResult r;
    r.outcome = outcome;
    r.reason = std::move(reason);
    return r;
  };
  if (!d.credential || (d.credential->type != "fcm" && d.credential->type != "gcm")) {
    co_return fail(Outcome::credential_rejected, "no fcm credential for this binding");
  }
  {
    std::lock_guard lk(impl->mu);
    if (impl->draining) co_return fail(Outcome::retry_later, "transport is shutting down");
  }
  std::string why;
  auto state = impl->state_for(*d.credential, why);
  if (!state) co_return fail(Outcome::credential_rejected, why);

  // At most two sends: the second only after FCM refused the access token (401).
  for (int attempt = 0; attempt < 2; ++attempt) {
    fcm::TokenResult token = co_await state->tokens->get();
    if (token.token.empty()) {
      co_return fail(token.permanent_failure ? Outcome::credential_rejected : Outcome::retry_later,
                     token.error);
    }
    auto request = fcm::build_request(d, state->project_id, token.token);
    if (!request)
      co_return fail(Outcome::payload_rejected, "message is not a JSON object or exceeds 4096 bytes");
    http2::H2Result answer = co_await state->pool->send(std::move(*request));
    fcm::Interpretation seen = fcm::interpret(answer);
    if (seen.access_token_rejected && attempt == 0) {
      fcm_log()->warn("[{}][{}] FCM refused the access token of {}: refreshing once", d.notification_sid,
                      d.binding_sid, d.credential->sid);
      state->tokens->invalidate(token.token);
      continue;
    }
    if (seen.result.outcome != Outcome::delivered) {
      fcm_log()->debug("[{}][{}] FCM {} {} for {}: {}", d.notification_sid, d.binding_sid,
                       seen.result.provider_status, to_string(seen.result.outcome), truncate_token(d.address),
                       seen.result.reason.empty() ? answer.detail : seen.result.reason);
    }
    co_return seen.result;
  }
  co_return fail(Outcome::credential_rejected, "access token refused twice");
}

boost::asio::awaitable<void> FcmTransport::drain() {
  std::vector<std::shared_ptr<CredentialState>> states;
  std::vector<std::shared_ptr<http1::Http1Pool>> token_pools;
  {
    std::lock_guard lk(impl_->mu);
    impl_->draining = true;
    for (auto& [k, s] : impl_->credentials) states.push_back(s);
    for (auto& [k, p] : impl_->token_pools) token_pools.push_back(p);
  }
  for (auto& s : states) co_await s->pool->drain();
  for (auto& p : token_pools) co_await p->drain();
}

std::size_t FcmTransport::pool_count() const {
  std::lock_guard lk(impl_->mu);
  return impl_->credentials.size();
}

std::uint64_t FcmTransport::token_fetches() const {
  std::vector<std::shared_ptr<CredentialState>> states;
  {
    std::lock_guard lk(impl_->mu);
    for (auto& [k, s] : impl_->credentials) states.push_back(s);
  }
  std::uint64_t n = 0;
  for (auto& s : states) n += s->tokens->fetch_count();
  return n;
}

http2::PoolStats FcmTransport::stats() const {
  std::vector<std::shared_ptr<CredentialState>> states;
  {
    std::lock_guard lk(impl_->mu);
    for (auto& [k, s] : impl_->credentials) states.push_back(s);
  }
  http2::PoolStats total;
  for (auto& state : states) {
    auto s = state->pool->stats();
    total.connections += s.connections;
    total.streams_in_flight += s.streams_in_flight;
    total.waiting += s.waiting;
    total.connections_opened += s.connections_opened;
    total.goaways += s.goaways;
  }
  return total;
}

}  // namespace notifyd::transport
