#include "transports/fcm/fcm_transport.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/url/parse.hpp>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <utility>

#include "daemon/model/credential_validation.hpp"
#include "daemon/model/log.hpp"
#include "transports/ca_file.hpp"
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

// A send turned away by a pool that a reload retired is done again with the new pools; more than a few in a
// row would mean reloads faster than a send, and the delivery is retried later instead.
constexpr int kMaxReroutes = 3;

}  // namespace

struct FcmTransport::Endpoint {
  FcmOptions options;
  std::string host;
  std::uint16_t port = 443;
  std::string ca_pem;  // the ca_file's content when staged: a file rewritten in place is a change
  std::shared_ptr<boost::asio::ssl::context> tls;  // shared by every FCM pool of this endpoint

  bool same_trust(const Endpoint& other) const {
    return options.ca_file == other.options.ca_file && ca_pem == other.ca_pem;
  }
  bool same_origin(const Endpoint& other) const { return host == other.host && port == other.port; }
};

struct FcmTransport::Impl {
  boost::asio::any_io_executor executor;
  mutable std::mutex mu;
  std::shared_ptr<const Endpoint> endpoint;
  std::map<std::string, std::shared_ptr<CredentialState>> credentials;   // sid/date_updated
  std::map<std::string, std::shared_ptr<http1::Http1Pool>> token_pools;  // token_uri origin
  // Pools a reload replaced, until their background drain is done.
  std::set<std::shared_ptr<http2::Http2Pool>> retiring;
  std::uint64_t retired_token_fetches = 0;  // of credentials dropped by a reload that changed the CA
  http2::PoolStats retired_counts;  // connections_opened and goaways of drained pools: counters never go back
  std::set<std::shared_ptr<http1::Http1Pool>> retiring_token_pools;
  bool draining = false;

  static std::string key_of(const CredentialRecord& c) {
    return c.sid + "/" + std::to_string(c.date_updated);
  }

  bool is_draining() const {
    std::lock_guard lk(mu);
    return draining;
  }

  // Whether `state` is still the one in use for `key` (a reload may have replaced it).
  bool is_current(const std::string& key, const std::shared_ptr<CredentialState>& state) const {
    std::lock_guard lk(mu);
    auto it = credentials.find(key);
    return it != credentials.end() && it->second == state;
  }

  std::shared_ptr<http2::Http2Pool> make_pool(const std::string& sid) const {  // mu held
    http2::PoolOptions po;
    po.host = endpoint->host;
    po.port = endpoint->port;
    po.tls = endpoint->tls;
    po.max_connections = endpoint->options.max_connections;
    po.request_timeout = endpoint->options.request_timeout;
    po.log_prefix = "[" + sid + "]";
    po.kept_response_headers = {"retry-after"};  // all fcm::interpret reads besides the status and body
    return std::make_shared<http2::Http2Pool>(executor, std::move(po));
  }

  // nullptr and `why` when the credential cannot be used (bad JSON, bad URL): a credential problem.
  std::shared_ptr<CredentialState> state_for(const CredentialRecord& c, std::string& why) {
    std::string key = key_of(c);
    std::lock_guard lk(mu);
    if (auto it = credentials.find(key); it != credentials.end()) return it->second;
    auto account = validate_service_account_json(c.secret);
    if (!account) {
      why = account.error().message;
      return nullptr;
    }
    auto token_uri = boost::urls::parse_absolute_uri(account->token_uri);
    if (!token_uri) {
      why = "token_uri is not usable";
      return nullptr;
    }
    std::string origin =
        std::string(token_uri->scheme()) + "://" + std::string(token_uri->encoded_authority());
    try {
      auto& token_pool = token_pools[origin];
      if (!token_pool) {
        http1::Http1Options o;
        o.base_url = origin;
        o.ca_file = endpoint->options.ca_file;
        o.request_timeout = endpoint->options.request_timeout;
        o.log_prefix = "[oauth]";
        token_pool = std::make_shared<http1::Http1Pool>(executor, std::move(o));
      }
      auto state = std::make_shared<CredentialState>();
      state->project_id = account->project_id;
      state->tokens = std::make_shared<fcm::AccessTokenSource>(*account, token_pool);
      state->pool = make_pool(c.sid);
      credentials.emplace(key, state);
      fcm_log()->info("[{}] FCM pool to {} for project {}", c.sid, endpoint->options.url, state->project_id);
      return state;
    } catch (const std::exception& e) {
      why = e.what();
      return nullptr;
    }
  }

