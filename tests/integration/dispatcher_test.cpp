// Dispatcher against a real SQLite outbox and a scripted Transport (the seam fan-out sees): resolution in
// pages, exactly one delivery per binding, retries with backoff, Ttl expiry, Retry-After pacing, credential
// parking, invalid-address feedback, and resuming after a restart.
#include "daemon/fanout/dispatcher.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <vector>

#include "daemon/fanout/notification.hpp"
#include "daemon/model/sid.hpp"
#include "daemon/model/time.hpp"
#include "daemon/store/sqlite/sqlite_store.hpp"
#include "tests/support/run_coroutine.hpp"

namespace notifyd::fanout {
namespace {

using Outcome = transport::DeliveryResult::Outcome;
using Clock = std::chrono::steady_clock;

// Answers from a script (per address, else the default), records every attempt.
class ScriptedTransport final : public transport::Transport {
 public:
  struct Attempt {
    std::string address, binding_sid, apns_id, credential_sid;
    Clock::time_point at;
  };

  boost::asio::awaitable<transport::DeliveryResult> deliver(transport::Delivery d) override {
    transport::DeliveryResult result;
    std::chrono::milliseconds delay{0};
    {
      std::lock_guard lk(mu_);
      attempts_.push_back(
          {d.address, d.binding_sid, d.apns_id, d.credential ? d.credential->sid : "", Clock::now()});
      auto it = scripts_.find(d.address);
      if (it != scripts_.end() && !it->second.empty()) {
        result = it->second.front();
        it->second.erase(it->second.begin());
      } else {
        result = default_;
      }
      delay = delay_;
    }
    if (delay.count() > 0) {
      boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, delay);
      co_await t.async_wait(boost::asio::use_awaitable);
    }
    co_return result;
  }
  boost::asio::awaitable<void> drain() override { co_return; }
  void prepare(const CredentialRecord& credential) override {
    std::lock_guard lk(mu_);
    prepared_.push_back(credential.sid);
  }
  std::vector<std::string> prepared() const {
    std::lock_guard lk(mu_);
    return prepared_;
  }

  // A transport bug: throws before taking the delivery, once for each address in throw_once().
  void deliver_async(transport::Delivery&& d, const boost::asio::any_io_executor& executor,
                     std::unique_ptr<transport::DeliveryCompletion> done) override {
    {
      std::lock_guard lk(mu_);
      if (throw_once_.erase(d.address)) {
        ++throws_;
        throw std::runtime_error("scripted transport bug");
      }
    }
    transport::Transport::deliver_async(std::move(d), executor, std::move(done));
  }
  void throw_once(const std::string& address) {
    std::lock_guard lk(mu_);
    throw_once_.insert(address);
  }
  int throws() const {
    std::lock_guard lk(mu_);
    return throws_;
  }

