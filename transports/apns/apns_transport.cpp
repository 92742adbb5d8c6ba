#include "transports/apns/apns_transport.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/url/parse.hpp>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "daemon/model/log.hpp"
#include "transports/apns/apns_protocol.hpp"
#include "transports/apns/provider_token.hpp"
#include "transports/ca_file.hpp"
#include "transports/http2/tls_context.hpp"

namespace notifyd::transport {
namespace {

auto apns_log() { return module_logger("apns"); }

struct Origin {
  std::string host;
  std::uint16_t port = 443;
  bool operator==(const Origin&) const = default;
};

std::optional<Origin> parse_origin(const std::string& url) {
  auto u = boost::urls::parse_absolute_uri(url);
  if (!u || u->scheme() != "https" || u->host().empty()) return std::nullopt;
  Origin o;
  o.host = std::string(u->host_address());
  if (u->has_port()) o.port = u->port_number();
  return o;
}

bool is_token_auth(const CredentialRecord& c) { return !c.apn_key_id.empty(); }

// A send turned away by a pool that a reload retired is sent again on the new endpoint's pool; more than a
// few in a row would mean reloads faster than a send, and the delivery is retried later instead.
constexpr int kMaxReroutes = 3;

}  // namespace

std::optional<long> log_certificate_expiry(const CredentialRecord& credential) {
  if (credential.certificate.empty()) return std::nullopt;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(credential.certificate.data(), static_cast<int>(credential.certificate.size())),
      BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr),
                                                   X509_free);
  ERR_clear_error();
  if (!cert) return std::nullopt;
  int days = 0, seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert.get())) != 1) return std::nullopt;
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
  ASN1_TIME_print(out.get(), X509_get0_notAfter(cert.get()));
  char* text = nullptr;
  long len = BIO_get_mem_data(out.get(), &text);
  std::string not_after(text, static_cast<std::size_t>(len));
  if (days < 0 || (days == 0 && seconds < 0)) {
    apns_log()->error("[{}] APNs certificate for {} expired on {}", credential.sid, credential.apn_topic,
                      not_after);
  } else if (days < 30) {
    apns_log()->warn("[{}] APNs certificate for {} expires in {} days ({})", credential.sid,
                     credential.apn_topic, days, not_after);
  } else {
    apns_log()->info("[{}] APNs certificate for {} valid until {}", credential.sid, credential.apn_topic,
                     not_after);
  }
  return days;
}

struct ApnsTransport::Endpoints {
  ApnsOptions options;
  Origin production;
  Origin sandbox;
  std::string ca_pem;  // the ca_file's content when staged: a file rewritten in place is a change
  // Trust only (no client certificate): shared by the token-auth pools of these endpoints.
  std::shared_ptr<boost::asio::ssl::context> server_trust;

  const Origin& origin(bool sandbox_endpoint) const { return sandbox_endpoint ? sandbox : production; }
  bool same_trust(const Endpoints& other) const {
    return options.ca_file == other.options.ca_file && ca_pem == other.ca_pem;
  }
};

namespace {

// What the requests of one credential share, whatever its endpoint: the headers every request carries alike,
// built once, and for token auth the provider token they carry (rebuilt when it is re-minted).
struct CredentialState {
  std::string topic;
  std::shared_ptr<ProviderTokenCache> tokens;  // token auth only
  std::mutex mu;
  std::string bearer;                                // the token `headers` carry (token auth), guarded by mu
  std::shared_ptr<const http2::HeaderList> headers;  // constant for certificate auth; guarded by mu otherwise

  // The shared headers to send now. `bearer_out`: the provider token they carry (token auth), to name it in
  // reject().
  JwtResult<std::shared_ptr<const http2::HeaderList>> headers_now(std::string& bearer_out) {
    if (!tokens) return headers;
    auto token = tokens->token();
    if (!token) return token.error();
    std::lock_guard lk(mu);
    if (!headers || bearer != *token) {
      bearer = *token;
      headers = apns::shared_headers(topic, bearer);
    }
    bearer_out = std::move(*token);
    return headers;
  }
};

// The pool of one credential on one endpoint, and the credential's shared state.
struct Route {
  std::shared_ptr<http2::Http2Pool> pool;
  std::shared_ptr<CredentialState> credential;
};

// Pools are keyed by credential sid, its date_updated (an updated credential gets fresh connections and a
// fresh token cache) and endpoint; looked up per delivery with views of the record's fields (no key built).
struct PoolKey {
  std::string sid;
  Seconds date_updated = 0;
  bool sandbox = false;
};
struct PoolKeyView {
  std::string_view sid;
  Seconds date_updated = 0;
  bool sandbox = false;
};
struct PoolKeyLess {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    if (a.date_updated != b.date_updated) return a.date_updated < b.date_updated;
    if (a.sandbox != b.sandbox) return a.sandbox < b.sandbox;
    return std::string_view(a.sid) < std::string_view(b.sid);
  }
};

