#include "transports/messenger/unsupported_transport.hpp"

#include <spdlog/spdlog.h>

#include <utility>

#include "daemon/model/log.hpp"

namespace notifyd::messenger {

UnsupportedTransport::UnsupportedTransport(std::string channel)
    : channel_(std::move(channel)), reason_(channel_ + " delivery is not supported by notifyd") {}

boost::asio::awaitable<transport::DeliveryResult> UnsupportedTransport::deliver(
    transport::Delivery delivery) {
  // Logged at debug only: a Service full of such bindings would otherwise flood the log on every
  // notification.
  module_logger("messenger")->debug("[{}][{}] {}", delivery.notification_sid, delivery.binding_sid, reason_);
  transport::DeliveryResult result;
  result.outcome = transport::DeliveryResult::Outcome::unsupported_channel;
  result.reason = reason_;
  co_return result;
}

boost::asio::awaitable<void> UnsupportedTransport::drain() { co_return; }

}  // namespace notifyd::messenger
