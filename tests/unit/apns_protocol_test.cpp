// APNs without I/O: request headers, the payload limit, every answer → outcome, and the provider token
// policy.
#include "transports/apns/apns_protocol.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "tests/support/test_credentials.hpp"
#include "transports/apns/provider_token.hpp"

namespace notifyd::transport::apns {
namespace {

using Outcome = DeliveryResult::Outcome;

Delivery sample_delivery() {
  Delivery d;
  d.binding_type = "apn";
  d.address = std::string(64, 'a');
  d.body = R"({"aps":{"alert":"hi"}})";
  d.apns_push_type = "alert";
  d.apns_priority = 5;
  d.apns_expiration = 1700000000;
  d.apns_id = "123e4567-e89b-12d3-a456-426614174000";
  return d;
}

std::string header(const http2::H2Request& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  if (r.shared_headers) {
    for (const auto& [k, v] : *r.shared_headers) {
      if (k == name) return v;
    }
  }
  return "<absent>";
}

http2::H2Result answer(int status, std::string body = {},
                       std::vector<std::pair<std::string, std::string>> h = {}) {
  http2::H2Result r;
  r.response.status = status;
  r.response.body = std::move(body);
  r.response.headers = std::move(h);
  return r;
}

TEST(ApnsRequest, CarriesPathAndEveryApnsHeader) {
  auto r = build_request(sample_delivery(), "com.example.app", "jwt-token");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, "POST");
  EXPECT_EQ(r->path, "/3/device/" + std::string(64, 'a'));
  EXPECT_EQ(header(*r, "apns-topic"), "com.example.app");
  EXPECT_EQ(header(*r, "apns-push-type"), "alert");
  EXPECT_EQ(header(*r, "apns-priority"), "5");
  EXPECT_EQ(header(*r, "apns-expiration"), "1700000000");
  EXPECT_EQ(header(*r, "apns-id"), "123e4567-e89b-12d3-a456-426614174000");
  EXPECT_EQ(header(*r, "authorization"), "bearer jwt-token");
  EXPECT_EQ(header(*r, "apns-collapse-id"), "<absent>");
  EXPECT_EQ(r->body, R"({"aps":{"alert":"hi"}})");
}

// A fan-out's requests share their notification's headers with the credential's; each carries only its
// apns-id, path and payload of its own. A renewed token rebases them, keeping the notification's fields.
TEST(ApnsRequest, NotificationHeadersAreSharedAndEachRequestKeepsItsApnsId) {
  auto credential = shared_headers("com.example.app", "jwt-1");
  Delivery d = sample_delivery();
  d.apns_collapse_id = "c1";
  auto shared = notification_headers(credential, d);
  EXPECT_TRUE(shared->fits(credential.get(), d));
  auto r = build_binding_request(Delivery(d), shared);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->shared_headers.get(), &shared->all);
  ASSERT_EQ(r->headers.size(), 1u);
  EXPECT_EQ(r->headers[0], (std::pair<std::string, std::string>{"apns-id", d.apns_id}));
  EXPECT_EQ(r->path, "/3/device/" + std::string(64, 'a'));
  EXPECT_EQ(r->body, d.body);
  // The same header set, with the same values, as build_request() gives.
  auto whole = build_request(d, "com.example.app", "jwt-1");
  ASSERT_TRUE(whole);
  for (auto name : {"apns-topic", "content-type", "authorization", "apns-push-type", "apns-priority",
                    "apns-expiration", "apns-collapse-id", "apns-id"}) {
    EXPECT_EQ(header(*r, name), header(*whole, name)) << name;
  }
  EXPECT_EQ(r->shared_headers->size() + r->headers.size(),
            whole->headers.size() + whole->shared_headers->size());

  // Another notification (any field), or other credential headers, does not fit.
  for (auto change : std::vector<std::function<void(Delivery&)>>{
           [](Delivery& x) { x.apns_priority = 10; }, [](Delivery& x) { x.apns_expiration += 1; },
           [](Delivery& x) { x.apns_push_type = "background"; },
           [](Delivery& x) { x.apns_collapse_id.reset(); }}) {
    Delivery other = d;
    change(other);
    EXPECT_FALSE(shared->fits(credential.get(), other));
  }
  auto renewed = shared_headers("com.example.app", "jwt-2");
  EXPECT_FALSE(shared->fits(renewed.get(), d));
  auto rebased = rebase(*shared, renewed);
  EXPECT_TRUE(rebased->fits(renewed.get(), d));
  r->shared_headers = as_shared_headers(rebased);
  EXPECT_EQ(header(*r, "authorization"), "bearer jwt-2");
  EXPECT_EQ(header(*r, "apns-collapse-id"), "c1");
  EXPECT_EQ(header(*r, "apns-priority"), "5");

