// The fake peers of tests/support exercised by real clients: h2load and nghttp (nghttp2-client) against
// FakeH2Server, a Beast client and the test HttpClient against FakeHttpServer, and raw TLS handshakes that
// check the test PKI (the server certificate verifies against the test CA for 127.0.0.1). Every step is
// time-bounded: external tools run under timeout(1), Asio clients under run_for().
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <regex>
#include <string>

#include "tests/support/fake_h2_server.hpp"
#include "tests/support/fake_http_server.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/tls_test_certs.hpp"

namespace notifyd::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

// Runs `command` through the shell under timeout(1), so a hung tool cannot hang the test.
CommandResult run(const std::string& command, int timeout_seconds = 60) {
  CommandResult result;
  std::string bounded = "timeout -k 5 " + std::to_string(timeout_seconds) + " " + command + " 2>&1";
  FILE* pipe = ::popen(bounded.c_str(), "r");
  if (!pipe) return result;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) result.output.append(buf, n);
  result.status = ::pclose(pipe);
  return result;
}

bool have_tool(const char* path) { return std::filesystem::exists(path); }

struct H2loadStats {
  long total = -1, succeeded = -1, failed = -1, errored = -1;
  long status_2xx = -1, status_5xx = -1;
};

H2loadStats parse_h2load(const std::string& out) {
  H2loadStats s;
  std::smatch m;
  static const std::regex requests(
      R"(requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored)");
  if (std::regex_search(out, m, requests)) {
    s.total = std::stol(m[1]);
    s.succeeded = std::stol(m[2]);
    s.failed = std::stol(m[3]);
    s.errored = std::stol(m[4]);
  }
  static const std::regex codes(R"(status codes: (\d+) 2xx, \d+ 3xx, \d+ 4xx, (\d+) 5xx)");
  if (std::regex_search(out, m, codes)) {
    s.status_2xx = std::stol(m[1]);
    s.status_5xx = std::stol(m[2]);
  }
  return s;
}

std::string h2load(const FakeH2Server& server, const std::string& args,
                   const std::string& path = "/3/device/abc") {
  return "/usr/bin/h2load " + args + " " + server.url() + path;
}

#define REQUIRE_TOOL(path) \
  if (!have_tool(path)) GTEST_SKIP() << path << " is not installed (Debian package nghttp2-client)"

// A TLS handshake offering `alpn`, verifying the server against the test CA and 127.0.0.1; returns the
// protocol selected ("" for none) or "error: ..." if the handshake failed. Bounded by run_for(5 s).
std::string tls_handshake(std::uint16_t port, const std::string& alpn) {
  asio::io_context ioc;
  ssl::context ctx(ssl::context::tls_client);
  ctx.add_certificate_authority(asio::buffer(shared_test_pki().ca.certificate_pem));
  ctx.set_verify_mode(ssl::verify_peer);
  std::string wire(1, static_cast<char>(alpn.size()));
  wire += alpn;
  SSL_CTX_set_alpn_protos(ctx.native_handle(), reinterpret_cast<const unsigned char*>(wire.data()),
                          static_cast<unsigned>(wire.size()));
  ssl::stream<asio::ip::tcp::socket> stream(ioc, ctx);
  stream.set_verify_callback(ssl::host_name_verification("127.0.0.1"));
  std::string result = "error: timeout";
  asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
  stream.lowest_layer().async_connect(ep, [&](boost::system::error_code ec) {
    if (ec) {
      result = "error: " + ec.message();
      return;
    }
    stream.async_handshake(ssl::stream_base::client, [&](boost::system::error_code ec) {
      if (ec) {
        result = "error: " + ec.message();
        return;
      }
      const unsigned char* p = nullptr;
      unsigned n = 0;
      SSL_get0_alpn_selected(stream.native_handle(), &p, &n);
      result.assign(reinterpret_cast<const char*>(p), n);
    });
  });
  ioc.run_for(5s);
  return result;
}

// ---------------------------------------------------------------- HTTP/2

