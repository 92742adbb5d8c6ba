#include "daemon/api/router.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>
#include <chrono>

#include "daemon/api/auth.hpp"
#include "daemon/api/render.hpp"
#include "daemon/metrics/text_format.hpp"
#include "daemon/model/log.hpp"

namespace notifyd::api {
namespace {

struct MethodHandler {
  std::string_view method;
  ResourceHandler handler;
};

// A path pattern: literal segments, and "*" for a {Sid} placeholder. `name` is the template that
// metrics label requests with (a bounded set, unlike the paths themselves).
struct Route {
  std::string_view name;
  std::vector<std::string_view> segments;
  std::vector<MethodHandler> methods;
};

const std::vector<Route>& routes() {
  static const std::vector<Route> kRoutes = {
      {"/v1/Credentials", {"v1", "Credentials"}, {{"GET", list_credentials}, {"POST", create_credential}}},
      {"/v1/Credentials/{CR}",
       {"v1", "Credentials", "*"},
       {{"GET", fetch_credential}, {"POST", update_credential}, {"DELETE", delete_credential}}},
      {"/v1/Services", {"v1", "Services"}, {{"GET", list_services}, {"POST", create_service}}},
      {"/v1/Services/{IS}",
       {"v1", "Services", "*"},
       {{"GET", fetch_service}, {"POST", update_service}, {"DELETE", delete_service}}},
      {"/v1/Services/{IS}/Bindings",
       {"v1", "Services", "*", "Bindings"},
       {{"GET", list_bindings}, {"POST", create_binding}}},
      {"/v1/Services/{IS}/Bindings/{BS}",
       {"v1", "Services", "*", "Bindings", "*"},
       {{"GET", fetch_binding}, {"DELETE", delete_binding}}},
      {"/v1/Services/{IS}/Notifications",
       {"v1", "Services", "*", "Notifications"},
       {{"POST", create_notification}}},
      {"/conversations/v1/Services/{IS}/Bindings",
       {"conversations", "v1", "Services", "*", "Bindings"},
       {{"GET", list_conversations_bindings}}},
      {"/conversations/v1/Services/{IS}/Bindings/{BS}",
       {"conversations", "v1", "Services", "*", "Bindings", "*"},
       {{"GET", fetch_conversations_binding}, {"DELETE", delete_conversations_binding}}},
  };
  return kRoutes;
}

// Metric labels past the route table: the two fixed paths, then everything else.
std::size_t healthz_label() { return routes().size(); }
std::size_t metrics_label() { return routes().size() + 1; }
std::size_t other_label() { return routes().size() + 2; }

std::string_view route_label(std::size_t index) {
  if (index < routes().size()) return routes()[index].name;
  if (index == healthz_label()) return "/healthz";
  if (index == metrics_label()) return "/metrics";
  return "other";
}

// The method as a label: any other token a client sends is "other", so labels stay bounded.
std::string_view method_label(std::string_view method) {
  static constexpr std::array<std::string_view, 7> kMethods = {"GET",   "POST", "DELETE", "PUT",
                                                               "PATCH", "HEAD", "OPTIONS"};
  for (auto m : kMethods) {
    if (m == method) return m;
  }
  return "other";
}

// `Authorization: Bearer <token>` (the scheme is case-insensitive) carrying exactly `expected`.
bool bearer_matches(std::string_view header, std::string_view expected) {
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), header.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
      })) {
    return false;
  }
  return equal_constant_time(header.substr(kBearer.size()), expected);
}

// Splits "/a/b/c" into segments; nullopt for anything but a clean absolute path (no empty
// segments from "//" or a trailing "/", no dot-segments): such paths are 404, never normalised.
std::optional<std::vector<std::string_view>> split_path(std::string_view path) {
  if (path.empty() || path[0] != '/') return std::nullopt;
  std::vector<std::string_view> out;
  std::size_t pos = 1;
  if (path.size() == 1) return out;
  while (pos <= path.size()) {
    auto end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    auto seg = path.substr(pos, end - pos);
    if (seg.empty() || seg == "." || seg == "..") return std::nullopt;
    out.push_back(seg);
    pos = end + 1;
  }
  return out;
}

