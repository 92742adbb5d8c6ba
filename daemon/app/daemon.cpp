#include "daemon/app/daemon.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
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
#include "daemon/model/thread_name.hpp"
#include "daemon/service/logging.hpp"
#include "daemon/service/service_notifier.hpp"
#include "daemon/store/sqlite/sqlite_store.hpp"
#include "notifyd/version.hpp"
#include "transports/registry/registry.hpp"

namespace notifyd {
namespace {

std::unique_ptr<Store> open_store(const Config& config) {
  if (config.store.backend != "sqlite") {
    throw std::runtime_error("store backend '" + config.store.backend +
                             "' is not available in this build (only sqlite is)");
  }
  return std::make_unique<sqlite::SqliteStore>(sqlite::SqliteOptions{config.store.path});
}

// What is left of a stop's budget, never less than enough to write the outcomes already known.
std::chrono::milliseconds remaining(std::chrono::steady_clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return std::max(left, std::chrono::milliseconds(200));
}

boost::asio::awaitable<void> drain_transports(transport::TransportRegistry& transports,
                                              std::shared_ptr<std::atomic<bool>> drained) {
  co_await transports.drain();
  *drained = true;
}

// The deliveries' part of a stop. The dispatcher stops claiming first, then the transports drain: sends
// still waiting for a stream come back unsent and stay pending in the store; streams on the wire finish
// and their outcomes are written. Bounded by `deadline`: whatever is still on the wire then stays leased
// and is sent again (same apns-id) after the next start.
// `delivery_executor`: the transports' own. Their drain runs there, not on the caller's: when the deadline
// passes first, what is left of it is destroyed with the delivery io_context, beside the pools it holds.
boost::asio::awaitable<void> stop_deliveries(fanout::Dispatcher& dispatcher,
                                             transport::TransportRegistry& transports,
                                             fanout::CallbackSender& callbacks,
                                             boost::asio::any_io_executor delivery_executor,
                                             std::chrono::steady_clock::time_point deadline) {
  auto executor = co_await boost::asio::this_coro::executor;
  co_await dispatcher.begin_stop();
  auto drained = std::make_shared<std::atomic<bool>>(false);
  boost::asio::co_spawn(delivery_executor, drain_transports(transports, drained), [](std::exception_ptr e) {
    if (e) module_logger("main")->error("draining the transports failed");
  });
  co_await dispatcher.stop(remaining(deadline));
  boost::asio::steady_timer poll(executor);
  while (!*drained && std::chrono::steady_clock::now() < deadline) {
    poll.expires_after(std::chrono::milliseconds(10));
    boost::system::error_code ec;
    co_await poll.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }
  if (!*drained)
    module_logger("main")->warn("transports not drained within shutdown_timeout: closing their connections");
  co_await callbacks.drain(remaining(deadline));
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
  service::setup_logging(config->log.level);
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

  // Delivery: transports by binding type, signed callbacks, and the dispatcher draining the outbox, on their
  // own io_context and threads (one by default). On one thread a delivery goes from the dispatcher to its
  // connection and its answer back without a thread crossing (a wake-up, reference counts bouncing between
  // cores), and the API's threads stay free for requests during a fan-out: with them on the two I/O threads a
  // delivery cost 8.6-10.2 us of CPU against 6.7-8.0 us on one (bench/README, sixth round, item 1).
  // Its concurrency hint is its thread count, as run below: with one thread (hint 1), make_strand_executor()
  // gives its executor itself, no strand, to everything on it, which is only safe while one thread runs it.
  boost::asio::io_context delivery_io(static_cast<int>(config->server.delivery_threads));
  auto delivery_work = boost::asio::make_work_guard(delivery_io);  // its loops start after run()
  std::unique_ptr<transport::TransportRegistry> transports;
  try {
    transports = std::make_unique<transport::TransportRegistry>(delivery_io.get_executor(), *config);
  } catch (const std::exception& e) {
    log->critical("cannot set up the transports: {}", e.what());
    return 1;
  }
  fanout::CallbackSender callbacks(delivery_io.get_executor());
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
  fanout::Dispatcher dispatcher(delivery_io.get_executor(), std::move(deps));
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

  // systemd: READY=1 from the running loop (the store is open and the acceptor is listening by now),
  // then WATCHDOG=1 and STATUS= ticks from the same loop.
  service::ServiceNotifier notifier(io.get_executor(), [&dispatcher] {
    auto s = dispatcher.stats();
    return "serving; queue depth " + std::to_string(s.queue_depth) + ", in flight " +
           std::to_string(s.in_flight) + ", delivered " + std::to_string(s.delivered) + ", failed " +
           std::to_string(s.failed);
  });
  boost::asio::post(io, [&notifier] { notifier.ready(); });

  boost::asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  boost::asio::signal_set reload_signals(io, SIGHUP);
  std::function<void()> wait_reload;
  wait_reload = [&] {
    reload_signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      notifier.reloading();
      try {
        auto fresh = std::make_shared<const Config>(load_config(config_path));
        // Transports first: an unusable URL or CA file refuses the whole reload before anything is swapped.
        if (auto problem = transports->reconfigure(*fresh)) throw ConfigError(*problem);
        service::set_log_level(fresh->log.level);
        router.set_config(fresh);
        {
          std::lock_guard lk(config_mu);
          config = fresh;
        }
        log->info(
            "configuration reloaded from {} (listen, threads, delivery_threads and [store] changes need a "
            "restart)",
            config_path);
      } catch (const ConfigError& e) {
        log->error("reload refused, keeping the running configuration: {}", e.what());
      }
      notifier.ready();
      wait_reload();
    });
  };
  wait_reload();
  stop_signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    log->info("signal {}: stopping (finishing requests in progress)", signo);
    notifier.stopping("stopping: finishing requests, then draining deliveries");
    router.set_ready(false);
    reload_signals.cancel();
    // One budget for the whole stop: HTTP requests first, then the deliveries, then callbacks.
    std::chrono::milliseconds budget;
    {
      std::lock_guard lk(config_mu);  // a reload may be swapping it on another I/O thread
      budget = std::chrono::milliseconds(config->server.shutdown_timeout_ms);
    }
    auto deadline = std::chrono::steady_clock::now() + budget;
    server.stop(remaining(deadline), [&, deadline] {
      log->info("all connections closed; draining deliveries");
      boost::asio::co_spawn(
          io, stop_deliveries(dispatcher, *transports, callbacks, delivery_io.get_executor(), deadline),
          [&](std::exception_ptr e) {
            if (e) log->error("shutdown did not complete cleanly");
            notifier.stop_ticks();
            io.stop();
          });
    });
  });

  std::vector<std::thread> delivery_threads;
  for (unsigned i = 0; i < config->server.delivery_threads; ++i) {
    delivery_threads.emplace_back([&] {
      set_thread_name("notifyd-send");
      delivery_io.run();
    });
  }
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) {
    pool.emplace_back([&] {
      set_thread_name("notifyd-io");  // the main thread, the first I/O thread, keeps the process's name
      io.run();
    });
  }
  io.run();
  for (auto& t : pool) t.join();
  // The stop above has drained the deliveries; what is left on delivery_io (idle timers, keepalives) ends
  // here.
  delivery_work.reset();
  delivery_io.stop();
  for (auto& t : delivery_threads) t.join();
  log->info("stopped");
  return 0;
}

}  // namespace notifyd
