#include "daemon/fanout/failure_reason.hpp"

#include <gtest/gtest.h>

#include <string>

namespace notifyd::fanout {
namespace {

TEST(FailureReasonKey, ProviderReasonsStayAsTheyAre) {
  EXPECT_EQ(failure_reason_key("Unregistered"), "Unregistered");
  EXPECT_EQ(failure_reason_key("INVALID_ARGUMENT"), "INVALID_ARGUMENT");
  EXPECT_EQ(failure_reason_key(""), "unknown");
}

TEST(FailureReasonKey, SidsAreElidedSoTheKeysStayFew) {
  EXPECT_EQ(failure_reason_key("credential CR0123456789abcdef0123456789abcdef not found"),
            "credential <sid> not found");
  EXPECT_EQ(failure_reason_key("credential CRfedcba9876543210fedcba9876543210 not found"),
            "credential <sid> not found");
  EXPECT_EQ(failure_reason_key("IS0123456789abcdef0123456789abcdef"), "<sid>");
  // Not a SID: part of a longer token, or too short.
  EXPECT_EQ(failure_reason_key("xCR0123456789abcdef0123456789abcdef"), "xCR0123456789abcdef0123456789abcdef");
  EXPECT_EQ(failure_reason_key("CR0123"), "CR0123");
}

TEST(FailureReasonKey, LongReasonsAreCut) {
  EXPECT_EQ(failure_reason_key(std::string(500, 'x')).size(), 96u);
}

}  // namespace
}  // namespace notifyd::fanout