// The notification headers last built on this thread (apns::NotificationHeaders), a few: a fan-out sends one
// notification's requests in a row, and a handful of notifications or credentials may interleave.
std::shared_ptr<const apns::NotificationHeaders> shared_notification_headers(
    std::shared_ptr<const http2::HeaderList> credential_headers, const Delivery& d) {
  thread_local std::array<std::shared_ptr<const apns::NotificationHeaders>, 4> recent;
  thread_local std::size_t next = 0;
  for (const auto& h : recent) {
    if (h && h->fits(credential_headers.get(), d)) return h;
  }
  auto& slot = recent[next++ % recent.size()];
  slot = apns::notification_headers(std::move(credential_headers), d);
  return slot;
}

struct LogIds {
  std::string notification_sid;
  std::string binding_sid;
};

DeliveryResult failure(DeliveryResult::Outcome outcome, std::string reason) {
  DeliveryResult r;
  r.outcome = outcome;
  r.reason = std::move(reason);
  return r;
}

}  // namespace

struct ApnsTransport::Impl {
  struct Send;  // one delivery's exchange
  boost::asio::any_io_executor executor;
  mutable std::mutex mu;
  std::shared_ptr<const Endpoints> endpoints;
  std::map<PoolKey, Route, PoolKeyLess> pools;
  // By (sid, date_updated); `sandbox` unused (false). Kept across reloads: a provider token outlives a pool.
  std::map<PoolKey, std::shared_ptr<CredentialState>, PoolKeyLess> credentials;
  // Pools of endpoints a reload replaced, until their background drain is done.
  std::set<std::shared_ptr<http2::Http2Pool>> retiring;
  http2::PoolStats retired_counts;  // connections_opened and goaways of drained pools: counters never go back
  std::atomic<bool> draining{false};
  ProviderTokenCache::Clock token_clock;  // empty: the system clock

  bool is_draining() const { return draining.load(std::memory_order_relaxed); }

  std::shared_ptr<CredentialState> credential_state(const CredentialRecord& c) {  // under mu
    auto& state = credentials[PoolKey{c.sid, c.date_updated, false}];
    if (!state) {
      state = std::make_shared<CredentialState>();
      state->topic = c.apn_topic;
      if (is_token_auth(c)) {
        state->tokens =
            std::make_shared<ProviderTokenCache>(c.private_key, c.apn_key_id, c.apn_team_id, token_clock);
      } else {
        state->headers = apns::shared_headers(c.apn_topic, "");
      }
    }
    return state;
  }

  // The pool for this credential (created on first use) and its shared state. nullopt (and a reason) when the
  // pool cannot be built.
  std::optional<Route> route_for(const CredentialRecord& c, std::string& why) {
    std::lock_guard lk(mu);
    if (auto it = pools.find(PoolKeyView{c.sid, c.date_updated, c.sandbox}); it != pools.end()) {
      return it->second;
    }
    const Origin& origin = endpoints->origin(c.sandbox);
    http2::PoolOptions po;
    po.host = origin.host;
    po.port = origin.port;
    po.max_connections = endpoints->options.max_connections;
    po.request_timeout = endpoints->options.request_timeout;
    po.log_prefix = "[" + c.sid + "]";
    po.kept_response_headers = {"retry-after"};  // all apns::interpret reads besides the status and body
    try {
      po.tls = is_token_auth(c)
                   ? endpoints->server_trust
                   : http2::make_client_tls_context(*endpoints->server_trust, c.certificate, c.private_key);
    } catch (const std::exception& e) {
      why = e.what();
      return std::nullopt;
    }
    if (!is_token_auth(c)) log_certificate_expiry(c);
    Route route{std::make_shared<http2::Http2Pool>(executor, std::move(po)), credential_state(c)};
    pools.emplace(PoolKey{c.sid, c.date_updated, c.sandbox}, route);
    apns_log()->info("[{}] APNs pool to {}:{} ({} auth)", c.sid, origin.host, origin.port,
                     is_token_auth(c) ? "token" : "certificate");
    return route;
  }

