// Http2Pool: the connections to one origin and the sends waiting for a stream slot. Everything in Impl
// runs on one strand. A send is one heap object (PendingSend: the request, the caller's completion
// handler, its deadline) handed to the strand through a mutex-guarded inbox, one strand post per batch of
// sends; the results of a batch of completed streams go back to their callers' executor in one post. No
// coroutine and no timer per send: one deadline timer per pool sweeps the sends in deadline order (they are
// accepted in that order).
// stats() reads atomics only, from any thread.
#include "transports/http2/pool.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/intrusive/list.hpp>
#include <mutex>
#include <optional>
#include <type_traits>
#include <vector>

#include "daemon/model/log.hpp"
#include "daemon/model/strand.hpp"
#include "transports/http2/connection.hpp"
#include "transports/http2/tls_context.hpp"

namespace notifyd::http2 {

namespace asio = boost::asio;
namespace bi = boost::intrusive;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kToken = asio::as_tuple(asio::use_awaitable);
constexpr int kMaxRefusedRetries = 3;
std::atomic<std::uint64_t> next_connection_id{1};  // unique across pools, for [C<n>] log prefixes

// Counters written on the strand only and read from any thread: a relaxed load/store pair, no locked add.
void bump(std::atomic<std::size_t>& counter, std::ptrdiff_t delta) {
  counter.store(counter.load(std::memory_order_relaxed) + static_cast<std::size_t>(delta),
                std::memory_order_relaxed);
}

void log_exception(const std::shared_ptr<spdlog::logger>& log, const char* what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log->error("http2 pool {} failed: {}", what, ex.what());
  } catch (...) {
    log->error("http2 pool {} failed", what);
  }
}

// One send from acceptance to its result, with its request in the same allocation. The pool's reference
// (`self`) lives from enqueue() until its result is handed over; a Session stream shares the request (an
// aliasing shared_ptr) until nghttp2 closes the stream, which may be later. On the strand it is in
// `deadlines` always and, at any time, either in the queue (waiting for a stream slot) or on a connection
// (`conn`, `stream_id`).
struct PendingSend {
  using Hook = bi::list_member_hook<>;  // safe mode: is_linked()

  // By reference: an H2Request is moved once, into request_storage (it was moved four times on its way).
  PendingSend(H2Request&& r, asio::any_io_executor executor)
      : caller(std::move(executor)), work(caller), request_storage(std::move(r)) {}
  virtual ~PendingSend() = default;
  PendingSend(const PendingSend&) = delete;
  PendingSend& operator=(const PendingSend&) = delete;

  // Runs the caller's completion handler; called on the caller's executor (`work`), never on the strand.
  // `sole_owner`: no stream shares the request any more (it may be moved back to the caller).
  virtual void invoke(H2Result&& result, bool sole_owner) = 0;

  // What a stream holds; a retry after `refused` resends this very request (same apns-id).
  std::shared_ptr<const H2Request> request() const { return {self, &request_storage}; }

  // The caller's executor, and outstanding work on it while the send is pending. Compared by reference when
  // results are handed over: a copy of the work guard's executor counts work up and down once more.
  asio::any_io_executor caller;
  asio::executor_work_guard<asio::any_io_executor> work;
  Hook by_deadline;
  Hook in_queue;
  H2Request request_storage;
  std::shared_ptr<PendingSend> self;
  Clock::time_point deadline{};
  std::shared_ptr<Connection> conn;  // while a stream is open for it
  std::int32_t stream_id = 0;
  int refused = 0;
  std::uint64_t avoid = 0;  // a connection that refused it
};

