#pragma once
// Router: the http::Handler of the API. Matches paths exactly, authenticates (before anything else, so a
// 401 comes before a 404), decodes forms, and runs the resource handler on the store worker pool.
// Owned by the app; handle() runs on a connection's I/O thread and never blocks it. Turns every
// ApiError into Twilio's JSON error body; nothing escapes as an exception. Owns the process's metrics
// registry: counts every request it answers by route template, method and status, times it, and serves
// GET /metrics (behind [metrics] bearer_token when one is configured).
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "daemon/api/resource.hpp"
#include "daemon/config/config.hpp"
#include "daemon/http/server.hpp"
#include "daemon/metrics/registry.hpp"

namespace notifyd::api {

class Router final : public http::Handler {
 public:
  // `workers` threads run resource handlers (and so every store call).
  Router(std::shared_ptr<const Config> config, Store& store, unsigned workers);
  ~Router() override;

  boost::asio::awaitable<http::Response> handle(http::Request request) override;
  std::size_t body_limit(std::string_view method, std::string_view target) const override;
  http::Response error_response(const ApiError& error) const override;

  // Swaps in a new configuration (accounts, keys, public_url) for requests that start afterwards.
  void set_config(std::shared_ptr<const Config> config);
  // /healthz answers 200 only once this is set (store open, listener up).
  void set_ready(bool ready);
  // Called (on a worker thread) after a notification is stored, to wake the dispatcher.
  void set_outbox_listener(std::function<void()> listener);
  // What /metrics shows; the app adds its collectors here. Lives as long as the router.
  metrics::Registry& metrics();

 private:
  std::shared_ptr<const Config> config() const;
  // The response to `request`, whose path matched routes()[route_index] with `params` (or no route, when
  // route_index is past the table).
  boost::asio::awaitable<http::Response> respond(http::Request request, std::size_t route_index,
                                                 std::vector<std::string> params);
  http::Response metrics_response(const http::Request& request, const Config& config) const;

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace notifyd::api
