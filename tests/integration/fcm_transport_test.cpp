// FcmTransport against an in-process HTTP/2 TLS FCM fake and an OAuth2 token endpoint fake: the v1 request,
// access tokens (cached, one refresh in flight), and every answer's outcome.
#include "transports/fcm/fcm_transport.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "daemon/model/sid.hpp"
#include "tests/support/fake_h2_server.hpp"
#include "tests/support/fake_http_server.hpp"
#include "tests/support/run_coroutine.hpp"
#include "tests/support/test_credentials.hpp"
#include "tests/support/tls_test_certs.hpp"

namespace notifyd::transport {
namespace {

using Outcome = DeliveryResult::Outcome;
using test::FakeH2Server;
using test::FakeHttpServer;
using test::FakeRequest;
using test::FakeResponse;

std::string google_error(int code, const std::string& status, const std::string& error_code,
                         const std::string& message = "m") {
  return R"({"error":{"code":)" + std::to_string(code) + R"(,"message":")" + message + R"(","status":")" +
         status +
         R"(","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":")" +
         error_code + R"("}]}})";
}

class FcmTransportTest : public ::testing::Test {
 protected:
  FcmTransportTest()
      : ca_file_(test::write_ca_file()),
        io_(2),
        transport_(io_.executor(),
                   FcmOptions{fcm_.url(), ca_file_.string(), 4, std::chrono::milliseconds(5000)}) {
    oauth_.set_handler(FakeHttpServer::oauth_token("ya29.first"));
  }

  std::shared_ptr<CredentialRecord> credential(const std::string& type = "fcm") {
    auto c = std::make_shared<CredentialRecord>();
    c->sid = make_sid("CR");
    c->type = type;
    c->secret = test::make_service_account_json("notifyd-test", oauth_.url() + "/token");
    c->date_updated = 1;
    return c;
  }

  Delivery delivery_for(std::shared_ptr<const CredentialRecord> c) {
    Delivery d;
    d.notification_sid = make_sid("NT");
    d.binding_sid = make_sid("BS");
    d.binding_type = c->type;
    d.address = "fcm-registration-token-0123456789";
    d.credential = std::move(c);
    d.body = R"({"data":{"twi_body":"hello"},"android":{"priority":"high"}})";
    return d;
  }

  DeliveryResult deliver(Delivery d) { return io_.run(transport_.deliver(std::move(d))); }

  test::TempFile ca_file_;
  FakeH2Server fcm_;
  FakeHttpServer oauth_;
  test::IoThreads io_;
  FcmTransport transport_;
};

TEST_F(FcmTransportTest, SendsTheV1MessageWithTheAccessToken) {
  auto result = deliver(delivery_for(credential()));
  EXPECT_EQ(result.outcome, Outcome::delivered) << result.reason;
  auto req = fcm_.last_request();
  ASSERT_TRUE(req);
  EXPECT_EQ(req->path, "/v1/projects/notifyd-test/messages:send");
  EXPECT_EQ(req->header("authorization"), "Bearer ya29.first");
  auto body = boost::json::parse(req->body).as_object();
  EXPECT_EQ(body.at("message").at("token"), "fcm-registration-token-0123456789");
  EXPECT_EQ(body.at("message").at("data").at("twi_body"), "hello");
  auto token_request = oauth_.last_request();
  ASSERT_TRUE(token_request);
  EXPECT_EQ(token_request->path, "/token");
  EXPECT_EQ(token_request->form_value("grant_type"), "urn:ietf:params:oauth:grant-type:jwt-bearer");
  std::string assertion = token_request->form_value("assertion");
  EXPECT_EQ(std::count(assertion.begin(), assertion.end(), '.'), 2);  // a compact JWS
}

TEST_F(FcmTransportTest, GcmCredentialsDeliverThroughFcmV1) {
  EXPECT_EQ(deliver(delivery_for(credential("gcm"))).outcome, Outcome::delivered);
  EXPECT_EQ(fcm_.request_count(), 1u);
}

