// The two adapters between Transport's forms: deliver_async() over a coroutine deliver(), and the awaitable
// over a callback deliver_async().
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <string>
#include <utility>

#include "daemon/model/log.hpp"
#include "transports/transport.hpp"

namespace notifyd::transport {

void Transport::deliver_async(Delivery&& delivery, const boost::asio::any_io_executor& executor,
                              std::unique_ptr<DeliveryCompletion> done) {
  if (delivery.notification_sid.empty() && delivery.binding_sid.empty()) {  // lent: deliver() logs its own
    const DeliveryIds ids = done->ids();
    delivery.notification_sid = ids.notification_sid;
    delivery.binding_sid = ids.binding_sid;
  }
  auto run = [](Transport& self, Delivery d, DeliveryCompletion& completion) -> boost::asio::awaitable<void> {
    DeliveryResult result;
    try {
      result = co_await self.deliver(std::move(d));
    } catch (const std::exception& e) {  // a bug; the delivery is still answered, so it is retried
      module_logger("transport")->error("a delivery failed: {}", e.what());
      result.outcome = DeliveryResult::Outcome::retry_later;
      result.reason = std::string("internal error: ") + e.what();
    }
    completion.complete(std::move(result));
  };
  // Posted, not spawned here: co_spawn would start the coroutine inside this call when the caller is already
  // on `executor`, and a deliver() that answers at once would then complete inside it too.
  boost::asio::post(
      executor, [this, executor, run, delivery = std::move(delivery), done = std::move(done)]() mutable {
        DeliveryCompletion& completion = *done;
        // `done` lives in the completion handler, so it outlives the coroutine whatever happens to it.
        boost::asio::co_spawn(
            executor, run(*this, std::move(delivery), completion),
            [done = std::move(done)](std::exception_ptr e) {
              if (!e) return;
              try {
                std::rethrow_exception(e);
              } catch (const std::exception& ex) {
                module_logger("transport")->error("completing a delivery failed: {}", ex.what());
              }
            });
      });
}

namespace {

template <class Handler>
struct HandlerCompletion final : DeliveryCompletion {
  explicit HandlerCompletion(Handler h) : handler(std::move(h)) {}
  void complete(DeliveryResult&& result) override { std::move(handler)(std::move(result)); }
  Handler handler;
};

}  // namespace

boost::asio::awaitable<DeliveryResult> await_delivery(Transport& transport, Delivery delivery) {
  auto initiate = [](auto handler, Transport* t, Delivery d) {
    auto executor = boost::asio::get_associated_executor(handler);
    using H = decltype(handler);
    t->deliver_async(std::move(d), std::move(executor),
                     std::make_unique<HandlerCompletion<H>>(std::move(handler)));
  };
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(DeliveryResult)>(
      initiate, boost::asio::use_awaitable, &transport, std::move(delivery));
}

}  // namespace notifyd::transport