  // Drains a pool a reload replaced, off the caller's path. Its streams in flight finish first.
  static boost::asio::awaitable<void> drain_retired(std::shared_ptr<Impl> self,
                                                    std::shared_ptr<http2::Http2Pool> pool) {
    co_await pool->drain();
    auto counts = pool->stats();
    std::lock_guard lk(self->mu);
    self->retiring.erase(pool);
    self->retired_counts.connections_opened += counts.connections_opened;
    self->retired_counts.goaways += counts.goaways;
  }
};

// One delivery's exchange with APNs, driven by the pool's completions (no coroutine): at most two sends that
// reach APNs, the second only after APNs refused the provider token; a send that a reload's retired pool
// turned away (nothing was sent) goes to the new endpoint instead, a bounded number of times. Every resend is
// the same request (same apns-id), handed back by the pool; only its shared headers change when the provider
// token does. complete() runs on the executor of the delivery's caller, where `done` must complete.
struct ApnsTransport::Impl::Send final : http2::SendCompletion {
  std::shared_ptr<ApnsTransport::Impl> impl;
  Route route;
  std::shared_ptr<const CredentialRecord> credential;
  std::string bearer;  // the provider token the request carries (token auth)
  std::shared_ptr<const apns::NotificationHeaders> notification;  // the request's shared headers
  LogIds ids;                                                     // empty when `done` lends them (log_ids())
  boost::asio::any_io_executor executor;
  std::unique_ptr<DeliveryCompletion> done;
  int token_refusals = 0;
  int reroutes = 0;

  Send(std::shared_ptr<ApnsTransport::Impl> i, Route r, std::shared_ptr<const CredentialRecord> c,
       std::string b, std::shared_ptr<const apns::NotificationHeaders> n, LogIds l,
       boost::asio::any_io_executor ex, std::unique_ptr<DeliveryCompletion> d)
      : impl(std::move(i)),
        route(std::move(r)),
        credential(std::move(c)),
        bearer(std::move(b)),
        notification(std::move(n)),
        ids(std::move(l)),
        executor(std::move(ex)),
        done(std::move(d)) {}
  Send(Send&&) = default;

  // Never throws: it runs inside the pool's completion. A bug's exception answers retry_later, as the
  // default deliver_async does, unless the exchange already went on in a fresh Send (`done` moved).
  void complete(http2::H2Result&& answer, http2::H2Request&& request) override {
    try {
      on_answer(std::move(answer), std::move(request));
    } catch (const std::exception& e) {
      if (done)
        finish_with(
            failure(DeliveryResult::Outcome::retry_later, std::string("internal error: ") + e.what()));
    }
  }
  void on_answer(http2::H2Result&& answer, http2::H2Request&& request);
  DeliveryIds log_ids() const {
    if (!ids.notification_sid.empty() || !ids.binding_sid.empty() || !done) {
      return {ids.notification_sid, ids.binding_sid};
    }
    return done->ids();
  }
  // The delivery's one completion: `done` is let go first, so that nothing can complete it twice.
  void finish_with(DeliveryResult&& result) { std::exchange(done, nullptr)->complete(std::move(result)); }

  // Sends again, with the route's current shared headers (provider token) under the notification's.
  void resend(http2::H2Request request) {
    auto headers = route.credential->headers_now(bearer);
    if (!headers) {
      return finish_with(failure(DeliveryResult::Outcome::credential_rejected,
                                 "provider token: " + headers.error().message));
    }
    if (notification->credential != *headers) notification = apns::rebase(*notification, std::move(*headers));
    request.shared_headers = apns::as_shared_headers(notification);
    send(std::move(request));
  }

  // Sends again, with this exchange's state moved into a fresh completion.
  void send(http2::H2Request request) {
    send_owned(std::make_unique<Send>(std::move(*this)), std::move(request));
  }

  // Sends with `exchange` as the completion.
  static void send_owned(std::unique_ptr<Send> exchange, http2::H2Request&& request) {
    http2::Http2Pool& pool = *exchange->route.pool;  // held by the exchange, which the pool holds until done
    const auto& executor = exchange->executor;       // the exchange stays where it is; only its owner moves
    pool.send_returning(std::move(request), executor, std::move(exchange));
  }
};

