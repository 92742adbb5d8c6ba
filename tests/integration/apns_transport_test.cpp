// ApnsTransport against an in-process HTTP/2 TLS APNs fake: certificate and token auth, endpoints, headers,
// and every answer's outcome. Each test fails without the behaviour it names.
#include "transports/apns/apns_transport.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "daemon/model/sid.hpp"
#include "daemon/model/time.hpp"
#include "tests/support/fake_h2_server.hpp"
#include "tests/support/run_coroutine.hpp"
#include "tests/support/test_credentials.hpp"
#include "tests/support/tls_test_certs.hpp"
#include "transports/apns/provider_token.hpp"
#include "transports/jwt.hpp"

namespace notifyd::transport {
namespace {

using Outcome = DeliveryResult::Outcome;
using test::FakeH2Server;
using test::FakeRequest;
using test::FakeResponse;

const std::string kToken(64, 'b');

std::shared_ptr<CredentialRecord> certificate_credential(bool sandbox = false) {
  auto pair = test::make_client_cert("com.example.app");
  auto c = std::make_shared<CredentialRecord>();
  c->sid = make_sid("CR");
  c->type = "apn";
  c->sandbox = sandbox;
  c->certificate = pair.certificate_pem;
  c->private_key = pair.private_key_pem;
  c->apn_topic = "com.example.app";
  c->date_updated = 1;
  return c;
}

Delivery delivery_for(std::shared_ptr<const CredentialRecord> credential,
                      std::string body = R"({"aps":{"alert":"hi"}})") {
  Delivery d;
  d.notification_sid = make_sid("NT");
  d.binding_sid = make_sid("BS");
  d.binding_type = "apn";
  d.address = kToken;
  d.credential = std::move(credential);
  d.body = std::move(body);
  d.apns_priority = 10;
  d.apns_expiration = now_seconds() + 3600;
  d.apns_id = "9f2a5c1e-0000-4000-8000-000000000001";
  return d;
}

class ApnsTransportTest : public ::testing::Test {
 protected:
  ApnsTransportTest()
      : ca_file_(test::write_ca_file()),
        production_(),
        sandbox_(),
        io_(2),
        transport_(io_.executor(), ApnsOptions{production_.url(), sandbox_.url(), ca_file_.string(), 4,
                                               std::chrono::milliseconds(5000)}) {}

  DeliveryResult deliver(Delivery d) { return io_.run(transport_.deliver(std::move(d))); }

