#pragma once
// TransportRegistry: the Transport for each binding type, built from the configuration. apn → APNs;
// fcm and gcm → FCM HTTP v1; sms → the SMS gateway; facebook-messenger, alexa and anything unknown → a
// transport that answers unsupported_channel. Owned by the app; the transports run on the given executor.
// Construction throws only for unusable configuration (bad URL or CA file), at startup.
#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string_view>
#include <vector>

#include "daemon/config/config.hpp"
#include "transports/http2/pool.hpp"
#include "transports/transport.hpp"

namespace notifyd::transport {

// What one pooled transport reports for metrics.
struct TransportStats {
  std::string_view transport;         // "apns", "fcm"
  std::size_t pools = 0;              // one per credential (and endpoint)
  http2::PoolStats pool;              // summed over its pools
  std::uint64_t token_refreshes = 0;  // APNs provider tokens minted; FCM access tokens fetched
};

class TransportRegistry {
 public:
  TransportRegistry(boost::asio::any_io_executor executor, const Config& config);
  ~TransportRegistry();

  Transport& for_binding_type(std::string_view binding_type);
  // Drains every transport (GOAWAY, finish in flight, close).
  boost::asio::awaitable<void> drain();
  // Pool and token counts of the HTTP/2 transports (APNs, FCM). Thread-safe.
  std::vector<TransportStats> stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace notifyd::transport