boost::system::result<std::shared_ptr<const ApnsTransport::Endpoints>, std::string> ApnsTransport::stage(
    const ApnsOptions& options) {
  auto staged = std::make_shared<Endpoints>();
  staged->options = options;
  auto production = parse_origin(options.production_url);
  if (!production)
    return "[apns] production_url: not an https URL with a host: \"" + options.production_url + "\"";
  auto sandbox = parse_origin(options.sandbox_url);
  if (!sandbox) return "[apns] sandbox_url: not an https URL with a host: \"" + options.sandbox_url + "\"";
  staged->production = std::move(*production);
  staged->sandbox = std::move(*sandbox);
  try {
    staged->ca_pem = read_ca_file(options.ca_file);
    staged->server_trust = http2::make_client_tls_context(options.ca_file);
  } catch (const std::exception& e) {
    return std::string("[apns] ca_file: ") + e.what();
  }
  return std::shared_ptr<const Endpoints>(std::move(staged));
}

void ApnsTransport::commit(std::shared_ptr<const Endpoints> next) {
  std::vector<std::shared_ptr<http2::Http2Pool>> retired;
  std::shared_ptr<const Endpoints> previous;
  {
    std::lock_guard lk(impl_->mu);
    previous = std::exchange(impl_->endpoints, next);
    if (!previous) return;  // the first endpoints, from the constructor
    const bool same_trust = previous->same_trust(*next);
    const bool production_kept = same_trust && previous->production == next->production;
    const bool sandbox_kept = same_trust && previous->sandbox == next->sandbox;
    for (auto it = impl_->pools.begin(); it != impl_->pools.end();) {
      if (it->first.sandbox ? sandbox_kept : production_kept) {
        ++it;
        continue;
      }
      retired.push_back(it->second.pool);
      impl_->retiring.insert(it->second.pool);
      it = impl_->pools.erase(it);
    }
    if (production_kept && sandbox_kept) {
      apns_log()->info("APNs endpoints unchanged ({}:{}, sandbox {}:{}): connections kept",
                       next->production.host, next->production.port, next->sandbox.host, next->sandbox.port);
      return;
    }
  }
  apns_log()->info(
      "APNs endpoints now {}:{} and sandbox {}:{}{}{}: {} pool(s) retiring after their streams in flight",
      next->production.host, next->production.port, next->sandbox.host, next->sandbox.port,
      next->options.ca_file.empty() ? "" : ", ca_file ", next->options.ca_file, retired.size());
  for (auto& pool : retired) {
    boost::asio::co_spawn(impl_->executor, Impl::drain_retired(impl_, pool), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        apns_log()->error("draining a retired APNs pool failed: {}", ex.what());
      }
    });
  }
}

ApnsTransport::ApnsTransport(boost::asio::any_io_executor executor, ApnsOptions options)
    : ApnsTransport(std::move(executor), std::move(options), {}) {}

ApnsTransport::ApnsTransport(boost::asio::any_io_executor executor, ApnsOptions options,
                             std::function<std::int64_t()> token_clock)
    : impl_(std::make_shared<Impl>()) {
  impl_->executor = std::move(executor);
  impl_->token_clock = std::move(token_clock);
  auto endpoints = stage(options);
  if (!endpoints) throw std::invalid_argument(endpoints.error());
  commit(std::move(*endpoints));
}

ApnsTransport::~ApnsTransport() = default;

void ApnsTransport::Impl::Send::on_answer(http2::H2Result&& answer, http2::H2Request&& request) {
  using Outcome = DeliveryResult::Outcome;
  if (answer.failure == http2::H2Failure::shutting_down && reroutes < kMaxReroutes && !impl->is_draining()) {
    ++reroutes;
    std::string why;
    auto next = impl->route_for(*credential, why);
    if (!next) return finish_with(failure(Outcome::credential_rejected, why));
    route = std::move(*next);
    return resend(std::move(request));
  }
  apns::Interpretation seen = apns::interpret(answer);
  if (seen.provider_token_rejected && route.credential->tokens && token_refusals == 0) {
    const DeliveryIds logged = log_ids();
    apns_log()->warn("[{}][{}] APNs refused the provider token of {} ({}): refreshing once",
                     logged.notification_sid, logged.binding_sid, credential->sid, seen.result.reason);
    route.credential->tokens->reject(bearer);
    ++token_refusals;
    return resend(std::move(request));
  }
  if (seen.result.outcome != Outcome::delivered) {
    constexpr std::size_t kPathPrefix = std::string_view("/3/device/").size();
    const DeliveryIds logged = log_ids();
    apns_log()->debug("[{}][{}] APNs {} {} for {}: {}", logged.notification_sid, logged.binding_sid,
                      seen.result.provider_status, to_string(seen.result.outcome),
                      truncate_token(std::string_view(request.path).substr(kPathPrefix)),
                      seen.result.reason.empty() ? answer.detail : seen.result.reason);
  }
  finish_with(std::move(seen.result));
}

