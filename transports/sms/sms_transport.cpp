// SmsTransport: form-encodes one Messages create request per delivery and maps the gateway's answer (HTTP
// status plus Twilio's JSON error `code`) to an outcome. The pool does connection reuse and timeouts.
#include "transports/sms/sms_transport.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <cctype>
#include <charconv>
#include <ctime>
#include <iomanip>
#include <locale>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "daemon/model/log.hpp"
#include "transports/ca_file.hpp"

namespace notifyd::sms {
namespace {

using transport::Delivery;
using transport::DeliveryResult;
using Outcome = DeliveryResult::Outcome;

// Twilio error codes that mean the number itself can never receive: 21211 invalid 'To' number, 21614 'To'
// is not a mobile number.
constexpr int kInvalidToNumber = 21211;
constexpr int kNotMobileNumber = 21614;
// notifyd's (Twilio Notify's) code for an SMS binding in a Service without a MessagingServiceSid.
constexpr const char* kNoMessagingService = "52182";
// A request turned away by a pool that a reload retired is sent again with the new settings; more than a
// few in a row would mean reloads faster than a request, and the delivery is retried later instead.
constexpr int kMaxReroutes = 3;
namespace asio = boost::asio;

std::string form_encode(std::string_view s) {
  boost::urls::encoding_opts opts;
  opts.space_as_plus = true;  // application/x-www-form-urlencoded
  return boost::urls::encode(s, boost::urls::unreserved_chars, opts);
}

void append_field(std::string& out, std::string_view key, std::string_view value) {
  if (!out.empty()) out += '&';
  out += form_encode(key);
  out += '=';
  out += form_encode(value);
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// Twilio's error body: {"code": 21211, "message": "...", "more_info": "...", "status": 400}.
struct ProviderError {
  std::optional<int> code;
  std::string message;
};

ProviderError parse_provider_error(std::string_view body) {
  ProviderError e;
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return e;
  const auto& obj = v.as_object();
  if (auto* c = obj.if_contains("code")) {
    if (c->is_int64()) {
      e.code = static_cast<int>(c->as_int64());
    } else if (c->is_uint64()) {
      e.code = static_cast<int>(c->as_uint64());
    } else if (c->is_string()) {  // some gateways quote it
      int parsed = 0;
      auto s = c->as_string();
      if (std::from_chars(s.data(), s.data() + s.size(), parsed).ec == std::errc{}) e.code = parsed;
    }
  }
  if (auto* m = obj.if_contains("message"); m && m->is_string()) e.message = std::string(m->as_string());
  return e;
}

std::string error_reason(const ProviderError& e, unsigned status) {
  if (e.code && !e.message.empty()) return std::to_string(*e.code) + ": " + e.message;
  if (e.code) return std::to_string(*e.code);
  if (!e.message.empty()) return e.message;
  return "HTTP " + std::to_string(status);
}

DeliveryResult make_result(Outcome outcome, unsigned status, std::string reason) {
  DeliveryResult r;
  r.outcome = outcome;
  r.provider_status = static_cast<int>(status);
  r.reason = std::move(reason);
  return r;
}

}  // namespace

std::string sms_form_body(const Delivery& delivery) {
  std::string out;
  append_field(out, "To", delivery.address);
  append_field(out, "MessagingServiceSid", delivery.messaging_service_sid);
  if (!delivery.sms_body.empty()) append_field(out, "Body", delivery.sms_body);
  for (const auto& media : delivery.sms_media_urls) append_field(out, "MediaUrl", media);
  if (delivery.sms_status_callback) append_field(out, "StatusCallback", *delivery.sms_status_callback);
  if (delivery.sms_max_price) append_field(out, "MaxPrice", *delivery.sms_max_price);
  return out;
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now) {
  return transport::parse_retry_after(value, now);
}

DeliveryResult classify_sms_response(unsigned status, std::string_view retry_after_header,
                                     std::string_view body, std::chrono::system_clock::time_point now) {
  if (status >= 200 && status < 300) return make_result(Outcome::delivered, status, "");
  const ProviderError error = parse_provider_error(body);
  if (status == 429 || status >= 500) {
    auto r = make_result(Outcome::retry_later, status, error_reason(error, status));
    r.retry_after = parse_retry_after(retry_after_header, now);
    return r;
  }
  if (status == 401 || status == 403)
    return make_result(Outcome::credential_rejected, status, error_reason(error, status));
  if (status == 400 && error.code && (*error.code == kInvalidToNumber || *error.code == kNotMobileNumber)) {
    return make_result(Outcome::invalid_address, status, std::to_string(*error.code));
  }
  if (status >= 400) return make_result(Outcome::payload_rejected, status, error_reason(error, status));
  // 1xx/3xx: not an answer a Messages API gives; most likely a misconfigured url, which may be fixed by a
  // reload.
  return make_result(Outcome::retry_later, status, "unexpected HTTP " + std::to_string(status));
}

// What one reload's [sms] settings make: the pool and the per-request parts. Immutable once committed.
struct SmsTransport::Endpoint {
  SmsOptions options;
  std::string ca_pem;  // the ca_file's content when staged: a file rewritten in place is a change
  std::shared_ptr<http1::Http1Pool> pool;
  std::string target;         // the Messages.json path
  std::string authorization;  // "Basic ..." (a secret: never logged)