// kReturnRequest: the handler takes (H2Result, H2Request), see Http2Pool::send_returning.
template <class Handler, bool kReturnRequest>
struct PendingSendOf final : PendingSend {
  template <class H>
  PendingSendOf(H2Request&& r, H&& h)
      : PendingSend(std::move(r), asio::get_associated_executor(h)), handler(std::forward<H>(h)) {}
  void invoke(H2Result&& result, bool sole_owner) override {
    if constexpr (kReturnRequest) {
      if (sole_owner) {
        std::move(handler)(std::move(result), std::move(request_storage));
      } else {
        std::move(handler)(std::move(result), H2Request(request_storage));
      }
    } else {
      std::move(handler)(std::move(result));
    }
  }
  Handler handler;
};

// A result waiting to be handed to its caller.
struct Finished {
  std::shared_ptr<PendingSend> send;
  H2Result result;
};

// Runs on the callers' executor: hands each result over (resuming each caller in turn), then releases the
// work the send held.
void hand_over(std::vector<Finished>& batch) {
  for (auto& f : batch) {
    // Streams (on the strand) only ever drop their references once the send is finished: a count of one
    // is final. The fence orders the last stream's use of the request (its release decrement) before ours.
    const bool sole_owner = f.send.use_count() == 1;
    if (sole_owner) std::atomic_thread_fence(std::memory_order_acquire);
    f.send->invoke(std::move(f.result), sole_owner);
    f.send->work.reset();
  }
}

using DeadlineList =
    bi::list<PendingSend, bi::member_hook<PendingSend, PendingSend::Hook, &PendingSend::by_deadline>>;
using SendQueue =
    bi::list<PendingSend, bi::member_hook<PendingSend, PendingSend::Hook, &PendingSend::in_queue>>;

}  // namespace

struct Http2Pool::Impl : std::enable_shared_from_this<Impl> {
  using Strand = Connection::Strand;

  Impl(asio::any_io_executor executor, PoolOptions options)
      : strand_(make_strand_executor(executor)),
        options_(std::move(options)),
        log_(module_logger("http2")),
        maintenance_timer_(strand_),
        deadline_timer_(strand_) {
    if (options_.authority.empty()) {
      options_.authority =
          options_.port == 443 ? options_.host : options_.host + ":" + std::to_string(options_.port);
    }
    options_.max_connections = std::max<std::size_t>(options_.max_connections, 1);
    if (!options_.tls) options_.tls = make_client_tls_context("");
  }