TEST(FakeH2Server, ServesH2loadAndLogsRequests) {
  REQUIRE_TOOL("/usr/bin/h2load");
  FakeH2Server server;
  server.set_handler([](const FakeRequest& r) {
    return FakeResponse::json(200, "", {{"apns-id", r.header("apns-id")}});
  });
  TempFile payload(R"({"aps":{"alert":"hi"}})", ".json");
  auto r = run(h2load(
      server, "-n 1000 -c 2 -m 50 -H 'apns-topic: com.example.app' -H 'apns-id: X1' -d " + payload.string()));
  H2loadStats s = parse_h2load(r.output);
  EXPECT_EQ(s.succeeded, 1000) << r.output;
  EXPECT_EQ(s.status_2xx, 1000) << r.output;
  ASSERT_TRUE(server.wait_for_requests(1000, 5s));
  EXPECT_EQ(server.request_count(), 1000u);
  EXPECT_EQ(server.connections_accepted(), 2u);
  EXPECT_LE(server.peak_concurrent_streams(), 50u);
  auto last = server.last_request();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->method, "POST");
  EXPECT_EQ(last->path, "/3/device/abc");
  EXPECT_EQ(last->scheme, "https");
  EXPECT_EQ(last->authority, server.authority());
  EXPECT_EQ(last->header("apns-topic"), "com.example.app");
  EXPECT_EQ(last->header("APNS-ID"), "X1");
  EXPECT_EQ(last->body, R"({"aps":{"alert":"hi"}})");
  EXPECT_FALSE(last->client_cert_presented);
  EXPECT_EQ(server.requests().size(), 1000u);
  EXPECT_EQ(server.last_requests(3).size(), 3u);
  EXPECT_TRUE(server.wait_for_open_connections(0, 5s));
}

TEST(FakeH2Server, CertificateVerifiesForLoopbackAndAlpnSelectsH2) {
  FakeH2Server server;
  EXPECT_EQ(tls_handshake(server.port(), "h2"), "h2");
  EXPECT_EQ(tls_handshake(server.port(), "http/1.1"), "");
  EXPECT_TRUE(
      server.wait_until([&] { return server.connections_without_h2() == 1; }, 5s, "one non-h2 connection"));
}

TEST(FakeH2Server, AlpnRefusal) {
  REQUIRE_TOOL("/usr/bin/h2load");
  FakeH2Options options;
  options.offer_h2 = false;
  FakeH2Server server(options);
  EXPECT_EQ(tls_handshake(server.port(), "h2"), "");
  auto r = run(h2load(server, "-n 10 -c 1"));
  H2loadStats s = parse_h2load(r.output);
  EXPECT_EQ(s.succeeded, 0) << r.output;
  EXPECT_EQ(server.request_count(), 0u);
  EXPECT_GE(server.connections_without_h2(), 1u);
}

TEST(FakeH2Server, ClientCertificateUidIsRecorded) {
  REQUIRE_TOOL("/usr/bin/nghttp");
  FakeH2Options options;
  options.client_cert = ClientCertPolicy::kRequireTrusted;
  FakeH2Server server(options);
  PemCertKey client = make_client_cert("com.example.app");
  TempFile cert(client.certificate_pem), key(client.private_key_pem);
  auto r = run("/usr/bin/nghttp --cert=" + cert.string() + " --key=" + key.string() + " " + server.url() +
                   "/3/device/abc",
               20);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.find("not processed"), std::string::npos) << r.output;
  ASSERT_TRUE(server.wait_for_requests(1, 5s));
  auto last = server.last_request();
  ASSERT_TRUE(last);
  EXPECT_TRUE(last->client_cert_presented);
  EXPECT_EQ(last->client_uid, "com.example.app");
  EXPECT_NE(last->client_subject.find("CN=Apple Push Services: com.example.app"), std::string::npos)
      << last->client_subject;

  // Without a certificate, or with one from another CA, the handshake fails and nothing is logged.
  server.clear_log();
  // nghttp exits 0 even then; it says so.
  const std::string kNotProcessed = "Some requests were not processed";
  r = run("/usr/bin/nghttp " + server.url() + "/3/device/abc", 20);
  EXPECT_NE(r.output.find(kNotProcessed), std::string::npos) << r.output;
  TestPki other = make_test_pki();
  ClientCertOptions untrusted_options;
  untrusted_options.topic_uid = "com.example.app";
  PemCertKey untrusted = make_client_cert(other.ca, untrusted_options);
  TempFile cert2(untrusted.certificate_pem), key2(untrusted.private_key_pem);
  r = run("/usr/bin/nghttp --cert=" + cert2.string() + " --key=" + key2.string() + " " + server.url() + "/",
          20);
  EXPECT_NE(r.output.find(kNotProcessed), std::string::npos) << r.output;
  EXPECT_TRUE(
      server.wait_until([&] { return server.handshakes_failed() >= 2; }, 5s, "two failed handshakes"));
  EXPECT_EQ(server.request_count(), 0u);
}