  // Whether a pool built for `other` connects exactly as one built for these options would.
  bool same_connections(const SmsOptions& other, const std::string& other_ca_pem) const {
    return options.url == other.url && options.ca_file == other.ca_file && ca_pem == other_ca_pem &&
           options.max_connections == other.max_connections &&
           options.connect_timeout == other.connect_timeout &&
           options.request_timeout == other.request_timeout;
  }
};

struct SmsTransport::Impl {
  boost::asio::any_io_executor executor;
  std::shared_ptr<spdlog::logger> log;
  mutable std::mutex mu;
  std::shared_ptr<const Endpoint> endpoint;
  std::set<std::shared_ptr<http1::Http1Pool>> retiring;  // replaced by a reload, until drained
  bool draining = false;

  std::shared_ptr<const Endpoint> current() const {
    std::lock_guard lk(mu);
    return endpoint;
  }
  bool is_draining() const {
    std::lock_guard lk(mu);
    return draining;
  }

  static asio::awaitable<void> drain_retired(std::shared_ptr<Impl> self,
                                             std::shared_ptr<http1::Http1Pool> pool) {
    co_await pool->drain();
    std::lock_guard lk(self->mu);
    self->retiring.erase(pool);
  }
};

SmsTransport::SmsTransport(boost::asio::any_io_executor executor, SmsOptions options)
    : impl_(std::make_shared<Impl>()) {
  impl_->executor = std::move(executor);
  impl_->log = module_logger("sms");
  auto endpoint = stage(options);
  if (!endpoint) throw std::invalid_argument(endpoint.error());
  commit(std::move(*endpoint));
}

SmsTransport::~SmsTransport() = default;

boost::system::result<std::shared_ptr<const SmsTransport::Endpoint>, std::string> SmsTransport::stage(
    const SmsOptions& options) const {
  auto staged = std::make_shared<Endpoint>();
  staged->options = options;
  try {
    staged->ca_pem = transport::read_ca_file(options.ca_file);
  } catch (const std::exception& e) {
    return std::string("[sms] ca_file: ") + e.what();
  }
  auto running = impl_->current();
  if (running && running->same_connections(options, staged->ca_pem)) {
    staged->pool = running->pool;
  } else {
    http1::Http1Options pool_options;
    pool_options.base_url = options.url;
    pool_options.ca_file = options.ca_file;
    pool_options.max_connections = options.max_connections;
    pool_options.connect_timeout = options.connect_timeout;
    pool_options.request_timeout = options.request_timeout;
    pool_options.log_prefix = "[sms] ";
    try {
      staged->pool = std::make_shared<http1::Http1Pool>(impl_->executor, std::move(pool_options));
    } catch (const std::invalid_argument& e) {
      return std::string("[sms] url: ") + e.what();
    } catch (const std::exception& e) {
      return std::string("[sms] ca_file: ") + e.what();
    }
  }
  staged->target = staged->pool->base_path() + "/2010-04-01/Accounts/" +
                   boost::urls::encode(options.account_sid, boost::urls::unreserved_chars) + "/Messages.json";
  staged->authorization = "Basic " + base64(options.account_sid + ":" + options.auth_token);
  return std::shared_ptr<const Endpoint>(std::move(staged));
}

void SmsTransport::commit(std::shared_ptr<const Endpoint> next) {
  std::shared_ptr<const Endpoint> previous;
  {
    std::lock_guard lk(impl_->mu);
    previous = std::exchange(impl_->endpoint, next);
    if (previous && previous->pool != next->pool) impl_->retiring.insert(previous->pool);
  }
  if (!previous) return;  // the first endpoint, from the constructor
  if (previous->pool == next->pool) {
    impl_->log->info("[sms] gateway {} unchanged: connections kept (account {})", next->options.url,
                     next->options.account_sid);
    return;
  }
  impl_->log->info(
      "[sms] gateway now {} (account {}): the previous pool retires after its requests in flight",
      next->options.url, next->options.account_sid);
  asio::co_spawn(impl_->executor, Impl::drain_retired(impl_, previous->pool),
                 [log = impl_->log](std::exception_ptr e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     log->error("[sms] draining the retired pool failed: {}", ex.what());
                   }
                 });
}

boost::asio::awaitable<DeliveryResult> SmsTransport::deliver(Delivery delivery) {
  auto impl = impl_;
  const std::string to = transport::truncate_token(delivery.address);
  if (delivery.messaging_service_sid.empty()) {
    impl->log->warn("[{}][{}] sms to {}: the Service has no MessagingServiceSid (52182)",
                    delivery.notification_sid, delivery.binding_sid, to);
    co_return make_result(Outcome::payload_rejected, 0, kNoMessagingService);
  }

  const std::string body = sms_form_body(delivery);
  http1::Http1Result answer;
  // A request that a reload's retired pool turned away (nothing was sent) goes to the new gateway settings
  // instead, a bounded number of times.
  for (int reroutes = 0;; ++reroutes) {
    auto endpoint = impl->current();
    http1::Http1Request request;
    request.method = "POST";
    request.target = endpoint->target;
    request.headers = {{"Authorization", endpoint->authorization},
                       {"Content-Type", "application/x-www-form-urlencoded"},
                       {"Accept", "application/json"}};
    request.body = body;
    answer = co_await endpoint->pool->send(std::move(request));
    if (answer.failure != http1::Http1Failure::shutting_down || reroutes >= kMaxReroutes ||
        impl->is_draining() || impl->current() == endpoint) {
      break;
    }
  }
  DeliveryResult result;
  if (!answer.ok()) {
    result = make_result(Outcome::retry_later, 0,
                         std::string(http1::to_string(answer.failure)) + ": " + answer.detail);
  } else {
    result = classify_sms_response(answer.status, answer.header("Retry-After"), answer.body,
                                   std::chrono::system_clock::now());
  }
  const auto level = result.outcome == Outcome::delivered ? spdlog::level::debug : spdlog::level::info;
  impl->log->log(level, "[{}][{}] sms to {}: {} (status {}{}{})", delivery.notification_sid,
                 delivery.binding_sid, to, transport::to_string(result.outcome), result.provider_status,
                 result.reason.empty() ? "" : ", ", result.reason);
  co_return result;
}

boost::asio::awaitable<void> SmsTransport::drain() {
  std::vector<std::shared_ptr<http1::Http1Pool>> pools;
  {
    std::lock_guard lk(impl_->mu);
    impl_->draining = true;
    pools.push_back(impl_->endpoint->pool);
    pools.insert(pools.end(), impl_->retiring.begin(), impl_->retiring.end());
  }
  for (auto& pool : pools) co_await pool->drain();
}

http1::Http1PoolStats SmsTransport::pool_stats() const { return impl_->current()->pool->stats(); }

}  // namespace notifyd::sms