TEST_F(FcmTransportTest, OneTokenFetchServesManyConcurrentSenders) {
  oauth_.set_response_delay(std::chrono::milliseconds(200));  // senders pile up behind the one refresh
  auto c = credential();
  std::vector<std::future<DeliveryResult>> results;
  for (int i = 0; i < 50; ++i) {
    results.push_back(
        boost::asio::co_spawn(io_.io(), transport_.deliver(delivery_for(c)), boost::asio::use_future));
  }
  for (auto& f : results) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    EXPECT_EQ(f.get().outcome, Outcome::delivered);
  }
  EXPECT_EQ(oauth_.request_count(), 1u);
  EXPECT_EQ(fcm_.request_count(), 50u);
}

TEST_F(FcmTransportTest, UnauthenticatedRefreshesTheTokenAndRetriesOnce) {
  auto c = credential();
  ASSERT_EQ(deliver(delivery_for(c)).outcome, Outcome::delivered);
  oauth_.set_handler(FakeHttpServer::oauth_token("ya29.second"));
  std::atomic<int> calls{0};
  fcm_.set_handler([&](const FakeRequest& r) {
    if (calls++ == 0)
      return FakeResponse::json(401, google_error(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"));
    EXPECT_EQ(r.header("authorization"), "Bearer ya29.second");
    return FakeResponse::json(200, R"({"name":"projects/notifyd-test/messages/1"})");
  });
  EXPECT_EQ(deliver(delivery_for(c)).outcome, Outcome::delivered);
  EXPECT_EQ(oauth_.request_count(), 2u);
}

TEST_F(FcmTransportTest, UnregisteredAndInvalidTokensAreInvalidAddresses) {
  fcm_.set_handler([](const FakeRequest&) {
    return FakeResponse::json(404, google_error(404, "NOT_FOUND", "UNREGISTERED"));
  });
  auto gone = deliver(delivery_for(credential()));
  EXPECT_EQ(gone.outcome, Outcome::invalid_address);
  EXPECT_EQ(gone.reason, "UNREGISTERED");
  fcm_.set_handler([](const FakeRequest&) {
    return FakeResponse::json(400,
                              google_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                                           "The registration token is not a valid FCM registration token"));
  });
  EXPECT_EQ(deliver(delivery_for(credential())).outcome, Outcome::invalid_address);
}

TEST_F(FcmTransportTest, QuotaAndServerErrorsRetryLaterHonouringRetryAfter) {
  fcm_.set_handler([](const FakeRequest&) {
    return FakeResponse::json(429, google_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
                              {{"retry-after", "60"}});
  });
  auto quota = deliver(delivery_for(credential()));
  EXPECT_EQ(quota.outcome, Outcome::retry_later);
  ASSERT_TRUE(quota.retry_after);
  EXPECT_EQ(quota.retry_after->count(), 60);
  for (auto [status, name] : {std::pair{503, "UNAVAILABLE"}, std::pair{500, "INTERNAL"}}) {
    fcm_.set_handler([status = status, name = std::string(name)](const FakeRequest&) {
      return FakeResponse::json(status, google_error(status, name, name));
    });
    EXPECT_EQ(deliver(delivery_for(credential())).outcome, Outcome::retry_later) << status;
  }
}

TEST_F(FcmTransportTest, SenderIdMismatchRejectsTheCredential) {
  fcm_.set_handler([](const FakeRequest&) {
    return FakeResponse::json(403, google_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"));
  });
  auto result = deliver(delivery_for(credential()));
  EXPECT_EQ(result.outcome, Outcome::credential_rejected);
  EXPECT_EQ(result.reason, "SENDER_ID_MISMATCH");
}

TEST_F(FcmTransportTest, RefusedServiceAccountRejectsTheCredentialWithoutSending) {
  oauth_.set_handler([](const test::FakeHttpRequest&) {
    return test::FakeHttpResponse::json(400, R"({"error":"invalid_grant"})");
  });
  auto result = deliver(delivery_for(credential()));
  EXPECT_EQ(result.outcome, Outcome::credential_rejected);
  EXPECT_EQ(fcm_.request_count(), 0u);
}

TEST_F(FcmTransportTest, UnreachableTokenEndpointIsRetryLater) {
  auto c = credential();
  c->secret = test::make_service_account_json("notifyd-test", "http://127.0.0.1:1/token");
  EXPECT_EQ(deliver(delivery_for(c)).outcome, Outcome::retry_later);
}

}  // namespace
}  // namespace notifyd::transport
