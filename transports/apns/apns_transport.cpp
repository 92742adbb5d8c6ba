#include "transports/apns/apns_transport.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <boost/url/parse.hpp>
#include <map>
#include <mutex>

#include "daemon/model/log.hpp"
#include "transports/apns/apns_protocol.hpp"
#include "transports/apns/provider_token.hpp"
#include "transports/http2/tls_context.hpp"

namespace notifyd::transport {
namespace {

auto apns_log() { return module_logger("apns"); }

struct Origin {
  std::string host;
  std::uint16_t port = 443;
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

struct ApnsTransport::Impl {
  boost::asio::any_io_executor executor;
  ApnsOptions options;
  mutable std::mutex mu;
  // Keyed by credential sid, its date_updated (an updated credential gets fresh connections) and endpoint.
  std::map<std::string, std::shared_ptr<http2::Http2Pool>> pools;
  std::map<std::string, std::shared_ptr<ProviderTokenCache>> tokens;
  bool draining = false;

  std::string key_of(const CredentialRecord& c) const {
    std::string key;  // built per delivery: one allocation, not one per `+`
    key.reserve(c.sid.size() + 32);
    key.append(c.sid).append("/").append(std::to_string(c.date_updated));
    key.append(c.sandbox ? "/sandbox" : "/production");
    return key;
  }

  // The pool for this credential, created on first use. nullptr (and a reason) when it cannot be built.
  std::shared_ptr<http2::Http2Pool> pool_for(const CredentialRecord& c, std::string& why) {
    std::string key = key_of(c);
    std::lock_guard lk(mu);
    if (auto it = pools.find(key); it != pools.end()) return it->second;
    auto origin = parse_origin(c.sandbox ? options.sandbox_url : options.production_url);
    if (!origin) {
      why = "APNs endpoint URL is not an https URL";
      return nullptr;
    }
    http2::PoolOptions po;
    po.host = origin->host;
    po.port = origin->port;
    po.max_connections = options.max_connections;
    po.request_timeout = options.request_timeout;
    po.log_prefix = "[" + c.sid + "]";
    try {
      po.tls = is_token_auth(c)
                   ? http2::make_client_tls_context(options.ca_file)
                   : http2::make_client_tls_context(options.ca_file, c.certificate, c.private_key);
    } catch (const std::exception& e) {
      why = e.what();
      return nullptr;
    }
    if (!is_token_auth(c)) log_certificate_expiry(c);
    auto pool = std::make_shared<http2::Http2Pool>(executor, std::move(po));
    pools.emplace(key, pool);
    apns_log()->info("[{}] APNs pool to {}:{} ({} auth)", c.sid, origin->host, origin->port,
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
};

ApnsTransport::ApnsTransport(boost::asio::any_io_executor executor, ApnsOptions options)
    : impl_(std::make_shared<Impl>()) {
  impl_->executor = std::move(executor);
  impl_->options = std::move(options);
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
  {
    std::lock_guard lk(impl->mu);
    if (impl->draining) co_return fail(Outcome::retry_later, "transport is shutting down");
  }
  const CredentialRecord& credential = *d.credential;
  std::string why;
  auto pool = impl->pool_for(credential, why);
  if (!pool) co_return fail(Outcome::credential_rejected, why);
  std::shared_ptr<ProviderTokenCache> tokens;
  if (is_token_auth(credential)) tokens = impl->token_cache_for(credential);

  // At most two sends: the second only after APNs refused the provider token.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string bearer;
    if (tokens) {
      auto token = tokens->token();
      if (!token) co_return fail(Outcome::credential_rejected, "provider token: " + token.error().message);
      bearer = *token;
    }
    auto request = apns::build_request(d, credential.apn_topic, bearer);
    if (!request) co_return fail(Outcome::payload_rejected, "PayloadTooLarge");
    http2::H2Result answer = co_await pool->send(std::move(*request));
    apns::Interpretation seen = apns::interpret(answer);
    if (seen.provider_token_rejected && tokens && attempt == 0) {
      apns_log()->warn("[{}][{}] APNs refused the provider token of {} ({}): refreshing once",
                       d.notification_sid, d.binding_sid, credential.sid, seen.result.reason);
      tokens->reject(bearer);
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
  co_return fail(Outcome::credential_rejected, "provider token refused twice");
}

boost::asio::awaitable<void> ApnsTransport::drain() {
  std::vector<std::shared_ptr<http2::Http2Pool>> pools;
  {
    std::lock_guard lk(impl_->mu);
    impl_->draining = true;
    for (auto& [key, pool] : impl_->pools) pools.push_back(pool);
  }
  for (auto& pool : pools) co_await pool->drain();
}

std::size_t ApnsTransport::pool_count() const {
  std::lock_guard lk(impl_->mu);
  return impl_->pools.size();
}

http2::PoolStats ApnsTransport::stats() const {
  std::vector<std::shared_ptr<http2::Http2Pool>> pools;
  {
    std::lock_guard lk(impl_->mu);
    for (auto& [key, pool] : impl_->pools) pools.push_back(pool);
  }
  http2::PoolStats total;
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

}  // namespace notifyd::transport
