// Http2Pool: the connections to one origin and the sends waiting for a stream slot. Everything in Impl
// runs on one strand; send()/drain() hop onto it with co_spawn and hop back when done. stats() reads
// atomics only, from any thread.
#include "transports/http2/pool.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <list>
#include <optional>

#include "daemon/model/log.hpp"
#include "transports/http2/connection.hpp"
#include "transports/http2/tls_context.hpp"

namespace notifyd::http2 {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kToken = asio::as_tuple(asio::use_awaitable);
constexpr int kMaxRefusedRetries = 3;
std::atomic<std::uint64_t> next_connection_id{1};  // unique across pools, for [C<n>] log prefixes

}  // namespace

struct Http2Pool::Impl : std::enable_shared_from_this<Impl> {
  using Strand = Connection::Strand;

  struct Waiter {
    explicit Waiter(Strand s) : timer(s) {}
    asio::steady_timer timer;
    bool woken = false;
  };

  struct StreamWait {
    explicit StreamWait(Strand s) : timer(s) {}
    asio::steady_timer timer;
    std::optional<H2Result> result;
  };

  Impl(asio::any_io_executor executor, PoolOptions options)
      : strand_(asio::make_strand(executor)),
        options_(std::move(options)),
        log_(module_logger("http2")),
        maintenance_timer_(strand_) {
    if (options_.authority.empty()) {
      options_.authority =
          options_.port == 443 ? options_.host : options_.host + ":" + std::to_string(options_.port);
    }
    options_.max_connections = std::max<std::size_t>(options_.max_connections, 1);
    if (!options_.tls) options_.tls = make_client_tls_context("");
  }

  // ---- connections ----

  std::size_t accepting_count() const {
    return static_cast<std::size_t>(std::count_if(connections_.begin(), connections_.end(),
                                                  [](const auto& c) { return c->accepting(); }));
  }

  bool can_grow() const { return !draining_ && accepting_count() < options_.max_connections; }

  // The least loaded ready connection with a free stream slot, preferring ones not flow-control-bound and
  // other than `avoid` (a connection that just refused this request).
  std::shared_ptr<Connection> pick(std::uint64_t avoid, bool allow_blocked) const {
    std::shared_ptr<Connection> best;
    for (const auto& c : connections_) {
      if (!c->can_submit() || c->id() == avoid) continue;
      if (!allow_blocked && c->flow_blocked()) continue;
      if (!best || c->open_streams() < best->open_streams()) best = c;
    }
    return best;
  }

  std::shared_ptr<Connection> choose(std::uint64_t avoid) const {
    if (auto c = pick(avoid, false)) return c;
    if (can_grow() && connecting_ == 0) return nullptr;  // grow rather than queue behind a blocked window
    if (auto c = pick(avoid, true)) return c;
    if (avoid != 0 && !(can_grow() && connecting_ == 0)) return pick(0, true);
    return nullptr;
  }

  std::shared_ptr<Connection> make_connection() {
    ConnectionOptions co;
    co.host = options_.host;
    co.port = options_.port;
    co.authority = options_.authority;
    co.tls = options_.tls;
    co.connect_timeout = options_.connect_timeout;
    co.ping_interval = options_.ping_interval;
    co.ping_timeout = options_.ping_timeout;
    co.log_prefix = options_.log_prefix;
    std::weak_ptr<Impl> weak = shared_from_this();
    auto c = std::make_shared<Connection>(strand_, std::move(co), next_connection_id.fetch_add(1), [weak] {
      if (auto self = weak.lock()) self->on_connection_event();
    });
    connections_.push_back(c);
    ++opened_;
    update_stats();
    return c;
  }

  void on_connection_event() {
    for (const auto& c : connections_) {
      if (c->goaway_received() && !c->goaway_counted) {
        c->goaway_counted = true;
        ++goaways_;
      }
    }
    std::erase_if(connections_, [](const auto& c) { return c->dead(); });
    update_stats();
    wake_for_capacity();
  }

