#pragma once
// TransportRegistry: the Transport for each binding type, built from the configuration. apn → APNs;
// fcm and gcm → FCM HTTP v1; sms → the SMS gateway; facebook-messenger, alexa and anything unknown → a
// transport that answers unsupported_channel. Owned by the app; the transports run on the given executor.
// Construction throws only for unusable configuration (bad URL or CA file), at startup.
#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string_view>

#include "daemon/config/config.hpp"
#include "transports/transport.hpp"

namespace notifyd::transport {

class TransportRegistry {
 public:
  TransportRegistry(boost::asio::any_io_executor executor, const Config& config);
  ~TransportRegistry();

  Transport& for_binding_type(std::string_view binding_type);
  // Drains every transport (GOAWAY, finish in flight, close).
  boost::asio::awaitable<void> drain();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace notifyd::transport
