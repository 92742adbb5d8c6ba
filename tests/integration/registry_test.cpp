// TransportRegistry: every binding type reaches its transport; channels notifyd cannot deliver say so.
#include "transports/registry/registry.hpp"

#include <gtest/gtest.h>

#include "tests/support/run_coroutine.hpp"

namespace notifyd::transport {
namespace {

TEST(TransportRegistry, UnsupportedChannelsAnswerUnsupportedWithAClearReason) {
  test::IoThreads io;
  Config config;
  TransportRegistry registry(io.executor(), config);
  for (std::string type : {"facebook-messenger", "alexa", "carrier-pigeon"}) {
    Delivery d;
    d.binding_type = type;
    d.address = "someone";
    auto result = io.run(registry.for_binding_type(type).deliver(d));
    EXPECT_EQ(result.outcome, DeliveryResult::Outcome::unsupported_channel) << type;
    EXPECT_NE(result.reason.find("not supported"), std::string::npos) << result.reason;
  }
}

TEST(TransportRegistry, GcmAndFcmShareTheFcmTransportAndEachTypeHasItsOwn) {
  test::IoThreads io;
  Config config;
  TransportRegistry registry(io.executor(), config);
  EXPECT_EQ(&registry.for_binding_type("gcm"), &registry.for_binding_type("fcm"));
  EXPECT_NE(&registry.for_binding_type("apn"), &registry.for_binding_type("fcm"));
  EXPECT_NE(&registry.for_binding_type("sms"), &registry.for_binding_type("apn"));
  EXPECT_NE(&registry.for_binding_type("sms"), &registry.for_binding_type("alexa"));
}

}  // namespace
}  // namespace notifyd::transport