  void script(const std::string& address, std::vector<transport::DeliveryResult> results) {
    std::lock_guard lk(mu_);
    scripts_[address] = std::move(results);
  }
  void set_default(transport::DeliveryResult r) {
    std::lock_guard lk(mu_);
    default_ = r;
  }
  void set_delay(std::chrono::milliseconds d) {
    std::lock_guard lk(mu_);
    delay_ = d;
  }
  std::vector<Attempt> attempts() const {
    std::lock_guard lk(mu_);
    return attempts_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> prepared_;  // credential sids, in prepare() order
  std::map<std::string, std::vector<transport::DeliveryResult>> scripts_;
  transport::DeliveryResult default_{Outcome::delivered, 200, "", std::nullopt, std::nullopt};
  std::chrono::milliseconds delay_{0};
  std::vector<Attempt> attempts_;
  std::set<std::string> throw_once_;
  int throws_ = 0;
};

transport::DeliveryResult result(Outcome o, int status = 0, std::string reason = "",
                                 std::optional<std::chrono::seconds> retry_after = std::nullopt,
                                 std::optional<std::int64_t> invalid_since = std::nullopt) {
  return {o, status, std::move(reason), retry_after, invalid_since};
}

const std::string kAccount = "AC" + std::string(32, 'a');

// The store, with find_notification slowed down (a read of a notification's context comes back late), the
// size of every page asked for recorded, and writes (pages, claims, outcomes) held on demand, as the store's
// one writer thread holds them while it is busy.
class ObservedStore final : public Store {
 public:
  explicit ObservedStore(Store& inner, std::chrono::milliseconds notification_read_delay = {})
      : s_(inner), delay_(notification_read_delay) {}
  std::vector<std::size_t> page_sizes() const {
    std::lock_guard lk(mu_);
    return page_sizes_;
  }
  void hold_writes() {
    std::lock_guard lk(mu_);
    writes_held_ = true;
  }
  void release_writes() {
    {
      std::lock_guard lk(mu_);
      writes_held_ = false;
    }
    released_.notify_all();
  }
  std::size_t writes_waiting() const {
    std::lock_guard lk(mu_);
    return writes_waiting_;
  }
  Result<NotificationRecord> find_notification(std::int64_t seq) override {
    std::this_thread::sleep_for(delay_);
    return s_.find_notification(seq);
  }
  // The rest as it is.
  Result<CredentialRecord> insert_credential(CredentialRecord c) override { return s_.insert_credential(c); }
  Result<CredentialRecord> find_credential(std::string_view a, std::string_view sid) override {
    return s_.find_credential(a, sid);
  }
  Result<CredentialRecord> update_credential(std::string_view a, std::string_view sid,
                                             std::function<Status(CredentialRecord&)> change) override {
    return s_.update_credential(a, sid, std::move(change));
  }
  Status delete_credential(std::string_view a, std::string_view sid) override {
    return s_.delete_credential(a, sid);
  }
  Result<Page<CredentialRecord>> list_credentials(std::string_view a, PageRequest page) override {
    return s_.list_credentials(a, page);
  }
  Result<ServiceRecord> insert_service(ServiceRecord s) override { return s_.insert_service(std::move(s)); }
  Result<ServiceRecord> find_service(std::string_view a, std::string_view sid) override {
    return s_.find_service(a, sid);
  }
  Result<ServiceRecord> update_service(std::string_view a, std::string_view sid,
                                       std::function<Status(ServiceRecord&)> change) override {
    return s_.update_service(a, sid, std::move(change));
  }
  Status delete_service(std::string_view a, std::string_view sid) override {
    return s_.delete_service(a, sid);
  }
  Result<Page<ServiceRecord>> list_services(std::string_view a, std::optional<std::string> name,
                                            PageRequest page) override {
    return s_.list_services(a, std::move(name), page);
  }
  Result<BindingInsert> insert_binding(BindingRecord b) override { return s_.insert_binding(std::move(b)); }
  Result<BindingRecord> find_binding(std::string_view a, std::string_view svc,
                                     std::string_view sid) override {
    return s_.find_binding(a, svc, sid);
  }
  Status delete_binding(std::string_view a, std::string_view svc, std::string_view sid) override {
    return s_.delete_binding(a, svc, sid);
  }
  Result<Page<BindingRecord>> list_bindings(std::string_view a, std::string_view svc, const BindingFilter& f,
                                            PageRequest page) override {
    return s_.list_bindings(a, svc, f, page);
  }
  Result<NotificationRecord> insert_notification(NotificationRecord n,
                                                 std::vector<DeliveryRecord> d) override {
    return s_.insert_notification(std::move(n), std::move(d));
  }
  Result<std::vector<NotificationRecord>> unresolved_notifications(std::size_t limit) override {
    return s_.unresolved_notifications(limit);
  }
  Result<ResolvedPage> resolve_page(std::int64_t seq, const BindingFilter& f, std::size_t size) override {
    {
      std::lock_guard lk(mu_);
      page_sizes_.push_back(size);
    }
    wait_while_held();
    return s_.resolve_page(seq, f, size);
  }
  Result<std::vector<DeliveryRecord>> claim_due_deliveries(std::int64_t now, std::size_t limit,
                                                           std::int64_t lease) override {
    wait_while_held();
    return s_.claim_due_deliveries(now, limit, lease);
  }
  Status record_outcomes(DeliveryOutcomes o) override {
    wait_while_held();
    return s_.record_outcomes(std::move(o));
  }
  Result<std::int64_t> release_leases() override { return s_.release_leases(); }
  Result<std::vector<std::pair<std::int64_t, std::int64_t>>> pending_per_notification() override {
    return s_.pending_per_notification();
  }
  Result<std::int64_t> pending_delivery_count() override { return s_.pending_delivery_count(); }
  Result<bool> remove_invalid_binding(std::string_view sid, std::string_view address,
                                      std::optional<Seconds> since) override {
    return s_.remove_invalid_binding(sid, address, since);
  }

