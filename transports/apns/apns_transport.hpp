#pragma once
// ApnsTransport: delivers to Apple Push Notification service over HTTP/2. One Http2Pool per
// (credential, endpoint): certificate credentials present their client certificate on their own
// connections; token credentials send a cached ES256 provider token. Sandbox credentials go to
// sandbox_url. deliver() may be called from any coroutine; outcomes are values (see apns_protocol.hpp).
// The endpoints (URLs, ca_file) can be replaced while it runs (stage() then commit(), see below).
#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "transports/http2/pool.hpp"
#include "transports/transport.hpp"

namespace notifyd::transport {

struct ApnsOptions {
  std::string production_url = "https://api.push.apple.com";
  std::string sandbox_url = "https://api.sandbox.push.apple.com";
  std::string ca_file;  // extra trusted CAs; the system store is always used
  std::size_t max_connections = 4;
  std::chrono::milliseconds request_timeout{30000};
};

class ApnsTransport final : public Transport {
 public:
  // Throws std::invalid_argument naming the problem when `options` are unusable (see stage()).
  ApnsTransport(boost::asio::any_io_executor executor, ApnsOptions options);
  // `token_clock`: seconds since the epoch for provider tokens (their age and iat), for tests that move time.
  ApnsTransport(boost::asio::any_io_executor executor, ApnsOptions options,
                std::function<std::int64_t()> token_clock);
  ~ApnsTransport() override;

  boost::asio::awaitable<DeliveryResult> deliver(Delivery delivery) override;  // await_delivery()
  void deliver_async(Delivery&& delivery, const boost::asio::any_io_executor& executor,
                     std::unique_ptr<DeliveryCompletion> done) override;
  void prepare(const CredentialRecord& credential) override;  // the credential's pool, and a connection
  boost::asio::awaitable<void> drain() override;

  // Reload, in two steps so that a caller can refuse a whole configuration when any part is unusable.
  // stage() parses both URLs (https, with a host) and builds the TLS context with the new ca_file, touching
  // nothing that runs; its error names the [apns] key and the problem. commit() cannot fail: an endpoint
  // whose URL and CA file (name and content) are unchanged keeps its pools and connections; the pools of a
  // changed one are retired: new sends go to new pools, the retired ones finish the streams in flight and are
  // then drained (GOAWAY, close) in the background. Stage and commit of one reload must not overlap
  // another's.
  struct Endpoints;
  static boost::system::result<std::shared_ptr<const Endpoints>, std::string> stage(
      const ApnsOptions& options);
  void commit(std::shared_ptr<const Endpoints> endpoints);

  // Pools in use (one per credential and endpoint), and the combined stats of every pool, including those a
  // reload retired (their counters stay in the totals once they are gone).
  std::size_t pool_count() const;
  http2::PoolStats stats() const;
  // Provider tokens (ES256 JWTs) minted so far, across token-auth credentials.
  std::uint64_t token_mints() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Logs the certificate's notAfter at info, and a warning when it expires within 30 days (or has).
// Returns the days left (negative when expired); nullopt when the certificate does not parse.
std::optional<long> log_certificate_expiry(const CredentialRecord& credential);

}  // namespace notifyd::transport