const Route* match(const std::vector<std::string_view>& segments, std::vector<std::string>& params) {
  for (const auto& route : routes()) {
    if (route.segments.size() != segments.size()) continue;
    std::vector<std::string> found;
    bool ok = true;
    for (std::size_t i = 0; i < segments.size() && ok; ++i) {
      if (route.segments[i] == "*") {
        found.emplace_back(segments[i]);
      } else {
        ok = route.segments[i] == segments[i];
      }
    }
    if (ok) {
      params = std::move(found);
      return &route;
    }
  }
  return nullptr;
}

http::Response json(unsigned status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// Runs one resource handler on the worker pool (a coroutine with parameters by value, so nothing it
// uses dies before it finishes).
boost::asio::awaitable<Result<ResourceResponse>> run_handler(ResourceHandler handler, Store* store,
                                                             std::shared_ptr<ResourceRequest> request) {
  try {
    co_return handler(*store, *request);
  } catch (const std::exception& e) {
    module_logger("api")->error("{} {}: handler failed: {}", request->method, request->path, e.what());
    co_return internal_error("Internal error");
  }
}

}  // namespace

struct Router::Impl {
  mutable std::mutex config_mu;
  std::shared_ptr<const Config> config;
  Store& store;
  boost::asio::thread_pool workers;
  std::atomic<bool> ready{false};
  std::function<void()> on_outbox_change;

  metrics::Registry metrics;
  metrics::Family<metrics::Counter>& requests;
  std::vector<metrics::Histogram*> durations;  // by route label index, made up front: no lookup per request

  Impl(std::shared_ptr<const Config> c, Store& s, unsigned n)
      : config(std::move(c)),
        store(s),
        workers(n),
        requests(metrics.counter("notifyd_http_requests_total",
                                 "HTTP API requests answered, by route template, method and status.",
                                 {"route", "method", "status"})) {
    auto& family = metrics.histogram("notifyd_http_request_duration_seconds",
                                     "Time from a request's arrival at the router to its response, by route.",
                                     {"route"}, metrics::latency_buckets_seconds());
    for (std::size_t i = 0; i <= other_label(); ++i) durations.push_back(&family.with({route_label(i)}));
  }
};

Router::Router(std::shared_ptr<const Config> config, Store& store, unsigned workers)
    : impl_(std::make_unique<Impl>(std::move(config), store, workers)) {}

Router::~Router() { impl_->workers.join(); }

void Router::set_config(std::shared_ptr<const Config> config) {
  std::lock_guard lk(impl_->config_mu);
  impl_->config = std::move(config);
}

void Router::set_ready(bool ready) { impl_->ready = ready; }

metrics::Registry& Router::metrics() { return impl_->metrics; }

void Router::set_outbox_listener(std::function<void()> listener) {
  std::lock_guard lk(impl_->config_mu);
  impl_->on_outbox_change = std::move(listener);
}

std::shared_ptr<const Config> Router::config() const {
  std::lock_guard lk(impl_->config_mu);
  return impl_->config;
}

std::size_t Router::body_limit(std::string_view, std::string_view target) const {
  // Notifications carry up to 10,000 ToBinding items: that path alone takes up to 1 MB.
  constexpr std::size_t kNotificationBodyBytes = 1024 * 1024;
  std::size_t limit = config()->server.max_body_bytes;
  auto path = target.substr(0, target.find('?'));
  if (path.ends_with("/Notifications")) limit = std::max(limit, kNotificationBodyBytes);
  return limit;
}

http::Response Router::error_response(const ApiError& error) const {
  auto r = json(static_cast<unsigned>(error.status), boost::json::serialize(render_error(error)));
  if (error.status == 401) r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"Twilio API\"");
  return r;
}

boost::asio::awaitable<http::Response> Router::handle(http::Request request) {
  const auto started = std::chrono::steady_clock::now();
  std::size_t route_index = routes().size();
  std::size_t label = other_label();
  std::vector<std::string> params;
  {
    std::string_view target = request.target;
    std::string_view path = target.substr(0, target.find('?'));
    if (auto segments = split_path(path)) {
      if (const Route* route = match(*segments, params)) {
        route_index = label = static_cast<std::size_t>(route - routes().data());
      }
    }
    if (path == "/healthz") label = healthz_label();
    if (path == "/metrics") label = metrics_label();
  }
  const std::string_view method = method_label(request.method);

  // Named, not a temporary inside co_await: GCC 12 destroys such temporaries twice.
  auto responding = respond(std::move(request), route_index, std::move(params));
  http::Response response = co_await std::move(responding);

  impl_->durations[label]->observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  std::array<char, 8> status_text{};
  const char* status_end =
      std::to_chars(status_text.data(), status_text.data() + status_text.size(), response.status).ptr;
  const std::string_view status(status_text.data(),
                                static_cast<std::size_t>(status_end - status_text.data()));
  impl_->requests.with({route_label(label), method, status}).inc();
  co_return response;
}

