#pragma once
// SmsTransport: deliveries to `sms` bindings through a Twilio Programmable Messaging compatible gateway
// ([sms] url, account_sid, auth_token): one keep-alive HTTP/1.1 pool (transports/http1) to that origin.
// Owned by the app; deliver() may run on any coroutine and must not outlive the transport. Every provider or
// network failure is a DeliveryResult; only the constructor throws (bad url or ca_file, at startup). The
// settings can be replaced while it runs (stage() then commit(), see below).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "transports/http1/client.hpp"
#include "transports/transport.hpp"

namespace spdlog {
class logger;
}

namespace notifyd::sms {

struct SmsOptions {
  std::string url = "https://api.twilio.com";  // [sms] url: the gateway origin (a path prefix is kept)
  std::string account_sid;  // [sms] account_sid: the gateway account, in the path and Basic auth
  std::string auth_token;   // [sms] auth_token: never logged
  std::string ca_file;      // extra trusted CAs for an https url
  std::size_t max_connections = 4;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{30000};
};

class SmsTransport : public transport::Transport {
 public:
  SmsTransport(boost::asio::any_io_executor executor, SmsOptions options);
  ~SmsTransport() override;

  // POST {url}/2010-04-01/Accounts/{account_sid}/Messages.json with To, MessagingServiceSid, Body,
  // MediaUrl...
  boost::asio::awaitable<transport::DeliveryResult> deliver(transport::Delivery delivery) override;
  boost::asio::awaitable<void> drain() override;

  // Reload, in two steps so that a caller can refuse a whole configuration when any part is unusable.
  // stage() checks the url (http or https, with a host) and the CA file, building a new connection pool only
  // when the url or CA file (name and content) differs from the running one; it touches nothing that runs,
  // and its error names the [sms] key and the problem. commit() cannot fail: new requests use the new account
  // and token at once; a replaced pool finishes the requests in flight and is drained in the background,
  // while an unchanged one keeps its connections. Stage and commit of one reload must not overlap another's.
  struct Endpoint;
  boost::system::result<std::shared_ptr<const Endpoint>, std::string> stage(const SmsOptions& options) const;
  void commit(std::shared_ptr<const Endpoint> endpoint);

  http1::Http1PoolStats pool_stats() const;  // of the pool in use

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Pure parts, exposed for tests.

// The form body of the Messages create request (application/x-www-form-urlencoded, Boost.URL encoding).
std::string sms_form_body(const transport::Delivery& delivery);

// The outcome of a gateway answer: 2xx delivered; 400 with Twilio code 21211/21614 invalid_address;
// 401/403 credential_rejected; 429/5xx retry_later (with Retry-After); other 4xx payload_rejected.
transport::DeliveryResult classify_sms_response(unsigned status, std::string_view retry_after_header,
                                                std::string_view body,
                                                std::chrono::system_clock::time_point now);

// Retry-After as delay-seconds or an HTTP-date (IMF-fixdate) relative to `now`; nullopt when absent or
// malformed. A date in the past is zero seconds.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

}  // namespace notifyd::sms