  void update_stats() {
    std::size_t alive = 0;
    for (const auto& c : connections_) alive += c->dead() ? 0 : 1;
    connections_stat_ = alive;
  }

  // ---- waiting for a slot ----

  void wake(std::size_t n) {
    while (n-- > 0 && !waiters_.empty()) {
      auto w = waiters_.front();
      waiters_.pop_front();
      w->woken = true;
      w->timer.cancel();
    }
  }
  void wake_all() { wake(waiters_.size()); }

  void wake_for_capacity() {
    if (waiters_.empty()) return;
    if (draining_) return wake_all();
    std::size_t slots = 0;
    for (const auto& c : connections_) {
      if (!c->can_submit()) continue;
      slots += std::min<std::size_t>(
          c->max_streams() - std::min<std::size_t>(c->max_streams(), c->open_streams()), waiters_.size());
    }
    if (can_grow() && connecting_ == 0) ++slots;
    wake(slots);
  }

  asio::awaitable<void> wait_for_slot(Clock::time_point deadline) {
    auto w = std::make_shared<Waiter>(strand_);
    w->timer.expires_at(deadline);
    waiters_.push_back(w);
    ++waiting_;
    co_await w->timer.async_wait(kToken);
    --waiting_;
    if (!w->woken) waiters_.remove(w);
  }

  // ---- send ----

  static asio::awaitable<H2Result> do_send(std::shared_ptr<Impl> self, H2Request request) {
    self->ensure_maintenance();
    auto deadline = Clock::now() + self->options_.request_timeout;
    int refused = 0;
    std::uint64_t avoid = 0;
    for (;;) {
      if (self->draining_) co_return H2Result{H2Failure::shutting_down, {}, "pool draining"};
      if (Clock::now() >= deadline) {
        co_return H2Result{H2Failure::timeout, {}, "no stream slot within request_timeout"};
      }
      auto conn = self->choose(avoid);
      if (!conn) {
        if (self->can_grow() && self->connecting_ == 0) {
          auto c = self->make_connection();
          ++self->connecting_;
          std::string error = co_await c->connect();
          --self->connecting_;
          if (!error.empty()) {
            ++self->connect_failures_;
            self->last_connect_error_ = error;
            self->on_connection_event();
            self->wake_all();  // those waiting on this connection learn it failed
            co_return H2Result{H2Failure::connect_failed, {}, error};
          }
          if (self->draining_) c->close("pool draining");  // drain/stop ran while this one was connecting
          self->on_connection_event();
          continue;
        }
        auto failures = self->connect_failures_;
        co_await self->wait_for_slot(deadline);
        if (self->connect_failures_ != failures && !self->choose(avoid) && self->connecting_ == 0) {
          co_return H2Result{H2Failure::connect_failed, {}, self->last_connect_error_};
        }
        continue;
      }

      auto wait = std::make_shared<StreamWait>(self->strand_);
      auto sub = conn->submit(request, [wait](std::int32_t, H2Result r) {
        wait->result = std::move(r);
        wait->timer.cancel();
      });
      if (!sub) {  // raced with a SETTINGS/GOAWAY change (refused): pick again, bounded like a refusal
        if (sub.failure != H2Failure::refused || ++refused > kMaxRefusedRetries) {
          co_return H2Result{sub.failure, {}, sub.detail};
        }
        avoid = conn->id();
        continue;
      }
      ++self->in_flight_;
      wait->timer.expires_at(deadline);
      while (!wait->result) {
        auto [ec] = co_await wait->timer.async_wait(kToken);
        if (!ec && !wait->result) {
          conn->cancel(sub.stream_id, H2Failure::timeout, "no response within request_timeout");
        }
      }
      --self->in_flight_;
      H2Result result = std::move(*wait->result);
      if (result.failure == H2Failure::refused && refused < kMaxRefusedRetries && !self->draining_ &&
          Clock::now() < deadline) {
        ++refused;
        avoid = conn->id();
        self->log_->debug("{}[S{}] refused ({}), retry {} on another connection", conn->log_prefix(),
                          sub.stream_id, result.detail, refused);
        continue;
      }
      co_return result;
    }
  }

