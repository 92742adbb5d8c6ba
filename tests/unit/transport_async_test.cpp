// Transport's two forms and their adapters: the default deliver_async() over a coroutine deliver(), and
// await_delivery() over a callback deliver_async().
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <future>
#include <stdexcept>

#include "daemon/model/strand.hpp"
#include "tests/support/run_coroutine.hpp"
#include "transports/transport.hpp"

namespace notifyd::transport {
namespace {

namespace asio = boost::asio;
using Outcome = DeliveryResult::Outcome;

// deliver() is a coroutine: answers with the binding sid as the reason, or throws when asked to.
class CoroutineTransport final : public Transport {
 public:
  asio::awaitable<DeliveryResult> deliver(Delivery d) override {
    if (d.binding_sid == "throw") throw std::runtime_error("a bug in the transport");
    DeliveryResult r;
    r.outcome = Outcome::delivered;
    r.provider_status = 200;
    r.reason = d.binding_sid;
    co_return r;
  }
  asio::awaitable<void> drain() override { co_return; }
};

// deliver_async() is the primary form: posts its answer to the caller's executor.
class CallbackTransport final : public Transport {
 public:
  asio::awaitable<DeliveryResult> deliver(Delivery d) override { return await_delivery(*this, std::move(d)); }
  void deliver_async(Delivery&& d, const asio::any_io_executor& executor,
                     std::unique_ptr<DeliveryCompletion> done) override {
    ++calls;
    asio::post(executor, [done = std::move(done), sid = d.binding_sid]() mutable {
      DeliveryResult r;
      r.outcome = Outcome::retry_later;
      r.provider_status = 503;
      r.reason = sid;
      done->complete(std::move(r));
    });
  }
  asio::awaitable<void> drain() override { co_return; }
  std::atomic<int> calls{0};
};

// Records where it completed, in the caller's variables (the completion is destroyed once it returns).
struct Recorder final : DeliveryCompletion {
  asio::any_io_executor strand;
  std::promise<DeliveryResult>& promise;
  const std::atomic<bool>& call_returned;
  bool& on_strand;
  bool& after_call;

  Recorder(asio::any_io_executor s, std::promise<DeliveryResult>& p, const std::atomic<bool>& returned,
           bool& on, bool& after)
      : strand(std::move(s)), promise(p), call_returned(returned), on_strand(on), after_call(after) {}
  void complete(DeliveryResult&& result) override {
    on_strand = strand.target<asio::strand<asio::io_context::executor_type>>()->running_in_this_thread();
    after_call = call_returned.load();
    promise.set_value(std::move(result));
  }
};

DeliveryResult deliver_on_strand(Transport& transport, std::string binding_sid, bool& on_strand,
                                 bool& after_call) {
  test::IoThreads io(2);
  auto strand = make_strand_executor(io.executor());
  std::promise<DeliveryResult> promise;
  auto future = promise.get_future();
  std::atomic<bool> returned{false};
  // Called from the strand, as the dispatcher does: the completion must not run inside the call.
  asio::post(strand, [&] {
    Delivery d;
    d.binding_sid = std::move(binding_sid);
    transport.deliver_async(std::move(d), strand,
                            std::make_unique<Recorder>(strand, promise, returned, on_strand, after_call));
    returned = true;
  });
  if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "no completion within 10 s";
    return {};
  }
  return future.get();
}

TEST(TransportAsync, DefaultDeliverAsyncCompletesOnTheCallersStrandAfterTheCall) {
  CoroutineTransport transport;
  bool on_strand = false, after_call = false;
  auto r = deliver_on_strand(transport, "BS1", on_strand, after_call);
  EXPECT_EQ(r.outcome, Outcome::delivered);
  EXPECT_EQ(r.reason, "BS1");
  EXPECT_TRUE(on_strand);
  EXPECT_TRUE(after_call);
}

TEST(TransportAsync, DefaultDeliverAsyncAnswersAThrowingDeliverWithARetry) {
  CoroutineTransport transport;
  bool on_strand = false, after_call = false;
  auto r = deliver_on_strand(transport, "throw", on_strand, after_call);
  EXPECT_EQ(r.outcome, Outcome::retry_later);  // not lost: the dispatcher retries it
  EXPECT_EQ(r.provider_status, 0);
  EXPECT_NE(r.reason.find("a bug in the transport"), std::string::npos) << r.reason;
  EXPECT_TRUE(on_strand);
}

TEST(TransportAsync, AwaitDeliveryAwaitsACallbackTransport) {
  CallbackTransport transport;
  test::IoThreads io(2);
  Delivery d;
  d.binding_sid = "BS2";
  auto r = io.run(transport.deliver(std::move(d)));
  EXPECT_EQ(r.outcome, Outcome::retry_later);
  EXPECT_EQ(r.provider_status, 503);
  EXPECT_EQ(r.reason, "BS2");
  EXPECT_EQ(transport.calls.load(), 1);
}

TEST(StrandExecutor, OverAnIoContextIsAStrandOfItsOwnExecutor) {
  // The type matters: it fits any_io_executor's small-object buffer, so copies do not allocate.
  test::IoThreads io(1);
  auto strand = make_strand_executor(io.executor());
  EXPECT_NE(strand.target<asio::strand<asio::io_context::executor_type>>(), nullptr);
  // Any other executor still gets a strand, over the type-erased one.
  auto other = make_strand_executor(asio::any_io_executor(strand));
  EXPECT_NE(other.target<asio::strand<asio::any_io_executor>>(), nullptr);
  std::promise<bool> ran;
  asio::post(other, [&] { ran.set_value(true); });
  auto f = ran.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(f.get());
}

}  // namespace
}  // namespace notifyd::transport
