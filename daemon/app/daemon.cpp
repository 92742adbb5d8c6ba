#include "daemon/app/daemon.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>

#include "daemon/api/router.hpp"
#include "daemon/config/config.hpp"
#include "daemon/fanout/callbacks.hpp"
#include "daemon/fanout/dispatcher.hpp"
#include "daemon/http/server.hpp"
#include "daemon/metrics/collectors/daemon_collectors.hpp"
#include "daemon/model/log.hpp"
#include "daemon/store/sqlite/sqlite_store.hpp"
#include "notifyd/version.hpp"
#include "transports/registry/registry.hpp"

namespace notifyd {
namespace {

void setup_logging(const Config& config) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("notifyd", sink);
  spdlog::set_default_logger(logger);
  // Under systemd the journal stamps each line itself.
  if (std::getenv("JOURNAL_STREAM")) {
    spdlog::set_pattern("[%n] %v");
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  }
  spdlog::set_level(spdlog::level::from_str(config.log.level));
}

std::unique_ptr<Store> open_store(const Config& config) {
  if (config.store.backend != "sqlite") {
    throw std::runtime_error("store backend '" + config.store.backend +
                             "' is not available in this build (only sqlite is)");
  }
  return std::make_unique<sqlite::SqliteStore>(sqlite::SqliteOptions{config.store.path});
}

}  // namespace

int check_config(const std::string& config_path) {
  try {
    Config config = load_config(config_path);
    std::cout << describe_config(config);
    std::cout << "configuration OK: " << config_path << "\n";
    return 0;
  } catch (const ConfigError& e) {
    std::cerr << "configuration error: " << e.what() << "\n";
    return 1;
  }
}

int run_daemon(const std::string& config_path) {
  std::shared_ptr<const Config> config;
  try {
    config = std::make_shared<const Config>(load_config(config_path));
  } catch (const ConfigError& e) {
    std::cerr << "notifyd: configuration error: " << e.what() << "\n";
    return 2;
  }
  setup_logging(*config);
  auto log = module_logger("main");
  log->info("notifyd {} starting with {}", kVersion, config_path);

  std::unique_ptr<Store> store;
  try {
    store = open_store(*config);
  } catch (const std::exception& e) {
    log->critical("cannot open the store: {}", e.what());
    return 1;
  }

  unsigned threads =
      config->server.threads ? config->server.threads : std::max(1u, std::thread::hardware_concurrency());
  boost::asio::io_context io(static_cast<int>(threads));
  api::Router router(config, *store, config->store.workers);

  http::ServerOptions options;
  options.host = config->server.listen_host;
  options.port = config->server.listen_port;
  options.max_header_bytes = config->server.max_header_bytes;
  options.header_timeout = std::chrono::milliseconds(config->server.header_timeout_ms);
  options.body_timeout = std::chrono::milliseconds(config->server.body_timeout_ms);
  http::Server server(io, options, router);

  // Delivery: transports by binding type, signed callbacks, and the dispatcher draining the outbox.
  std::unique_ptr<transport::TransportRegistry> transports;
  try {
    transports = std::make_unique<transport::TransportRegistry>(io.get_executor(), *config);
  } catch (const std::exception& e) {
    log->critical("cannot set up the transports: {}", e.what());
    return 1;
  }
  fanout::CallbackSender callbacks(io.get_executor());
  std::mutex config_mu;  // guards `config` across reloads, for the dispatcher's token lookups
  fanout::DispatcherDeps deps{
      *store,
      [&](std::string_view type) -> transport::Transport& { return transports->for_binding_type(type); },
      &callbacks,
      [&](std::string_view account_sid) -> std::optional<std::string> {
        std::lock_guard lk(config_mu);
        for (const auto& a : config->accounts) {
          if (a.sid == account_sid) return a.auth_token;
        }
        return std::nullopt;
      }};
  fanout::Dispatcher dispatcher(io.get_executor(), std::move(deps));
  metrics::add_daemon_collectors(router.metrics(), dispatcher, *transports);  // read by GET /metrics
  router.set_outbox_listener([&dispatcher] { dispatcher.wake(); });
  std::uint16_t port = 0;
  try {
    port = server.listen();
  } catch (const std::exception& e) {
    log->critical("cannot listen on {}:{}: {}", options.host, options.port, e.what());
    return 1;
  }
  dispatcher.start();
  router.set_ready(true);
  // Tests and scripts read this line to learn the port when listen uses port 0.
  log->info("listening on {}:{}", options.host, port);

  boost::asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  boost::asio::signal_set reload_signals(io, SIGHUP);
  std::function<void()> wait_reload;
  wait_reload = [&] {
    reload_signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      try {
        auto fresh = std::make_shared<const Config>(load_config(config_path));
        spdlog::set_level(spdlog::level::from_str(fresh->log.level));
        router.set_config(fresh);
        {
          std::lock_guard lk(config_mu);
          config = fresh;
        }
        log->info("configuration reloaded from {} (listen and [store] changes need a restart)", config_path);
      } catch (const ConfigError& e) {
        log->error("reload refused, keeping the running configuration: {}", e.what());
      }
      wait_reload();
    });
  };
  wait_reload();
  stop_signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    log->info("signal {}: stopping (finishing requests in progress)", signo);
    router.set_ready(false);
    reload_signals.cancel();
    auto grace = std::chrono::milliseconds(config->server.shutdown_timeout_ms);
    server.stop(grace, [&, grace] {
      log->info("all connections closed; draining deliveries");
      boost::asio::co_spawn(
          io,
          [](fanout::Dispatcher& d, transport::TransportRegistry& t, fanout::CallbackSender& c,
             std::chrono::milliseconds grace) -> boost::asio::awaitable<void> {
            co_await d.stop(grace);
            co_await t.drain();
            co_await c.drain(grace);
          }(dispatcher, *transports, callbacks, grace),
          [&](std::exception_ptr e) {
            if (e) log->error("shutdown did not complete cleanly");
            io.stop();
          });
    });
  });

  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : pool) t.join();
  log->info("stopped");
  return 0;
}

}  // namespace notifyd
