#pragma once
// TransportRegistry: the Transport for each binding type, built from the configuration. apn → APNs;
// fcm and gcm → FCM HTTP v1; sms → the SMS gateway; facebook-messenger, alexa and anything unknown → a
// transport that answers unsupported_channel. Owned by the app; the transports run on the given executor.
// Construction throws only for unusable configuration (bad URL or CA file), at startup; reconfigure() reports
// the same problems as a value and changes nothing then.
#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <optional>
#include <string>
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

  // The same object for the registry's whole life (a reload changes what is inside, never the object).
  Transport& for_binding_type(std::string_view binding_type);

  // Reload (SIGHUP): applies the [apns], [fcm] and [sms] settings of `config`, all or nothing. Every
  // transport's new settings are checked and built first (URLs, TLS contexts with the new CA files); if any
  // is unusable nothing changes and the problem is returned, naming the key ("[apns] ca_file: ..."). Else
  // they are swapped in and nullopt is returned: endpoints that did not change keep their connections;
  // changed ones get new pools, and the old pools finish what is in flight, then close in the background.
  // Nothing in flight fails because of a reload. Thread-safe; concurrent calls run one after the other.
  [[nodiscard]] std::optional<std::string> reconfigure(const Config& config);

  // Drains every transport (GOAWAY, finish in flight, close).
  boost::asio::awaitable<void> drain();
  // Pool and token counts of the HTTP/2 transports (APNs, FCM). Thread-safe.
  std::vector<TransportStats> stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace notifyd::transport
