#include "daemon/fanout/dispatcher.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/fanout/callbacks.hpp"
#include "daemon/fanout/failure_reason.hpp"
#include "daemon/fanout/notification.hpp"
#include "daemon/fanout/payload.hpp"
#include "daemon/model/log.hpp"
#include "daemon/model/strand.hpp"
#include "daemon/model/time.hpp"

namespace notifyd::fanout {
namespace {

namespace asio = boost::asio;
using Outcome = transport::DeliveryResult::Outcome;

auto fanout_log() { return module_logger("fanout"); }
// A credential read from the store serves this long: an update (e.g. unparking it) shows within it.
constexpr std::int64_t kCredentialCacheMs = 5000;
using Clock = std::chrono::steady_clock;

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// What every delivery of one notification shares.
struct NotificationContext {
  NotificationRecord record;
  NotificationRequest request;
  std::optional<ServiceRecord> service;  // nullopt: the service was deleted since

  // Every binding of one type and protocol version gets the same payload: build it once a second (FCM's
  // remaining ttl counts down), not once per binding.
  struct BuiltPayload {
    std::string binding_type, protocol_version;
    Seconds built_at = -1;
    transport::Delivery delivery;      // the channel part only
    std::optional<std::string> error;  // this channel cannot be served for this notification
  };
  std::vector<BuiltPayload> payloads;  // a few: one per binding type and protocol version

  BuiltPayload& payload_for(const std::string& binding_type, const std::string& protocol_version) {
    for (auto& p : payloads) {
      if (p.binding_type == binding_type && p.protocol_version == protocol_version) return p;
    }
    auto& p = payloads.emplace_back();
    p.binding_type = binding_type;
    p.protocol_version = protocol_version;
    return p;
  }
};

struct NotificationProgress {
  std::int64_t remaining = 0;
  std::uint64_t delivered = 0, failed = 0, expired = 0;
  bool resolved = false;
  std::string service_sid, sid;
};

// One resolve_page call under way; `ready` is cancelled when `result` is set.
struct PageCall {
  explicit PageCall(const asio::any_io_executor& strand)
      : ready(strand, asio::steady_timer::time_point::max()) {}
  std::size_t page_size = 0;
  std::optional<Result<ResolvedPage>> result;
  asio::steady_timer ready;
};
constexpr std::size_t kPagesAhead = 2;
constexpr std::size_t kReadyPages = 3;

struct Pace;

struct CachedCredential {
  std::shared_ptr<const CredentialRecord> credential;
  std::int64_t fetched_ms = 0;
  Pace* pace = nullptr;  // the credential's entry of `paces`, found once (its nodes never move)
};

struct Park {
  Seconds date_updated = 0;
  std::string reason;
};

// What is kept per pace key: a credential's SID, or the binding type of a channel without credentials. Found
// once per delivery, whose completion keeps a pointer to it (entries are never erased, and the nodes of an
// unordered_map stay where they are).
struct Pace {
  std::size_t in_flight = 0;
  std::int64_t paced_until_ms = 0;  // a Retry-After or 429 slows the key's whole queue until then
  std::optional<Park> park;         // the provider rejected this credential (as of its date_updated)
};

using RecordPage = std::vector<DeliveryRecord>;

// A delivery's record, from its start until its outcome is recorded. A resolved page's deliveries stay in
// their page, which those in flight share, and are used in place: a DeliveryRecord is large, and moving each
// into its completion was a measurable part of a delivery's cost. A claimed row is a page of its own.
class RecordRef {
 public:
  RecordRef(std::shared_ptr<RecordPage> page, std::size_t index) : page_(std::move(page)), index_(index) {}
  explicit RecordRef(DeliveryRecord&& alone) : page_(std::make_shared<RecordPage>()) {
    page_->push_back(std::move(alone));
  }
  DeliveryRecord& get() const { return (*page_)[index_]; }

 private:
  std::shared_ptr<RecordPage> page_;
  std::size_t index_ = 0;
};

// Resolved deliveries waiting for a sender, oldest first, in the pages they came in.
class ReadyQueue {
 public:
  void push_page(RecordPage&& page) {
    if (page.empty()) return;
    size_ += page.size();
    pages_.push_back(std::make_shared<RecordPage>(std::move(page)));
  }
  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  RecordRef take_front() {
    RecordRef front(pages_.front(), next_);
    --size_;
    if (++next_ == pages_.front()->size()) {
      pages_.pop_front();
      next_ = 0;
    }
    return front;
  }

 private:
  std::deque<std::shared_ptr<RecordPage>> pages_;  // none empty
  std::size_t next_ = 0;                           // the first waiting entry of pages_.front()
  std::size_t size_ = 0;
};

// Deliveries the provider accepted, by far the commonest outcome, per channel: counted apart from the
// stats under their mutex, where each took a lock and two map lookups twice per delivery. Written by the
// dispatcher's strand alone (a relaxed load and store, no locked add), read by stats() from any thread.
class DeliveredCounts {
 public:
  static constexpr std::array<std::string_view, 6> kChannels{
      "apn", "fcm", "gcm", "sms", "facebook-messenger", "alexa"};
  static bool is_channel(std::string_view binding_type) { return index_of(binding_type) < kChannels.size(); }
  // False for a binding type not in kChannels: the caller counts it under the mutex.
  bool add(std::string_view binding_type) {
    const std::size_t i = index_of(binding_type);
    if (i == kChannels.size()) return false;
    counts_[i].store(counts_[i].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return true;
  }
  // Adds them to `s` as the mutex path would have: delivered, and per channel delivered and attempts.
  void add_to(DispatcherStats& s) const {
    for (std::size_t i = 0; i < kChannels.size(); ++i) {
      const std::uint64_t n = counts_[i].load(std::memory_order_relaxed);
      if (n == 0) continue;
      s.delivered += n;
      auto& channel = s.by_channel[std::string(kChannels[i])];
      channel.delivered += n;
      channel.attempts[transport::to_string(transport::DeliveryResult::Outcome::delivered)] += n;
    }
  }

 private:
  // kChannels.size() when it is not one of them.
  static std::size_t index_of(std::string_view binding_type) {
    return static_cast<std::size_t>(std::find(kChannels.begin(), kChannels.end(), binding_type) -
                                    kChannels.begin());
  }

  std::array<std::atomic<std::uint64_t>, kChannels.size()> counts_{};
};

template <class T>
asio::awaitable<T> call(std::function<T()> fn) {
  co_return fn();
}

}  // namespace

struct Dispatcher::Impl : std::enable_shared_from_this<Dispatcher::Impl> {
  asio::any_io_executor strand;  // make_strand_executor
  DispatcherDeps deps;
  DispatcherOptions options;
  // Store calls run off the strand. A write holds its thread until the store's one writer thread has
  // committed it (a page, a claim, a batch of outcomes); reads have threads of their own, so they never queue
  // behind those. At a fan-out's start the pages, claims and outcome flushes can hold all four store
  // threads; in one timed start-up the first deliveries' context and credential reads took 12-16 ms, most
  // likely waiting for one (bench/README, ninth round).
  asio::thread_pool store_pool;  // writes
  asio::thread_pool read_pool;
  asio::steady_timer schedule_timer;
  asio::steady_timer resolve_timer;
  asio::steady_timer flush_timer;
  asio::steady_timer room_timer;  // the resolver waiting for senders' room
  bool schedule_woken = false;
  bool room_woken = false;
  bool room_wanted = false;
  bool resolve_woken = false;
  bool stopping = false;
  std::size_t loops_running = 0;

