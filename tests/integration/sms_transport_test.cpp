// SmsTransport (and the Http1Pool under it) against a real HTTP/1.1 peer on 127.0.0.1: the in-process
// FakeHttpServer playing the Twilio Messages API, plain and TLS. Each coroutine runs on a test-owned
// io_context for a bounded time; the fake's waits are bounded too.
#include "transports/sms/sms_transport.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/fake_http_server.hpp"
#include "tests/support/tls_test_certs.hpp"
#include "transports/http1/client.hpp"
#include "transports/messenger/unsupported_transport.hpp"

namespace notifyd {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using sms::SmsOptions;
using sms::SmsTransport;
using test::FakeHttpOptions;
using test::FakeHttpRequest;
using test::FakeHttpResponse;
using test::FakeHttpServer;
using transport::Delivery;
using transport::DeliveryResult;
using Outcome = DeliveryResult::Outcome;

constexpr const char* kAccountSid = "AC0123456789abcdef0123456789abcdef";
constexpr const char* kAuthToken = "0123456789abcdef0123456789abcdef";
constexpr const char* kMessagingServiceSid = "MG0123456789abcdef0123456789abcdef";
constexpr auto kRunLimit = 20s;  // no test coroutine may run longer than this

Delivery make_delivery(std::string address = "+14155550100") {
  Delivery d;
  d.notification_sid = "NT0123456789abcdef0123456789abcdef";
  d.binding_sid = "BS0123456789abcdef0123456789abcdef";
  d.binding_type = "sms";
  d.address = std::move(address);
  d.sms_body = "Hello";
  d.messaging_service_sid = kMessagingServiceSid;
  return d;
}

std::string message_json() { return R"({"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"})"; }

FakeHttpResponse twilio_error(unsigned status, int code, std::string message,
                              test::FakeHttpFields headers = {}) {
  return FakeHttpResponse::json(status,
                                R"({"code": )" + std::to_string(code) + R"(, "message": ")" + message +
                                    R"(", "more_info": "https://www.twilio.com/docs/errors/)" +
                                    std::to_string(code) + R"(", "status": )" + std::to_string(status) + "}",
                                std::move(headers));
}

// A serverAuth certificate for DNS:other.example only, signed by `issuer` (tls_test_certs makes server
// certificates for 127.0.0.1 and localhost only).
test::PemCertKey server_cert_for_other_name(const test::PemCertKey& issuer) {
  auto read_bio = [](const std::string& pem) {
    return BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  };
  BIO* in = read_bio(issuer.certificate_pem);
  X509* ca = PEM_read_bio_X509(in, nullptr, nullptr, nullptr);
  BIO_free(in);
  in = read_bio(issuer.private_key_pem);
  EVP_PKEY* ca_key = PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr);
  BIO_free(in);
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  if (ca == nullptr || ca_key == nullptr || key == nullptr || cert == nullptr)
    throw std::runtime_error("OpenSSL");
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("other.example"), -1, -1, 0);
  X509_set_issuer_name(cert, X509_get_subject_name(ca));
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca, cert, nullptr, nullptr, 0);
  const std::pair<int, const char*> extensions[] = {{NID_basic_constraints, "CA:FALSE"},
                                                    {NID_ext_key_usage, "serverAuth"},
                                                    {NID_subject_alt_name, "DNS:other.example"}};
  for (const auto& [nid, value] : extensions) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) throw std::runtime_error("OpenSSL extension");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert, ca_key, EVP_sha256()) == 0) throw std::runtime_error("OpenSSL sign");
  auto to_pem = [](auto write) {
    BIO* out = BIO_new(BIO_s_mem());
    write(out);
    char* data = nullptr;
    long n = BIO_get_mem_data(out, &data);
    std::string pem(data, static_cast<std::size_t>(n));
    BIO_free(out);
    return pem;
  };
  test::PemCertKey result;
  result.certificate_pem = to_pem([&](BIO* out) { PEM_write_bio_X509(out, cert); });
  result.private_key_pem =
      to_pem([&](BIO* out) { PEM_write_bio_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr); });
  X509_free(cert);
  EVP_PKEY_free(key);
  EVP_PKEY_free(ca_key);
  X509_free(ca);
  return result;
}

class SmsTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // NOTIFYD_TEST_DEBUG=1 shows the pool's per-connection debug lines.
    if (std::getenv("NOTIFYD_TEST_DEBUG")) spdlog::set_level(spdlog::level::debug);
  }

  SmsOptions options_for(const FakeHttpServer& server) {
    SmsOptions o;
    o.url = server.url();
    o.account_sid = kAccountSid;
    o.auth_token = kAuthToken;
    o.connect_timeout = 5s;
    o.request_timeout = 5s;
    return o;
  }

  // Runs `aw` to completion on io_ (bounded by kRunLimit); a coroutine still running after that fails the
  // test.
  template <class T>
  T run(asio::awaitable<T> aw) {
    std::optional<T> out;
    std::exception_ptr error;
    asio::co_spawn(io_, std::move(aw), [&](std::exception_ptr e, T value) {
      error = e;
      out = std::move(value);
    });
    io_.restart();
    io_.run_for(kRunLimit);
    if (error) std::rethrow_exception(error);
    EXPECT_TRUE(out.has_value()) << "coroutine did not finish within " << kRunLimit.count() << " s";
    return out ? std::move(*out) : T{};
  }

  void run_void(asio::awaitable<void> aw) {
    bool done = false;
    asio::co_spawn(io_, std::move(aw), [&](std::exception_ptr e) {
      done = true;
      if (e) std::rethrow_exception(e);
    });
    io_.restart();
    io_.run_for(kRunLimit);
    EXPECT_TRUE(done) << "coroutine did not finish within " << kRunLimit.count() << " s";
  }

  DeliveryResult deliver(SmsTransport& t, Delivery d) { return run(t.deliver(std::move(d))); }

  // A freshly answered outcome of one delivery to a server that answers with `response`.
  DeliveryResult outcome_for(FakeHttpResponse response) {
    FakeHttpServer server;
    server.set_handler([response](const FakeHttpRequest&) { return response; });
    SmsTransport t(io_.get_executor(), options_for(server));
    auto r = deliver(t, make_delivery());
    EXPECT_EQ(server.request_count(), 1u);
    return r;
  }

  asio::io_context io_;
};

// ---- request shape ----