  // Drains pools a reload replaced, off the caller's path. Their requests in flight finish first.
  static boost::asio::awaitable<void> drain_retired(
      std::shared_ptr<Impl> self, std::vector<std::shared_ptr<http2::Http2Pool>> pools,
      std::vector<std::shared_ptr<http1::Http1Pool>> token_pools) {
    for (auto& pool : pools) co_await pool->drain();
    for (auto& pool : token_pools) co_await pool->drain();
    std::lock_guard lk(self->mu);
    for (auto& pool : pools) {
      auto counts = pool->stats();
      self->retired_counts.connections_opened += counts.connections_opened;
      self->retired_counts.goaways += counts.goaways;
      self->retiring.erase(pool);
    }
    for (auto& pool : token_pools) self->retiring_token_pools.erase(pool);
  }
};

boost::system::result<std::shared_ptr<const FcmTransport::Endpoint>, std::string> FcmTransport::stage(
    const FcmOptions& options) {
  auto staged = std::make_shared<Endpoint>();
  staged->options = options;
  auto url = boost::urls::parse_absolute_uri(options.url);
  if (!url || url->scheme_id() != boost::urls::scheme::https || url->host().empty()) {
    return "[fcm] url: not an https URL with a host: \"" + options.url + "\"";
  }
  staged->host = std::string(url->host_address());
  staged->port = url->has_port() ? url->port_number() : 443;
  try {
    staged->ca_pem = read_ca_file(options.ca_file);
    staged->tls = http2::make_client_tls_context(options.ca_file);
  } catch (const std::exception& e) {
    return std::string("[fcm] ca_file: ") + e.what();
  }
  return std::shared_ptr<const Endpoint>(std::move(staged));
}

void FcmTransport::commit(std::shared_ptr<const Endpoint> next) {
  std::vector<std::shared_ptr<http2::Http2Pool>> retired;
  std::vector<std::shared_ptr<http1::Http1Pool>> retired_token_pools;
  {
    std::lock_guard lk(impl_->mu);
    auto previous = std::exchange(impl_->endpoint, next);
    if (!previous) return;  // the first endpoint, from the constructor
    const bool same_trust = previous->same_trust(*next);
    if (same_trust && previous->same_origin(*next)) {
      fcm_log()->info("FCM endpoint unchanged ({}): connections kept", next->options.url);
      return;
    }
    for (auto& [key, state] : impl_->credentials) retired.push_back(state->pool);
    if (!same_trust) {
      // The token endpoints' connections trust the old CA file too: every credential starts over.
      for (auto& [origin, pool] : impl_->token_pools) retired_token_pools.push_back(pool);
      impl_->token_pools.clear();
      // Their token fetches still count: token_fetches() is a counter and never goes down.
      for (auto& [key, state] : impl_->credentials)
        impl_->retired_token_fetches += state->tokens->fetch_count();
      impl_->credentials.clear();
    } else {
      // Only FCM moved: each credential keeps its access token and gets a pool to the new origin.
      for (auto& [key, state] : impl_->credentials) {
        auto moved = std::make_shared<CredentialState>(*state);
        moved->pool = impl_->make_pool(key.substr(0, key.find('/')));
        state = std::move(moved);
      }
    }
    impl_->retiring.insert(retired.begin(), retired.end());
    impl_->retiring_token_pools.insert(retired_token_pools.begin(), retired_token_pools.end());
  }
  fcm_log()->info(
      "FCM endpoint now {}{}{}: {} pool(s) and {} token endpoint pool(s) retiring after their "
      "requests in flight",
      next->options.url, next->options.ca_file.empty() ? "" : ", ca_file ", next->options.ca_file,
      retired.size(), retired_token_pools.size());
  if (retired.empty() && retired_token_pools.empty()) return;
  boost::asio::co_spawn(impl_->executor,
                        Impl::drain_retired(impl_, std::move(retired), std::move(retired_token_pools)),
                        [](std::exception_ptr e) {
                          if (!e) return;
                          try {
                            std::rethrow_exception(e);
                          } catch (const std::exception& ex) {
                            fcm_log()->error("draining retired FCM pools failed: {}", ex.what());
                          }
                        });
}

