// GET /metrics: the API's request counters and latency histogram through the real listener, the optional
// bearer token (and its reload through Router::set_config), and delivery/transport metrics from a real
// Dispatcher sending through the real TransportRegistry to an in-process fake APNs (token auth).
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <future>
#include <optional>
#include <regex>
#include <thread>

#include "daemon/api/router.hpp"
#include "daemon/fanout/dispatcher.hpp"
#include "daemon/fanout/notification.hpp"
#include "daemon/http/server.hpp"
#include "daemon/metrics/collectors/daemon_collectors.hpp"
#include "daemon/metrics/text_format.hpp"
#include "daemon/model/sid.hpp"
#include "daemon/model/time.hpp"
#include "daemon/store/sqlite/sqlite_store.hpp"
#include "tests/support/fake_h2_server.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/run_coroutine.hpp"
#include "tests/support/test_credentials.hpp"
#include "tests/support/tls_test_certs.hpp"
#include "transports/registry/registry.hpp"

namespace notifyd::test {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

constexpr std::string_view kAccountSid = "AC0123456789abcdef0123456789abcdef";
constexpr std::string_view kAuthToken = "token-of-account-one";

fs::path make_temp_dir(const char* prefix) {
  std::string pattern = (fs::temp_directory_path() / (std::string(prefix) + "XXXXXX")).string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

// The value of the sample whose line starts with `series` (name and labels exactly as rendered), or nullopt.
std::optional<double> sample(const std::string& text, const std::string& series) {
  std::size_t pos = 0;
  while ((pos = text.find(series + " ", pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      const auto end = text.find('\n', pos);
      return std::stod(text.substr(pos + series.size() + 1, end - pos - series.size() - 1));
    }
    pos += series.size();
  }
  return std::nullopt;
}

std::string requests(std::string_view route, std::string_view method, std::string_view status) {
  return "notifyd_http_requests_total{route=\"" + std::string(route) + "\",method=\"" + std::string(method) +
         "\",status=\"" + std::string(status) + "\"}";
}

// The real Router and http::Server on 127.0.0.1 port 0 over a SqliteStore in a temp dir, with a Config
// the test may replace (as SIGHUP does) through reload().
class MetricsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::warn);
    dir_ = make_temp_dir("notifyd-metrics-");
    store_ = std::make_unique<sqlite::SqliteStore>(sqlite::SqliteOptions{(dir_ / "notifyd.db").string()});
    router_ = std::make_unique<api::Router>(make_config(""), *store_, 2);
    http::ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<http::Server>(io_, options, *router_);
    port_ = server_->listen();
    reload("");
    router_->set_ready(true);
    work_.emplace(io_.get_executor());
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }

  void TearDown() override {
    if (server_) {
      auto stopped = std::make_shared<std::promise<void>>();
      auto done = stopped->get_future();
      server_->stop(std::chrono::milliseconds(2000), [stopped] { stopped->set_value(); });
      EXPECT_EQ(done.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    }
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
    router_.reset();
    server_.reset();
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::shared_ptr<const Config> make_config(const std::string& bearer_token) const {
    auto cfg = std::make_shared<Config>();
    cfg->server.listen_port = port_;
    cfg->server.public_url = "http://127.0.0.1:" + std::to_string(port_);
    AccountConfig account;
    account.sid = kAccountSid;
    account.auth_token = kAuthToken;
    cfg->accounts = {account};
    cfg->metrics.bearer_token = bearer_token;
    return cfg;
  }
  void reload(const std::string& bearer_token) { router_->set_config(make_config(bearer_token)); }

  HttpClient client() const {
    HttpClient c("127.0.0.1", port_);
    c.set_basic_auth(kAccountSid, kAuthToken);
    return c;
  }
  HttpResponse scrape(std::optional<std::string> authorization = "") const {
    HttpClient c("127.0.0.1", port_);
    HttpRequest r;
    r.target = "/metrics";
    r.authorization = std::move(authorization);
    return c.send(r);
  }

  fs::path dir_;
  std::unique_ptr<sqlite::SqliteStore> store_;
  std::unique_ptr<api::Router> router_;
  asio::io_context io_{2};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::unique_ptr<http::Server> server_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
};

TEST_F(MetricsApiTest, CountsRequestsByRouteTemplateMethodAndStatusAndTimesThem) {
  auto c = client();
  auto created = c.post_form("/v1/Services", {{"FriendlyName", "metrics"}});
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string sid(created.json.as_object().at("sid").as_string());
  EXPECT_EQ(c.get("/v1/Services/" + sid).status, 200u);
  EXPECT_EQ(c.get("/v1/Services/" + sid).status, 200u);
  EXPECT_EQ(c.get("/v1/Services/IS00000000000000000000000000000000").status, 404u);
  EXPECT_EQ(c.get("/v1/Services/" + sid + "/Bindings").status, 200u);
  EXPECT_EQ(c.get("/no/such/path").status, 404u);
  EXPECT_EQ(c.get("/v1//Services").status, 404u);
  HttpRequest patch;
  patch.method = "PATCH";
  patch.target = "/v1/Services";
  EXPECT_EQ(c.send(patch).status, 405u);
  HttpClient anonymous("127.0.0.1", port_);
  EXPECT_EQ(anonymous.get("/v1/Services").status, 401u);
  EXPECT_EQ(anonymous.get("/healthz").status, 200u);

  auto r = scrape();
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = r.body;
  EXPECT_NE(text.find("# HELP notifyd_http_requests_total "), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE notifyd_http_requests_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE notifyd_http_request_duration_seconds histogram\n"), std::string::npos) << text;
  EXPECT_EQ(sample(text, requests("/v1/Services", "POST", "201")), 1);
  EXPECT_EQ(sample(text, requests("/v1/Services/{IS}", "GET", "200")), 2);
  EXPECT_EQ(sample(text, requests("/v1/Services/{IS}", "GET", "404")), 1);
  EXPECT_EQ(sample(text, requests("/v1/Services/{IS}/Bindings", "GET", "200")), 1);
  EXPECT_EQ(sample(text, requests("other", "GET", "404")), 2);  // unknown and unclean paths
  EXPECT_EQ(sample(text, requests("/v1/Services", "PATCH", "405")), 1);
  EXPECT_EQ(sample(text, requests("/v1/Services", "GET", "401")), 1);
  EXPECT_EQ(sample(text, requests("/healthz", "GET", "200")), 1);
  // Paths never become labels: the SIDs are not in the scrape.
  EXPECT_EQ(text.find(sid), std::string::npos);
  EXPECT_EQ(text.find("/no/such/path"), std::string::npos);

  const std::string route = "{route=\"/v1/Services/{IS}\"";
  EXPECT_EQ(sample(text, "notifyd_http_request_duration_seconds_count" + route + "}"), 3);
  EXPECT_EQ(sample(text, "notifyd_http_request_duration_seconds_bucket" + route + ",le=\"+Inf\"}"), 3);
  EXPECT_TRUE(sample(text, "notifyd_http_request_duration_seconds_bucket" + route + ",le=\"0.001\"}"));
  EXPECT_TRUE(sample(text, "notifyd_http_request_duration_seconds_bucket" + route + ",le=\"10\"}"));
  EXPECT_GT(*sample(text, "notifyd_http_request_duration_seconds_sum" + route + "}"), 0);
  // Every route has its histogram from the start, so rates exist before the first request.
  EXPECT_EQ(sample(text, "notifyd_http_request_duration_seconds_count{route=\"/v1/Credentials/{CR}\"}"), 0);

  // The scrape itself is counted, once answered.
  auto again = scrape();
  EXPECT_EQ(sample(again.body, requests("/metrics", "GET", "200")), 1);
  EXPECT_EQ(sample(again.body, "notifyd_http_request_duration_seconds_count{route=\"/metrics\"}"), 1);
}

TEST_F(MetricsApiTest, OpenWithoutATokenAndGetOnly) {
  EXPECT_EQ(scrape().status, 200u);
  HttpClient c("127.0.0.1", port_);
  for (const char* method : {"POST", "DELETE", "PUT"}) {
    HttpRequest r;
    r.method = method;
    r.target = "/metrics";
    auto response = c.send(r);
    EXPECT_EQ(response.status, 405u) << method;
    EXPECT_EQ(response.header("Allow"), "GET") << method;
  }
}

TEST_F(MetricsApiTest, BearerTokenIsRequiredOnceConfiguredAndFollowsReloads) {
  reload("scrape-token-1");
  auto missing = scrape();
  EXPECT_EQ(missing.status, 401u);
  EXPECT_EQ(missing.header("WWW-Authenticate"), "Bearer realm=\"notifyd metrics\"");
  EXPECT_EQ(missing.body.find("notifyd_"), std::string::npos);
  EXPECT_EQ(scrape("Bearer scrape-token-2").status, 401u);
  EXPECT_EQ(scrape("Bearer scrape-token-1x").status, 401u);
  EXPECT_EQ(scrape("Bearer ").status, 401u);
  EXPECT_EQ(scrape("Basic c2NyYXBlLXRva2VuLTE=").status, 401u);  // the token as Basic credentials
  {
    HttpClient account = client();  // an account's Basic credentials are not the metrics token
    EXPECT_EQ(account.get("/metrics").status, 401u);
  }
  auto ok = scrape("Bearer scrape-token-1");
  EXPECT_EQ(ok.status, 200u);
  EXPECT_NE(ok.body.find("notifyd_http_requests_total"), std::string::npos);
  EXPECT_EQ(scrape("bearer scrape-token-1").status, 200u);  // the scheme is case-insensitive

  // SIGHUP hands the router a new Config: the new token replaces the old one.
  reload("scrape-token-2");
  EXPECT_EQ(scrape("Bearer scrape-token-1").status, 401u);
  EXPECT_EQ(scrape("Bearer scrape-token-2").status, 200u);
  reload("");
  EXPECT_EQ(scrape().status, 200u);

  const auto text = scrape().body;
  EXPECT_EQ(sample(text, requests("/metrics", "GET", "401")), 7);
}

// ---- delivery and transport metrics ----

// A real Dispatcher over a SqliteStore sends through the real TransportRegistry to a fake APNs (token
// auth); the registry's collectors report what happened.
class MetricsDeliveryTest : public ::testing::Test {
 protected:
  static constexpr std::string_view kAccount = kAccountSid;

  void SetUp() override {
    spdlog::set_level(spdlog::level::warn);
    dir_ = make_temp_dir("notifyd-metrics-delivery-");
    store_ = std::make_unique<sqlite::SqliteStore>(sqlite::SqliteOptions{(dir_ / "db").string()});
    apns_.set_handler([this](const FakeRequest& r) {
      if (r.path.ends_with(bad_token_)) return FakeResponse::json(400, R"({"reason":"BadDeviceToken"})");
      return FakeResponse{};
    });
    Config config;
    config.apns.production_url = apns_.url();
    config.apns.sandbox_url = apns_.url();
    config.apns.ca_file = ca_file_.string();
    transports_ = std::make_unique<transport::TransportRegistry>(io_.executor(), config);

    CredentialRecord c;
    c.sid = make_sid("CR");
    c.account_sid = kAccount;
    c.type = "apn";
    c.private_key = make_p8_key();
    c.apn_key_id = "KEYID12345";
    c.apn_team_id = "TEAMID1234";
    c.apn_topic = "com.example.token";
    c.date_created = c.date_updated = now_seconds();
    credential_ = store_->insert_credential(c).value();
    ServiceRecord s;
    s.sid = make_sid("IS");
    s.account_sid = kAccount;
    s.apn_credential_sid = credential_.sid;
    s.date_created = s.date_updated = now_seconds();
    service_ = store_->insert_service(s).value();
  }

  void TearDown() override {
    if (dispatcher_) io_.run(dispatcher_->stop(std::chrono::seconds(5)));
    if (transports_) io_.run(transports_->drain());
    dispatcher_.reset();
    transports_.reset();
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  BindingRecord add_binding(const std::string& identity, const std::string& address) {
    BindingRecord b;
    b.sid = make_sid("BS");
    b.account_sid = kAccount;
    b.service_sid = service_.sid;
    b.identity = identity;
    b.binding_type = "apn";
    b.address = address;
    b.tags = {"t"};
    b.notification_protocol_version = "3";
    b.date_created = b.date_updated = now_seconds();
    return store_->insert_binding(b).value().binding;
  }

  void start() {
    fanout::DispatcherDeps deps{*store_,
                                [this](std::string_view type) -> transport::Transport& {
                                  return transports_->for_binding_type(type);
                                },
                                nullptr,
                                {}};
    fanout::DispatcherOptions o;
    o.idle_poll = std::chrono::milliseconds(20);
    dispatcher_ = std::make_unique<fanout::Dispatcher>(io_.executor(), std::move(deps), o);
    metrics::add_daemon_collectors(registry_, *dispatcher_, *transports_);
    dispatcher_->start();
  }

  void notify_tag(const std::string& tag) {
    fanout::NotificationRequest n;
    n.tags = {tag};
    n.body = "hello";
    n.ttl = 3600;
    NotificationRecord r;
    r.sid = make_sid("NT");
    r.account_sid = kAccount;
    r.service_sid = service_.sid;
    r.request = boost::json::serialize(fanout::to_json(n));
    r.date_created = now_seconds();
    r.expires_at = r.date_created + n.ttl;
    store_->insert_notification(r, {}).value();
    dispatcher_->wake();
  }

  std::string scrape() const { return metrics::render_text(registry_.collect()); }

  TempFile ca_file_ = write_ca_file();
  FakeH2Server apns_;
  IoThreads io_{2};
  fs::path dir_;
  std::unique_ptr<sqlite::SqliteStore> store_;
  std::unique_ptr<transport::TransportRegistry> transports_;
  std::unique_ptr<fanout::Dispatcher> dispatcher_;
  metrics::Registry registry_;
  CredentialRecord credential_;
  ServiceRecord service_;
  std::string bad_token_ = std::string(64, 'd');
};

TEST_F(MetricsDeliveryTest, DeliveriesByChannelAndOutcomeAndApnsTokenMints) {
  add_binding("alice", std::string(64, 'a'));
  add_binding("bob", std::string(64, 'b'));
  const auto gone = add_binding("carol", bad_token_);
  start();
  {
    // Before any delivery: no pool, no token yet.
    const auto text = scrape();
    EXPECT_EQ(sample(text, "notifyd_token_refreshes_total{transport=\"apns\"}"), 0) << text;
    EXPECT_EQ(sample(text, "notifyd_transport_pools{transport=\"apns\"}"), 0) << text;
  }
  notify_tag("t");

  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    text = scrape();
    if (sample(text, "notifyd_deliveries_total{channel=\"apn\",outcome=\"delivered\"}") == 2 &&
        sample(text, "notifyd_bindings_removed_total{channel=\"apn\"}") == 1) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(sample(text, "notifyd_notifications_accepted_total"), 1) << text;
  EXPECT_EQ(sample(text, "notifyd_deliveries_total{channel=\"apn\",outcome=\"delivered\"}"), 2) << text;
  EXPECT_EQ(sample(text, "notifyd_deliveries_total{channel=\"apn\",outcome=\"failed\"}"), 1) << text;
  EXPECT_EQ(sample(text, "notifyd_deliveries_total{channel=\"apn\",outcome=\"expired\"}"), 0) << text;
  EXPECT_EQ(sample(text, "notifyd_delivery_attempts_total{channel=\"apn\",result=\"delivered\"}"), 2) << text;
  EXPECT_EQ(sample(text, "notifyd_delivery_attempts_total{channel=\"apn\",result=\"invalid_address\"}"), 1)
      << text;
  EXPECT_EQ(sample(text, "notifyd_bindings_removed_total{channel=\"apn\"}"), 1) << text;
  EXPECT_FALSE(store_->find_binding(kAccount, service_.sid, gone.sid));
  // One provider token minted and reused for all three requests, on one connection of one pool.
  EXPECT_EQ(sample(text, "notifyd_token_refreshes_total{transport=\"apns\"}"), 1) << text;
  EXPECT_EQ(sample(text, "notifyd_token_refreshes_total{transport=\"fcm\"}"), 0) << text;
  EXPECT_EQ(sample(text, "notifyd_transport_pools{transport=\"apns\"}"), 1) << text;
  EXPECT_EQ(sample(text, "notifyd_transport_connections{transport=\"apns\"}"), 1) << text;
  EXPECT_EQ(sample(text, "notifyd_transport_connections_opened_total{transport=\"apns\"}"), 1) << text;
  EXPECT_EQ(sample(text, "notifyd_transport_streams_open{transport=\"apns\"}"), 0) << text;
  EXPECT_EQ(apns_.request_count(), 3u);
  EXPECT_NE(text.find("# TYPE notifyd_deliveries_in_flight gauge\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE notifyd_delivery_queue_depth gauge\n"), std::string::npos);
}

}  // namespace
}  // namespace notifyd::test
