#include "tests/support/api_fixture.hpp"

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <future>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "daemon/api/router.hpp"
#include "daemon/http/server.hpp"
#include "daemon/store/sqlite/sqlite_store.hpp"

namespace notifyd::test {

namespace asio = boost::asio;

struct ApiFixture::Impl {
  std::filesystem::path temp_dir;
  std::unique_ptr<sqlite::SqliteStore> store;
  std::unique_ptr<api::Router> router;
  asio::io_context io{2};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::unique_ptr<http::Server> server;
  std::vector<std::thread> threads;

  ~Impl() { shutdown(); }

  void shutdown() {
    if (server) {
      auto stopped = std::make_shared<std::promise<void>>();
      auto done = stopped->get_future();
      server->stop(std::chrono::milliseconds(2000), [stopped] { stopped->set_value(); });
      if (done.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
        ADD_FAILURE() << "http::Server did not report stopped within 5 s";
      }
    }
    work.reset();
    io.stop();
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
    threads.clear();
    router.reset();  // joins its worker pool
    server.reset();
    store.reset();
    if (!temp_dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(temp_dir, ec);
      temp_dir.clear();
    }
  }
};

ApiFixture::ApiFixture() = default;
ApiFixture::~ApiFixture() = default;

void ApiFixture::SetUp() {
  spdlog::set_level(spdlog::level::warn);
  impl_ = std::make_unique<Impl>();

  std::string pattern = (std::filesystem::temp_directory_path() / "notifyd-api-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  impl_->temp_dir = pattern;

  auto cfg = std::make_shared<Config>();
  cfg->source_path = "<api_fixture>";
  cfg->server.listen_host = "127.0.0.1";
  cfg->server.listen_port = 0;
  cfg->store.path = (impl_->temp_dir / "notifyd.db").string();
  cfg->store.workers = 4;
  AccountConfig one;
  one.sid = kAccountSid;
  one.auth_token = kAuthToken;
  one.api_keys.push_back(ApiKeyConfig{std::string(kApiKeySid), std::string(kApiKeySecret)});
  AccountConfig two;
  two.sid = kOtherAccountSid;
  two.auth_token = kOtherAuthToken;
  cfg->accounts = {one, two};

  impl_->store = std::make_unique<sqlite::SqliteStore>(sqlite::SqliteOptions{cfg->store.path});
  impl_->router = std::make_unique<api::Router>(cfg, *impl_->store, cfg->store.workers);
  http::ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  impl_->server = std::make_unique<http::Server>(impl_->io, options, *impl_->router);
  port_ = impl_->server->listen();

  // The port is known only now: public_url follows it.
  base_url_ = "http://127.0.0.1:" + std::to_string(port_);
  cfg->server.listen_port = port_;
  cfg->server.public_url = base_url_;
  config_ = cfg;
  impl_->router->set_config(config_);
  impl_->router->set_ready(true);

  impl_->work.emplace(impl_->io.get_executor());
  for (int i = 0; i < 2; ++i) impl_->threads.emplace_back([this] { impl_->io.run(); });
}

void ApiFixture::TearDown() {
  if (impl_) impl_->shutdown();
  impl_.reset();
}

void ApiFixture::set_ready(bool ready) { impl_->router->set_ready(ready); }

HttpClient ApiFixture::client() const {
  HttpClient c("127.0.0.1", port_);
  c.set_basic_auth(kAccountSid, kAuthToken);
  return c;
}

HttpClient ApiFixture::other_client() const {
  HttpClient c("127.0.0.1", port_);
  c.set_basic_auth(kOtherAccountSid, kOtherAuthToken);
  return c;
}

HttpClient ApiFixture::anonymous_client() const { return HttpClient("127.0.0.1", port_); }

std::string ApiFixture::create_service(HttpClient& c, const Form& form) {
  auto r = c.post_form("/v1/Services", form);
  EXPECT_EQ(r.status, 201u) << r.body;
  if (r.status != 201 || !r.json.is_object()) return {};
  const auto* sid = r.json.as_object().if_contains("sid");
  return sid && sid->is_string() ? std::string(sid->as_string()) : std::string();
}

}  // namespace notifyd::test