  // ---- idle connections ----

  void ensure_maintenance() {
    if (maintenance_started_ || stopped_) return;
    maintenance_started_ = true;
    asio::co_spawn(strand_, maintenance_loop(shared_from_this()), [log = log_](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log->error("http2 pool maintenance failed: {}", ex.what());
      }
    });
  }

  static asio::awaitable<void> maintenance_loop(std::shared_ptr<Impl> self) {
    using std::chrono::milliseconds;
    auto tick = std::clamp(self->options_.idle_close / 4, milliseconds(10), milliseconds(5000));
    while (!self->stopped_) {
      self->maintenance_timer_.expires_after(tick);
      co_await self->maintenance_timer_.async_wait(kToken);
      if (self->stopped_) break;
      auto now = Clock::now();
      std::size_t keep = self->accepting_count();
      for (const auto& c : self->connections_) {
        if (keep <= self->options_.min_connections) break;
        if (c->ready() && c->accepting() && c->open_streams() == 0 &&
            c->idle_for(now) >= self->options_.idle_close) {
          self->log_->debug("{} idle for {} ms: closing", c->log_prefix(),
                            std::chrono::duration_cast<milliseconds>(c->idle_for(now)).count());
          c->shutdown();
          --keep;
        }
      }
    }
  }

  // ---- drain / stop ----

  static asio::awaitable<void> do_drain(std::shared_ptr<Impl> self) {
    self->draining_ = true;
    self->wake_all();
    for (const auto& c : self->connections_) c->shutdown();
    auto deadline = Clock::now() + self->options_.request_timeout;
    asio::steady_timer poll(self->strand_);
    while (Clock::now() < deadline && std::any_of(self->connections_.begin(), self->connections_.end(),
                                                  [](const auto& c) { return !c->dead(); })) {
      poll.expires_after(std::chrono::milliseconds(10));
      co_await poll.async_wait(kToken);
    }
    self->stop("drained");
  }

  void stop(const char* reason) {
    draining_ = true;
    stopped_ = true;
    maintenance_timer_.cancel();
    wake_all();
    auto conns = connections_;
    for (const auto& c : conns) c->close(reason);
    connections_.clear();
    update_stats();
  }

  Strand strand_;
  PoolOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  asio::steady_timer maintenance_timer_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::list<std::shared_ptr<Waiter>> waiters_;
  std::size_t connecting_ = 0;
  std::uint64_t connect_failures_ = 0;
  std::string last_connect_error_;
  bool draining_ = false;
  bool stopped_ = false;
  bool maintenance_started_ = false;

  std::atomic<std::size_t> connections_stat_{0};
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::size_t> waiting_{0};
  std::atomic<std::uint64_t> opened_{0};
  std::atomic<std::uint64_t> goaways_{0};
};

Http2Pool::Http2Pool(asio::any_io_executor executor, PoolOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {}

Http2Pool::~Http2Pool() {
  asio::post(impl_->strand_, [impl = impl_] { impl->stop("pool destroyed"); });
}

asio::awaitable<H2Result> Http2Pool::send(H2Request request) {
  co_return co_await asio::co_spawn(impl_->strand_, Impl::do_send(impl_, std::move(request)),
                                    asio::use_awaitable);
}

asio::awaitable<void> Http2Pool::drain() {
  co_await asio::co_spawn(impl_->strand_, Impl::do_drain(impl_), asio::use_awaitable);
}

PoolStats Http2Pool::stats() const {
  PoolStats s;
  s.connections = impl_->connections_stat_.load();
  s.streams_in_flight = impl_->in_flight_.load();
  s.waiting = impl_->waiting_.load();
  s.connections_opened = impl_->opened_.load();
  s.goaways = impl_->goaways_.load();
  return s;
}

}  // namespace notifyd::http2