  test::TempFile ca_file_;
  FakeH2Server production_;
  FakeH2Server sandbox_;
  test::IoThreads io_;
  ApnsTransport transport_;
};

TEST_F(ApnsTransportTest, CertificateAuthPresentsTheClientCertificateAndSendsEveryHeader) {
  auto result = deliver(delivery_for(certificate_credential()));
  EXPECT_EQ(result.outcome, Outcome::delivered) << result.reason;
  auto req = production_.last_request();
  ASSERT_TRUE(req);
  EXPECT_EQ(req->method, "POST");
  EXPECT_EQ(req->path, "/3/device/" + kToken);
  EXPECT_TRUE(req->client_cert_presented);
  EXPECT_EQ(req->client_uid, "com.example.app");
  EXPECT_EQ(req->header("apns-topic"), "com.example.app");
  EXPECT_EQ(req->header("apns-push-type"), "alert");
  EXPECT_EQ(req->header("apns-priority"), "10");
  EXPECT_EQ(req->header("apns-id"), "9f2a5c1e-0000-4000-8000-000000000001");
  EXPECT_FALSE(req->header("apns-expiration").empty());
  EXPECT_FALSE(req->has_header("authorization"));
  EXPECT_EQ(req->body, R"({"aps":{"alert":"hi"}})");
  EXPECT_EQ(sandbox_.request_count(), 0u);
}

TEST_F(ApnsTransportTest, SandboxCredentialsGoToTheSandboxEndpoint) {
  auto result = deliver(delivery_for(certificate_credential(/*sandbox=*/true)));
  EXPECT_EQ(result.outcome, Outcome::delivered) << result.reason;
  EXPECT_EQ(sandbox_.request_count(), 1u);
  EXPECT_EQ(production_.request_count(), 0u);
}

TEST_F(ApnsTransportTest, TokenAuthSendsOneCachedEs256TokenWithKidAndIss) {
  auto credential = test::make_apn_token_credential();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(deliver(delivery_for(credential)).outcome, Outcome::delivered);
  auto requests = production_.requests();
  ASSERT_EQ(requests.size(), 5u);
  std::string auth = requests[0].header("authorization");
  ASSERT_EQ(auth.rfind("bearer ", 0), 0u);
  for (const auto& r : requests) EXPECT_EQ(r.header("authorization"), auth);  // cached, not re-minted
  EXPECT_FALSE(requests[0].client_cert_presented);
  EXPECT_EQ(requests[0].header("apns-topic"), "com.example.token");
  std::string jwt = auth.substr(7);
  std::string header_b64 = jwt.substr(0, jwt.find('.'));
  EXPECT_EQ(header_b64, base64url(R"({"alg":"ES256","kid":"KEYID12345"})"));
}

TEST_F(ApnsTransportTest, RejectedProviderTokenIsRetriedOnce) {
  std::atomic<int> calls{0};
  production_.set_handler([&](const FakeRequest&) {
    if (calls++ == 0) return FakeResponse::json(403, R"({"reason":"ExpiredProviderToken"})");
    return FakeResponse::json(200, "");
  });
  auto result = deliver(delivery_for(test::make_apn_token_credential()));
  EXPECT_EQ(result.outcome, Outcome::delivered) << result.reason;
  EXPECT_EQ(production_.request_count(), 2u);
}

TEST_F(ApnsTransportTest, ProviderTokenRefusedTwiceRejectsTheCredential) {
  production_.set_handler(
      [](const FakeRequest&) { return FakeResponse::json(403, R"({"reason":"InvalidProviderToken"})"); });
  auto result = deliver(delivery_for(test::make_apn_token_credential()));
  EXPECT_EQ(result.outcome, Outcome::credential_rejected);
  EXPECT_EQ(result.reason, "InvalidProviderToken");
  EXPECT_EQ(production_.request_count(), 2u);
}

TEST_F(ApnsTransportTest, UnregisteredAndBadTokensAreInvalidAddresses) {
  production_.set_handler([](const FakeRequest&) {
    return FakeResponse::json(410, R"({"reason":"Unregistered","timestamp":1700000000000})");
  });
  auto gone = deliver(delivery_for(certificate_credential()));
  EXPECT_EQ(gone.outcome, Outcome::invalid_address);
  EXPECT_EQ(gone.provider_status, 410);
  ASSERT_TRUE(gone.invalid_since);
  EXPECT_EQ(*gone.invalid_since, 1700000000000);
  for (auto reason : {"BadDeviceToken", "DeviceTokenNotForTopic"}) {
    production_.set_handler([reason](const FakeRequest&) {
      return FakeResponse::json(400, std::string(R"({"reason":")") + reason + R"("})");
    });
    EXPECT_EQ(deliver(delivery_for(certificate_credential())).outcome, Outcome::invalid_address) << reason;
  }
}

TEST_F(ApnsTransportTest, ThrottlingAndServerErrorsAreRetriedLater) {
  production_.set_handler([](const FakeRequest&) {
    return FakeResponse::json(429, R"({"reason":"TooManyRequests"})", {{"retry-after", "12"}});
  });
  auto throttled = deliver(delivery_for(certificate_credential()));
  EXPECT_EQ(throttled.outcome, Outcome::retry_later);
  ASSERT_TRUE(throttled.retry_after);
  EXPECT_EQ(throttled.retry_after->count(), 12);
  for (int status : {500, 503}) {
    production_.set_handler(
        [status](const FakeRequest&) { return FakeResponse::json(status, R"({"reason":"x"})"); });
    EXPECT_EQ(deliver(delivery_for(certificate_credential())).outcome, Outcome::retry_later) << status;
  }
}

TEST_F(ApnsTransportTest, OtherClientErrorsRejectThePayloadWithApplesReason) {
  production_.set_handler(
      [](const FakeRequest&) { return FakeResponse::json(400, R"({"reason":"BadExpirationDate"})"); });
  auto result = deliver(delivery_for(certificate_credential()));
  EXPECT_EQ(result.outcome, Outcome::payload_rejected);
  EXPECT_EQ(result.reason, "BadExpirationDate");
}

TEST_F(ApnsTransportTest, OversizedPayloadIsRejectedWithoutSending) {
  std::string body = R"({"aps":{"alert":")" + std::string(4100, 'x') + R"("}})";
  auto result = deliver(delivery_for(certificate_credential(), body));
  EXPECT_EQ(result.outcome, Outcome::payload_rejected);
  EXPECT_EQ(production_.request_count(), 0u);
}

TEST_F(ApnsTransportTest, ARetryOfOneDeliveryCarriesTheSameApnsId) {
  auto d = delivery_for(certificate_credential());
  production_.set_handler(
      [](const FakeRequest&) { return FakeResponse::json(503, R"({"reason":"ServiceUnavailable"})"); });
  EXPECT_EQ(deliver(d).outcome, Outcome::retry_later);
  production_.set_handler([](const FakeRequest&) { return FakeResponse::json(200, ""); });
  EXPECT_EQ(deliver(d).outcome, Outcome::delivered);
  auto requests = production_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].header("apns-id"), requests[1].header("apns-id"));
}

TEST_F(ApnsTransportTest, ConnectionLossIsRetryLater) {
  production_.close_connection_after(1);
  auto result = deliver(delivery_for(certificate_credential()));
  EXPECT_EQ(result.outcome, Outcome::retry_later);
}

// prepare() opens the credential's pool and a connection to its endpoint before any delivery; the first
// delivery then goes out on it. A credential of another type opens nothing.
TEST_F(ApnsTransportTest, PrepareOpensTheCredentialsConnectionAheadOfItsFirstDelivery) {
  auto credential = certificate_credential();
  transport_.prepare(*credential);
  EXPECT_TRUE(production_.wait_for_connections(1, std::chrono::seconds(5)));
  EXPECT_EQ(transport_.pool_count(), 1u);
  EXPECT_EQ(production_.request_count(), 0u);
  transport_.prepare(*credential);  // ready (or opening): nothing more
  auto result = deliver(delivery_for(credential));
  EXPECT_EQ(result.outcome, Outcome::delivered) << result.reason;
  EXPECT_EQ(production_.connections_accepted(), 1u);
  EXPECT_EQ(transport_.pool_count(), 1u);
  CredentialRecord fcm = *credential;
  fcm.type = "fcm";
  transport_.prepare(fcm);
  EXPECT_EQ(transport_.pool_count(), 1u);
  EXPECT_EQ(sandbox_.connections_accepted(), 0u);
}

TEST_F(ApnsTransportTest, ManyDeliveriesShareFewConnections) {
  auto credential = certificate_credential();
  std::vector<std::future<DeliveryResult>> results;
  for (int i = 0; i < 200; ++i) {
    results.push_back(boost::asio::co_spawn(io_.io(), transport_.deliver(delivery_for(credential)),
                                            boost::asio::use_future));
  }
  for (auto& f : results) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    EXPECT_EQ(f.get().outcome, Outcome::delivered);
  }
  EXPECT_LE(production_.connections_accepted(), 4u);
  EXPECT_EQ(transport_.pool_count(), 1u);
}

