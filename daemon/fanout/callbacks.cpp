// CallbackSender implementation. The queue (ready_, delayed_), the origin table and the counters sit under
// one mutex, so enqueue() runs on any thread without waiting for the strand; the sender coroutines and their
// idle timers live on strand_. A sender takes one callback for one attempt: a retry goes back into delayed_
// instead of sleeping in the sender, so a failing receiver does not hold senders through its backoff, and a
// receiver may occupy at most connections_per_origin senders, so a slow one cannot hold them all.
#include "daemon/fanout/callbacks.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <ctime>
#include <deque>
#include <exception>
#include <iomanip>
#include <locale>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "daemon/model/log.hpp"
#include "daemon/model/strand.hpp"
#include "transports/http1/client.hpp"
#include "transports/transport.hpp"

namespace notifyd::fanout {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using Timer = asio::steady_timer;
using std::chrono::milliseconds;

constexpr auto kToken = asio::as_tuple(asio::use_awaitable);
// An idle sender with no retry scheduled still wakes now and then; enqueue() wakes it sooner.
constexpr auto kIdleWait = std::chrono::minutes(10);
// drain() polls: it runs once, at shutdown, and a 20 ms granularity costs nothing there.
constexpr auto kDrainPoll = milliseconds(20);

struct CallbackTarget {
  std::string origin;      // "https://example.com:8443": the pool's base URL and cache key
  std::string target;      // "/path?query": sent verbatim
  std::string signed_url;  // what the receiver reconstructs and validates against
  std::string log_url;     // origin and path only: a query may carry the receiver's own secret
};

std::optional<CallbackTarget> parse_callback_url(std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return std::nullopt;
  const auto& u = *parsed;
  const bool https = u.scheme_id() == boost::urls::scheme::https;
  if (!https && u.scheme_id() != boost::urls::scheme::http) return std::nullopt;
  // User info would need Basic auth and a rule for what is signed; Http1Pool refuses it too.
  if (!u.has_authority() || u.encoded_host().empty() || u.has_userinfo()) return std::nullopt;
  if (u.has_port() && u.port_number() == 0) return std::nullopt;

  CallbackTarget t;
  t.origin = std::string(https ? "https://" : "http://") + std::string(u.encoded_host_and_port());
  t.target = u.encoded_path().empty() ? "/" : std::string(u.encoded_path());
  t.log_url = t.origin + t.target;
  if (u.has_query()) t.target += "?" + std::string(u.encoded_query());
  // The receiver sees "/" for an empty path and never sees a fragment; sign what it will reconstruct, with
  // the scheme and host exactly as given (the validator tries the URL with and without the port).
  t.signed_url = std::string(u.scheme()) + "://" + std::string(u.encoded_authority()) + t.target;
  return t;
}

struct Pending {
  std::uint64_t seq = 0;
  std::string prefix;  // "[NT…][BS…]"
  CallbackTarget to;
  std::string body;
  std::string signature;  // computed at enqueue, so the auth token is never kept in the queue
  std::size_t attempts = 0;
};

struct Origin {
  std::shared_ptr<http1::Http1Pool> pool;
  std::size_t in_flight = 0;
  std::uint64_t last_used = 0;
};

void log_exception(const std::shared_ptr<spdlog::logger>& log, const char* what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log->error("{} coroutine failed: {}", what, ex.what());
  } catch (...) {
    log->error("{} coroutine failed", what);
  }
}

}  // namespace

const char* to_string(CallbackStatus status) {
  switch (status) {
    case CallbackStatus::delivered:
      return "delivered";
    case CallbackStatus::failed:
      return "failed";
    case CallbackStatus::expired:
      return "expired";
  }
  return "failed";
}

FormParams callback_form(const Callback& callback) {
  const auto& p = callback.params;
  FormParams form;
  auto add = [&form](const char* name, const std::string& value) {
    if (!value.empty()) form.emplace_back(name, value);
  };
  add("AccountSid", callback.account_sid);
  add("NotificationSid", p.notification_sid);
  add("BindingSid", p.binding_sid);
  add("Identity", p.identity);
  add("BindingType", p.binding_type);
  form.emplace_back("Status", to_string(p.status));
  add("ErrorCode", p.error_code);
  add("ProviderStatus", p.provider_status);
  return form;
}