  Delivery big = d;
  big.body = std::string(4097, ' ');
  EXPECT_FALSE(build_binding_request(std::move(big), shared));
}

TEST(ApnsRequest, CertificateAuthSendsNoAuthorization) {
  auto r = build_request(sample_delivery(), "com.example.app", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(header(*r, "authorization"), "<absent>");
}

TEST(ApnsRequest, PayloadOver4096BytesIsNotBuilt) {
  Delivery d = sample_delivery();
  d.body = R"({"aps":{"alert":")" + std::string(4096, 'x') + R"("}})";
  EXPECT_FALSE(build_request(d, "t", ""));
  d.body = std::string(4096, ' ');
  EXPECT_TRUE(build_request(d, "t", ""));
}

TEST(ApnsRequest, ConstantHeadersAreSharedAndTheDeliveryIsTakenNotCopied) {
  auto shared = shared_headers("com.example.app", "");
  Delivery d = sample_delivery();
  d.apns_collapse_id = "c1";
  const char* body_bytes = d.body.data();
  const std::string body = d.body;
  auto r = build_request(std::move(d), shared);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->shared_headers.get(), shared.get());  // one block for every request of the credential
  EXPECT_EQ(header(*r, "apns-topic"), "com.example.app");
  EXPECT_EQ(header(*r, "content-type"), "application/json");
  EXPECT_EQ(header(*r, "authorization"), "<absent>");
  EXPECT_EQ(header(*r, "apns-id"), "123e4567-e89b-12d3-a456-426614174000");
  EXPECT_EQ(header(*r, "apns-collapse-id"), "c1");
  EXPECT_EQ(header(*r, "apns-priority"), "5");
  EXPECT_EQ(header(*r, "apns-expiration"), "1700000000");
  EXPECT_EQ(r->path, "/3/device/" + std::string(64, 'a'));
  EXPECT_EQ(r->body, body);
  EXPECT_EQ(r->body.data(), body_bytes);  // the payload moved in, not copied
  auto second = build_request(sample_delivery(), shared);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->shared_headers.get(), shared.get());

  auto token = shared_headers("com.example.app", "jwt-1");
  ASSERT_EQ(token->size(), 3u);
  EXPECT_EQ((*token)[2], (std::pair<std::string, std::string>("authorization", "bearer jwt-1")));
}

TEST(ApnsRequest, AnOversizedPayloadLeavesTheDeliveryAsItWas) {
  Delivery d = sample_delivery();
  d.body = std::string(4097, ' ');
  EXPECT_FALSE(build_request(std::move(d), shared_headers("t", "")));
  EXPECT_EQ(d.body.size(), 4097u);  // NOLINT(bugprone-use-after-move): nothing is taken on refusal
  EXPECT_EQ(d.apns_id, "123e4567-e89b-12d3-a456-426614174000");
}

TEST(ApnsAnswer, Status200IsDelivered) {
  EXPECT_EQ(interpret(answer(200)).result.outcome, Outcome::delivered);
}

TEST(ApnsAnswer, UnregisteredAndBadTokensAreInvalidAddresses) {
  auto gone = interpret(answer(410, R"({"reason":"Unregistered","timestamp":1700000000123})")).result;
  EXPECT_EQ(gone.outcome, Outcome::invalid_address);
  EXPECT_EQ(gone.reason, "Unregistered");
  ASSERT_TRUE(gone.invalid_since);
  EXPECT_EQ(*gone.invalid_since, 1700000000123);
  EXPECT_EQ(interpret(answer(400, R"({"reason":"BadDeviceToken"})")).result.outcome,
            Outcome::invalid_address);
  EXPECT_EQ(interpret(answer(400, R"({"reason":"DeviceTokenNotForTopic"})")).result.outcome,
            Outcome::invalid_address);
}