 private:
  void wait_while_held() {  // bounded: a failing test must not hang
    std::unique_lock lk(mu_);
    ++writes_waiting_;
    released_.wait_for(lk, std::chrono::seconds(30), [&] { return !writes_held_; });
    --writes_waiting_;
  }

  Store& s_;
  std::chrono::milliseconds delay_;
  mutable std::mutex mu_;
  std::condition_variable released_;
  std::vector<std::size_t> page_sizes_;
  bool writes_held_ = false;
  std::size_t writes_waiting_ = 0;
};

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("notifyd-dispatcher-" + make_sid("XX"));
    std::filesystem::create_directories(dir_);
    open_store();
    CredentialRecord c;
    c.sid = make_sid("CR");
    c.account_sid = kAccount;
    c.type = "apn";
    c.apn_topic = "com.example";
    c.date_created = c.date_updated = now_seconds();
    credential_ = store_->insert_credential(c).value();
    ServiceRecord s;
    s.sid = make_sid("IS");
    s.account_sid = kAccount;
    s.apn_credential_sid = credential_.sid;
    s.messaging_service_sid = "MG" + std::string(32, 'b');
    s.date_created = s.date_updated = now_seconds();
    service_ = store_->insert_service(s).value();
  }
  void TearDown() override {
    stop_dispatcher();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void open_store() {
    store_ = std::make_unique<sqlite::SqliteStore>(sqlite::SqliteOptions{(dir_ / "db").string()});
  }

  void start_dispatcher(DispatcherOptions o = fast_options(), Store* store = nullptr) {
    DispatcherDeps deps{store ? *store : *store_,
                        [this](std::string_view) -> transport::Transport& { return transport_; },
                        nullptr,
                        {}};
    dispatcher_ = std::make_unique<Dispatcher>(io_.executor(), std::move(deps), o);
    dispatcher_->start();
  }
  void stop_dispatcher() {
    if (!dispatcher_) return;
    io_.run(dispatcher_->stop(std::chrono::seconds(5)));
    dispatcher_.reset();
  }

  static DispatcherOptions fast_options() {
    DispatcherOptions o;
    o.idle_poll = std::chrono::milliseconds(20);
    o.initial_backoff = std::chrono::milliseconds(50);
    o.max_backoff = std::chrono::milliseconds(400);
    o.park_retry = std::chrono::milliseconds(100);
    o.lease = std::chrono::milliseconds(60000);
    return o;
  }

  BindingRecord add_binding(const std::string& identity, std::vector<std::string> tags = {}) {
    BindingRecord b;
    b.sid = make_sid("BS");
    b.account_sid = kAccount;
    b.service_sid = service_.sid;
    b.identity = identity;
    b.binding_type = "apn";
    b.address = make_sid("") + make_sid("");  // 64 hex
    b.tags = std::move(tags);
    b.notification_protocol_version = "3";
    b.date_created = b.date_updated = now_seconds();
    return store_->insert_binding(b).value().binding;
  }

  NotificationRecord notify(NotificationRequest n) {
    NotificationRecord r;
    r.sid = make_sid("NT");
    r.account_sid = kAccount;
    r.service_sid = service_.sid;
    r.request = boost::json::serialize(to_json(n));
    r.date_created = now_seconds();
    r.expires_at = r.date_created + n.ttl;
    auto stored = store_->insert_notification(r, {}).value();
    if (dispatcher_) dispatcher_->wake();
    return stored;
  }

  static NotificationRequest to_tag(std::string tag, std::int64_t ttl = 3600) {
    NotificationRequest n;
    n.tags = {std::move(tag)};
    n.body = "hello";
    n.ttl = ttl;
    return n;
  }

  // Waits (bounded) until the dispatcher's counters satisfy `done`.
  ::testing::AssertionResult wait_for(const std::function<bool(const DispatcherStats&)>& done,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (done(dispatcher_->stats())) return ::testing::AssertionSuccess();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    auto s = dispatcher_->stats();
    return ::testing::AssertionFailure() << "timed out: delivered " << s.delivered << ", failed " << s.failed
                                         << ", expired " << s.expired << ", retried " << s.retried;
  }

  std::filesystem::path dir_;
  std::unique_ptr<sqlite::SqliteStore> store_;
  CredentialRecord credential_;
  ServiceRecord service_;
  ScriptedTransport transport_;
  test::IoThreads io_{2};
  std::unique_ptr<Dispatcher> dispatcher_;
};

// The senders send a small first page in a few milliseconds: the pages after it grow by doubling, so the
// second is not a full page the senders would wait for.
TEST_F(DispatcherTest, PagesAfterTheFirstDoubleUpToThePageSize) {
  std::set<std::string> expected;
  for (int i = 0; i < 2000; ++i) expected.insert(add_binding("user" + std::to_string(i), {"news"}).sid);
  ObservedStore observed(*store_);
  DispatcherOptions o = fast_options();
  o.resolve_page_size = 800;
  start_dispatcher(o, &observed);
  notify(to_tag("news"));
  ASSERT_TRUE(wait_for([](const DispatcherStats& s) { return s.delivered >= 2000; }));
  stop_dispatcher();  // before `observed` goes
  // Two pages are asked for at a time, on the store's threads: they may reach the store in either order.
  auto sizes = observed.page_sizes();
  ASSERT_GE(sizes.size(), 4u);
  EXPECT_EQ(sizes.front(), 100u) << "the first page, alone";
  std::sort(sizes.begin(), sizes.end());
  EXPECT_EQ(std::vector<std::size_t>(sizes.begin(), sizes.begin() + 4),
            (std::vector<std::size_t>{100, 200, 400, 800}));
  for (std::size_t i = 4; i < sizes.size(); ++i) EXPECT_EQ(sizes[i], 800u) << "page " << i;
  std::multiset<std::string> got;
  for (const auto& a : transport_.attempts()) got.insert(a.binding_sid);
  EXPECT_EQ(got.size(), 2000u);
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), expected);
}