TEST(FakeH2Server, MaxConcurrentStreamsRespected) {
  REQUIRE_TOOL("/usr/bin/h2load");
  FakeH2Options options;
  options.max_concurrent_streams = 5;
  FakeH2Server server(options);
  server.set_response_delay(5ms);  // keep streams open long enough to pile up
  auto r = run(h2load(server, "-n 200 -c 1 -m 50"));
  // A client may open more streams in its first flight, before it has read our SETTINGS (RFC 9113 §6.5.2
  // allows that); nghttp2 refuses the excess with RST_STREAM(REFUSED_STREAM), which h2load counts as failed.
  H2loadStats s = parse_h2load(r.output);
  EXPECT_EQ(s.total, 200) << r.output;
  EXPECT_GE(s.succeeded, 150) << r.output;
  EXPECT_EQ(static_cast<std::uint64_t>(200 - s.succeeded), server.rst_streams_sent()) << r.output;
  EXPECT_EQ(server.request_count(), static_cast<std::uint64_t>(s.succeeded));
  EXPECT_EQ(server.peak_concurrent_streams(), 5u);
}

TEST(FakeH2Server, MaxConcurrentStreamsLoweredMidConnection) {
  REQUIRE_TOOL("/usr/bin/h2load");
  FakeH2Server server;
  server.set_response_delay(10ms);
  auto running = std::async(std::launch::async, [&] { return run(h2load(server, "-n 600 -c 1 -m 40")); });
  ASSERT_TRUE(server.wait_for_requests(80, 20s));
  server.set_max_concurrent_streams(2);
  ASSERT_EQ(running.wait_for(60s), std::future_status::ready);
  auto r = running.get();
  // Streams the client opens between our SETTINGS and its ACK may be refused (REFUSED_STREAM), as above.
  H2loadStats s = parse_h2load(r.output);
  EXPECT_EQ(static_cast<std::uint64_t>(600 - s.succeeded), server.rst_streams_sent()) << r.output;
  EXPECT_GE(s.succeeded, 500) << r.output;
  EXPECT_GT(server.peak_concurrent_streams(), 2u);
  auto tail = server.last_requests(100);
  ASSERT_EQ(tail.size(), 100u);
  for (const auto& req : tail) EXPECT_LE(req.open_streams, 2u) << "stream " << req.stream_id;
}

TEST(FakeH2Server, GoawayAfterN) {
  REQUIRE_TOOL("/usr/bin/h2load");
  FakeH2Server server;
  server.goaway_after(10);
  auto r = run(h2load(server, "-n 30 -c 1 -m 4"));
  EXPECT_TRUE(server.wait_until([&] { return server.goaways_sent() == 1; }, 5s, "one GOAWAY"));
  EXPECT_GE(server.request_count(), 10u);
  std::size_t on_first = 0;
  for (const auto& req : server.requests()) on_first += req.connection_id == 1;
  EXPECT_EQ(on_first, 10u) << r.output;
  EXPECT_TRUE(server.wait_for_open_connections(0, 5s));
  // One-shot: a second client is served in full.
  server.clear_log();
  r = run(h2load(server, "-n 30 -c 1 -m 4"));
  EXPECT_EQ(parse_h2load(r.output).succeeded, 30) << r.output;
  EXPECT_EQ(server.goaways_sent(), 1u);
}

TEST(FakeH2Server, RstStreamForNextK) {
  REQUIRE_TOOL("/usr/bin/h2load");
  FakeH2Server server;
  server.rst_stream(NGHTTP2_INTERNAL_ERROR, 5);
  auto r = run(h2load(server, "-n 20 -c 1 -m 1"));
  H2loadStats s = parse_h2load(r.output);
  EXPECT_EQ(s.status_2xx, 15) << r.output;
  EXPECT_EQ(server.request_count(), 20u);
  EXPECT_EQ(server.rst_streams_sent(), 5u);
}

TEST(FakeH2Server, HandlerStatusSequenceAndReset) {
  REQUIRE_TOOL("/usr/bin/h2load");
  FakeH2Server server;
  std::atomic<int> n{0};  // the handler runs on the server thread
  server.set_handler([&n](const FakeRequest&) {
    switch (n++) {
      case 0:
        return FakeResponse::json(503, R"({"reason":"ServiceUnavailable"})");
      case 1:
        return FakeResponse::reset(NGHTTP2_REFUSED_STREAM);
      default:
        return FakeResponse::json(200, "");
    }
  });
  auto r = run(h2load(server, "-n 4 -c 1 -m 1"));
  H2loadStats s = parse_h2load(r.output);
  EXPECT_EQ(s.status_5xx, 1) << r.output;
  EXPECT_EQ(s.status_2xx, 2) << r.output;
  EXPECT_EQ(server.rst_streams_sent(), 1u);
}