// A timestamp APNs would never send (a fraction, beyond int64) is ignored, not thrown: interpret() runs
// inside a transport completion.
TEST(ApnsAnswer, AnUnreadableTimestampIsIgnored) {
  for (auto body :
       {R"({"reason":"Unregistered","timestamp":1.5})", R"({"reason":"Unregistered","timestamp":1e30})",
        R"({"reason":"Unregistered","timestamp":18446744073709551615})"}) {
    DeliveryResult gone;
    ASSERT_NO_THROW(gone = interpret(answer(410, body)).result) << body;
    EXPECT_EQ(gone.outcome, Outcome::invalid_address) << body;
    EXPECT_FALSE(gone.invalid_since) << body;
  }
}

TEST(ApnsAnswer, ProviderTokenRejectionsAskForAFreshToken) {
  for (auto reason : {"ExpiredProviderToken", "InvalidProviderToken"}) {
    auto i = interpret(answer(403, std::string(R"({"reason":")") + reason + R"("})"));
    EXPECT_TRUE(i.provider_token_rejected) << reason;
    EXPECT_EQ(i.result.outcome, Outcome::credential_rejected) << reason;
  }
  EXPECT_FALSE(interpret(answer(403, R"({"reason":"BadCertificate"})")).provider_token_rejected);
  EXPECT_EQ(interpret(answer(403, R"({"reason":"BadCertificate"})")).result.outcome,
            Outcome::credential_rejected);
}

TEST(ApnsAnswer, ThrottlingAndServerErrorsRetryHonouringRetryAfter) {
  auto r = interpret(answer(429, R"({"reason":"TooManyRequests"})", {{"retry-after", "30"}})).result;
  EXPECT_EQ(r.outcome, Outcome::retry_later);
  ASSERT_TRUE(r.retry_after);
  EXPECT_EQ(r.retry_after->count(), 30);
  EXPECT_EQ(interpret(answer(500, R"({"reason":"InternalServerError"})")).result.outcome,
            Outcome::retry_later);
  EXPECT_EQ(interpret(answer(503, R"({"reason":"ServiceUnavailable"})")).result.outcome,
            Outcome::retry_later);
}

TEST(ApnsAnswer, OtherClientErrorsRejectThePayloadWithApplesReason) {
  auto r = interpret(answer(413, R"({"reason":"PayloadTooLarge"})")).result;
  EXPECT_EQ(r.outcome, Outcome::payload_rejected);
  EXPECT_EQ(r.reason, "PayloadTooLarge");
  EXPECT_EQ(r.provider_status, 413);
  EXPECT_EQ(interpret(answer(400, R"({"reason":"BadExpirationDate"})")).result.outcome,
            Outcome::payload_rejected);
}

TEST(ApnsAnswer, ConnectionFailuresRetry) {
  http2::H2Result lost;
  lost.failure = http2::H2Failure::connection_lost;
  EXPECT_EQ(interpret(lost).result.outcome, Outcome::retry_later);
}

TEST(ProviderToken, ReusedUntilFiftyMinutesThenReminted) {
  std::int64_t now = 1'000'000;
  ProviderTokenCache cache(test::make_p8_key(), "KEYID12345", "TEAMID1234", [&] { return now; });
  auto first = cache.token();
  ASSERT_TRUE(first);
  now += 49 * 60;
  EXPECT_EQ(*cache.token(), *first);
  EXPECT_EQ(cache.mint_count(), 1u);
  now += 60;
  EXPECT_NE(*cache.token(), *first);
  EXPECT_EQ(cache.mint_count(), 2u);
}

TEST(ProviderToken, RejectedTokenIsReplacedButNeverMoreOftenThanEveryTwentyMinutes) {
  std::int64_t now = 1'000'000;
  ProviderTokenCache cache(test::make_p8_key(), "KEYID12345", "TEAMID1234", [&] { return now; });
  auto first = *cache.token();
  now += 5 * 60;
  cache.reject(first);
  EXPECT_EQ(*cache.token(), first);  // too young to replace: Apple throttles re-minting
  now += 15 * 60;
  auto second = *cache.token();
  EXPECT_NE(second, first);
  EXPECT_EQ(cache.mint_count(), 2u);
  cache.reject(first);  // a stale rejection of an old token changes nothing
  now += 21 * 60;
  EXPECT_EQ(*cache.token(), second);
}

}  // namespace
}  // namespace notifyd::transport::apns