FcmTransport::FcmTransport(boost::asio::any_io_executor executor, FcmOptions options)
    : impl_(std::make_shared<Impl>()) {
  impl_->executor = std::move(executor);
  auto endpoint = stage(options);
  if (!endpoint) throw std::invalid_argument(endpoint.error());
  commit(std::move(*endpoint));
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
  if (impl->is_draining()) co_return fail(Outcome::retry_later, "transport is shutting down");
  const std::string key = Impl::key_of(*d.credential);
  std::string why;
  auto state = impl->state_for(*d.credential, why);
  if (!state) co_return fail(Outcome::credential_rejected, why);

  // At most two sends that reach FCM: the second only after FCM refused the access token (401). A token
  // fetch or send that a reload's retired pool turned away (nothing was sent) is done again with the
  // credential's new state, a bounded number of times.
  int token_refusals = 0;
  int reroutes = 0;
  auto rerouted = [&]() {
    if (reroutes >= kMaxReroutes || impl->is_draining() || impl->is_current(key, state)) return false;
    ++reroutes;
    state = impl->state_for(*d.credential, why);
    return true;
  };
  for (;;) {
    fcm::TokenResult token = co_await state->tokens->get();
    if (token.token.empty()) {
      if (!token.permanent_failure && rerouted()) {
        if (!state) co_return fail(Outcome::credential_rejected, why);
        continue;
      }
      co_return fail(token.permanent_failure ? Outcome::credential_rejected : Outcome::retry_later,
                     token.error);
    }
    auto request = fcm::build_request(d, state->project_id, token.token);
    if (!request)
      co_return fail(Outcome::payload_rejected, "message is not a JSON object or exceeds 4096 bytes");
    http2::H2Result answer = co_await state->pool->send(std::move(*request));
    if (answer.failure == http2::H2Failure::shutting_down && rerouted()) {
      if (!state) co_return fail(Outcome::credential_rejected, why);
      continue;
    }
    fcm::Interpretation seen = fcm::interpret(answer);
    if (seen.access_token_rejected && token_refusals == 0) {
      fcm_log()->warn("[{}][{}] FCM refused the access token of {}: refreshing once", d.notification_sid,
                      d.binding_sid, d.credential->sid);
      state->tokens->invalidate(token.token);
      ++token_refusals;
      continue;
    }
    if (seen.result.outcome != Outcome::delivered) {
      fcm_log()->debug("[{}][{}] FCM {} {} for {}: {}", d.notification_sid, d.binding_sid,
                       seen.result.provider_status, to_string(seen.result.outcome), truncate_token(d.address),
                       seen.result.reason.empty() ? answer.detail : seen.result.reason);
    }
    co_return seen.result;
  }
}

boost::asio::awaitable<void> FcmTransport::drain() {
  std::vector<std::shared_ptr<http2::Http2Pool>> pools;
  std::vector<std::shared_ptr<http1::Http1Pool>> token_pools;
  {
    std::lock_guard lk(impl_->mu);
    impl_->draining = true;
    for (auto& [k, s] : impl_->credentials) pools.push_back(s->pool);
    for (auto& [k, p] : impl_->token_pools) token_pools.push_back(p);
    pools.insert(pools.end(), impl_->retiring.begin(), impl_->retiring.end());
    token_pools.insert(token_pools.end(), impl_->retiring_token_pools.begin(),
                       impl_->retiring_token_pools.end());
  }
  for (auto& p : pools) co_await p->drain();
  for (auto& p : token_pools) co_await p->drain();
}

std::size_t FcmTransport::pool_count() const {
  std::lock_guard lk(impl_->mu);
  return impl_->credentials.size();
}

std::uint64_t FcmTransport::token_fetches() const {
  std::vector<std::shared_ptr<CredentialState>> states;
  std::uint64_t n = 0;
  {
    std::lock_guard lk(impl_->mu);  // one snapshot: a credential is either live or retired in it
    for (auto& [k, s] : impl_->credentials) states.push_back(s);
    n = impl_->retired_token_fetches;
  }
  for (auto& s : states) n += s->tokens->fetch_count();
  return n;
}

http2::PoolStats FcmTransport::stats() const {
  std::vector<std::shared_ptr<http2::Http2Pool>> pools;
  http2::PoolStats total;
  {
    std::lock_guard lk(impl_->mu);
    for (auto& [k, s] : impl_->credentials) pools.push_back(s->pool);
    pools.insert(pools.end(), impl_->retiring.begin(), impl_->retiring.end());
    total = impl_->retired_counts;
  }
  for (auto& pool : pools) total += pool->stats();
  return total;
}

}  // namespace notifyd::transport