// Notifications interleaved on one credential (the transport keeps the shared headers of the last four it
// built, and reuses them while they fit): each request carries its own notification's headers. Two that
// differ in one field only alternate, for each field; then six in turn, more than the transport keeps, so
// that some come back after theirs were dropped.
TEST_F(ApnsTransportTest, InterleavedNotificationsEachSendTheirOwnHeaders) {
  auto credential = certificate_credential();
  struct Fields {
    int priority = 10;
    std::int64_t expiration = 1900000000;
    std::string push_type = "alert";
    std::optional<std::string> collapse_id;
  };
  std::vector<std::pair<Fields, Fields>> pairs(4);
  pairs[0].second.priority = 5;
  pairs[1].second.expiration = 1900000001;
  pairs[2].second.push_type = "background";
  pairs[3].second.collapse_id = "c1";
  std::vector<Fields> sent;
  for (const auto& [a, b] : pairs) {
    for (int i = 0; i < 3; ++i) {
      sent.push_back(a);
      sent.push_back(b);
    }
  }
  for (int i = 0; i < 18; ++i) {
    Fields f;
    f.expiration = 1900000100 + i % 6;
    sent.push_back(f);
  }
  for (std::size_t i = 0; i < sent.size(); ++i) {
    Delivery d = delivery_for(credential);
    d.apns_priority = sent[i].priority;
    d.apns_expiration = sent[i].expiration;
    d.apns_push_type = sent[i].push_type;
    d.apns_collapse_id = sent[i].collapse_id;
    d.apns_id = std::to_string(i);
    ASSERT_EQ(deliver(std::move(d)).outcome, Outcome::delivered) << i;
  }
  auto requests = production_.requests();
  ASSERT_EQ(requests.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const auto& r = requests[i];
    ASSERT_EQ(r.header("apns-id"), std::to_string(i));  // one at a time: in order
    EXPECT_EQ(r.header("apns-priority"), std::to_string(sent[i].priority)) << i;
    EXPECT_EQ(r.header("apns-expiration"), std::to_string(sent[i].expiration)) << i;
    EXPECT_EQ(r.header("apns-push-type"), sent[i].push_type) << i;
    EXPECT_EQ(r.has_header("apns-collapse-id"), sent[i].collapse_id.has_value()) << i;
    EXPECT_EQ(r.header("apns-collapse-id"), sent[i].collapse_id.value_or("")) << i;
    EXPECT_EQ(r.header("apns-topic"), "com.example.app");
  }
}