  // Strand-only state.
  std::size_t in_flight = 0;
  std::size_t reserved = 0;  // rows the resolver has asked the store for (pages being resolved)
  // Resolved deliveries waiting for a sender (max_in_flight), oldest first. The resolver keeps up to
  // kReadyPages pages here and in progress, so that senders never wait for a page's transaction: before, a
  // page could only be asked for once senders had made room for it, and one page of a quarter of that room
  // at a time, each a store round trip, paced the whole fan-out.
  ReadyQueue ready;
  // Claimed rows (retries, direct notifications) waiting for a sender: they go before `ready`, so that a
  // long fan-out, which keeps every sender busy, does not hold back what falls due meanwhile. At most
  // claim_cap() of them; one that waited half its lease is not sent (the lease brings it back).
  struct DueRow {
    DeliveryRecord record;
    std::int64_t claimed_ms = 0;
  };
  std::deque<DueRow> due;
  bool more_due = false;  // the last claim was a full batch, or `due` is full: claim again when it runs low
  bool pumping = false;
  std::unordered_map<std::int64_t, std::shared_ptr<NotificationContext>> contexts;
  std::unordered_map<std::int64_t, NotificationProgress> progress;
  std::unordered_map<std::string, CachedCredential> credentials;
  // Store lookups running (key: "notification:<seq>" or "credential:<sid>"); the timer wakes those waiting.
  std::unordered_map<std::string, std::shared_ptr<asio::steady_timer>> lookups;
  std::unordered_map<std::string, Pace> paces;
  DeliveryOutcomes pending_outcomes;  // written by the next flush
  std::vector<std::int64_t> pending_final_notifications;
  Clock::time_point flush_retry_at{};  // after a failed flush, the next one waits until then
  std::mt19937_64 rng{std::random_device{}()};

  mutable std::mutex stats_mu;
  DispatcherStats stats;  // but in_flight (in_flight_stat) and most deliveries (delivered_counts)
  DeliveredCounts delivered_counts;
  std::atomic<std::uint64_t> in_flight_stat{0};

  Impl(asio::any_io_executor ex, DispatcherDeps d, DispatcherOptions o)
      : strand(make_strand_executor(ex)),
        deps(std::move(d)),
        options(o),
        store_pool(o.store_threads),
        read_pool(std::max(1u, o.store_read_threads)),
        schedule_timer(strand),
        resolve_timer(strand),
        flush_timer(strand),
        room_timer(strand) {}

  // Runs a blocking store write on the store pool and resumes on the strand.
  template <class T>
  asio::awaitable<T> on_store(const std::function<T()>& fn) {
    co_return co_await asio::co_spawn(store_pool, call<T>(fn), asio::use_awaitable);
  }
  // The same for a store read, on the read pool.
  template <class T>
  asio::awaitable<T> on_store_read(const std::function<T()>& fn) {
    co_return co_await asio::co_spawn(read_pool, call<T>(fn), asio::use_awaitable);
  }

  void spawn(asio::awaitable<void> coroutine, const char* what) {
    asio::co_spawn(strand, std::move(coroutine), [what](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        fanout_log()->error("{} failed: {}", what, ex.what());
      }
    });
  }

  asio::awaitable<void> sleep(asio::steady_timer& timer, bool& woken, std::chrono::milliseconds d) {
    if (woken) {  // a wake-up arrived while we were busy: do not sleep through it
      woken = false;
      co_return;
    }
    timer.expires_after(d);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    woken = false;
  }

  void wake_all() {
    schedule_woken = resolve_woken = room_woken = true;
    schedule_timer.cancel();
    resolve_timer.cancel();
    room_timer.cancel();
  }

  // ---- resolution

  asio::awaitable<void> resolve_loop() {
    auto self = shared_from_this();
    while (!stopping) {
      // Named, not a temporary inside co_await: GCC 12 destroys such temporaries twice.
      std::function<Result<std::vector<NotificationRecord>>()> store_call_1 = [this] {
        return deps.store.unresolved_notifications(8);
      };
      auto list = co_await on_store_read<Result<std::vector<NotificationRecord>>>(store_call_1);
      if (!list) fanout_log()->error("reading unresolved notifications: {}", list.error().message);
      if (!list || list->empty()) {
        co_await sleep(resolve_timer, resolve_woken, options.idle_poll);
        continue;
      }
      for (const auto& n : *list) {
        if (stopping) break;
        co_await resolve(n);
      }
    }
    --loops_running;
  }

