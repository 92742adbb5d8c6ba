#include "transports/apns/apns_transport.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/url/parse.hpp>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <utility>

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

struct ApnsTransport::Impl {
  boost::asio::any_io_executor executor;
  mutable std::mutex mu;
  std::shared_ptr<const Endpoints> endpoints;
  // Keyed by credential sid, its date_updated (an updated credential gets fresh connections) and endpoint.
  std::map<std::string, std::shared_ptr<http2::Http2Pool>> pools;
  std::map<std::string, std::shared_ptr<ProviderTokenCache>> tokens;
  // Pools of endpoints a reload replaced, until their background drain is done.
  std::set<std::shared_ptr<http2::Http2Pool>> retiring;
  http2::PoolStats retired_counts;  // connections_opened and goaways of drained pools: counters never go back
  bool draining = false;

  static std::string key_of(const CredentialRecord& c) {
    std::string key;  // built per delivery: one allocation, not one per `+`
    key.reserve(c.sid.size() + 32);
    key.append(c.sid).append("/").append(std::to_string(c.date_updated));
    key.append(c.sandbox ? "/sandbox" : "/production");
    return key;
  }

  bool is_draining() const {
    std::lock_guard lk(mu);
    return draining;
  }

  // The pool for this credential, created on first use. nullptr (and a reason) when it cannot be built.
  std::shared_ptr<http2::Http2Pool> pool_for(const CredentialRecord& c, std::string& why) {
    std::string key = key_of(c);
    std::lock_guard lk(mu);
    if (auto it = pools.find(key); it != pools.end()) return it->second;
    const Origin& origin = endpoints->origin(c.sandbox);
    http2::PoolOptions po;
    po.host = origin.host;
    po.port = origin.port;
    po.max_connections = endpoints->options.max_connections;
    po.request_timeout = endpoints->options.request_timeout;
    po.log_prefix = "[" + c.sid + "]";
    try {
      po.tls = is_token_auth(c)
                   ? endpoints->server_trust
                   : http2::make_client_tls_context(endpoints->options.ca_file, c.certificate, c.private_key);
    } catch (const std::exception& e) {
      why = e.what();
      return nullptr;
    }
    if (!is_token_auth(c)) log_certificate_expiry(c);
    auto pool = std::make_shared<http2::Http2Pool>(executor, std::move(po));
    pools.emplace(key, pool);
    apns_log()->info("[{}] APNs pool to {}:{} ({} auth)", c.sid, origin.host, origin.port,
                     is_token_auth(c) ? "token" : "certificate");
    return pool;
  }

  std::shared_ptr<ProviderTokenCache> token_cache_for(const CredentialRecord& c) {
    std::string key = c.sid + "/" + std::to_string(c.date_updated);
    std::lock_guard lk(mu);
    auto& cache = tokens[key];
    if (!cache) cache = std::make_shared<ProviderTokenCache>(c.private_key, c.apn_key_id, c.apn_team_id);
    return cache;
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
      const bool sandbox_pool = it->first.ends_with("/sandbox");
      if (sandbox_pool ? sandbox_kept : production_kept) {
        ++it;
        continue;
      }
      retired.push_back(it->second);
      impl_->retiring.insert(it->second);
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
    : impl_(std::make_shared<Impl>()) {
  impl_->executor = std::move(executor);
  auto endpoints = stage(options);
  if (!endpoints) throw std::invalid_argument(endpoints.error());
  commit(std::move(*endpoints));
}

ApnsTransport::~ApnsTransport() = default;

boost::asio::awaitable<DeliveryResult> ApnsTransport::deliver(Delivery d) {
  using Outcome = DeliveryResult::Outcome;
  auto impl = impl_;
  auto fail = [&](Outcome outcome, std::string reason) {
    DeliveryResult r;
    r.outcome = outcome;
    r.reason = std::move(reason);
    return r;
  };
  if (!d.credential || d.credential->type != "apn") {
    co_return fail(Outcome::credential_rejected, "no apn credential for this binding");
  }
  if (impl->is_draining()) co_return fail(Outcome::retry_later, "transport is shutting down");
  const CredentialRecord& credential = *d.credential;
  std::string why;
  auto pool = impl->pool_for(credential, why);
  if (!pool) co_return fail(Outcome::credential_rejected, why);
  std::shared_ptr<ProviderTokenCache> tokens;
  if (is_token_auth(credential)) tokens = impl->token_cache_for(credential);

  // At most two sends that reach APNs: the second only after APNs refused the provider token. A send that a
  // reload's retired pool turned away (nothing was sent) goes to the new endpoint instead, a bounded number
  // of times.
  int token_refusals = 0;
  int reroutes = 0;
  for (;;) {
    std::string bearer;
    if (tokens) {
      auto token = tokens->token();
      if (!token) co_return fail(Outcome::credential_rejected, "provider token: " + token.error().message);
      bearer = *token;
    }
    auto request = apns::build_request(d, credential.apn_topic, bearer);
    if (!request) co_return fail(Outcome::payload_rejected, "PayloadTooLarge");
    http2::H2Result answer = co_await pool->send(std::move(*request));
    if (answer.failure == http2::H2Failure::shutting_down && reroutes < kMaxReroutes &&
        !impl->is_draining()) {
      ++reroutes;
      pool = impl->pool_for(credential, why);
      if (!pool) co_return fail(Outcome::credential_rejected, why);
      continue;
    }
    apns::Interpretation seen = apns::interpret(answer);
    if (seen.provider_token_rejected && tokens && token_refusals == 0) {
      apns_log()->warn("[{}][{}] APNs refused the provider token of {} ({}): refreshing once",
                       d.notification_sid, d.binding_sid, credential.sid, seen.result.reason);
      tokens->reject(bearer);
      ++token_refusals;
      continue;
    }
    if (seen.result.outcome != Outcome::delivered) {
      apns_log()->debug("[{}][{}] APNs {} {} for {}: {}", d.notification_sid, d.binding_sid,
                        seen.result.provider_status, to_string(seen.result.outcome),
                        truncate_token(d.address),
                        seen.result.reason.empty() ? answer.detail : seen.result.reason);
    }
    co_return seen.result;
  }
}

boost::asio::awaitable<void> ApnsTransport::drain() {
  std::vector<std::shared_ptr<http2::Http2Pool>> pools;
  {
    std::lock_guard lk(impl_->mu);
    impl_->draining = true;
    for (auto& [key, pool] : impl_->pools) pools.push_back(pool);
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
    for (auto& [key, pool] : impl_->pools) pools.push_back(pool);
    pools.insert(pools.end(), impl_->retiring.begin(), impl_->retiring.end());
    total = impl_->retired_counts;
  }
  for (auto& pool : pools) {
    auto s = pool->stats();
    total.connections += s.connections;
    total.streams_in_flight += s.streams_in_flight;
    total.waiting += s.waiting;
    total.connections_opened += s.connections_opened;
    total.goaways += s.goaways;
  }
  return total;
}

std::uint64_t ApnsTransport::token_mints() const {
  std::vector<std::shared_ptr<ProviderTokenCache>> caches;
  {
    std::lock_guard lk(impl_->mu);
    for (auto& [key, cache] : impl_->tokens) caches.push_back(cache);
  }
  std::uint64_t n = 0;
  for (auto& cache : caches) n += cache->mint_count();
  return n;
}

}  // namespace notifyd::transport