// The request of a delivery is built once and handed back by the pool: the retry after a refused provider
// token is that very request (path, apns-id, payload) with only the authorization header renewed.
TEST(ApnsTransportTokenRefresh, TheRetryAfterARefusedTokenIsTheSameRequestWithTheFreshToken) {
  auto ca_file = test::write_ca_file();
  FakeH2Server fake;
  test::IoThreads io(2);
  std::atomic<std::int64_t> now{now_seconds()};
  ApnsTransport transport(
      io.executor(),
      ApnsOptions{fake.url(), fake.url(), ca_file.string(), 4, std::chrono::milliseconds(5000)},
      [&now] { return now.load(); });
  std::atomic<int> calls{0};
  fake.set_handler([&](const FakeRequest&) {
    if (calls++ > 0) return FakeResponse::json(200, "");
    now += ProviderTokenCache::kMinAgeSeconds + 60;  // old enough to be replaced once refused
    return FakeResponse::json(403, R"({"reason":"ExpiredProviderToken"})");
  });
  auto credential = test::make_apn_token_credential();
  Delivery d = delivery_for(credential);
  d.apns_collapse_id = "collapse-1";
  auto result = io.run(transport.deliver(d));
  EXPECT_EQ(result.outcome, Outcome::delivered) << result.reason;
  EXPECT_EQ(transport.token_mints(), 2u);
  auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 2u);
  const auto& first = requests[0];
  const auto& retry = requests[1];
  ASSERT_EQ(first.header("authorization").rfind("bearer ", 0), 0u);
  ASSERT_EQ(retry.header("authorization").rfind("bearer ", 0), 0u);
  EXPECT_NE(first.header("authorization"), retry.header("authorization"));
  EXPECT_EQ(first.path, "/3/device/" + kToken);
  EXPECT_EQ(retry.path, first.path);
  EXPECT_EQ(retry.body, d.body);
  for (auto name : {"apns-id", "apns-topic", "apns-push-type", "apns-priority", "apns-expiration",
                    "apns-collapse-id", "content-type"}) {
    EXPECT_FALSE(first.header(name).empty()) << name;
    EXPECT_EQ(retry.header(name), first.header(name)) << name;
  }
  // The next delivery carries the fresh token too (the credential's shared headers were rebuilt once).
  EXPECT_EQ(io.run(transport.deliver(delivery_for(credential))).outcome, Outcome::delivered);
  ASSERT_EQ(fake.requests().size(), 3u);
  EXPECT_EQ(fake.requests()[2].header("authorization"), retry.header("authorization"));
  EXPECT_EQ(transport.token_mints(), 2u);
}

// Deliveries of one credential share its constant headers; two credentials with different topics do not mix
// them, and an updated credential (new date_updated) gets its own pool.
TEST_F(ApnsTransportTest, EachCredentialSendsItsOwnTopicAndAnUpdateGetsAFreshPool) {
  auto a = certificate_credential();
  auto b = test::make_apn_token_credential();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(deliver(delivery_for(a)).outcome, Outcome::delivered);
    EXPECT_EQ(deliver(delivery_for(b)).outcome, Outcome::delivered);
  }
  auto requests = production_.requests();
  ASSERT_EQ(requests.size(), 6u);
  for (std::size_t i = 0; i < requests.size(); i += 2) {
    EXPECT_EQ(requests[i].header("apns-topic"), "com.example.app");
    EXPECT_FALSE(requests[i].has_header("authorization"));
    EXPECT_EQ(requests[i + 1].header("apns-topic"), "com.example.token");
    EXPECT_TRUE(requests[i + 1].has_header("authorization"));
    EXPECT_EQ(requests[i].header("content-type"), "application/json");
  }
  EXPECT_EQ(transport_.pool_count(), 2u);
  auto updated = std::make_shared<CredentialRecord>(*a);
  updated->date_updated = 2;
  updated->apn_topic = "com.example.app";
  EXPECT_EQ(deliver(delivery_for(updated)).outcome, Outcome::delivered);
  EXPECT_EQ(transport_.pool_count(), 3u);
}

TEST(ApnsCertificateExpiry, DaysLeftAreReportedAndExpiredIsNegative) {
  CredentialRecord valid;
  valid.sid = "CRvalid";
  valid.certificate = test::make_client_cert("com.example.app").certificate_pem;
  auto days = log_certificate_expiry(valid);
  ASSERT_TRUE(days);
  EXPECT_GE(*days, 300);
  CredentialRecord expired;
  expired.sid = "CRexpired";
  test::ClientCertOptions o;
  o.topic_uid = "com.example.app";
  o.expired = true;
  expired.certificate = test::make_client_cert(test::shared_test_pki().ca, o).certificate_pem;
  auto left = log_certificate_expiry(expired);
  ASSERT_TRUE(left);
  EXPECT_LT(*left, 0);
}

}  // namespace
}  // namespace notifyd::transport