std::optional<milliseconds> parse_retry_after(std::string_view value,
                                              std::chrono::system_clock::time_point now) {
  auto seconds = transport::parse_retry_after(value, now);
  if (!seconds) return std::nullopt;
  return std::chrono::duration_cast<milliseconds>(*seconds);
}

struct CallbackSender::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor executor, CallbackOptions options)
      : options_(std::move(options)),
        executor_(executor),
        strand_(make_strand_executor(executor)),
        log_(module_logger("callbacks")),
        rng_(std::random_device{}()) {
    options_.senders = std::max<std::size_t>(options_.senders, 1);
    options_.queue_capacity = std::max<std::size_t>(options_.queue_capacity, 1);
    options_.max_attempts = std::max<std::size_t>(options_.max_attempts, 1);
    options_.max_origins = std::max<std::size_t>(options_.max_origins, 1);
    options_.connections_per_origin = std::max<std::size_t>(options_.connections_per_origin, 1);
  }

  void start() {
    for (std::size_t i = 0; i < options_.senders; ++i) {
      asio::co_spawn(strand_, run_sender(shared_from_this()),
                     [log = log_](std::exception_ptr e) { log_exception(log, "callback sender", e); });
    }
  }

  // --- any thread -------------------------------------------------------------------------------------

  bool enqueue(Callback callback) {
    const auto& params = callback.params;
    std::string prefix = "[" + params.notification_sid + "][" + params.binding_sid + "]";
    auto to = parse_callback_url(callback.url);
    if (!to) {
      {
        std::lock_guard lock(mu_);
        ++failed_;
      }
      log_->warn("{} callback not sent: the URL is not an absolute http(s) URL without user info", prefix);
      return false;
    }
    Pending p;
    p.prefix = std::move(prefix);
    const FormParams form = callback_form(callback);
    p.body = form_urlencode(form);
    p.signature = twilio_signature(callback.auth_token, to->signed_url, form);
    p.to = std::move(*to);

    std::optional<Pending> evicted;
    bool stopped = false;
    {
      std::lock_guard lock(mu_);
      stopped = stopped_;
      if (stopped) {
        ++dropped_;
      } else {
        p.seq = next_seq_++;
        ++queued_;
        evicted = evict_if_full_locked();
        ready_.push_back(std::move(p));
      }
    }
    if (stopped) {  // p was not moved
      log_->warn("{} callback to {} dropped: the callback sender has stopped", p.prefix, p.to.log_url);
      return false;
    }
    if (evicted) log_evicted(*evicted);
    asio::post(strand_, [self = shared_from_this()] { self->wake_one(); });
    return true;
  }

  CallbackStats stats() const {
    std::lock_guard lock(mu_);
    CallbackStats s;
    s.queued = queued_;
    s.sent = sent_;
    s.failed = failed_;
    s.retried = retried_;
    s.dropped = dropped_;
    s.pending = ready_.size() + delayed_.size();
    s.in_flight = in_flight_;
    s.origins = origins_.size();
    return s;
  }

  // Stops without waiting (the destructor's path): senders exit after their current attempt.
  void stop() {
    std::size_t left = 0;
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      stopped_ = true;
      left = ready_.size() + delayed_.size();
      dropped_ += left;
      ready_.clear();
      delayed_.clear();
      // drain() closes them; a sender in flight still holds its pool and finishes its request first.
      for (auto& [key, origin] : origins_) closing_.push_back(std::move(origin.pool));
      origins_.clear();
    }
    if (left > 0) log_->warn("stopped with {} callbacks not sent: dropped", left);
    asio::post(strand_, [self = shared_from_this()] { self->wake_all(); });
  }

  // --- under mu_ ---------------------------------------------------------------------------------------

  // Makes room for one more waiting callback: the head of the ready queue (the longest-waiting first attempt
  // or due retry) goes; when only retries wait, the one due soonest.
  std::optional<Pending> evict_if_full_locked() {
    if (ready_.size() + delayed_.size() < options_.queue_capacity) return std::nullopt;
    ++dropped_;
    Pending p;
    if (!ready_.empty()) {
      p = std::move(ready_.front());
      ready_.pop_front();
    } else {
      auto it = delayed_.begin();
      p = std::move(it->second);
      delayed_.erase(it);
    }
    return p;
  }

  void promote_due_locked(Clock::time_point now) {
    while (!delayed_.empty() && delayed_.begin()->first <= now) {
      ready_.push_back(std::move(delayed_.begin()->second));
      delayed_.erase(delayed_.begin());
    }
  }

  struct Taken {
    std::optional<Pending> pending;
    std::shared_ptr<http1::Http1Pool> pool;
  };

  // The first ready callback whose receiver has a sender slot free, with that receiver's pool (made now if
  // not cached). Marks it in flight.
  Taken take_locked() {
    for (auto it = ready_.begin(); it != ready_.end(); ++it) {
      auto found = origins_.find(it->to.origin);
      if (found != origins_.end() && found->second.in_flight >= options_.connections_per_origin) continue;
      if (found == origins_.end()) {
        try {
          found = add_origin_locked(it->to.origin);
        } catch (const std::exception& e) {
          // A CA file that cannot be loaded: every https receiver fails the same way, so give up on this one.
          ++failed_;
          log_->error("{} callback to {} not sent: {}", it->prefix, it->to.log_url, e.what());
          ready_.erase(it);
          return take_locked();
        }
      }
      Origin& origin = found->second;
      ++origin.in_flight;
      origin.last_used = ++use_tick_;
      ++in_flight_;
      Taken taken{std::move(*it), origin.pool};
      ready_.erase(it);
      return taken;
    }
    return {};
  }

  std::unordered_map<std::string, Origin>::iterator add_origin_locked(const std::string& origin) {
    if (origins_.size() >= options_.max_origins) {
      auto lru = origins_.end();
      for (auto it = origins_.begin(); it != origins_.end(); ++it) {
        if (it->second.in_flight == 0 &&
            (lru == origins_.end() || it->second.last_used < lru->second.last_used)) {
          lru = it;
        }
      }
      // With every cached origin busy (max_origins below senders), the table grows past max_origins for now.
      if (lru != origins_.end()) {
        // Posted, not spawned here: co_spawn may start the drain inline (on a one-thread io_context it does),
        // and it must not run under mu_.
        asio::post(strand_, [strand = strand_, pool = lru->second.pool, log = log_] {
          asio::co_spawn(strand, close_pool(pool),
                         [log](std::exception_ptr e) { log_exception(log, "callback pool drain", e); });
        });
        origins_.erase(lru);
      }
    }
    http1::Http1Options o;
    o.base_url = origin;
    o.ca_file = options_.ca_file;
    o.max_connections = options_.connections_per_origin;
    o.connect_timeout = options_.connect_timeout;
    o.request_timeout = options_.request_timeout;
    o.user_agent = "notifyd";
    o.log_prefix = "[callbacks]";
    auto pool = std::make_shared<http1::Http1Pool>(executor_, std::move(o));
    return origins_.emplace(origin, Origin{std::move(pool), 0, 0}).first;
  }

  void release_locked(const std::string& origin) {
    --in_flight_;
    if (auto it = origins_.find(origin); it != origins_.end() && it->second.in_flight > 0) {
      --it->second.in_flight;
    }
  }

  milliseconds backoff_locked(std::size_t failed_attempts) {
    auto base = std::max(options_.initial_backoff, milliseconds(1));
    for (std::size_t i = 1; i < failed_attempts && base < options_.max_backoff; ++i) base *= 2;
    base = std::min(base, std::max(options_.max_backoff, milliseconds(1)));
    // Jitter in [base/2, base]: receivers that failed together do not all come back at the same instant.
    std::uniform_int_distribution<milliseconds::rep> jitter(base.count() / 2, base.count());
    return milliseconds(jitter(rng_));
  }

  // --- strand only -------------------------------------------------------------------------------------

  void wake_one() {
    if (idle_.empty()) return;
    Timer* t = idle_.back();
    idle_.pop_back();
    t->cancel();
  }

  void wake_all() {
    auto idle = std::move(idle_);
    idle_.clear();
    for (Timer* t : idle) t->cancel();
  }

  void log_evicted(const Pending& p) {
    log_->error("{} callback queue full ({} waiting): dropped the oldest callback, to {} (attempt {})",
                p.prefix, options_.queue_capacity, p.to.log_url, p.attempts + 1);
  }

  static asio::awaitable<void> close_pool(std::shared_ptr<http1::Http1Pool> pool) { co_await pool->drain(); }

  static asio::awaitable<void> run_sender(std::shared_ptr<Impl> self) {
    Timer timer(self->strand_);
    for (;;) {
      Taken taken;
      Clock::time_point wake_at = Clock::now() + kIdleWait;
      {
        std::lock_guard lock(self->mu_);
        if (self->stopped_) break;
        const auto now = Clock::now();
        self->promote_due_locked(now);
        taken = self->take_locked();
        if (!self->delayed_.empty()) wake_at = std::min(wake_at, self->delayed_.begin()->first);
      }
      if (!taken.pending) {
        timer.expires_at(wake_at);
        self->idle_.push_back(&timer);
        co_await timer.async_wait(kToken);
        std::erase(self->idle_, &timer);
        continue;
      }
      std::string origin = taken.pending->to.origin;
      co_await self->attempt(std::move(*taken.pending), std::move(taken.pool));
      bool more = false;
      {
        std::lock_guard lock(self->mu_);
        self->release_locked(origin);
        more = !self->ready_.empty();
      }
      if (more) self->wake_one();  // a callback held back by this receiver's limit may go now
    }
  }

  asio::awaitable<void> attempt(Pending p, std::shared_ptr<http1::Http1Pool> pool) {
    ++p.attempts;
    http1::Http1Request request;
    request.method = "POST";
    request.target = p.to.target;
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                       {"X-Twilio-Signature", p.signature},
                       {"Accept", "*/*"}};
    request.body = p.body;  // a copy: p is kept for a retry
    const http1::Http1Result result = co_await pool->send(std::move(request));

    if (result.ok() && result.status >= 200 && result.status < 300) {
      {
        std::lock_guard lock(mu_);
        ++sent_;
      }
      log_->debug("{} callback delivered to {} (HTTP {}, attempt {})", p.prefix, p.to.log_url, result.status,
                  p.attempts);
      co_return;
    }
    if (!result.ok() && result.failure == http1::Http1Failure::shutting_down) {
      {
        std::lock_guard lock(mu_);
        ++dropped_;
      }
      log_->warn("{} callback to {} dropped: shutting down", p.prefix, p.to.log_url);
      co_return;
    }

    std::string reason;
    std::optional<milliseconds> retry_after;
    if (!result.ok()) {
      reason = std::string(http1::to_string(result.failure)) + ": " + result.detail;
    } else {
      reason = "HTTP " + std::to_string(result.status);
      const bool retriable = result.status == 429 || result.status >= 500;
      if (!retriable) {
        // The receiver understood and refused (a 4xx, or a redirect we do not follow): asking again is
        // futile.
        {
          std::lock_guard lock(mu_);
          ++failed_;
        }
        log_->warn("{} callback to {} refused with {}: giving up", p.prefix, p.to.log_url, reason);
        co_return;
      }
      retry_after = parse_retry_after(result.header("Retry-After"));
    }

    if (p.attempts >= options_.max_attempts) {
      {
        std::lock_guard lock(mu_);
        ++failed_;
      }
      log_->warn("{} callback to {} failed after {} attempts, giving up; last: {}", p.prefix, p.to.log_url,
                 p.attempts, reason);
      co_return;
    }
    if (retry_after && *retry_after > options_.max_retry_after) {
      {
        std::lock_guard lock(mu_);
        ++failed_;
      }
      log_->warn(
          "{} callback to {} failed ({}) and asks to retry after {} s, beyond max_retry_after: giving up",
          p.prefix, p.to.log_url, reason, retry_after->count() / 1000);
      co_return;
    }

    std::optional<Pending> evicted;
    bool stopped = false;
    milliseconds delay{0};
    const std::size_t attempts = p.attempts;
    {
      std::lock_guard lock(mu_);
      delay = backoff_locked(attempts);
      if (retry_after) delay = std::max(delay, *retry_after);  // never sooner than the receiver asked
      if (stopped_) {
        stopped = true;
        ++dropped_;
      } else {
        ++retried_;
        evicted = evict_if_full_locked();
        delayed_.emplace(Clock::now() + delay, std::move(p));
      }
    }
    if (stopped) {
      log_->warn("{} callback failed ({}); not retried: shutting down", p.prefix, reason);
      co_return;
    }
    log_->info("{} callback attempt {} failed ({}); retrying in {} ms", p.prefix, attempts, reason,
               delay.count());
    if (evicted) log_evicted(*evicted);
    wake_one();  // an idle sender re-arms its timer for this retry's due time
  }

  static asio::awaitable<bool> run_drain(std::shared_ptr<Impl> self, milliseconds timeout) {
    Timer timer(self->strand_);
    std::uint64_t dropped_before = 0;
    {
      std::lock_guard lock(self->mu_);
      dropped_before = self->dropped_;
    }

    // Phase 1: the queue and the requests in flight empty out, or the deadline passes.
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      {
        std::lock_guard lock(self->mu_);
        if (self->ready_.empty() && self->delayed_.empty() && self->in_flight_ == 0) break;
      }
      const auto now = Clock::now();
      if (now >= deadline) break;
      timer.expires_after(std::min<Clock::duration>(kDrainPoll, deadline - now));
      co_await timer.async_wait(kToken);
    }

    // Phase 2: stop; what is still waiting is dropped; requests in flight finish (each bounded by the pool).
    self->stop();
    self->wake_all();
    const auto in_flight_deadline = Clock::now() + self->options_.request_timeout + std::chrono::seconds(1);
    for (;;) {
      {
        std::lock_guard lock(self->mu_);
        if (self->in_flight_ == 0) break;
      }
      if (Clock::now() >= in_flight_deadline) break;
      timer.expires_after(kDrainPoll);
      co_await timer.async_wait(kToken);
    }

    // Phase 3: close the connections. stop() emptied the table; senders still in flight hold their pools.
    std::vector<std::shared_ptr<http1::Http1Pool>> pools;
    {
      std::lock_guard lock(self->mu_);
      pools.swap(self->closing_);
    }
    for (auto& pool : pools) co_await pool->drain();

    std::lock_guard lock(self->mu_);
    co_return self->dropped_ == dropped_before && self->in_flight_ == 0;
  }

  CallbackOptions options_;
  asio::any_io_executor executor_;  // the pools make their own strands on it
  asio::any_io_executor strand_;    // make_strand_executor
  std::shared_ptr<spdlog::logger> log_;

  mutable std::mutex mu_;  // guards everything down to the strand-only section
  std::deque<Pending> ready_;
  std::multimap<Clock::time_point, Pending> delayed_;  // retries by due time
  std::unordered_map<std::string, Origin> origins_;
  std::vector<std::shared_ptr<http1::Http1Pool>> closing_;  // pools stop() took out of origins_
  std::size_t in_flight_ = 0;
  bool stopped_ = false;
  std::uint64_t next_seq_ = 1;
  std::uint64_t use_tick_ = 0;
  std::mt19937_64 rng_;
  std::uint64_t queued_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t failed_ = 0;
  std::uint64_t retried_ = 0;
  std::uint64_t dropped_ = 0;

  // Strand only.
  std::vector<Timer*> idle_;  // timers of senders waiting for work; cancelling one wakes its sender
};

CallbackSender::CallbackSender(asio::any_io_executor executor, CallbackOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {
  impl_->start();
}

CallbackSender::~CallbackSender() { impl_->stop(); }

bool CallbackSender::enqueue(Callback callback) { return impl_->enqueue(std::move(callback)); }

asio::awaitable<bool> CallbackSender::drain(std::chrono::milliseconds timeout) {
  co_return co_await asio::co_spawn(impl_->strand_, Impl::run_drain(impl_, timeout), asio::use_awaitable);
}

CallbackStats CallbackSender::stats() const { return impl_->stats(); }

}  // namespace notifyd::fanout