TEST(FakeH2Server, DelayIsPerStreamAndNonBlocking) {
  REQUIRE_TOOL("/usr/bin/h2load");
  FakeH2Server server;
  server.set_response_delay(300ms);
  auto start = Clock::now();
  auto r = run(h2load(server, "-n 20 -c 1 -m 20"));
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(parse_h2load(r.output).succeeded, 20) << r.output;
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 3s);  // 20 × 300 ms if responses were serialised
}

TEST(FakeH2Server, CloseConnectionAfterN) {
  REQUIRE_TOOL("/usr/bin/h2load");
  FakeH2Server server;
  server.close_connection_after(5);
  auto r = run(h2load(server, "-n 20 -c 1 -m 1"));
  H2loadStats s = parse_h2load(r.output);
  EXPECT_EQ(s.status_2xx, 4) << r.output;  // the 5th was received, never answered
  EXPECT_GE(server.request_count(), 5u);
  EXPECT_EQ(server.goaways_sent(), 0u);
  EXPECT_TRUE(server.wait_for_open_connections(0, 5s));
}

TEST(FakeH2Server, CloseAllConnections) {
  REQUIRE_TOOL("/usr/bin/h2load");
  FakeH2Server server;
  server.set_response_delay(10s);
  auto running = std::async(std::launch::async, [&] { return run(h2load(server, "-n 5 -c 1 -m 5")); });
  ASSERT_TRUE(server.wait_for_requests(5, 10s));
  server.close_all_connections();
  ASSERT_EQ(running.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(parse_h2load(running.get().output).succeeded, 0);
  EXPECT_TRUE(server.wait_for_open_connections(0, 5s));
}

TEST(FakeH2Server, HundredThousandRequests) {
  REQUIRE_TOOL("/usr/bin/h2load");
  FakeH2Options options;
  options.log_capacity = 0;  // counts only, as a benchmark peer would run
  FakeH2Server server(options);
  auto start = Clock::now();
  auto r = run(h2load(server, "-n 100000 -c 4 -m 100"), 120);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(parse_h2load(r.output).succeeded, 100000) << r.output;
  EXPECT_EQ(server.request_count(), 100000u);
  EXPECT_TRUE(server.requests().empty());
  std::printf("[ INFO     ] 100000 requests in %.2f s (%.0f req/s, h2load and server sharing the CPU)\n",
              seconds, 100000 / seconds);
}

// ---------------------------------------------------------------- HTTP/1.1

constexpr std::string_view kAccount = "AC0123456789abcdef0123456789abcdef";
constexpr std::string_view kToken = "auth-token";

TEST(FakeHttpServer, TwilioMessagesOverKeepAlive) {
  FakeHttpServer server;
  server.set_handler(FakeHttpServer::twilio_messages(std::string(kAccount), std::string(kToken)));
  HttpClient client("127.0.0.1", server.port(), 5000ms);
  client.set_basic_auth(kAccount, kToken);
  const std::string path = "/2010-04-01/Accounts/" + std::string(kAccount) + "/Messages.json";
  HttpResponse r = client.post_form(path, {{"To", "+15551234567"},
                                           {"MessagingServiceSid", "MG0123"},
                                           {"Body", "héllo & bye"},
                                           {"MediaUrl", "https://a.example/1.png"},
                                           {"MediaUrl", "https://a.example/2.png"}});
  EXPECT_EQ(r.status, 201u) << r.body;
  ASSERT_TRUE(r.json_ok) << r.body;
  EXPECT_EQ(r.json.at("to").as_string(), "+15551234567");
  EXPECT_EQ(r.json.at("status").as_string(), "queued");
  EXPECT_EQ(r.json.at("sid").as_string().size(), 34u);
  EXPECT_EQ(r.json.at("body").as_string(), "héllo & bye");

  ASSERT_TRUE(server.wait_for_requests(1, 5s));
  auto req = server.last_request();
  ASSERT_TRUE(req);
  EXPECT_EQ(req->method, "POST");
  EXPECT_EQ(req->path, path);
  EXPECT_EQ(req->form_value("Body"), "héllo & bye");
  EXPECT_EQ(req->form_values("MediaUrl").size(), 2u);
  auto auth = req->basic_auth();
  ASSERT_TRUE(auth);
  EXPECT_EQ(auth->first, kAccount);
  EXPECT_EQ(auth->second, kToken);

  client.set_basic_auth(kAccount, "wrong");
  r = client.post_form(path, {{"To", "+15551234567"}, {"Body", "x"}});
  EXPECT_EQ(r.status, 401u);
  client.set_basic_auth(kAccount, kToken);
  r = client.post_form(path, {{"Body", "x"}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.json.at("code").as_int64(), 21604);

  ASSERT_TRUE(server.wait_for_requests(3, 5s));
  EXPECT_EQ(server.connections_accepted(), 1u);  // keep-alive
  EXPECT_EQ(server.last_request()->request_on_connection, 3u);
}

TEST(FakeHttpServer, StatusSequenceDelayAndClose) {
  FakeHttpServer server;
  std::atomic<int> n{0};
  server.set_handler([&n](const FakeHttpRequest&) {
    FakeHttpResponse r;
    if (n++ == 0) {
      r.status = 503;
      r.headers = {{"Retry-After", "1"}};
      r.close = true;
    } else {
      r.delay = 200ms;
    }
    return r;
  });
  HttpClient client("127.0.0.1", server.port(), 5000ms);
  HttpResponse r = client.get("/a");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.header("retry-after"), "1");
  auto start = Clock::now();
  r = client.get("/b?x=1");
  EXPECT_EQ(r.status, 200u);
  EXPECT_GE(Clock::now() - start, 200ms);
  EXPECT_EQ(server.connections_accepted(), 2u);  // the 503 closed the first connection
  EXPECT_EQ(server.last_request()->query, "x=1");
}

// A Beast client over TLS, verifying the fake against the test CA; bounded by run_for.
TEST(FakeHttpServer, OAuthTokenEndpointOverTls) {
  FakeHttpOptions options;
  options.tls = true;
  FakeHttpServer server(options);
  server.set_handler(FakeHttpServer::oauth_token("ya29.test", 3599));
  ASSERT_EQ(server.url().substr(0, 8), "https://");

  auto post = [&](const std::string& body) {
    asio::io_context ioc;
    ssl::context ctx(ssl::context::tls_client);
    ctx.add_certificate_authority(asio::buffer(shared_test_pki().ca.certificate_pem));
    ctx.set_verify_mode(ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
    stream.set_verify_callback(ssl::host_name_verification("127.0.0.1"));
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/token", 11};
    req.set(bhttp::field::host, "127.0.0.1");
    req.set(bhttp::field::content_type, "application/x-www-form-urlencoded");
    req.body() = body;
    req.prepare_payload();
    bhttp::response<bhttp::string_body> res;
    beast::flat_buffer buffer;
    std::string error = "timeout";
    asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), server.port());
    beast::get_lowest_layer(stream).async_connect(ep, [&](boost::system::error_code ec) {
      if (ec) return void(error = ec.message());
      stream.async_handshake(ssl::stream_base::client, [&](boost::system::error_code ec) {
        if (ec) return void(error = ec.message());
        bhttp::async_write(stream, req, [&](boost::system::error_code ec, std::size_t) {
          if (ec) return void(error = ec.message());
          bhttp::async_read(stream, buffer, res, [&](boost::system::error_code ec, std::size_t) {
            error = ec ? ec.message() : "";
          });
        });
      });
    });
    ioc.run_for(5s);
    EXPECT_EQ(error, "");
    return res;
  };

  auto res = post("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=eyJ.eyJ.sig");
  EXPECT_EQ(res.result_int(), 200u);
  auto json = boost::json::parse(res.body()).as_object();
  EXPECT_EQ(json.at("access_token").as_string(), "ya29.test");
  EXPECT_EQ(json.at("expires_in").as_int64(), 3599);
  EXPECT_EQ(json.at("token_type").as_string(), "Bearer");
  ASSERT_TRUE(server.wait_for_requests(1, 5s));
  EXPECT_EQ(server.last_request()->form_value("assertion"), "eyJ.eyJ.sig");

  res = post("grant_type=client_credentials");
  EXPECT_EQ(res.result_int(), 400u);
}

TEST(TlsTestCerts, CaFileAndClientCertificates) {
  TempFile ca = write_ca_file();
  ASSERT_TRUE(std::filesystem::exists(ca.path()));
  EXPECT_EQ(std::filesystem::file_size(ca.path()), shared_test_pki().ca.certificate_pem.size());
  ClientCertOptions o;
  o.topic_uid = "com.example.voip";
  o.key_type = TestKeyType::kRsa2048;
  o.expired = true;
  PemCertKey c = make_client_cert(shared_test_pki().ca, o);
  EXPECT_EQ(c.certificate_pem.rfind("-----BEGIN CERTIFICATE-----", 0), 0u);
  EXPECT_EQ(c.private_key_pem.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
  std::filesystem::path p = ca.path();
  { TempFile moved = std::move(ca); }
  EXPECT_FALSE(std::filesystem::exists(p));
}

}  // namespace
}  // namespace notifyd::test