TEST_F(SmsTransportTest, PostsEveryFormFieldWithBasicAuthToTheMessagesPath) {
  FakeHttpServer server;
  server.set_handler([](const FakeHttpRequest&) { return FakeHttpResponse::json(201, message_json()); });
  SmsTransport t(io_.get_executor(), options_for(server));

  Delivery d = make_delivery("+14155550123");
  d.sms_body = "Héllo & welcome +1 100% = ok?";  // every byte form-encoding must escape
  d.sms_media_urls = {"https://example.com/a.png?x=1&y=2", "https://example.com/b.jpg"};
  d.sms_status_callback = "https://app.example.com/status?id=7";
  d.sms_max_price = "0.05";
  auto r = deliver(t, d);
  EXPECT_EQ(r.outcome, Outcome::delivered) << r.reason;
  EXPECT_EQ(r.provider_status, 201);

  ASSERT_TRUE(server.wait_for_requests(1));
  auto req = *server.last_request();
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path, std::string("/2010-04-01/Accounts/") + kAccountSid + "/Messages.json");
  EXPECT_EQ(req.query, "");
  auto auth = req.basic_auth();
  ASSERT_TRUE(auth.has_value()) << req.header("Authorization");
  EXPECT_EQ(auth->first, kAccountSid);
  EXPECT_EQ(auth->second, kAuthToken);
  EXPECT_EQ(req.header("Content-Type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(req.header("Host"), "127.0.0.1:" + std::to_string(server.port()));

  EXPECT_EQ(req.form_value("To"), "+14155550123");
  EXPECT_EQ(req.form_value("MessagingServiceSid"), kMessagingServiceSid);
  EXPECT_EQ(req.form_value("Body"), "Héllo & welcome +1 100% = ok?");
  EXPECT_EQ(req.form_values("MediaUrl"),
            (std::vector<std::string>{"https://example.com/a.png?x=1&y=2", "https://example.com/b.jpg"}));
  EXPECT_EQ(req.form_value("StatusCallback"), "https://app.example.com/status?id=7");
  EXPECT_EQ(req.form_value("MaxPrice"), "0.05");
  // '+' of the phone number must be escaped or the gateway reads a space.
  EXPECT_NE(req.body.find("To=%2B14155550123"), std::string::npos) << req.body;
}

TEST_F(SmsTransportTest, OptionalFieldsAreOmittedWhenUnset) {
  FakeHttpServer server;
  server.set_handler([](const FakeHttpRequest&) { return FakeHttpResponse::json(201, message_json()); });
  SmsTransport t(io_.get_executor(), options_for(server));
  EXPECT_EQ(deliver(t, make_delivery()).outcome, Outcome::delivered);
  auto req = *server.last_request();
  test::FakeHttpFields expected = {
      {"To", "+14155550100"}, {"MessagingServiceSid", kMessagingServiceSid}, {"Body", "Hello"}};
  EXPECT_EQ(req.form(), expected);
}

TEST_F(SmsTransportTest, UrlPathPrefixIsKept) {
  FakeHttpServer server;
  server.set_handler([](const FakeHttpRequest&) { return FakeHttpResponse::json(201, message_json()); });
  auto o = options_for(server);
  o.url += "/gateway/";
  SmsTransport t(io_.get_executor(), o);
  EXPECT_EQ(deliver(t, make_delivery()).outcome, Outcome::delivered);
  EXPECT_EQ(server.last_request()->path,
            std::string("/gateway/2010-04-01/Accounts/") + kAccountSid + "/Messages.json");
}

TEST_F(SmsTransportTest, WorksAgainstTheReadyMadeTwilioMessagesFake) {
  FakeHttpServer server;
  server.set_handler(FakeHttpServer::twilio_messages(kAccountSid, kAuthToken));
  SmsTransport t(io_.get_executor(), options_for(server));
  auto r = deliver(t, make_delivery());
  EXPECT_EQ(r.outcome, Outcome::delivered) << r.reason;
  EXPECT_EQ(r.provider_status, 201);
}

TEST_F(SmsTransportTest, MissingMessagingServiceSidIsRejectedWithoutARequest) {
  FakeHttpServer server;
  SmsTransport t(io_.get_executor(), options_for(server));
  Delivery d = make_delivery();
  d.messaging_service_sid.clear();
  auto r = deliver(t, d);
  EXPECT_EQ(r.outcome, Outcome::payload_rejected);
  EXPECT_EQ(r.reason, "52182");
  EXPECT_EQ(server.request_count(), 0u);
}

// ---- outcomes ----

TEST_F(SmsTransportTest, Status200And201AreDelivered) {
  auto r200 = outcome_for(FakeHttpResponse::json(200, message_json()));
  EXPECT_EQ(r200.outcome, Outcome::delivered);
  EXPECT_EQ(r200.provider_status, 200);
  auto r201 = outcome_for(FakeHttpResponse::json(201, message_json()));
  EXPECT_EQ(r201.outcome, Outcome::delivered);
  EXPECT_EQ(r201.provider_status, 201);
}

TEST_F(SmsTransportTest, Code21211IsAnInvalidAddress) {
  auto r = outcome_for(twilio_error(400, 21211, "The 'To' number +1415555 is not a valid phone number."));
  EXPECT_EQ(r.outcome, Outcome::invalid_address);
  EXPECT_EQ(r.reason, "21211");
  EXPECT_EQ(r.provider_status, 400);
}

TEST_F(SmsTransportTest, Code21614IsAnInvalidAddress) {
  auto r = outcome_for(twilio_error(400, 21614, "'To' number is not a valid mobile number"));
  EXPECT_EQ(r.outcome, Outcome::invalid_address);
  EXPECT_EQ(r.reason, "21614");
}

TEST_F(SmsTransportTest, Other400IsAPayloadRejectionWithTheProviderCode) {
  auto r =
      outcome_for(twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit"));
  EXPECT_EQ(r.outcome, Outcome::payload_rejected);
  EXPECT_EQ(r.provider_status, 400);
  EXPECT_EQ(r.reason, "21617: The concatenated message body exceeds the 1600 character limit");
}

TEST_F(SmsTransportTest, Other4xxWithoutJsonIsAPayloadRejection) {
  auto r =
      outcome_for(FakeHttpResponse{.status = 404, .body = "no such thing", .content_type = "text/plain"});
  EXPECT_EQ(r.outcome, Outcome::payload_rejected);
  EXPECT_EQ(r.reason, "HTTP 404");
}

TEST_F(SmsTransportTest, Status401And403RejectTheCredential) {
  auto r401 = outcome_for(twilio_error(401, 20003, "Authenticate"));
  EXPECT_EQ(r401.outcome, Outcome::credential_rejected);
  EXPECT_EQ(r401.reason, "20003: Authenticate");
  auto r403 = outcome_for(twilio_error(403, 20003, "Permission denied"));
  EXPECT_EQ(r403.outcome, Outcome::credential_rejected);
  EXPECT_EQ(r403.provider_status, 403);
}

TEST_F(SmsTransportTest, WrongAuthTokenAtTheGatewayRejectsTheCredential) {
  FakeHttpServer server;
  server.set_handler(FakeHttpServer::twilio_messages(kAccountSid, "another-token"));
  SmsTransport t(io_.get_executor(), options_for(server));
  EXPECT_EQ(deliver(t, make_delivery()).outcome, Outcome::credential_rejected);
}

TEST_F(SmsTransportTest, Status429HonoursRetryAfterSeconds) {
  auto r = outcome_for(twilio_error(429, 20429, "Too Many Requests", {{"Retry-After", "7"}}));
  EXPECT_EQ(r.outcome, Outcome::retry_later);
  EXPECT_EQ(r.provider_status, 429);
  ASSERT_TRUE(r.retry_after.has_value());
  EXPECT_EQ(*r.retry_after, 7s);
}

TEST_F(SmsTransportTest, Status503IsRetriedLaterHonouringAnHttpDate) {
  auto r = outcome_for(twilio_error(503, 20503, "Service Unavailable"));
  EXPECT_EQ(r.outcome, Outcome::retry_later);
  EXPECT_EQ(r.provider_status, 503);
  EXPECT_FALSE(r.retry_after.has_value());

  // An HTTP-date about two minutes ahead.
  std::time_t at = std::time(nullptr) + 120;
  std::tm tm{};
  gmtime_r(&at, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  auto dated = outcome_for(twilio_error(503, 20503, "Service Unavailable", {{"Retry-After", date}}));
  EXPECT_EQ(dated.outcome, Outcome::retry_later);
  ASSERT_TRUE(dated.retry_after.has_value()) << date;
  EXPECT_GE(*dated.retry_after, 110s);
  EXPECT_LE(*dated.retry_after, 121s);
}

TEST_F(SmsTransportTest, RetryAfterParsing) {
  const auto now = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(sms::parse_retry_after("7", now), 7s);
  EXPECT_EQ(sms::parse_retry_after(" 120 ", now), 120s);
  EXPECT_EQ(sms::parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), 30s);
  EXPECT_EQ(sms::parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), 0s);  // in the past
  EXPECT_EQ(sms::parse_retry_after("", now), std::nullopt);
  EXPECT_EQ(sms::parse_retry_after("-3", now), std::nullopt);
  EXPECT_EQ(sms::parse_retry_after("soon", now), std::nullopt);
}

TEST_F(SmsTransportTest, ConnectionRefusedIsRetriedLater) {
  std::string url;
  {
    FakeHttpServer server;  // a port that was just free, now closed
    url = server.url();
  }
  SmsOptions o;
  o.url = url;
  o.account_sid = kAccountSid;
  o.auth_token = kAuthToken;
  SmsTransport t(io_.get_executor(), o);
  auto r = deliver(t, make_delivery());
  EXPECT_EQ(r.outcome, Outcome::retry_later);
  EXPECT_EQ(r.provider_status, 0);
  EXPECT_EQ(r.reason.rfind("connect_failed", 0), 0u) << r.reason;
  EXPECT_EQ(r.reason.find(kAuthToken), std::string::npos);
}

TEST_F(SmsTransportTest, SlowGatewayTimesOutAndIsRetriedLater) {
  FakeHttpServer server;
  server.set_handler([](const FakeHttpRequest&) {
    FakeHttpResponse r = FakeHttpResponse::json(201, message_json());
    r.delay = 3s;
    return r;
  });
  auto o = options_for(server);
  o.request_timeout = 300ms;
  SmsTransport t(io_.get_executor(), o);
  const auto started = std::chrono::steady_clock::now();
  auto r = deliver(t, make_delivery());
  EXPECT_EQ(r.outcome, Outcome::retry_later);
  EXPECT_EQ(r.reason.rfind("timeout", 0), 0u) << r.reason;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}

// ---- connections ----

TEST_F(SmsTransportTest, SequentialSendsReuseOneKeepAliveConnection) {
  FakeHttpServer server;
  server.set_handler([](const FakeHttpRequest&) { return FakeHttpResponse::json(201, message_json()); });
  SmsTransport t(io_.get_executor(), options_for(server));
  constexpr int kSends = 5;
  for (int i = 0; i < kSends; ++i) EXPECT_EQ(deliver(t, make_delivery()).outcome, Outcome::delivered);
  EXPECT_EQ(server.connections_accepted(), 1u);
  EXPECT_EQ(server.last_request()->request_on_connection, static_cast<std::uint64_t>(kSends));
  EXPECT_EQ(t.pool_stats().connections_opened, 1u);
}

TEST_F(SmsTransportTest, ConnectionCloseFromTheServerIsNotReused) {
  FakeHttpServer server;
  server.set_handler([](const FakeHttpRequest&) {
    FakeHttpResponse r = FakeHttpResponse::json(201, message_json());
    r.close = true;
    return r;
  });
  SmsTransport t(io_.get_executor(), options_for(server));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(deliver(t, make_delivery()).outcome, Outcome::delivered);
  EXPECT_EQ(server.connections_accepted(), 3u);
  EXPECT_EQ(t.pool_stats().retries, 0u);  // never sent on a connection the server said it would close
}

TEST_F(SmsTransportTest, ReusedConnectionClosedByTheServerIsReplayedOnceOnANewOne) {
  FakeHttpOptions fo;
  fo.idle_timeout = 200ms;  // the server drops idle keep-alive connections quickly
  FakeHttpServer server(fo);
  server.set_handler([](const FakeHttpRequest&) { return FakeHttpResponse::json(201, message_json()); });
  SmsTransport t(io_.get_executor(), options_for(server));
  EXPECT_EQ(deliver(t, make_delivery()).outcome, Outcome::delivered);
  ASSERT_TRUE(
      server.wait_until([&] { return server.connections_open() == 0; }, 5s, "idle connection closed"));

  auto r = deliver(t, make_delivery());
  EXPECT_EQ(r.outcome, Outcome::delivered) << r.reason;
  EXPECT_EQ(server.request_count(), 2u);
  EXPECT_EQ(server.connections_accepted(), 2u);
  EXPECT_EQ(t.pool_stats().retries, 1u);
}

TEST_F(SmsTransportTest, ConcurrentSendsStayWithinMaxConnections) {
  FakeHttpServer server;
  server.set_handler([](const FakeHttpRequest&) {
    FakeHttpResponse r = FakeHttpResponse::json(201, message_json());
    r.delay = 50ms;  // keeps each connection busy so the others must wait or open another
    return r;
  });
  auto o = options_for(server);
  o.max_connections = 2;
  SmsTransport t(io_.get_executor(), o);
  constexpr int kSends = 6;
  std::atomic<int> delivered = 0;
  int finished = 0;
  for (int i = 0; i < kSends; ++i) {
    asio::co_spawn(io_, t.deliver(make_delivery()), [&](std::exception_ptr e, DeliveryResult r) {
      ++finished;
      if (!e && r.outcome == Outcome::delivered) ++delivered;
    });
  }
  io_.run_for(kRunLimit);
  EXPECT_EQ(finished, kSends);
  EXPECT_EQ(delivered.load(), kSends);
  EXPECT_EQ(server.connections_accepted(), 2u);
}

TEST_F(SmsTransportTest, DrainRefusesNewDeliveries) {
  FakeHttpServer server;
  server.set_handler([](const FakeHttpRequest&) { return FakeHttpResponse::json(201, message_json()); });
  SmsTransport t(io_.get_executor(), options_for(server));
  EXPECT_EQ(deliver(t, make_delivery()).outcome, Outcome::delivered);
  run_void(t.drain());
  ASSERT_TRUE(
      server.wait_until([&] { return server.connections_open() == 0; }, 5s, "connections closed by drain"));
  auto r = deliver(t, make_delivery());
  EXPECT_EQ(r.outcome, Outcome::retry_later);
  EXPECT_EQ(r.reason.rfind("shutting_down", 0), 0u) << r.reason;
  EXPECT_EQ(server.request_count(), 1u);
}

// ---- TLS ----

TEST_F(SmsTransportTest, HttpsWithTheTestCaInCaFile) {
  FakeHttpServer server(FakeHttpOptions{.tls = true});
  server.set_handler([](const FakeHttpRequest&) { return FakeHttpResponse::json(201, message_json()); });
  auto ca = test::write_ca_file();
  auto o = options_for(server);
  ASSERT_EQ(o.url.rfind("https://127.0.0.1:", 0), 0u);
  o.ca_file = ca.string();
  SmsTransport t(io_.get_executor(), o);
  for (int i = 0; i < 2; ++i) {
    auto r = deliver(t, make_delivery());
    EXPECT_EQ(r.outcome, Outcome::delivered) << r.reason;
  }
  EXPECT_EQ(server.connections_accepted(), 1u);
  auto auth = server.last_request()->basic_auth();
  ASSERT_TRUE(auth.has_value());
  EXPECT_EQ(auth->second, kAuthToken);
}

TEST_F(SmsTransportTest, HttpsByHostNameIsVerifiedAgainstTheDnsSan) {
  FakeHttpServer server(FakeHttpOptions{.tls = true});
  server.set_handler([](const FakeHttpRequest&) { return FakeHttpResponse::json(201, message_json()); });
  auto ca = test::write_ca_file();
  auto o = options_for(server);
  o.url = "https://localhost:" + std::to_string(server.port());
  o.ca_file = ca.string();
  SmsTransport t(io_.get_executor(), o);
  auto r = deliver(t, make_delivery());
  // localhost may resolve to ::1 first, where nothing listens; the pool tries every address.
  EXPECT_EQ(r.outcome, Outcome::delivered) << r.reason;
}

TEST_F(SmsTransportTest, UntrustedCertificateFailsTheConnectAndSendsNothing) {
  FakeHttpServer server(FakeHttpOptions{.tls = true});
  auto o = options_for(server);  // no ca_file: the test CA is not trusted
  SmsTransport t(io_.get_executor(), o);
  auto r = deliver(t, make_delivery());
  EXPECT_EQ(r.outcome, Outcome::retry_later);
  EXPECT_EQ(r.provider_status, 0);
  EXPECT_EQ(r.reason.rfind("connect_failed", 0), 0u) << r.reason;
  EXPECT_NE(r.reason.find("certificate verify failed"), std::string::npos) << r.reason;
  EXPECT_EQ(server.request_count(), 0u);
}

TEST_F(SmsTransportTest, TrustedCertificateForAnotherNameIsRefused) {
  // Chains to the trusted test CA, but names only other.example: only hostname (IP SAN) verification refuses
  // it.
  const auto& pki = test::shared_test_pki();
  auto other = server_cert_for_other_name(pki.ca);
  FakeHttpOptions fo;
  fo.tls = true;
  fo.certificate_pem = other.certificate_pem;
  fo.private_key_pem = other.private_key_pem;
  FakeHttpServer server(fo);
  auto ca = test::write_ca_file();
  auto o = options_for(server);
  o.ca_file = ca.string();
  SmsTransport t(io_.get_executor(), o);
  auto r = deliver(t, make_delivery());
  EXPECT_EQ(r.outcome, Outcome::retry_later);
  EXPECT_NE(r.reason.find("IP address mismatch"), std::string::npos) << r.reason;
  EXPECT_EQ(server.request_count(), 0u);
}

// ---- HTTP/1.1 pool configuration ----

TEST(Http1PoolTest, RejectsBadBaseUrlsAtConstruction) {
  asio::io_context io;
  auto make = [&](std::string url, std::string ca_file = "") {
    http1::Http1Options o;
    o.base_url = std::move(url);
    o.ca_file = std::move(ca_file);
    http1::Http1Pool pool(io.get_executor(), o);
  };
  EXPECT_THROW(make("ftp://example.com"), std::invalid_argument);
  EXPECT_THROW(make("example.com"), std::invalid_argument);
  EXPECT_THROW(make("https://example.com/?q=1"), std::invalid_argument);
  EXPECT_NO_THROW(make("https://api.twilio.com"));
  EXPECT_THROW(make("https://x.example", "/nonexistent.pem"), std::runtime_error);
}

// ---- unsupported channels ----

TEST(UnsupportedTransportTest, FacebookMessengerAndAlexaAreUnsupportedChannels) {
  asio::io_context io;
  for (std::string channel : {"facebook-messenger", "alexa"}) {
    messenger::UnsupportedTransport t(channel);
    std::optional<DeliveryResult> out;
    Delivery d = make_delivery("psid-123");
    d.binding_type = channel;
    asio::co_spawn(io, t.deliver(d), [&](std::exception_ptr, DeliveryResult r) { out = std::move(r); });
    io.restart();
    io.run_for(5s);
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(out->outcome, Outcome::unsupported_channel);
    EXPECT_EQ(out->reason, channel + " delivery is not supported by notifyd");
  }
}

}  // namespace
}  // namespace notifyd
