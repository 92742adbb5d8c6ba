// TransportRegistry::reconfigure (SIGHUP) against real peers on 127.0.0.1: APNs and FCM fakes over HTTP/2 +
// TLS (two PKIs, so a new CA file is needed to reach the second peer), an OAuth2 token endpoint and SMS
// gateways over HTTP/1.1. Shows: new sends reach the new endpoint; a request in flight on the old one at the
// moment of the reload is still delivered and the old connection closes afterwards; an unchanged endpoint
// keeps its connection; an unusable configuration (missing or bad CA file, bad URL) is refused as a whole and
// the running endpoints keep working.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <fstream>
#include <future>
#include <thread>

#include "daemon/model/sid.hpp"
#include "daemon/model/time.hpp"
#include "tests/support/fake_h2_server.hpp"
#include "tests/support/fake_http_server.hpp"
#include "tests/support/run_coroutine.hpp"
#include "tests/support/test_credentials.hpp"
#include "tests/support/tls_test_certs.hpp"
#include "transports/registry/registry.hpp"

namespace notifyd::transport {
namespace {

using namespace std::chrono_literals;
using Outcome = DeliveryResult::Outcome;
using test::FakeH2Options;
using test::FakeH2Server;
using test::FakeHttpServer;

constexpr const char* kSmsAccount = "AC0123456789abcdef0123456789abcdef";
constexpr const char* kSmsToken = "0123456789abcdef0123456789abcdef";
constexpr auto kInFlightDelay = 1500ms;  // long enough to reload while the answer is pending

// A second PKI: its peers are trusted only through its own CA file.
const test::TestPki& other_pki() {
  static const test::TestPki pki = test::make_test_pki();
  return pki;
}

FakeH2Options other_pki_h2() {
  FakeH2Options o;
  o.certificate_pem = other_pki().server.certificate_pem;
  o.private_key_pem = other_pki().server.private_key_pem;
  return o;
}

std::shared_ptr<CredentialRecord> apn_certificate_credential() {
  auto pair = test::make_client_cert("com.example.app");
  auto c = std::make_shared<CredentialRecord>();
  c->sid = make_sid("CR");
  c->type = "apn";
  c->certificate = pair.certificate_pem;
  c->private_key = pair.private_key_pem;
  c->apn_topic = "com.example.app";
  c->date_updated = 1;
  return c;
}

Delivery apn_delivery(std::shared_ptr<const CredentialRecord> credential) {
  Delivery d;
  d.notification_sid = make_sid("NT");
  d.binding_sid = make_sid("BS");
  d.binding_type = "apn";
  d.address = std::string(64, 'b');
  d.credential = std::move(credential);
  d.body = R"({"aps":{"alert":"hi"}})";
  d.apns_expiration = now_seconds() + 3600;
  d.apns_id = "9f2a5c1e-0000-4000-8000-000000000001";
  return d;
}

Delivery fcm_delivery(std::shared_ptr<const CredentialRecord> credential) {
  Delivery d;
  d.notification_sid = make_sid("NT");
  d.binding_sid = make_sid("BS");
  d.binding_type = "fcm";
  d.address = "fcm-registration-token-0123456789";
  d.credential = std::move(credential);
  d.body = R"({"data":{"twi_body":"hello"}})";
  return d;
}

Delivery sms_delivery() {
  Delivery d;
  d.notification_sid = make_sid("NT");
  d.binding_sid = make_sid("BS");
  d.binding_type = "sms";
  d.address = "+14155550100";
  d.sms_body = "Hello";
  d.messaging_service_sid = "MG0123456789abcdef0123456789abcdef";
  return d;
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

class RegistryReloadTest : public ::testing::Test {
 protected:
  RegistryReloadTest()
      : ca_a_(test::write_ca_file()),
        ca_b_(test::write_ca_file(other_pki())),
        apns_b_(other_pki_h2()),
        io_(2) {
    config_.apns.production_url = apns_a_.url();
    config_.apns.sandbox_url = apns_a_.url();
    config_.apns.ca_file = ca_a_.string();
    config_.fcm.url = fcm_a_.url();
    config_.fcm.ca_file = ca_a_.string();
    sms_a_.set_handler(FakeHttpServer::twilio_messages(kSmsAccount, kSmsToken));
    sms_b_.set_handler(FakeHttpServer::twilio_messages(kSmsAccount, kSmsToken));
    oauth_.set_handler(FakeHttpServer::oauth_token("ya29.reload"));
    config_.sms.url = sms_a_.url();
    config_.sms.account_sid = kSmsAccount;
    config_.sms.auth_token = kSmsToken;
    registry_ = std::make_unique<TransportRegistry>(io_.executor(), config_);
  }

  DeliveryResult deliver(Delivery d) {
    return io_.run(registry_->for_binding_type(d.binding_type).deliver(std::move(d)));
  }
  // Starts a delivery and returns at once: for a request that is in flight while the test reloads.
  std::future<DeliveryResult> start(Delivery d) {
    auto& transport = registry_->for_binding_type(d.binding_type);
    return boost::asio::co_spawn(io_.io(), transport.deliver(std::move(d)), boost::asio::use_future);
  }

  std::shared_ptr<CredentialRecord> fcm_credential() {
    auto c = std::make_shared<CredentialRecord>();
    c->sid = make_sid("CR");
    c->type = "fcm";
    c->secret = test::make_service_account_json("notifyd-test", oauth_.url() + "/token");
    c->date_updated = 1;
    return c;
  }

  test::TempFile ca_a_;
  test::TempFile ca_b_;
  FakeH2Server apns_a_;
  FakeH2Server apns_b_;
  FakeH2Server fcm_a_;
  FakeH2Server fcm_b_;
  FakeHttpServer oauth_;
  FakeHttpServer sms_a_;
  FakeHttpServer sms_b_;
  Config config_;
  test::IoThreads io_;
  std::unique_ptr<TransportRegistry> registry_;
};

TEST_F(RegistryReloadTest, ApnsMovesToTheNewEndpointAndCaWhileAPushInFlightOnTheOldOneIsDelivered) {
  auto token = test::make_apn_token_credential();
  auto certificate = apn_certificate_credential();
  ASSERT_EQ(deliver(apn_delivery(token)).outcome, Outcome::delivered);
  ASSERT_EQ(deliver(apn_delivery(certificate)).outcome, Outcome::delivered);
  ASSERT_EQ(apns_a_.request_count(), 2u);

  apns_a_.set_response_delay(kInFlightDelay);
  auto in_flight = start(apn_delivery(token));
  ASSERT_TRUE(apns_a_.wait_for_requests(3));  // received by A, its answer still pending

  Config next = config_;
  next.apns.production_url = apns_b_.url();
  next.apns.sandbox_url = apns_b_.url();
  next.apns.ca_file = ca_b_.string();  // B's certificate verifies only with B's CA
  ASSERT_EQ(registry_->reconfigure(next), std::nullopt);

  auto after_token = deliver(apn_delivery(token));
  auto after_certificate = deliver(apn_delivery(certificate));
  EXPECT_EQ(after_token.outcome, Outcome::delivered) << after_token.reason;
  EXPECT_EQ(after_certificate.outcome, Outcome::delivered) << after_certificate.reason;
  EXPECT_EQ(apns_b_.request_count(), 2u);
  auto last = apns_b_.last_request();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->client_uid, "com.example.app");  // the certificate pool was rebuilt for B too

  ASSERT_EQ(in_flight.wait_for(10s), std::future_status::ready);
  auto completed = in_flight.get();
  EXPECT_EQ(completed.outcome, Outcome::delivered) << completed.reason;
  EXPECT_EQ(apns_a_.request_count(), 3u);             // nothing new went to A
  EXPECT_TRUE(apns_a_.wait_for_open_connections(0));  // the retired pool closed its connections
}

TEST_F(RegistryReloadTest, ApnsSendsQueuedOnTheOldPoolGoToTheNewEndpointInsteadOfFailing) {
  // One stream per connection and the default 4 connections: the fifth push waits in A's pool for a slot.
  apns_a_.set_max_concurrent_streams(1);
  apns_a_.set_response_delay(kInFlightDelay);
  auto token = test::make_apn_token_credential();
  std::vector<std::future<DeliveryResult>> pushes;
  for (int i = 0; i < 4; ++i) pushes.push_back(start(apn_delivery(token)));
  ASSERT_TRUE(apns_a_.wait_for_requests(4));
  pushes.push_back(start(apn_delivery(token)));
  ASSERT_TRUE(apns_a_.wait_until([&] { return apns_a_.connections_accepted() == 4; }, 5s, "4 connections"));

  Config next = config_;
  next.apns.production_url = apns_b_.url();
  next.apns.ca_file = ca_b_.string();
  ASSERT_EQ(registry_->reconfigure(next), std::nullopt);

  for (auto& push : pushes) {
    ASSERT_EQ(push.wait_for(10s), std::future_status::ready);
    auto result = push.get();
    EXPECT_EQ(result.outcome, Outcome::delivered) << result.reason;
  }
  EXPECT_EQ(apns_a_.request_count(), 4u);
  EXPECT_EQ(apns_b_.request_count(), 1u);
}

TEST_F(RegistryReloadTest, AnUnchangedConfigurationKeepsTheOpenConnections) {
  auto token = test::make_apn_token_credential();
  ASSERT_EQ(deliver(apn_delivery(token)).outcome, Outcome::delivered);
  ASSERT_EQ(deliver(fcm_delivery(fcm_credential())).outcome, Outcome::delivered);
  ASSERT_EQ(deliver(sms_delivery()).outcome, Outcome::delivered);

  Config same = config_;
  same.accounts.push_back({});  // what else a reload changes is no concern of the transports
  ASSERT_EQ(registry_->reconfigure(same), std::nullopt);

  ASSERT_EQ(deliver(apn_delivery(token)).outcome, Outcome::delivered);
  ASSERT_EQ(deliver(sms_delivery()).outcome, Outcome::delivered);
  EXPECT_EQ(apns_a_.connections_accepted(), 1u);
  EXPECT_EQ(apns_a_.connections_open(), 1u);
  auto apns = apns_a_.requests();
  ASSERT_EQ(apns.size(), 2u);
  EXPECT_EQ(apns[1].connection_id, apns[0].connection_id);
  EXPECT_EQ(fcm_a_.connections_open(), 1u);
  EXPECT_EQ(sms_a_.connections_accepted(), 1u);
  auto sms = sms_a_.requests();
  ASSERT_EQ(sms.size(), 2u);
  EXPECT_EQ(sms[1].request_on_connection, 2u);  // kept alive across the reload
}

TEST_F(RegistryReloadTest, ACaFileRewrittenInPlaceTakesEffect) {
  // Same name and URL, new content: a reload must not keep trusting what the file used to say.
  test::TempFile ca(other_pki().ca.certificate_pem);
  Config config = config_;
  config.apns.production_url = apns_b_.url();
  config.apns.ca_file = ca.string();
  ASSERT_EQ(registry_->reconfigure(config), std::nullopt);
  auto token = test::make_apn_token_credential();
  ASSERT_EQ(deliver(apn_delivery(token)).outcome, Outcome::delivered);

  write_file(ca.string(), test::shared_test_pki().ca.certificate_pem);  // B's CA is gone from the file
  ASSERT_EQ(registry_->reconfigure(config), std::nullopt);
  auto refused = deliver(apn_delivery(token));
  EXPECT_EQ(refused.outcome, Outcome::retry_later) << refused.reason;
  EXPECT_EQ(apns_b_.request_count(), 1u);
  // The server learns of the failed handshake when our side has already given up: wait for it.
  EXPECT_TRUE(
      apns_b_.wait_until([&] { return apns_b_.handshakes_failed() >= 1u; }, 5s, "a failed handshake"));
  EXPECT_EQ(apns_b_.connections_accepted(), 2u);  // a new connection, verified against the new content

  config.apns.production_url = apns_a_.url();  // and A, which the new content does trust
  ASSERT_EQ(registry_->reconfigure(config), std::nullopt);
  EXPECT_EQ(deliver(apn_delivery(token)).outcome, Outcome::delivered);
  EXPECT_EQ(apns_a_.request_count(), 1u);
}

TEST_F(RegistryReloadTest, AnUnusableConfigurationIsRefusedAndTheRunningEndpointsKeepWorking) {
  auto token = test::make_apn_token_credential();
  ASSERT_EQ(deliver(apn_delivery(token)).outcome, Outcome::delivered);
  test::TempFile garbage("this is not a certificate\n");

  struct Case {
    const char* name;
    std::function<void(Config&)> change;
    std::string expected;  // in the problem
  };
  const std::string missing = ca_a_.string() + ".missing";
  const std::vector<Case> cases = {
      {"missing apns ca_file", [&](Config& c) { c.apns.ca_file = missing; }, "[apns] ca_file"},
      {"apns ca_file without a certificate", [&](Config& c) { c.apns.ca_file = garbage.string(); },
       "[apns] ca_file"},
      {"apns url not https", [](Config& c) { c.apns.production_url = "http://127.0.0.1:1"; },
       "[apns] production_url"},
      {"apns sandbox url not a URL", [](Config& c) { c.apns.sandbox_url = "not a url"; },
       "[apns] sandbox_url"},
      {"fcm url not https", [](Config& c) { c.fcm.url = "http://127.0.0.1:1"; }, "[fcm] url"},
      {"missing fcm ca_file", [&](Config& c) { c.fcm.ca_file = missing; }, "[fcm] ca_file"},
      {"sms url not http(s)", [](Config& c) { c.sms.url = "ftp://127.0.0.1:1"; }, "[sms] url"},
  };
  for (const auto& tc : cases) {
    Config next = config_;
    // Every case also moves APNs, SMS and FCM to B: all or nothing, so none of that may happen.
    next.apns.production_url = apns_b_.url();
    next.fcm.url = fcm_b_.url();
    next.sms.url = sms_b_.url();
    tc.change(next);
    auto problem = registry_->reconfigure(next);
    ASSERT_TRUE(problem) << tc.name;
    EXPECT_NE(problem->find(tc.expected), std::string::npos) << tc.name << ": " << *problem;
  }
  Config missing_ca = config_;
  missing_ca.apns.ca_file = missing;
  EXPECT_NE(registry_->reconfigure(missing_ca).value_or("").find(missing), std::string::npos);  // names it

  ASSERT_EQ(deliver(apn_delivery(token)).outcome, Outcome::delivered);
  ASSERT_EQ(deliver(fcm_delivery(fcm_credential())).outcome, Outcome::delivered);
  ASSERT_EQ(deliver(sms_delivery()).outcome, Outcome::delivered);
  EXPECT_EQ(apns_a_.request_count(), 2u);
  EXPECT_EQ(apns_a_.connections_accepted(), 1u);  // the same connection as before the refusals
  EXPECT_EQ(apns_b_.connections_accepted(), 0u);
  EXPECT_EQ(fcm_a_.request_count(), 1u);
  EXPECT_EQ(fcm_b_.connections_accepted(), 0u);
  EXPECT_EQ(sms_a_.request_count(), 1u);
  EXPECT_EQ(sms_b_.connections_accepted(), 0u);
}

TEST_F(RegistryReloadTest, TheRegistryRefusesAnUnusableConfigurationAtStartupToo) {
  Config bad = config_;
  bad.apns.ca_file = ca_a_.string() + ".missing";
  EXPECT_THROW(TransportRegistry(io_.executor(), bad), std::invalid_argument);
}

TEST_F(RegistryReloadTest, FcmMovesToTheNewUrlKeepingItsAccessTokenAndFinishesTheSendInFlight) {
  auto credential = fcm_credential();
  ASSERT_EQ(deliver(fcm_delivery(credential)).outcome, Outcome::delivered);
  fcm_a_.set_response_delay(kInFlightDelay);
  auto in_flight = start(fcm_delivery(credential));
  ASSERT_TRUE(fcm_a_.wait_for_requests(2));

  Config next = config_;
  next.fcm.url = fcm_b_.url();
  ASSERT_EQ(registry_->reconfigure(next), std::nullopt);
  auto after = deliver(fcm_delivery(credential));
  EXPECT_EQ(after.outcome, Outcome::delivered) << after.reason;
  EXPECT_EQ(fcm_b_.request_count(), 1u);
  auto last = fcm_b_.last_request();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->header("authorization"), "Bearer ya29.reload");
  EXPECT_EQ(oauth_.request_count(), 1u);  // only the URL moved: the access token was kept