  asio::awaitable<void> resolve(NotificationRecord n) {
    BindingFilter filter;
    try {
      auto request = notification_from_json(boost::json::parse(n.request).as_object());
      filter.identities = request.identities;
      filter.tags = request.tags;
    } catch (const std::exception& e) {
      fanout_log()->error("[{}][{}] stored request unreadable: {}", n.service_sid, n.sid, e.what());
    }
    auto& p = progress[n.seq];
    p.sid = n.sid;
    p.service_sid = n.service_sid;
    p.resolved = false;  // start() assumes so of every notification with pending deliveries
    std::int64_t total = n.recipients;
    // Up to two pages are being resolved at once, and a page is asked for as soon as `ready` has room for
    // it: the next page's transaction is under way while the senders work through the last ones, so they do
    // not run dry while a commit waits for the disk or the writer thread for a core. Both run on the one
    // writer connection, each from the cursor the other left (whichever runs first takes the first page),
    // so they never overlap.
    std::deque<std::shared_ptr<PageCall>> calls;
    bool exhausted = false;      // no more pages: the audience is resolved or the store failed
    bool audience_done = false;  // a page came back with the end of the audience
    // The first deliveries wait for the first page, then for the notification, its service and credential:
    // those reads run beside the page instead, and the first page is a small one, asked for alone (the
    // writer would commit it together with the next, full page: 17 ms instead of 2-3 ms). These were most of
    // the 60-80 ms from the POST to the first request at the provider. The pages after it double up to the
    // full size: the senders send the first page in a few milliseconds, and a full second page kept them
    // waiting about 20 ms for its rows (bench/README, eighth round).
    spawn(prefetch(n.seq), "prefetch");
    std::size_t next_page_size = first_page_size();
    bool first_page_back = false;
    for (;;) {
      while (!exhausted && !stopping && calls.size() < (first_page_back ? kPagesAhead : 1) &&
             resolve_room() >= page_size()) {
        auto call = std::make_shared<PageCall>(strand);
        call->page_size = next_page_size;
        next_page_size = std::min(page_size(), next_page_size * 2);
        reserved += call->page_size;
        calls.push_back(call);
        spawn(resolve_one_page(call, n.seq, filter), "resolver page");
      }
      if (calls.empty()) {
        if (audience_done) {
          // Only now: the page that found the end may have come back before a page still being read.
          progress[n.seq].resolved = true;
          fanout_log()->info("[{}][{}] resolved to {} recipients", n.service_sid, n.sid, total);
          bump([](DispatcherStats& s) { ++s.accepted; });
          maybe_finished(n.seq);
        }
        if (exhausted || stopping) co_return;  // the cursor is durable: a stop resumes at the next start
        co_await wait_for_room();
        continue;
      }
      auto call = calls.front();
      calls.pop_front();
      if (!call->result) {
        boost::system::error_code ec;
        co_await call->ready.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      reserved -= call->page_size;
      first_page_back = true;
      auto& page = *call->result;
      if (!page) {
        fanout_log()->error("[{}][{}] resolving recipients failed: {}", n.service_sid, n.sid,
                            page.error().message);
        exhausted = true;  // tried again at the next pass
        continue;
      }
      total += static_cast<std::int64_t>(page->added);
      progress[n.seq].remaining += static_cast<std::int64_t>(page->added);
      ready.push_page(std::move(page->deliveries));
      pump();
      if (page->done) audience_done = exhausted = true;
    }
  }

  asio::awaitable<void> resolve_one_page(std::shared_ptr<PageCall> call, std::int64_t seq,
                                         BindingFilter filter) {
    auto self = shared_from_this();
    // Named, not a temporary inside co_await: GCC 12 destroys such temporaries twice.
    std::function<Result<ResolvedPage>()> store_call_2 = [this, seq, filter = std::move(filter),
                                                          page_size = call->page_size] {
      return deps.store.resolve_page(seq, filter, page_size);
    };
    try {
      call->result = co_await on_store<Result<ResolvedPage>>(store_call_2);
    } catch (const std::exception& e) {  // the resolver waits for this call: it must get an answer
      call->result.emplace(internal_error(std::string("resolving a page failed: ") + e.what()));
    }
    call->ready.cancel();
  }

  // Rows the scheduler may claim now. Not sized by the senders' free room, which a fan-out keeps at zero:
  // claimed rows go first in pump(), and `due` holds no more than the senders can take at once, so a row
  // waits there about one exchange, well within its lease.
  std::size_t claim_cap() const {
    return std::max<std::size_t>(1, std::min(options.claim_batch, options.max_in_flight));
  }
  std::size_t claim_room() const { return claim_cap() > due.size() ? claim_cap() - due.size() : 0; }

  std::size_t page_size() const { return std::max<std::size_t>(1, options.resolve_page_size); }
  std::size_t first_page_size() const { return std::max<std::size_t>(1, page_size() / 8); }

  // What the first deliveries of notification `seq` need besides their page: its context (notification and
  // service) and the service's credentials, read into the caches, and the credentials' connections opened
  // (Transport::prepare). A binding's own credential is read when its delivery starts. Failures are left to
  // the deliveries, which read again and settle accordingly.
  asio::awaitable<void> prefetch(std::int64_t seq) {
    auto self = shared_from_this();
    auto ctx = co_await context_for(seq, /*for_delivery=*/false);
    if (!ctx || !ctx->service) co_return;
    for (std::string_view type : {"apn", "fcm"}) {  // gcm shares fcm's credential (service_credential_sid)
      if (const auto& sid = service_credential_sid(*ctx->service, type)) {
        auto credential = co_await credential_for(ctx->record.account_sid, *sid);
        // Its connection opens while the first page is read: TCP and TLS are about a third of the time from
        // the POST to the first request (bench/README, eighth round). Only a query (tags, identities) is
        // resolved, and it may reach any of the service's binding types.
        if (credential) deps.transport_for(type).prepare(*credential);
      }
    }
  }

  // Rows the resolver may still ask for: `ready` and the pages in progress hold at most kReadyPages pages.
  std::size_t resolve_room() const {
    std::size_t used = ready.size() + reserved;
    std::size_t limit = kReadyPages * page_size();
    return limit > used ? limit - used : 0;
  }

  // Starts ready deliveries while senders have room. Not re-entered: a delivery settled without a send
  // (done_in_flight inside start_delivery) lets the running loop take the next one.
  void pump() {
    if (pumping) return;
    pumping = true;
    bool started = false;
    std::size_t stale = 0;
    while (!stopping && (!due.empty() || !ready.empty()) && in_flight < options.max_in_flight) {
      if (!due.empty()) {
        DueRow row = std::move(due.front());
        due.pop_front();
        // Sent now, it could meet its own second claim once the lease runs out: leave it to that claim.
        if (now_ms() - row.claimed_ms > options.lease.count() / 2) {
          ++stale;
          continue;
        }
        ++in_flight;
        start_delivery(RecordRef(std::move(row.record)));
      } else {
        // Used in its page, where it waits, until its completion is done (a DeliveryRecord is large).
        ++in_flight;
        start_delivery(ready.take_front());
      }
      started = true;
    }
    pumping = false;
    if (started) set_in_flight_stat();
    if (stale) {
      fanout_log()->warn("{} claimed deliveries waited over half their lease for a sender: sent when it ends",
                         stale);
    }
    if (more_due && !schedule_woken && due.size() <= claim_cap() / 4) {
      schedule_woken = true;
      schedule_timer.cancel();
    }
    if (room_wanted && !room_woken && resolve_room() >= page_size()) {
      room_woken = true;
      room_timer.cancel();
    }
  }

  // Until a page fits in `ready`, or stopping.
  asio::awaitable<void> wait_for_room() {
    while (!stopping && resolve_room() < page_size()) {
      room_wanted = true;
      co_await sleep(room_timer, room_woken, options.idle_poll);
    }
    room_wanted = false;
  }

  // ---- scheduling

  asio::awaitable<void> schedule_loop() {
    auto self = shared_from_this();
    while (!stopping) {
      if (std::size_t limit = claim_room(); limit == 0) {
        more_due = true;  // `due` is full: pump() wakes this loop when it runs low
      } else {
        // Named, not a temporary inside co_await: GCC 12 destroys such temporaries twice.
        std::function<Result<std::vector<DeliveryRecord>>()> store_call_3 = [this, limit] {
          return deps.store.claim_due_deliveries(now_ms(), limit, options.lease.count());
        };
        auto claimed = co_await on_store<Result<std::vector<DeliveryRecord>>>(store_call_3);
        if (!claimed) {
          fanout_log()->error("claiming due deliveries failed: {}", claimed.error().message);
          more_due = false;  // tried again at the next poll
        } else {
          const std::int64_t claimed_ms = now_ms();
          for (auto& d : *claimed) due.push_back({std::move(d), claimed_ms});
          pump();
          more_due = claimed->size() == limit;  // more may be due right now
          if (more_due && claim_room() > claim_cap() / 4) continue;
        }
      }
      co_await sleep(schedule_timer, schedule_woken, options.idle_poll);
    }
    --loops_running;
  }

  // One store read per key at a time: the deliveries of a fresh page all miss the caches at once, and
  // without this each of them (up to max_in_flight) would read the same notification or credential.
  // Returns false when another lookup of `key` was running (it has finished when this returns).
  asio::awaitable<bool> lead_lookup(const std::string& key) {
    auto it = lookups.find(key);
    if (it == lookups.end()) {
      lookups.emplace(key,
                      std::make_shared<asio::steady_timer>(strand, asio::steady_timer::time_point::max()));
      co_return true;
    }
    auto done = it->second;  // cancelled by finish_lookup
    boost::system::error_code ec;
    co_await done->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return false;
  }
  void finish_lookup(const std::string& key) {
    if (auto it = lookups.find(key); it != lookups.end()) {
      it->second->cancel();
      lookups.erase(it);
    }
  }

  // Ends the lookup it leads however the leader leaves (an exception included): waiters never hang.
  struct LookupGuard {
    Impl* impl;
    std::string key;
    ~LookupGuard() { impl->finish_lookup(key); }
  };

  // `for_delivery`: asked for by a delivery of the notification, which is then known to have one still to
  // finish; not so for the resolver's prefetch, whose read may come back after a small audience finished.
  asio::awaitable<std::shared_ptr<NotificationContext>> context_for(std::int64_t seq,
                                                                    bool for_delivery = true) {
    const std::string key = "notification:" + std::to_string(seq);
    for (;;) {
      if (auto it = contexts.find(seq); it != contexts.end()) co_return it->second;
      // A waiter looks again when the leader is done: if its read failed (or the cache was cleared since),
      // the waiter reads for itself rather than fail its delivery on another's error.
      if (!co_await lead_lookup(key)) continue;
      LookupGuard guard{this, key};
      co_return co_await read_context(seq, for_delivery);
    }
  }

  asio::awaitable<std::shared_ptr<NotificationContext>> read_context(std::int64_t seq, bool for_delivery) {
    // Named, not a temporary inside co_await: GCC 12 destroys such temporaries twice.
    std::function<Result<NotificationRecord>()> store_call_4 = [this, seq] {
      return deps.store.find_notification(seq);
    };
    auto record = co_await on_store_read<Result<NotificationRecord>>(store_call_4);
    if (!record) co_return nullptr;
    auto ctx = std::make_shared<NotificationContext>();
    ctx->record = *record;
    try {
      ctx->request = notification_from_json(boost::json::parse(record->request).as_object());
    } catch (const std::exception& e) {
      fanout_log()->error("[{}][{}] stored request unreadable: {}", record->service_sid, record->sid,
                          e.what());
      co_return nullptr;
    }
    // Named, not a temporary inside co_await: GCC 12 destroys such temporaries twice.
    std::function<Result<ServiceRecord>()> store_call_5 =
        [this, a = record->account_sid, s = record->service_sid] { return deps.store.find_service(a, s); };
    auto service = co_await on_store_read<Result<ServiceRecord>>(store_call_5);
    if (service) ctx->service = *service;
    if (contexts.size() >= 1024) contexts.clear();  // those in use live on in their deliveries
    contexts.emplace(seq, ctx);
    if (for_delivery && !progress.contains(seq) && record->resolved) {
      // A direct (ToBinding) notification first seen here: all its deliveries are still to finish.
      auto& p = progress[seq];
      p.remaining = record->recipients;
      p.resolved = true;
      p.sid = record->sid;
      p.service_sid = record->service_sid;
      bump([](DispatcherStats& s) { ++s.accepted; });
    } else if (auto it = progress.find(seq); it != progress.end() && it->second.sid.empty()) {
      // Counted at start() from the outbox alone: its log lines need the ids.
      it->second.sid = record->sid;
      it->second.service_sid = record->service_sid;
    }
    co_return ctx;
  }

  asio::awaitable<std::shared_ptr<const CredentialRecord>> credential_for(std::string account_sid,
                                                                          std::string sid) {
    const std::string key = "credential:" + sid;
    std::int64_t now = 0;
    for (;;) {
      now = now_ms();
      auto cached = credentials.find(sid);
      if (cached != credentials.end() && now - cached->second.fetched_ms < kCredentialCacheMs) {
        co_return cached->second.credential;  // what the leader just read, too
      }
      if (lookups.contains(key) && cached != credentials.end()) {
        co_return cached->second.credential;  // stale while the one refresh runs
      }
      if (co_await lead_lookup(key)) break;
    }
    LookupGuard guard{this, key};
    // Named, not a temporary inside co_await: GCC 12 destroys such temporaries twice.
    std::function<Result<CredentialRecord>()> store_call_6 = [this, account_sid, sid] {
      return deps.store.find_credential(account_sid, sid);
    };
    auto found = co_await on_store_read<Result<CredentialRecord>>(store_call_6);
    std::shared_ptr<const CredentialRecord> c;
    if (found) c = std::make_shared<const CredentialRecord>(std::move(*found));
    credentials[sid] = {c, now};
    co_return c;
  }

  // References, not copies: asked for on every delivery.
  static const std::optional<std::string>& service_credential_sid(const ServiceRecord& s,
                                                                  std::string_view type) {
    static const std::optional<std::string> none;
    if (type == "apn") return s.apn_credential_sid;
    if (type == "fcm") return s.fcm_credential_sid ? s.fcm_credential_sid : s.gcm_credential_sid;
    if (type == "gcm") return s.gcm_credential_sid ? s.gcm_credential_sid : s.fcm_credential_sid;
    return none;
  }

  std::chrono::milliseconds backoff(int attempts) {
    auto base = options.initial_backoff * (1LL << std::min(attempts - 1, 20));
    if (base > options.max_backoff) base = options.max_backoff;
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    return std::chrono::milliseconds(
        static_cast<std::int64_t>(static_cast<double>(base.count()) * jitter(rng)));
  }

  static bool needs_credential(std::string_view type) {
    return type == "apn" || type == "fcm" || type == "gcm";
  }

  static const std::optional<std::string>& credential_sid_for(const DeliveryRecord& d,
                                                              const ServiceRecord& service) {
    return d.credential_sid ? d.credential_sid : service_credential_sid(service, d.binding_type);
  }

  // Starts one delivery (one in_flight, already counted). Without a coroutine when the notification and the
  // credential are cached, as they are for all but the first deliveries of a page: a coroutine frame and its
  // resumption per delivery were a measurable part of its cost. Never throws: a bug is logged and the
  // delivery comes back at the next start.
  void start_delivery(RecordRef&& ref) {
    try {
      const DeliveryRecord& d = ref.get();
      auto it = contexts.find(d.notification_seq);
      if (it == contexts.end()) return spawn(look_up_and_send(std::move(ref)), "delivery lookup");
      std::shared_ptr<NotificationContext> ctx = it->second;
      std::shared_ptr<const CredentialRecord> credential;
      Pace* pace = nullptr;
      const std::int64_t now = now_ms();
      if (ctx->service && needs_credential(d.binding_type)) {
        if (const auto& sid = credential_sid_for(d, *ctx->service)) {
          auto cached = credentials.find(*sid);
          if (cached == credentials.end() || now - cached->second.fetched_ms >= kCredentialCacheMs) {
            return spawn(look_up_and_send(std::move(ref)), "delivery lookup");
          }
          credential = cached->second.credential;
          if (credential) {
            if (!cached->second.pace) cached->second.pace = &paces[credential->sid];
            pace = cached->second.pace;
          }
        }
      }
      send(std::move(ref), std::move(ctx), std::move(credential), now, pace);
    } catch (const std::exception& e) {
      log_unsettled("starting a delivery", e);
      done_in_flight();
    }
  }

  // A bug's exception: the delivery stays leased or unsettled in the store, so the next start sends it.
  static void log_unsettled(const char* what, const std::exception& e) {
    fanout_log()->error("{} failed (it is sent again after a restart): {}", what, e.what());
  }

  // The cache-miss path of start_delivery: one store lookup per key at a time (lead_lookup).
  asio::awaitable<void> look_up_and_send(RecordRef ref) {
    auto self = shared_from_this();
    try {
      const DeliveryRecord& d = ref.get();
      auto ctx = co_await context_for(d.notification_seq);
      std::shared_ptr<const CredentialRecord> credential;
      if (ctx && ctx->service && needs_credential(d.binding_type)) {
        if (const auto& sid = credential_sid_for(d, *ctx->service)) {
          credential = co_await credential_for(ctx->record.account_sid, *sid);
        }
      }
      send(std::move(ref), std::move(ctx), std::move(credential));
    } catch (const std::exception& e) {  // as in start_delivery: the slot comes back, the row at a restart
      log_unsettled("starting a delivery", e);
      done_in_flight();
    }
  }

  // What a delivery in the transport's hands carries back to on_result.
  struct Sent final : transport::DeliveryCompletion {
    Sent(std::shared_ptr<Impl> i, RecordRef&& r, std::shared_ptr<NotificationContext> c,
         std::shared_ptr<const CredentialRecord> cr, Pace& p)
        : impl(std::move(i)), record(std::move(r)), ctx(std::move(c)), credential(std::move(cr)), pace(&p) {}
    void complete(transport::DeliveryResult&& result) override {
      impl->on_result(record.get(), ctx, credential.get(), *pace, result);
    }
    transport::DeliveryIds ids() const override {  // lent, not copied into the Delivery
      const auto& binding_sid = record.get().binding_sid;
      return {ctx->record.sid, binding_sid ? std::string_view(*binding_sid) : std::string_view()};
    }
    std::shared_ptr<Impl> impl;
    RecordRef record;
    std::shared_ptr<NotificationContext> ctx;
    std::shared_ptr<const CredentialRecord> credential;
    Pace* pace;  // an entry of `paces`
  };

  // Everything up to the transport: the checks that settle a delivery without sending it, the payload, the
  // per-credential bound. `ctx` null: the notification could not be read; `credential` null for a binding
  // type with credentials: none found. `now`: now_ms() as the caller read it; `known_pace`: the
  // credential's entry of `paces` when the caller has it at hand (each costs a lookup per delivery).
  void send(RecordRef&& ref, std::shared_ptr<NotificationContext> ctx,
            std::shared_ptr<const CredentialRecord> credential, std::int64_t now = now_ms(),
            Pace* known_pace = nullptr) {
    DeliveryRecord& d = ref.get();
    if (!ctx) {
      finish(d, nullptr, DeliveryState::failed, "notification unreadable", 0);
      return done_in_flight();
    }
    const auto& n = ctx->record;
    const Seconds now_s = now / 1000;  // now_seconds(), without a second clock read
    if (!ctx->service) {
      finish(d, ctx.get(), DeliveryState::failed, "service deleted", 0);
      return done_in_flight();
    }
    if (d.attempts > 0 && now_s > n.expires_at) {
      finish(d, ctx.get(), DeliveryState::expired, d.last_reason.empty() ? "ttl expired" : d.last_reason,
             d.provider_status);
      return done_in_flight();
    }

    if (needs_credential(d.binding_type) && !credential) {  // the caller looked it up by credential_sid_for()
      const auto& sid = credential_sid_for(d, *ctx->service);
      finish(
          d, ctx.get(), DeliveryState::failed,
          sid ? "credential " + *sid + " not found" : "no " + d.binding_type + " credential on the service",
          0);
      return done_in_flight();
    }
    Pace& pace = known_pace ? *known_pace : paces[credential ? credential->sid : d.binding_type];
    if (credential && pace.park) {
      if (pace.park->date_updated == credential->date_updated) {
        retry_or_expire(d, ctx.get(), d.attempts, now + options.park_retry.count(), pace.park->reason, 0);
        return done_in_flight();
      }
      fanout_log()->info("[{}] credential updated: its deliveries resume", credential->sid);
      pace.park.reset();
    }
    if (pace.paced_until_ms > now) {
      reschedule(d, d.attempts, pace.paced_until_ms, d.last_reason, d.provider_status);
      return done_in_flight();
    }
    if (pace.in_flight >= options.max_in_flight_per_credential) {
      reschedule(d, d.attempts, now + 50, d.last_reason, d.provider_status);
      return done_in_flight();
    }

    transport::Delivery delivery;  // its ids are lent by its completion (Sent::ids)
    delivery.binding_type = d.binding_type;
    delivery.address = d.address;
    delivery.credential = credential;
    delivery.apns_id = d.apns_id;
    auto& built = ctx->payload_for(d.binding_type, d.protocol_version);
    if (built.built_at != now_s) {
      built.delivery = transport::Delivery{};
      PayloadTarget target{d.binding_type, d.address, d.protocol_version};
      built.error = build_delivery(ctx->request, target, *ctx->service, now_s, built.delivery, n.expires_at);
      built.built_at = now_s;
    }
    if (built.error) {
      finish(d, ctx.get(), DeliveryState::failed, *built.error, 0);
      return done_in_flight();
    }
    // The built payload has only its channel's fields (build_delivery): the others are left at their
    // defaults.
    const transport::Delivery& payload = built.delivery;
    delivery.body = payload.body;
    if (d.binding_type == "apn") {
      delivery.apns_push_type = payload.apns_push_type;
      delivery.apns_priority = payload.apns_priority;
      delivery.apns_expiration = payload.apns_expiration;
      delivery.apns_collapse_id = payload.apns_collapse_id;
    } else if (d.binding_type == "sms") {
      delivery.sms_body = payload.sms_body;
      delivery.sms_media_urls = payload.sms_media_urls;
      delivery.messaging_service_sid = payload.messaging_service_sid;
      delivery.sms_status_callback = payload.sms_status_callback;
      delivery.sms_max_price = payload.sms_max_price;
    }

    auto& transport = deps.transport_for(d.binding_type);
    auto sent = std::make_unique<Sent>(shared_from_this(), std::move(ref), std::move(ctx),
                                       std::move(credential), pace);
    transport.deliver_async(std::move(delivery), strand, std::move(sent));
    // Only once the transport has it (a throw before leaves the count as it was): its completion, which
    // takes it back, never runs inside deliver_async.
    ++pace.in_flight;
  }

  // The transport's answer, on the strand. Never throws (it runs inside the transport's completion). All of
  // it is the completion's (Sent) own, alive for this call: used in place, moved from only to go on.
  void on_result(DeliveryRecord& d, std::shared_ptr<NotificationContext>& ctx,
                 const CredentialRecord* credential, Pace& pace, transport::DeliveryResult& result) {
    try {
      --pace.in_flight;
      // A delivered result is counted once, in finish() (delivered_counts: attempts and delivered alike).
      if (result.outcome != Outcome::delivered || !DeliveredCounts::is_channel(d.binding_type)) {
        bump([&](DispatcherStats& s) {
          ++s.by_channel[d.binding_type].attempts[transport::to_string(result.outcome)];
        });
      }
      if (result.outcome == Outcome::invalid_address) {
        // A store write decides whether the binding goes: the one outcome that needs a coroutine.
        return spawn(remove_then_finish(std::move(d), std::move(ctx), std::move(result)), "binding removal");
      }
      settle(d, ctx.get(), credential, pace, result);
    } catch (const std::exception& e) {
      log_unsettled("recording a delivery outcome", e);
    }
    done_in_flight();
  }

  asio::awaitable<void> remove_then_finish(DeliveryRecord d, std::shared_ptr<NotificationContext> ctx,
                                           transport::DeliveryResult result) {
    auto self = shared_from_this();
    try {
      co_await remove_binding(d, *ctx, result);
      d.attempts += 1;
      finish(d, ctx.get(), DeliveryState::failed, result.reason, result.provider_status);
    } catch (const std::exception& e) {
      log_unsettled("recording a delivery outcome", e);
    }
    done_in_flight();
  }

  // Removes the binding an invalid-address answer names, unless it registered again since.
  asio::awaitable<void> remove_binding(const DeliveryRecord& d, const NotificationContext& ctx,
                                       const transport::DeliveryResult& result) {
    const auto& n = ctx.record;
    if (d.binding_sid) {
      std::optional<Seconds> since;
      if (result.invalid_since) since = *result.invalid_since / 1000;  // APNs gives milliseconds
      // Named, not a temporary inside co_await: GCC 12 destroys such temporaries twice.
      std::function<Result<bool>()> store_call_7 = [this, sid = *d.binding_sid, address = d.address, since] {
        return deps.store.remove_invalid_binding(sid, address, since);
      };
      auto removed = co_await on_store<Result<bool>>(store_call_7);
      if (removed && *removed) {
        fanout_log()->info("[{}][{}][{}] binding removed: provider says {} ({})", n.service_sid, n.sid,
                           *d.binding_sid, result.reason, result.provider_status);
        bump([&](DispatcherStats& s) {
          ++s.bindings_removed;
          ++s.by_channel[d.binding_type].bindings_removed;
        });
      } else if (removed) {
        fanout_log()->info("[{}][{}][{}] binding kept: it registered again after the provider's {}",
                           n.service_sid, n.sid, *d.binding_sid, result.reason);
      } else {  // the delivery still fails; the next notification to this binding tries the removal again
        fanout_log()->error("[{}][{}][{}] removing the binding (provider says {}) failed: {}", n.service_sid,
                            n.sid, *d.binding_sid, result.reason, removed.error().message);
      }
    }
  }

  // Every outcome but invalid_address (remove_then_finish).
  void settle(DeliveryRecord& d, NotificationContext* ctx, const CredentialRecord* credential, Pace& pace,
              const transport::DeliveryResult& result) {
    int attempts = d.attempts + 1;
    switch (result.outcome) {
      case Outcome::delivered:
        finish(d, ctx, DeliveryState::delivered, "", result.provider_status);
        break;
      case Outcome::invalid_address:  // remove_then_finish
        break;
      case Outcome::retry_later: {
        if (stopping && result.provider_status == 0) {
          // Turned back unanswered by a transport that is draining for the stop: not an attempt. It stays
          // pending, due at once after the next start (and a Ttl of 0 still gets its one attempt).
          reschedule(d, d.attempts, now_ms(), d.last_reason, d.provider_status);
          break;
        }
        std::int64_t at = now_ms() + backoff(attempts).count();
        if (result.retry_after || result.provider_status == 429) {
          // The provider is pushing back on this credential: slow its whole queue, not just this delivery.
          std::int64_t pause = result.retry_after ? result.retry_after->count() * 1000 : 1000;
          pace.paced_until_ms = std::max(pace.paced_until_ms, now_ms() + pause);
          at = std::max(at, pace.paced_until_ms);
        }
        bump([](DispatcherStats& s) { ++s.retried; });
        retry_or_expire(d, ctx, attempts, at, result.reason, result.provider_status);
        break;
      }
      case Outcome::credential_rejected:
        if (credential) {
          // `pace` is this credential's: its key is the SID of the credential a delivery was sent with.
          if (!pace.park || pace.park->date_updated != credential->date_updated) {
            fanout_log()->error(
                "[{}] credential parked: the provider rejected it ({}); its deliveries wait until it "
                "is updated",
                credential->sid, result.reason);
          }
          pace.park =
              Park{credential->date_updated, result.reason.empty() ? "credential rejected" : result.reason};
        }
        retry_or_expire(d, ctx, attempts, now_ms() + options.park_retry.count(), result.reason,
                        result.provider_status);
        break;
      case Outcome::payload_rejected:
      case Outcome::unsupported_channel:
        d.attempts = attempts;
        finish(d, ctx, DeliveryState::failed, result.reason, result.provider_status);
        break;
    }
  }

  void done_in_flight() {
    --in_flight;
    set_in_flight_stat();
    pump();
  }

  void retry_or_expire(DeliveryRecord& d, NotificationContext* ctx, int attempts, std::int64_t at,
                       const std::string& reason, int provider_status) {
    // Ttl 0 means one attempt; otherwise no attempt after the notification expires.
    bool one_shot = ctx->record.expires_at <= ctx->record.date_created;
    if (one_shot || at / 1000 > ctx->record.expires_at) {
      d.attempts = attempts;
      finish(d, ctx, DeliveryState::expired, reason, provider_status);
      return;
    }
    reschedule(d, attempts, at, reason, provider_status);
  }

  void reschedule(const DeliveryRecord& d, int attempts, std::int64_t at, const std::string& reason,
                  int provider_status) {
    record_outcome(d, DeliveryState::pending, attempts, at, reason, provider_status);
  }

  // A delivery with a row updates it; a page delivery settles its page entry, and needs a row of its own
  // only when there is something to keep: a retry, or a failure's reason.
  void record_outcome(const DeliveryRecord& d, DeliveryState state, int attempts, std::int64_t at,
                      const std::string& reason, int provider_status) {
    if (d.page_seq == 0) {
      pending_outcomes.updates.push_back({d.seq, state, attempts, at, reason, provider_status});
      return;
    }
    pending_outcomes.page_done.push_back({d.page_seq, d.page_index});
    if (state == DeliveryState::delivered) return;
    DeliveryRecord row = d;
    row.state = state;
    row.attempts = attempts;
    row.next_attempt_ms = at;
    row.last_reason = reason;
    row.provider_status = provider_status;
    pending_outcomes.new_rows.push_back(std::move(row));
  }

  void finish(const DeliveryRecord& d, NotificationContext* ctx, DeliveryState state,
              const std::string& reason, int provider_status) {
    record_outcome(d, state, d.attempts, 0, reason, provider_status);
    auto& p = progress[d.notification_seq];
    --p.remaining;
    if (state == DeliveryState::delivered) {
      ++p.delivered;
      if (!delivered_counts.add(d.binding_type)) {
        bump([&](DispatcherStats& s) {
          ++s.delivered;
          ++s.by_channel[d.binding_type].delivered;
        });
      }
    } else if (state == DeliveryState::failed) {
      ++p.failed;
      bump([&](DispatcherStats& s) {
        ++s.failed;
        auto key = failure_reason_key(reason);
        if (s.failed_by_reason.size() >= kMaxFailureReasons && !s.failed_by_reason.contains(key))
          key = "other";
        ++s.failed_by_reason[key];
        ++s.by_channel[d.binding_type].failed;
      });
    } else {
      ++p.expired;
      bump([&](DispatcherStats& s) {
        ++s.expired;
        ++s.by_channel[d.binding_type].expired;
      });
    }
    if (state != DeliveryState::delivered && ctx) {
      fanout_log()->warn("[{}][{}][{}] delivery {} after {} attempts: {}{}", ctx->record.service_sid,
                         ctx->record.sid, d.binding_sid.value_or(d.binding_type),
                         state == DeliveryState::failed ? "failed" : "expired", d.attempts, reason,
                         provider_status ? " (" + std::to_string(provider_status) + ")" : "");
    }
    pending_final_notifications.push_back(d.notification_seq);
    if (ctx && ctx->record.callback_url && deps.callbacks)
      send_callback(d, *ctx, state, reason, provider_status);
  }

  void send_callback(const DeliveryRecord& d, const NotificationContext& ctx, DeliveryState state,
                     const std::string& reason, int provider_status) {
    auto token = deps.auth_token_for ? deps.auth_token_for(ctx.record.account_sid) : std::nullopt;
    if (!token) return;
    Callback cb;
    cb.url = *ctx.record.callback_url;
    cb.auth_token = *token;
    cb.account_sid = ctx.record.account_sid;
    cb.params.notification_sid = ctx.record.sid;
    cb.params.binding_sid = d.binding_sid.value_or("");
    cb.params.identity = d.identity.value_or("");
    cb.params.binding_type = d.binding_type;
    cb.params.status = state == DeliveryState::delivered ? CallbackStatus::delivered
                       : state == DeliveryState::failed  ? CallbackStatus::failed
                                                         : CallbackStatus::expired;
    cb.params.error_code = state == DeliveryState::delivered ? "" : reason;
    cb.params.provider_status = provider_status ? std::to_string(provider_status) : "";
    deps.callbacks->enqueue(std::move(cb));
  }

  void maybe_finished(std::int64_t seq) {
    auto it = progress.find(seq);
    if (it == progress.end() || !it->second.resolved || it->second.remaining > 0) return;
    const auto& p = it->second;
    fanout_log()->info("[{}][{}] notification finished: {} delivered, {} failed, {} expired", p.service_sid,
                       p.sid, p.delivered, p.failed, p.expired);
    progress.erase(it);
  }

  // ---- outcome writes, grouped

  asio::awaitable<void> flush_loop() {
    auto self = shared_from_this();
    bool woken = false;
    auto counted_at = Clock::now() - std::chrono::hours(1);
    std::function<Result<std::int64_t>()> count_pending = [this] {
      return deps.store.pending_delivery_count();
    };
    for (;;) {
      if (!pending_outcomes.empty() && Clock::now() >= flush_retry_at) co_await flush();
      if (stopping && in_flight == 0 && pending_outcomes.empty()) break;
      if (Clock::now() - counted_at >= std::chrono::seconds(1)) {  // queue depth, for STATUS= and metrics
        counted_at = Clock::now();
        auto depth = co_await on_store_read<Result<std::int64_t>>(count_pending);
        if (depth) bump([d = *depth](DispatcherStats& st) { st.queue_depth = d; });
      }
      co_await sleep(flush_timer, woken, options.flush_interval);
    }
    --loops_running;
  }

  asio::awaitable<void> flush() {
    DeliveryOutcomes batch;
    std::swap(batch, pending_outcomes);
    std::vector<std::int64_t> finals;
    finals.swap(pending_final_notifications);
    // Named, not a temporary inside co_await: GCC 12 destroys such temporaries twice.
    std::function<Status()> store_call_8 = [this, &batch] { return deps.store.record_outcomes(batch); };
    auto written = co_await on_store<Status>(store_call_8);
    if (!written) {
      // Kept and written again by a later flush (a second later, not every few milliseconds): until then
      // they stay leased or unsettled in the store, so a crash meanwhile sends them again.
      fanout_log()->error("writing {} delivery outcomes failed (retried in 1 s): {}", batch.size(),
                          written.error().message);
      auto& p = pending_outcomes;
      p.updates.insert(p.updates.begin(), batch.updates.begin(), batch.updates.end());
      p.new_rows.insert(p.new_rows.begin(), batch.new_rows.begin(), batch.new_rows.end());
      p.page_done.insert(p.page_done.begin(), batch.page_done.begin(), batch.page_done.end());
      flush_retry_at = Clock::now() + std::chrono::seconds(1);
    }
    for (auto seq : finals) maybe_finished(seq);
  }

  // ---- stop (on the strand)

  static asio::awaitable<void> begin_stop(std::shared_ptr<Impl> impl) {
    impl->stopping = true;
    impl->wake_all();
    co_return;
  }

  static asio::awaitable<void> stop(std::shared_ptr<Impl> impl, std::chrono::milliseconds timeout) {
    co_await begin_stop(impl);
    asio::steady_timer timer(impl->strand);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while ((impl->in_flight > 0 || impl->loops_running > 0) && std::chrono::steady_clock::now() < deadline) {
      impl->flush_timer.cancel();
      timer.expires_after(std::chrono::milliseconds(10));
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!impl->pending_outcomes.empty()) co_await impl->flush();
    fanout_log()->info(
        "dispatcher stopped ({} deliveries still in flight and {} claimed but not started stay leased, {} "
        "resolved but not started stay in their pages: all are sent after the next start)",
        impl->in_flight, impl->due.size(), impl->ready.size());
  }

  template <class F>
  void bump(F f) {
    std::lock_guard lk(stats_mu);
    f(stats);
  }
  // Twice per delivery: an atomic, not the stats mutex; stats() reads it.
  void set_in_flight_stat() { in_flight_stat.store(in_flight, std::memory_order_relaxed); }
};

Dispatcher::Dispatcher(asio::any_io_executor executor, DispatcherDeps deps, DispatcherOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(deps), options)) {}

Dispatcher::~Dispatcher() {
  impl_->store_pool.join();
  impl_->read_pool.join();
}

void Dispatcher::start() {
  auto impl = impl_;
  asio::post(impl->strand, [impl] {
    impl->spawn(
        [](std::shared_ptr<Impl> self) -> asio::awaitable<void> {
          std::function<Result<std::int64_t>()> release = [s = self.get()] {
            return s->deps.store.release_leases();
          };
          auto released = co_await self->on_store<Result<std::int64_t>>(release);
          if (!released) {
            fanout_log()->error(
                "releasing the last run's leases and pages failed (retried at the next start): {}",
                released.error().message);
          } else if (*released) {
            fanout_log()->info("{} deliveries in flight at the last stop are due again", *released);
          }
          std::function<Result<std::vector<std::pair<std::int64_t, std::int64_t>>>()> count_pending =
              [s = self.get()] { return s->deps.store.pending_per_notification(); };
          auto pending =
              co_await self->on_store_read<Result<std::vector<std::pair<std::int64_t, std::int64_t>>>>(
                  count_pending);
          if (pending) {
            for (auto [seq, count] : *pending) {
              auto& p = self->progress[seq];
              p.remaining = count;
              p.resolved = true;  // corrected by the resolver if it is not
            }
          }
          self->loops_running = 3;
          self->spawn(self->resolve_loop(), "resolver");
          self->spawn(self->schedule_loop(), "scheduler");
          self->spawn(self->flush_loop(), "outcome writer");
        }(impl),
        "dispatcher start");
  });
}

void Dispatcher::wake() {
  auto impl = impl_;
  asio::post(impl->strand, [impl] { impl->wake_all(); });
}

// Both run on the strand, as all of Impl's state is strand-only: a coroutine resumes on the executor it was
// spawned on, so co_spawn on the strand rather than a post to it from the caller's coroutine.
asio::awaitable<void> Dispatcher::begin_stop() {
  co_await asio::co_spawn(impl_->strand, Impl::begin_stop(impl_), asio::use_awaitable);
}

asio::awaitable<void> Dispatcher::stop(std::chrono::milliseconds timeout) {
  co_await asio::co_spawn(impl_->strand, Impl::stop(impl_, timeout), asio::use_awaitable);
}

DispatcherStats Dispatcher::stats() const {
  std::lock_guard lk(impl_->stats_mu);
  DispatcherStats s = impl_->stats;
  impl_->delivered_counts.add_to(s);
  s.in_flight = impl_->in_flight_stat.load(std::memory_order_relaxed);
  return s;
}

}  // namespace notifyd::fanout