  ~Impl() {
    // stop() completes every send before the last reference goes; only an io_context destroyed with the
    // stop still queued gets here with sends left: their handlers (and the callers' frames) are destroyed.
    queue_.clear();
    deadlines_.clear_and_dispose([](PendingSend* p) { p->self.reset(); });
    std::lock_guard lk(inbox_mu_);
    for (PendingSend* p : inbox_) p->self.reset();
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

  // Grows rather than queue behind a blocked window: opens a connection, or waits for the one being opened
  // (its reader wakes the queue before it is ready), unless opening one just failed (`connect_failed`).
  std::shared_ptr<Connection> choose(std::uint64_t avoid, bool connect_failed) const {
    if (auto c = pick(avoid, false)) return c;
    if (!connect_failed && (connecting_ > 0 || can_grow())) return nullptr;
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
    co.kept_response_headers = options_.kept_response_headers;
    std::weak_ptr<Impl> weak = shared_from_this();
    auto c = std::make_shared<Connection>(strand_, std::move(co), next_connection_id.fetch_add(1), [weak] {
      if (auto self = weak.lock()) self->on_connection_event();
    });
    connections_.push_back(c);
    ++opened_;
    update_stats();
    return c;
  }

  // A new connection for the queue; the sends stay queued until it is ready (or fail if it cannot be made).
  void start_connection() {
    auto c = make_connection();
    ++connecting_;
    asio::co_spawn(strand_, connect_one(shared_from_this(), std::move(c)),
                   [log = log_](std::exception_ptr e) { log_exception(log, "connect", e); });
  }

  static asio::awaitable<void> connect_one(std::shared_ptr<Impl> self, std::shared_ptr<Connection> c) {
    std::string error = co_await c->connect();
    --self->connecting_;
    if (!error.empty()) {
      ++self->connect_failures_;
      self->last_connect_error_ = error;
      self->remove_dead();
      // Those waiting on this connection learn it failed, unless another connection can take them.
      self->service_queue(&error);
      co_return;
    }
    if (self->draining_) c->close("pool draining");  // drain/stop ran while this one was connecting
    self->on_connection_event();
  }

  void remove_dead() {
    for (const auto& c : connections_) {
      if (c->goaway_received() && !c->goaway_counted) {
        c->goaway_counted = true;
        ++goaways_;
      }
    }
    std::erase_if(connections_, [](const auto& c) { return c->dead(); });
    update_stats();
  }

  void on_connection_event() {
    remove_dead();
    service_queue();
  }

  void update_stats() {
    std::size_t alive = 0;
    for (const auto& c : connections_) alive += c->dead() ? 0 : 1;
    connections_stat_ = alive;
  }

  // ---- sends ----

  // Any thread. The first send of a batch posts the strand; the others only join the inbox.
  void enqueue(PendingSend* p) {
    bool post = false;
    {
      std::lock_guard lk(inbox_mu_);
      inbox_.push_back(p);
      post = !inbox_posted_;
      inbox_posted_ = true;
    }
    if (post) asio::post(strand_, [self = shared_from_this()] { self->take_inbox(); });
  }

  void take_inbox() {
    taking_.clear();
    {
      std::lock_guard lk(inbox_mu_);
      taking_.swap(inbox_);
      inbox_posted_ = false;
    }
    ensure_maintenance();
    const auto deadline = Clock::now() + options_.request_timeout;
    for (PendingSend* p : taking_) {
      if (draining_) {
        finished_.push_back(
            Finished{std::move(p->self), H2Result{H2Failure::shutting_down, {}, "pool draining"}});
        schedule_hand_over();
        continue;
      }
      p->deadline = deadline;
      deadlines_.push_back(*p);
      queue_.push_back(*p);
      bump(waiting_, 1);
    }
    taking_.clear();
    arm_deadline_timer();
    service_queue();
  }

  // Places queued sends on connections, oldest first, opening a connection when none has room and the pool
  // may grow. After a failed connect (`connect_error`), a send no other connection can take fails with it.
  void service_queue(const std::string* connect_error = nullptr) {
    if (servicing_) {  // re-entered from a completion: the running pass picks up the change
      service_again_ = true;
      return;
    }
    servicing_ = true;
    do {
      service_again_ = false;
      for (auto it = queue_.begin(); it != queue_.end();) {
        PendingSend& p = *it;
        if (draining_) {
          it = unqueue(it);
          finish(p, H2Result{H2Failure::shutting_down, {}, "pool draining"});
          continue;
        }
        auto conn = choose(p.avoid, connect_error != nullptr);
        if (!conn) {
          if (connect_error != nullptr && connecting_ == 0) {
            it = unqueue(it);
            finish(p, H2Result{H2Failure::connect_failed, {}, *connect_error});
            continue;
          }
          if (connect_error == nullptr && can_grow() && connecting_ == 0) start_connection();
          if (p.avoid == 0) break;  // no connection can take anything now
          ++it;
          continue;
        }
        auto sub = conn->submit(
            p.request(), [this, pp = &p](std::int32_t, H2Result&& r) { on_stream_done(*pp, std::move(r)); });
        if (!sub) {  // raced with a SETTINGS/GOAWAY change (refused): pick again, bounded like a refusal
          if (sub.failure != H2Failure::refused || ++p.refused > kMaxRefusedRetries) {
            it = unqueue(it);
            finish(p, H2Result{sub.failure, {}, std::move(sub.detail)});
            continue;
          }
          p.avoid = conn->id();
          continue;  // the same send again, on another connection
        }
        it = unqueue(it);
        bump(in_flight_, 1);
        p.conn = std::move(conn);
        p.stream_id = sub.stream_id;
      }
    } while (service_again_);
    servicing_ = false;
  }

  SendQueue::iterator unqueue(SendQueue::iterator it) {
    bump(waiting_, -1);
    return queue_.erase(it);
  }

  // From inside the stream's Session callback: only bookkeeping here; a retry is queued and serviced later.
  void on_stream_done(PendingSend& p, H2Result&& result) {
    bump(in_flight_, -1);
    std::shared_ptr<Connection> conn = std::move(p.conn);
    const std::int32_t stream_id = p.stream_id;
    p.stream_id = 0;
    if (result.failure == H2Failure::refused && p.refused < kMaxRefusedRetries && !draining_ &&
        Clock::now() < p.deadline) {
      ++p.refused;
      p.avoid = conn->id();
      log_->debug("{}[S{}] refused ({}), retry {} on another connection", conn->log_prefix(), stream_id,
                  result.detail, p.refused);
      queue_.push_front(p);
      bump(waiting_, 1);
      schedule_service();
      return;
    }
    finish(p, std::move(result));
  }

  void finish(PendingSend& p, H2Result&& result) {
    deadlines_.erase(deadlines_.iterator_to(p));
    finished_.push_back(Finished{std::move(p.self), std::move(result)});
    schedule_hand_over();
  }

  // Results go to their callers once per strand turn, one post per caller executor for the whole batch, not
  // one post per send. Never inline: a caller's coroutine must not resume on the pool's strand (nor inside a
  // Session callback).
  void schedule_hand_over() {
    if (hand_over_posted_) return;
    hand_over_posted_ = true;
    asio::post(strand_, [self = shared_from_this()] { self->hand_over_finished(); });
  }

  void hand_over_finished() {
    hand_over_posted_ = false;
    std::vector<Finished> batch;
    batch.swap(finished_);
    const std::size_t batch_size = batch.size();
    std::size_t first = 0;
    while (first < batch.size()) {
      const asio::any_io_executor& ex = batch[first].send->caller;
      std::size_t end = first + 1;
      while (end < batch.size() && batch[end].send->caller == ex) ++end;
      std::vector<Finished> part;
      if (first == 0 && end == batch.size()) {
        part.swap(batch);  // the usual case: every caller on one executor
      } else {
        part.assign(std::make_move_iterator(batch.begin() + static_cast<std::ptrdiff_t>(first)),
                    std::make_move_iterator(batch.begin() + static_cast<std::ptrdiff_t>(end)));
      }
      asio::post(asio::any_io_executor(ex), [part = std::move(part)]() mutable { hand_over(part); });
      first = end;
    }
    // The next batch is about as large: not grown from empty, moving every result each time it doubles. Only
    // once every result is on its way (an allocation failure here loses none of them).
    finished_.reserve(batch_size);
  }

  void schedule_service() {
    if (service_posted_) return;
    service_posted_ = true;
    asio::post(strand_, [self = shared_from_this()] {
      self->service_posted_ = false;
      self->service_queue();
    });
  }

  // ---- request_timeout: one timer, armed for the oldest pending send ----

  void arm_deadline_timer(std::optional<Clock::time_point> at = std::nullopt) {
    if (deadline_armed_ || deadlines_.empty() || stopped_) return;
    deadline_armed_ = true;
    deadline_timer_.expires_at(at.value_or(deadlines_.front().deadline));
    deadline_timer_.async_wait(
        [self = shared_from_this()](boost::system::error_code) { self->on_deadline(); });
  }

  void on_deadline() {
    deadline_armed_ = false;
    if (stopped_) return;
    const auto now = Clock::now();
    while (!deadlines_.empty() && deadlines_.front().deadline <= now) {
      PendingSend& p = deadlines_.front();
      if (p.in_queue.is_linked()) {
        queue_.erase(queue_.iterator_to(p));
        bump(waiting_, -1);
        finish(p, H2Result{H2Failure::timeout, {}, "no stream slot within request_timeout"});
        continue;
      }
      auto conn = p.conn;  // the completion below releases p.conn and p
      if (!conn || !conn->cancel(p.stream_id, H2Failure::timeout, "no response within request_timeout")) {
        // Its completion is already on its way (it cannot be, as completions are flushed before a handler
        // returns; but never spin on it): look again shortly.
        arm_deadline_timer(now + std::chrono::milliseconds(10));
        return;
      }
    }
    arm_deadline_timer();
  }

  // ---- idle connections ----

  void ensure_maintenance() {
    if (maintenance_started_ || stopped_) return;
    maintenance_started_ = true;
    asio::co_spawn(strand_, maintenance_loop(shared_from_this()),
                   [log = log_](std::exception_ptr e) { log_exception(log, "maintenance", e); });
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
    self->service_queue();  // queued sends fail with shutting_down
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
    deadline_timer_.cancel();
    service_queue();  // queued sends fail with shutting_down
    auto conns = connections_;
    for (const auto& c : conns) c->close(reason);  // in-flight sends complete (connection_lost/refused)
    connections_.clear();
    update_stats();
  }

  Strand strand_;
  PoolOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  asio::steady_timer maintenance_timer_;
  asio::steady_timer deadline_timer_;
  std::vector<std::shared_ptr<Connection>> connections_;

  std::mutex inbox_mu_;
  std::vector<PendingSend*> inbox_;  // guarded by inbox_mu_
  bool inbox_posted_ = false;        // guarded by inbox_mu_
  std::vector<PendingSend*> taking_;

  std::vector<Finished> finished_;  // results not yet handed to their callers
  bool hand_over_posted_ = false;
  DeadlineList deadlines_;  // every accepted send until it completes, oldest (= earliest deadline) first
  SendQueue queue_;         // sends waiting for a stream slot, oldest first (a refused retry goes first)
  bool servicing_ = false;
  bool service_again_ = false;
  bool service_posted_ = false;
  bool deadline_armed_ = false;

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

namespace {

// ImplPtr: shared_ptr<Http2Pool::Impl> (private to Http2Pool, hence deduced).
template <bool kReturnRequest, class Handler, class ImplPtr>
void start_send(Handler&& handler, const ImplPtr& impl, H2Request&& request) {
  using Pending = PendingSendOf<std::decay_t<Handler>, kReturnRequest>;
  auto p = std::make_shared<Pending>(std::move(request), std::forward<Handler>(handler));  // one allocation
  p->self = p;
  impl->enqueue(p.get());
}

}  // namespace

// Not coroutines: the awaitable is the operation itself, so a send costs one PendingSend and the caller's
// resumption, not a coroutine spawned onto the strand.
asio::awaitable<H2Result> Http2Pool::send(H2Request request) {
  auto initiate = [](auto handler, std::shared_ptr<Impl> impl, H2Request req) {
    start_send<false>(std::move(handler), impl, std::move(req));
  };
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(H2Result)>(
      std::move(initiate), asio::use_awaitable, impl_, std::move(request));
}

asio::awaitable<std::tuple<H2Result, H2Request>> Http2Pool::send_returning(H2Request request) {
  auto initiate = [](auto handler, std::shared_ptr<Impl> impl, H2Request req) {
    start_send<true>(std::move(handler), impl, std::move(req));
  };
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(H2Result, H2Request)>(
      std::move(initiate), asio::use_awaitable, impl_, std::move(request));
}

void Http2Pool::send_returning(H2Request&& request, const asio::any_io_executor& executor,
                               std::unique_ptr<SendCompletion> done) {
  start_send<true>(asio::bind_executor(executor,
                                       [done = std::move(done)](H2Result&& r, H2Request&& q) {
                                         done->complete(std::move(r), std::move(q));
                                       }),
                   impl_, std::move(request));
}

void Http2Pool::warm() {
  asio::post(impl_->strand_, [impl = impl_] {
    if (impl->draining_ || impl->stopped_ || impl->connecting_ > 0 || !impl->connections_.empty()) return;
    impl->ensure_maintenance();
    impl->start_connection();
  });
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