  ASSERT_EQ(in_flight.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(in_flight.get().outcome, Outcome::delivered);
  EXPECT_EQ(fcm_a_.request_count(), 2u);
  EXPECT_TRUE(fcm_a_.wait_for_open_connections(0));
  // A's retired pool is gone by now; what it counted stays counted (metrics counters never go back).
  std::this_thread::sleep_for(300ms);
  auto stats = registry_->stats();
  auto fcm = std::find_if(stats.begin(), stats.end(), [](const auto& t) { return t.transport == "fcm"; });
  ASSERT_NE(fcm, stats.end());
  EXPECT_EQ(fcm->pool.connections_opened, 2u);  // A's and B's
  EXPECT_EQ(fcm->token_refreshes, 1u);

  // Unchanged now: B's connection stays.
  ASSERT_EQ(registry_->reconfigure(next), std::nullopt);
  ASSERT_EQ(deliver(fcm_delivery(credential)).outcome, Outcome::delivered);
  EXPECT_EQ(fcm_b_.connections_accepted(), 1u);
}

TEST_F(RegistryReloadTest, FcmWithANewCaFileReachesAPeerOnlyThatCaVerifies) {
  FakeH2Server fcm_other(other_pki_h2());
  auto credential = fcm_credential();
  ASSERT_EQ(deliver(fcm_delivery(credential)).outcome, Outcome::delivered);
  Config next = config_;
  next.fcm.url = fcm_other.url();
  next.fcm.ca_file = ca_b_.string();
  ASSERT_EQ(registry_->reconfigure(next), std::nullopt);
  auto after = deliver(fcm_delivery(credential));
  EXPECT_EQ(after.outcome, Outcome::delivered) << after.reason;
  EXPECT_EQ(fcm_other.request_count(), 1u);
  EXPECT_TRUE(fcm_a_.wait_for_open_connections(0));
}

TEST_F(RegistryReloadTest, SmsMovesToTheNewGatewayWhileTheRequestInFlightIsDelivered) {
  ASSERT_EQ(deliver(sms_delivery()).outcome, Outcome::delivered);
  sms_a_.set_response_delay(kInFlightDelay);
  auto in_flight = start(sms_delivery());
  ASSERT_TRUE(sms_a_.wait_for_requests(2));

  Config next = config_;
  next.sms.url = sms_b_.url();
  ASSERT_EQ(registry_->reconfigure(next), std::nullopt);
  auto after = deliver(sms_delivery());
  EXPECT_EQ(after.outcome, Outcome::delivered) << after.reason;
  EXPECT_EQ(sms_b_.request_count(), 1u);

  ASSERT_EQ(in_flight.wait_for(10s), std::future_status::ready);
  auto completed = in_flight.get();
  EXPECT_EQ(completed.outcome, Outcome::delivered) << completed.reason;
  EXPECT_EQ(sms_a_.request_count(), 2u);
  EXPECT_TRUE(
      sms_a_.wait_until([&] { return sms_a_.connections_open() == 0; }, 10s, "A's connections closed"));
}

TEST_F(RegistryReloadTest, NewSmsCredentialsApplyAtOnceOnTheSameConnection) {
  ASSERT_EQ(deliver(sms_delivery()).outcome, Outcome::delivered);
  const std::string account = "ACfedcba9876543210fedcba9876543210";
  const std::string token = "fedcba9876543210fedcba9876543210";
  sms_a_.set_handler(FakeHttpServer::twilio_messages(account, token));
  Config next = config_;
  next.sms.account_sid = account;
  next.sms.auth_token = token;
  ASSERT_EQ(registry_->reconfigure(next), std::nullopt);

  auto after = deliver(sms_delivery());
  EXPECT_EQ(after.outcome, Outcome::delivered) << after.reason;
  auto last = sms_a_.last_request();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->path, "/2010-04-01/Accounts/" + account + "/Messages.json");
  ASSERT_TRUE(last->basic_auth());
  EXPECT_EQ(last->basic_auth()->first, account);
  EXPECT_EQ(sms_a_.connections_accepted(), 1u);  // the gateway did not move: its connection stays
  EXPECT_EQ(last->request_on_connection, 2u);
}

}  // namespace
}  // namespace notifyd::transport