boost::asio::awaitable<DeliveryResult> ApnsTransport::deliver(Delivery d) {
  return await_delivery(*this, std::move(d));
}

// The request is built here, where the delivery is at hand; only what the exchange needs goes on with it.
void ApnsTransport::deliver_async(Delivery&& d, const boost::asio::any_io_executor& executor,
                                  std::unique_ptr<DeliveryCompletion> done) {
  using Outcome = DeliveryResult::Outcome;
  auto answer_now = [&](DeliveryResult r) {  // on the caller's executor, as every completion
    boost::asio::post(executor,
                      [done = std::move(done), r = std::move(r)]() mutable { done->complete(std::move(r)); });
  };
  if (!d.credential || d.credential->type != "apn") {
    return answer_now(failure(Outcome::credential_rejected, "no apn credential for this binding"));
  }
  if (impl_->is_draining()) return answer_now(failure(Outcome::retry_later, "transport is shutting down"));
  std::string why;
  auto route = impl_->route_for(*d.credential, why);
  if (!route) return answer_now(failure(Outcome::credential_rejected, why));
  std::string bearer;
  auto headers = route->credential->headers_now(bearer);
  if (!headers) {
    return answer_now(failure(Outcome::credential_rejected, "provider token: " + headers.error().message));
  }
  std::shared_ptr<const CredentialRecord> credential = std::move(d.credential);
  LogIds ids{std::move(d.notification_sid), std::move(d.binding_sid)};
  auto notification = shared_notification_headers(std::move(*headers), d);
  auto request = apns::build_binding_request(std::move(d), notification);
  if (!request) return answer_now(failure(Outcome::payload_rejected, "PayloadTooLarge"));
  Impl::Send::send_owned(
      std::make_unique<Impl::Send>(impl_, std::move(*route), std::move(credential), std::move(bearer),
                                   std::move(notification), std::move(ids), executor, std::move(done)),
      std::move(*request));
}

void ApnsTransport::prepare(const CredentialRecord& credential) {
  if (credential.type != "apn" || impl_->is_draining()) return;
  std::string why;
  // A credential its pool cannot be made for (certificate or key unusable) is left to its deliveries, which
  // fail with the reason.
  if (auto route = impl_->route_for(credential, why)) route->pool->warm();
}

boost::asio::awaitable<void> ApnsTransport::drain() {
  std::vector<std::shared_ptr<http2::Http2Pool>> pools;
  {
    std::lock_guard lk(impl_->mu);
    impl_->draining = true;
    for (auto& [key, route] : impl_->pools) pools.push_back(route.pool);
    pools.insert(pools.end(), impl_->retiring.begin(), impl_->retiring.end());
  }
  for (auto& pool : pools) co_await pool->drain();
}

std::size_t ApnsTransport::pool_count() const {
  std::lock_guard lk(impl_->mu);
  return impl_->pools.size();
}

http2::PoolStats ApnsTransport::stats() const {
  std::vector<std::shared_ptr<http2::Http2Pool>> pools;
  http2::PoolStats total;
  {
    std::lock_guard lk(impl_->mu);
    for (auto& [key, route] : impl_->pools) pools.push_back(route.pool);
    pools.insert(pools.end(), impl_->retiring.begin(), impl_->retiring.end());
    total = impl_->retired_counts;
  }
  for (auto& pool : pools) total += pool->stats();
  return total;
}

std::uint64_t ApnsTransport::token_mints() const {
  std::vector<std::shared_ptr<ProviderTokenCache>> caches;
  {
    std::lock_guard lk(impl_->mu);
    for (auto& [key, state] : impl_->credentials) {
      if (state->tokens) caches.push_back(state->tokens);
    }
  }
  std::uint64_t n = 0;
  for (auto& cache : caches) n += cache->mint_count();
  return n;
}

}  // namespace notifyd::transport
