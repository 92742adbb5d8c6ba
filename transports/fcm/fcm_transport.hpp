#pragma once
// FcmTransport: delivers fcm and gcm bindings through FCM HTTP v1 (gcm credentials hold the same
// service-account JSON). One Http2Pool per credential to the [fcm] url, one AccessTokenSource per
// credential, one Http1Pool per token endpoint origin. deliver() may be called from any coroutine;
// outcomes are values (see fcm_protocol.hpp). The endpoint (url, ca_file) can be replaced while it runs
// (stage() then commit(), see below).
#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "transports/http2/pool.hpp"
#include "transports/transport.hpp"

namespace notifyd::transport {

struct FcmOptions {
  std::string url = "https://fcm.googleapis.com";
  std::string ca_file;  // extra trusted CAs for FCM and the token endpoints
  std::size_t max_connections = 4;
  std::chrono::milliseconds request_timeout{30000};
};

class FcmTransport final : public Transport {
 public:
  // Throws std::invalid_argument naming the problem when `options` are unusable (see stage()).
  FcmTransport(boost::asio::any_io_executor executor, FcmOptions options);
  ~FcmTransport() override;

  boost::asio::awaitable<DeliveryResult> deliver(Delivery delivery) override;
  boost::asio::awaitable<void> drain() override;

  // Reload, in two steps so that a caller can refuse a whole configuration when any part is unusable.
  // stage() parses the url (https, with a host) and builds the TLS context with the new ca_file, touching
  // nothing that runs; its error names the [fcm] key and the problem. commit() cannot fail: with the url and
  // CA file (name and content) unchanged every pool and connection stays; a new url gets new FCM pools (the
  // access tokens are kept); a new CA file also gets new token endpoint pools (and so fetches new tokens).
  // Retired pools finish the requests in flight and are drained (GOAWAY, close) in the background. Stage
  // and commit of one reload must not overlap another's.
  struct Endpoint;
  static boost::system::result<std::shared_ptr<const Endpoint>, std::string> stage(const FcmOptions& options);
  void commit(std::shared_ptr<const Endpoint> endpoint);

  std::size_t pool_count() const;
  std::uint64_t token_fetches() const;  // across credentials
  http2::PoolStats stats() const;       // the FCM pools' combined stats (token endpoints not included)

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace notifyd::transport