// A notification's resolution starts by readying the service's credential in its transport (its connection
// opens while the first page is read).
TEST_F(DispatcherTest, ResolvingANotificationPreparesTheServicesCredential) {
  add_binding("alice", {"t"});
  start_dispatcher();
  EXPECT_TRUE(transport_.prepared().empty());
  notify(to_tag("t"));
  ASSERT_TRUE(wait_for([](const DispatcherStats& s) { return s.delivered >= 1; }));
  // Beside the first page, not before the first delivery: wait (bounded) for it.
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (transport_.prepared().empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(transport_.prepared(), std::vector<std::string>{credential_.sid});
}

// Store reads never queue behind store writes waiting for the store's writer thread: with the one store
// thread held by a write (the scheduler's claim), a new notification is still read, and its service's
// credential read and prepared.
TEST_F(DispatcherTest, ReadsDoNotWaitForAStoreThreadHeldByAWrite) {
  add_binding("alice", {"t"});
  ObservedStore observed(*store_);
  observed.hold_writes();
  DispatcherOptions o = fast_options();
  o.store_threads = 1;
  start_dispatcher(o, &observed);
  auto held_by_claim = [&] {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (observed.writes_waiting() == 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return observed.writes_waiting() > 0;
  };
  ASSERT_TRUE(held_by_claim());
  notify(to_tag("t"));
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (transport_.prepared().empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const bool prepared_while_held = !transport_.prepared().empty();
  observed.release_writes();
  EXPECT_TRUE(prepared_while_held) << "the reads waited for the store thread a write held";
  EXPECT_TRUE(wait_for([](const DispatcherStats& s) { return s.delivered >= 1; }));
  stop_dispatcher();  // before `observed` goes
  EXPECT_EQ(transport_.prepared(), std::vector<std::string>{credential_.sid});
}

TEST_F(DispatcherTest, ResolvesInPagesAndDeliversToEveryMatchingBindingExactlyOnce) {
  std::set<std::string> expected;
  for (int i = 0; i < 2500; ++i) expected.insert(add_binding("user" + std::to_string(i), {"news"}).sid);
  for (int i = 0; i < 50; ++i) add_binding("other" + std::to_string(i), {"sports"});
  start_dispatcher();
  notify(to_tag("news"));
  ASSERT_TRUE(wait_for([](const DispatcherStats& s) { return s.delivered >= 2500; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // nothing more may arrive
  std::multiset<std::string> got;
  for (const auto& a : transport_.attempts()) got.insert(a.binding_sid);
  EXPECT_EQ(got.size(), 2500u);
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), expected);
  EXPECT_EQ(store_->pending_delivery_count().value(), 0);
}

TEST_F(DispatcherTest, RetriesWithBackoffKeepingTheApnsIdThenDelivers) {
  auto b = add_binding("alice", {"t"});
  transport_.script(b.address, {result(Outcome::retry_later, 503, "ServiceUnavailable"),
                                result(Outcome::retry_later, 503, "ServiceUnavailable")});
  start_dispatcher();
  notify(to_tag("t"));
  ASSERT_TRUE(wait_for([](const DispatcherStats& s) { return s.delivered == 1; }));
  auto attempts = transport_.attempts();
  ASSERT_EQ(attempts.size(), 3u);
  EXPECT_EQ(attempts[0].apns_id, attempts[2].apns_id);
  EXPECT_GE(attempts[1].at - attempts[0].at, std::chrono::milliseconds(40));  // ~50 ms with jitter
  EXPECT_GE(attempts[2].at - attempts[1].at, std::chrono::milliseconds(80));  // ~100 ms: it doubles
  auto stats = dispatcher_->stats();
  EXPECT_EQ(stats.retried, 2u);
  // Every transport result per channel and outcome; the delivered one counted once, as attempt and outcome.
  EXPECT_EQ(stats.by_channel.size(), 1u);
  const auto& apn = stats.by_channel["apn"];
  EXPECT_EQ(apn.attempts, (std::map<std::string, std::uint64_t>{{"delivered", 1}, {"retry_later", 2}}));
  EXPECT_EQ(apn.delivered, 1u);
  EXPECT_EQ(apn.failed + apn.expired, 0u);
}

// A long fan-out keeps every sender busy; a retry that falls due meanwhile still goes out on time (claimed
// rows go before the fan-out's resolved pages), not after the last page.
TEST_F(DispatcherTest, ARetryIsNotHeldBackByAFanOutInProgress) {
  auto alice = add_binding("alice", {"t"});
  for (int i = 0; i < 2000; ++i) add_binding("user" + std::to_string(i), {"news"});
  transport_.script(alice.address, {result(Outcome::retry_later, 503, "ServiceUnavailable")});
  transport_.set_delay(std::chrono::milliseconds(10));
  DispatcherOptions o = fast_options();
  o.max_in_flight = 10;  // about 1,000 deliveries a second: the fan-out takes about 2 s
  start_dispatcher(o);
  notify(to_tag("t"));
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (transport_.attempts().empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_GE(transport_.attempts().size(), 1u);  // the retry may already be out on a slow machine
  notify(to_tag("news"));
  ASSERT_TRUE(wait_for([](const DispatcherStats& s) { return s.delivered == 2001; }));
  auto attempts = transport_.attempts();
  ASSERT_EQ(attempts.size(), 2002u);
  std::size_t retry = 1;
  while (retry < attempts.size() && attempts[retry].address != alice.address) ++retry;
  ASSERT_LT(retry, attempts.size());
  // Due about 50 ms after the first attempt (backoff), claimed within an idle poll of 20 ms.
  EXPECT_LT(attempts[retry].at - attempts[0].at, std::chrono::milliseconds(1000));
  EXPECT_LT(retry, 1200u) << "the retry waited for most of the fan-out";
}

// A delivery the transport throws on (a bug) gives its slots back, the credential's included: the
// credential's later deliveries still go out (before, its per-credential count stayed taken for good).
TEST_F(DispatcherTest, ATransportThatThrowsDoesNotHoldTheCredentialsSlot) {
  auto alice = add_binding("alice", {"t"});
  auto bob = add_binding("bob", {"b"});
  transport_.throw_once(alice.address);
  DispatcherOptions o = fast_options();
  o.max_in_flight_per_credential = 1;
  start_dispatcher(o);
  notify(to_tag("t"));
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (transport_.throws() == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(transport_.throws(), 1);
  notify(to_tag("b"));
  ASSERT_TRUE(wait_for([](const DispatcherStats& s) { return s.delivered == 1; }, std::chrono::seconds(5)));
  auto attempts = transport_.attempts();
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].binding_sid, bob.sid);
}

TEST_F(DispatcherTest, TtlZeroMeansOneAttempt) {
  auto b = add_binding("alice", {"t"});
  transport_.script(b.address, {result(Outcome::retry_later, 503, "ServiceUnavailable")});
  start_dispatcher();
  notify(to_tag("t", /*ttl=*/0));
  ASSERT_TRUE(wait_for([](const DispatcherStats& s) { return s.expired == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(transport_.attempts().size(), 1u);
}

TEST_F(DispatcherTest, RetryAfterPacesTheWholeCredentialQueue) {
  auto first = add_binding("alice", {"t"});
  add_binding("bob", {"t"});
  add_binding("carol", {"t"});
  transport_.script(first.address,
                    {result(Outcome::retry_later, 429, "TooManyRequests", std::chrono::seconds(1))});
  DispatcherOptions o = fast_options();
  o.max_in_flight = 1;  // one at a time, so the others come after the 429
  start_dispatcher(o);
  notify(to_tag("t"));
  ASSERT_TRUE(wait_for([](const DispatcherStats& s) { return s.delivered == 3; }));
  auto attempts = transport_.attempts();
  ASSERT_EQ(attempts.size(), 4u);
  for (std::size_t i = 1; i < attempts.size(); ++i) {
    EXPECT_GE(attempts[i].at - attempts[0].at, std::chrono::milliseconds(950)) << "attempt " << i;
  }
}

TEST_F(DispatcherTest, InvalidAddressRemovesTheBindingUnlessItRegisteredAgainSince) {
  auto gone = add_binding("alice", {"t"});
  auto fresh = add_binding("bob", {"t"});
  transport_.script(gone.address, {result(Outcome::invalid_address, 410, "Unregistered")});
  // The provider saw bob's token die an hour before bob's binding was last updated: keep it.
  std::int64_t an_hour_ago_ms = (now_seconds() - 3600) * 1000;
  transport_.script(fresh.address,
                    {result(Outcome::invalid_address, 410, "Unregistered", std::nullopt, an_hour_ago_ms)});
  start_dispatcher();
  notify(to_tag("t"));
  ASSERT_TRUE(wait_for([](const DispatcherStats& s) { return s.failed == 2; }));
  EXPECT_FALSE(store_->find_binding(kAccount, service_.sid, gone.sid));
  EXPECT_TRUE(store_->find_binding(kAccount, service_.sid, fresh.sid));
  EXPECT_EQ(dispatcher_->stats().bindings_removed, 1u);
  EXPECT_EQ(dispatcher_->stats().failed_by_reason.at("Unregistered"), 2u);
}

TEST_F(DispatcherTest, TransientFailuresNeverRemoveABinding) {
  auto b = add_binding("alice", {"t"});
  transport_.script(b.address, {result(Outcome::retry_later, 500, "InternalServerError")});
  start_dispatcher();
  notify(to_tag("t"));
  ASSERT_TRUE(wait_for([](const DispatcherStats& s) { return s.delivered == 1; }));
  EXPECT_TRUE(store_->find_binding(kAccount, service_.sid, b.sid));
}

TEST_F(DispatcherTest, RejectedCredentialParksItsDeliveriesUntilItIsUpdated) {
  add_binding("alice", {"t"});
  transport_.set_default(result(Outcome::credential_rejected, 403, "BadCertificate"));
  start_dispatcher();
  notify(to_tag("t"));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  std::size_t while_parked = transport_.attempts().size();
  EXPECT_GE(while_parked, 1u);
  EXPECT_LE(while_parked, 2u);  // not hammered: looked at again only every park_retry, then skipped
  EXPECT_EQ(dispatcher_->stats().delivered, 0u);
  transport_.set_default(result(Outcome::delivered, 200));
  ASSERT_TRUE(store_->update_credential(kAccount, credential_.sid, [](CredentialRecord& c) -> Status {
    c.date_updated += 1;  // the operator fixed the credential
    return {};
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(5100));  // past the dispatcher's credential cache
  ASSERT_TRUE(wait_for([](const DispatcherStats& s) { return s.delivered == 1; }));
}

TEST_F(DispatcherTest, PayloadRejectionFailsWithTheProvidersReason) {
  auto b = add_binding("alice", {"t"});
  transport_.script(b.address, {result(Outcome::payload_rejected, 400, "BadExpirationDate")});
  start_dispatcher();
  notify(to_tag("t"));
  ASSERT_TRUE(wait_for([](const DispatcherStats& s) { return s.failed == 1; }));
  EXPECT_EQ(transport_.attempts().size(), 1u);
  EXPECT_EQ(dispatcher_->stats().failed_by_reason.at("BadExpirationDate"), 1u);
}

// The resolver reads the notification's context beside its first page. When that read comes back after the
// notification already finished (no recipients here), it must not be taken for a direct notification seen
// for the first time: that counted it accepted twice and kept its progress for good.
TEST_F(DispatcherTest, AContextReadThatComesBackAfterTheNotificationFinishedCountsNothing) {
  ObservedStore slow(*store_, std::chrono::milliseconds(300));
  start_dispatcher(fast_options(), &slow);
  notify(to_tag("nobody"));
  ASSERT_TRUE(wait_for([](const DispatcherStats& s) { return s.accepted >= 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // the slow read is back by now
  EXPECT_EQ(dispatcher_->stats().accepted, 1u);
  stop_dispatcher();  // before `slow` goes
}

TEST_F(DispatcherTest, PendingDeliveriesSurviveARestart) {
  for (int i = 0; i < 200; ++i) add_binding("user" + std::to_string(i), {"t"});
  transport_.set_delay(std::chrono::milliseconds(50));
  DispatcherOptions o = fast_options();
  o.max_in_flight = 20;
  start_dispatcher(o);
  notify(to_tag("t"));
  ASSERT_TRUE(wait_for([](const DispatcherStats& s) { return s.delivered >= 20; }));
  stop_dispatcher();
  store_.reset();
  open_store();  // as after a restart: same file
  transport_.set_delay(std::chrono::milliseconds(0));
  start_dispatcher();
  // Resolution keeps pace with delivery, so part of the audience may not have deliveries yet at the stop:
  // the durable cursor resumes it, and pending deliveries are sent, after the restart.
  std::set<std::string> delivered;
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    delivered.clear();
    for (const auto& a : transport_.attempts()) delivered.insert(a.binding_sid);
    if (delivered.size() == 200u && store_->pending_delivery_count().value() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(store_->pending_delivery_count().value(), 0);
  EXPECT_EQ(delivered.size(), 200u);
}

}  // namespace
}  // namespace notifyd::fanout
