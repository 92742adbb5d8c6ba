#pragma once
// FcmTransport: delivers fcm and gcm bindings through FCM HTTP v1 (gcm credentials hold the same
// service-account JSON). One Http2Pool per credential to the [fcm] url, one AccessTokenSource per
// credential, one Http1Pool per token endpoint origin. deliver() may be called from any coroutine;
// outcomes are values (see fcm_protocol.hpp).
#include <boost/asio/any_io_executor.hpp>
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
  FcmTransport(boost::asio::any_io_executor executor, FcmOptions options);
  ~FcmTransport() override;

  boost::asio::awaitable<DeliveryResult> deliver(Delivery delivery) override;
  boost::asio::awaitable<void> drain() override;

  std::size_t pool_count() const;
  std::uint64_t token_fetches() const;  // across credentials
  http2::PoolStats stats() const;       // the FCM pools' combined stats (token endpoints not included)

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace notifyd::transport
