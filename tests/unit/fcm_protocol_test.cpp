// FCM HTTP v1 without I/O: the messages:send request, every answer → outcome, the token endpoint exchange.
#include "transports/fcm/fcm_protocol.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace notifyd::transport::fcm {
namespace {

using Outcome = DeliveryResult::Outcome;

http2::H2Result answer(int status, std::string body = {},
                       std::vector<std::pair<std::string, std::string>> h = {}) {
  http2::H2Result r;
  r.response.status = status;
  r.response.body = std::move(body);
  r.response.headers = std::move(h);
  return r;
}

std::string google_error(int code, std::string status, std::string error_code, std::string extra = "") {
  std::string details =
      error_code.empty()
          ? "[]"
          : R"([{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":")" + error_code +
                R"("})" + extra + "]";
  return R"({"error":{"code":)" + std::to_string(code) + R"(,"message":"m","status":")" + status +
         R"(","details":)" + details + "}}";
}

TEST(FcmRequest, AddsTheTokenToTheMessageAndAuthorizes) {
  Delivery d;
  d.address = "registration-token-1";
  d.body = R"({"data":{"twi_body":"hi"},"android":{"priority":"high"}})";
  auto r = build_request(d, "my-project", "ya29.token");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->path, "/v1/projects/my-project/messages:send");
  EXPECT_EQ(r->headers.at(0).second, "Bearer ya29.token");
  auto body = boost::json::parse(r->body).as_object();
  const auto& message = body.at("message").as_object();
  EXPECT_EQ(message.at("token"), "registration-token-1");
  EXPECT_EQ(message.at("data").at("twi_body"), "hi");
}

TEST(FcmRequest, RefusesNonObjectsAndOversizedMessages) {
  Delivery d;
  d.address = "t";
  d.body = "[1]";
  EXPECT_FALSE(build_request(d, "p", "a"));
  d.body = R"({"data":{"k":")" + std::string(5000, 'x') + R"("}})";
  EXPECT_FALSE(build_request(d, "p", "a"));
}

TEST(FcmAnswer, SuccessAndUnregistered) {
  EXPECT_EQ(interpret(answer(200, R"({"name":"projects/p/messages/1"})")).result.outcome, Outcome::delivered);
  auto gone = interpret(answer(404, google_error(404, "NOT_FOUND", "UNREGISTERED"))).result;
  EXPECT_EQ(gone.outcome, Outcome::invalid_address);
  EXPECT_EQ(gone.reason, "UNREGISTERED");
}

TEST(FcmAnswer, InvalidArgumentIsAnInvalidAddressOnlyWhenAboutTheToken) {
  std::string about_token =
      R"({"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"}]}})";
  EXPECT_EQ(interpret(answer(400, about_token)).result.outcome, Outcome::invalid_address);
  std::string field_violation =
      R"({"error":{"code":400,"message":"Invalid value","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"bad"}]}]}})";
  EXPECT_EQ(interpret(answer(400, field_violation)).result.outcome, Outcome::invalid_address);
  std::string about_payload =
      R"({"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"x\"","status":"INVALID_ARGUMENT","details":[]}})";
  auto r = interpret(answer(400, about_payload)).result;
  EXPECT_EQ(r.outcome, Outcome::payload_rejected);
  EXPECT_EQ(r.reason, "INVALID_ARGUMENT");
}

TEST(FcmAnswer, QuotaAndServerErrorsRetryHonouringRetryAfter) {
  auto quota = interpret(answer(429, google_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
                                {{"retry-after", "60"}}))
                   .result;
  EXPECT_EQ(quota.outcome, Outcome::retry_later);
  EXPECT_EQ(quota.reason, "QUOTA_EXCEEDED");
  ASSERT_TRUE(quota.retry_after);
  EXPECT_EQ(quota.retry_after->count(), 60);
  EXPECT_EQ(interpret(answer(503, google_error(503, "UNAVAILABLE", "UNAVAILABLE"))).result.outcome,
            Outcome::retry_later);
  EXPECT_EQ(interpret(answer(500, google_error(500, "INTERNAL", "INTERNAL"))).result.outcome,
            Outcome::retry_later);
}

TEST(FcmAnswer, UnauthenticatedAsksForAFreshTokenAndSenderMismatchRejectsTheCredential) {
  auto unauth = interpret(answer(401, google_error(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR")));
  EXPECT_TRUE(unauth.access_token_rejected);
  auto mismatch = interpret(answer(403, google_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH")));
  EXPECT_FALSE(mismatch.access_token_rejected);
  EXPECT_EQ(mismatch.result.outcome, Outcome::credential_rejected);
  EXPECT_EQ(mismatch.result.reason, "SENDER_ID_MISMATCH");
}

TEST(FcmToken, RequestBodyAndResponseParsing) {
  EXPECT_EQ(token_request_body("a.b.c"),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c");
  auto t = parse_token_response(R"({"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"})", 1000);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->token, "ya29.x");
  EXPECT_EQ(t->expires_at, 4599);
  EXPECT_FALSE(parse_token_response(R"({"expires_in":3599})", 0));
  EXPECT_FALSE(parse_token_response("not json", 0));
  EXPECT_FALSE(parse_token_response(R"({"access_token":"x","expires_in":-5})", 0));
}

}  // namespace
}  // namespace notifyd::transport::fcm
