#pragma once
// UnsupportedTransport: the Transport for binding types notifyd accepts (Twilio Notify had them) but cannot
// deliver to: facebook-messenger and alexa. Stateless; any executor. Every delivery is unsupported_channel.
#include <boost/asio/awaitable.hpp>
#include <string>

#include "transports/transport.hpp"

namespace notifyd::messenger {

class UnsupportedTransport : public transport::Transport {
 public:
  explicit UnsupportedTransport(std::string channel);  // "facebook-messenger" or "alexa"

  // unsupported_channel, reason "<channel> delivery is not supported by notifyd"; nothing is sent.
  boost::asio::awaitable<transport::DeliveryResult> deliver(transport::Delivery delivery) override;
  boost::asio::awaitable<void> drain() override;

  const std::string& channel() const { return channel_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string channel_;
  std::string reason_;
};

}  // namespace notifyd::messenger