http::Response Router::metrics_response(const http::Request& request, const Config& cfg) const {
  // With a token configured, nothing (not even the allowed methods) is told to a scraper without it.
  if (!cfg.metrics.bearer_token.empty() && !bearer_matches(request.authorization, cfg.metrics.bearer_token)) {
    auto r = json(
        401, boost::json::serialize(render_error(
                 {401, codes::kAuthenticationFailed, "Authentication Error - a bearer token is required"})));
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"notifyd metrics\"");
    return r;
  }
  if (request.method != "GET") {
    auto r = error_response(
        {405, codes::kMethodNotAllowed, "Method " + request.method + " not allowed on /metrics"});
    r.headers.emplace_back("Allow", "GET");
    return r;
  }
  http::Response r;
  r.content_type = std::string(metrics::kTextFormatContentType);
  const auto families = impl_->metrics.collect();
  r.body = metrics::render_text(families);
  return r;
}

boost::asio::awaitable<http::Response> Router::respond(http::Request request, std::size_t route_index,
                                                       std::vector<std::string> params) {
  auto cfg = config();
  std::string_view target = request.target;
  auto qpos = target.find('?');
  std::string path(target.substr(0, qpos));
  std::string_view raw_query = qpos == std::string_view::npos ? std::string_view() : target.substr(qpos + 1);

  if (path == "/healthz") {
    if (request.method != "GET") {
      auto r = error_response({405, codes::kMethodNotAllowed, "Method not allowed"});
      r.headers.emplace_back("Allow", "GET");
      co_return r;
    }
    if (!impl_->ready) co_return json(503, R"({"status":"starting"})");
    co_return json(200, R"({"status":"ok"})");
  }
  if (path == "/metrics") co_return metrics_response(request, *cfg);

  // Authentication comes before anything else: an unknown path is 401, not 404, to a stranger.
  auto account = authenticate(*cfg, request.authorization);
  if (!account) {
    co_return error_response({401, codes::kAuthenticationFailed, "Authentication Error - invalid username"});
  }

  if (route_index >= routes().size()) co_return error_response(not_found(path));
  const Route* route = &routes()[route_index];

  ResourceHandler handler = nullptr;
  std::string allow;
  for (const auto& m : route->methods) {
    if (m.method == request.method) handler = m.handler;
    allow += (allow.empty() ? "" : ", ") + std::string(m.method);
  }
  if (!handler) {
    auto r = error_response(
        {405, codes::kMethodNotAllowed, "Method " + request.method + " not allowed on " + path});
    r.headers.emplace_back("Allow", allow);
    co_return r;
  }

  auto resource_request = std::make_shared<ResourceRequest>();
  resource_request->account_sid = *account;
  resource_request->method = request.method;
  resource_request->path = path;
  resource_request->params = std::move(params);
  resource_request->public_url = cfg->server.public_url;
  {
    std::lock_guard lk(impl_->config_mu);
    resource_request->on_outbox_change = impl_->on_outbox_change;
  }
  auto query = FormParams::parse(raw_query);
  if (!query) co_return error_response(query.error());
  resource_request->query = std::move(*query);
  if (request.method == "POST") {
    auto form = FormParams::parse(request.body);
    if (!form) co_return error_response(form.error());
    resource_request->form = std::move(*form);
  }

  auto result = co_await boost::asio::co_spawn(
      impl_->workers, run_handler(handler, &impl_->store, resource_request), boost::asio::use_awaitable);
  if (!result) {
    ApiError e = result.error();
    if (e.status == 404 && e.message.empty()) e = not_found(path);
    if (e.status >= 500) module_logger("api")->error("{} {}: {}", request.method, path, e.message);
    co_return error_response(e);
  }
  http::Response r;
  r.status = result->status;
  r.body = std::move(result->body);
  if (r.status == 204) r.content_type.clear();
  co_return r;
}

}  // namespace notifyd::api
