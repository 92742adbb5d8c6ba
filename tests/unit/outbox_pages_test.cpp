// Unit tests for the outbox's page rows (daemon/store/sqlite/delivery_page.*, SqliteStore::resolve_page with
// a lease, record_outcomes, release_leases) and the derived apns-id (daemon/model/sid.*): a resolved page is
// one row, a delivered entry leaves no row, a retry or failure gets one, and a page left unsettled by a dead
// process comes back as pending rows with the same apns-ids.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/model/sid.hpp"
#include "daemon/store/sqlite/delivery_page.hpp"
#include "daemon/store/sqlite/sqlite_db.hpp"
#include "daemon/store/sqlite/sqlite_store.hpp"
#include "tests/support/writer_gate.hpp"

namespace notifyd::sqlite {
namespace {

namespace fs = std::filesystem;
const std::string kAccount = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

TEST(DeliveryPageCodec, TargetsRoundTripThroughVarintDeltas) {
  std::vector<std::int64_t> seqs = {1, 2, 3, 130, 131, 20000, 20001, 1LL << 40, (1LL << 40) + 1};
  auto blob = encode_page_targets(seqs);
  EXPECT_EQ(decode_page_targets(blob), seqs);
  std::vector<std::int64_t> dense;
  for (std::int64_t s = 5000; s < 6000; ++s) dense.push_back(s);
  EXPECT_LE(encode_page_targets(dense).size(), 1002u);  // one byte a binding after the first
  EXPECT_EQ(decode_page_targets(encode_page_targets(dense)), dense);
  EXPECT_TRUE(decode_page_targets({}).empty());
}

TEST(DeliveryPageCodec, TruncatedBlobDecodesWhatIsWhole) {
  auto blob = encode_page_targets(std::vector<std::int64_t>{7, 1000000});
  blob.pop_back();  // the second varint loses its last byte
  EXPECT_EQ(decode_page_targets(blob), std::vector<std::int64_t>{7});
}

TEST(DeliveryPageCodec, BitsSetOnceAndGrow) {
  std::vector<std::uint8_t> bits(2, 0);
  EXPECT_TRUE(set_page_bit(bits, 9));
  EXPECT_FALSE(set_page_bit(bits, 9));
  EXPECT_TRUE(page_bit(bits, 9));
  EXPECT_FALSE(page_bit(bits, 8));
  EXPECT_FALSE(page_bit(bits, 100));
  EXPECT_TRUE(set_page_bit(bits, 20));
  EXPECT_EQ(bits.size(), 3u);
}

TEST(ApnsIdFor, StableDistinctAndAUuid) {
  std::string sid = make_sid("NT");
  const std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  EXPECT_EQ(apns_id_for(sid, 42), apns_id_for(sid, 42));
  std::set<std::string> ids;
  for (std::int64_t seq = 1; seq <= 5000; ++seq) {
    auto id = apns_id_for(sid, seq);
    ASSERT_TRUE(std::regex_match(id, uuid)) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 5000u);
  EXPECT_NE(apns_id_for(make_sid("NT"), 1), apns_id_for(sid, 1));
}

// The ids are not stored: a restart (or an upgrade) must derive the very same ones, byte for byte.
TEST(ApnsIdFor, IsTheSameDerivationForOneBindingOrAPageOfThem) {
  const std::string sid = "NT0123456789abcdef0123456789abcdef";
  // Bytes of the SID's digits; version 4 and the RFC 4122 variant set; 42 added to the last six bytes.
  EXPECT_EQ(apns_id_for(sid, 42), "01234567-89ab-4def-8123-456789abce19");
  const ApnsIds ids(sid);
  for (std::int64_t seq : {0, 1, 42, 255, 256, 1000000, 0x7fffffff})
    EXPECT_EQ(ids.for_binding(seq), apns_id_for(sid, seq));
}

class OutboxPagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = fs::temp_directory_path() / ("notifyd-outbox-test-" + make_sid("") + ".db");
    store_ = std::make_unique<SqliteStore>(SqliteOptions{path_.string()});
    service_ = add_service(kAccount);
    for (int i = 0; i < 10; ++i) {
      BindingRecord b;
      b.sid = make_sid("BS");
      b.account_sid = kAccount;
      b.service_sid = service_.sid;
      b.identity = "user" + std::to_string(i);
      b.binding_type = "apn";
      b.address = std::string(63, 'a') + std::to_string(i);
      b.tags = {"t"};
      b.notification_protocol_version = "3";
      b.date_created = b.date_updated = 1700000100;
      bindings_.push_back(store_->insert_binding(b).value().binding);
    }
    NotificationRecord n;
    n.sid = make_sid("NT");
    n.account_sid = kAccount;
    n.service_sid = service_.sid;
    n.request = "{}";
    n.date_created = 1700000200;
    n.expires_at = n.date_created + 3600;
    notification_ = store_->insert_notification(n, {}).value();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path_.string() + suffix, ec);
  }

  ServiceRecord add_service(const std::string& account) {
    ServiceRecord s;
    s.sid = make_sid("IS");
    s.account_sid = account;
    s.date_created = s.date_updated = 1700000000;
    return store_->insert_service(s).value();
  }
  std::int64_t count(const std::string& sql) {
    Db db(path_.string(), false);
    auto& s = db.prepare(sql);
    EXPECT_TRUE(s.step());
    auto n = s.column_int(0);
    s.reset();
    return n;
  }
  ResolvedPage resolve(std::size_t page_size) {
    BindingFilter f;
    f.tags = {"t"};
    return store_->resolve_page(notification_.seq, f, page_size).value();
  }

  fs::path path_;
  std::unique_ptr<SqliteStore> store_;
  ServiceRecord service_;
  std::vector<BindingRecord> bindings_;
  NotificationRecord notification_;
};

// A tag is read along binding_tags, without comparing each binding's service and account again: bindings of
// another service (even of another account) with the same tags are never resolved.
TEST_F(OutboxPagesTest, ATagResolvesOnlyTheNotificationsServiceBindings) {
  for (const std::string& account : {kAccount, std::string("AC00000000000000000000000000000002")}) {
    ServiceRecord other = add_service(account);
    for (int i = 0; i < 3; ++i) {
      BindingRecord b = bindings_[0];
      b.sid = make_sid("BS");
      b.account_sid = account;
      b.service_sid = other.sid;
      b.address = "other" + std::to_string(i);
      b.tags = {"t", "u"};
      store_->insert_binding(b).value();
    }
  }
  std::set<std::string> got;
  for (const auto& d : resolve(100).deliveries) got.insert(*d.binding_sid);
  std::set<std::string> expected;
  for (const auto& b : bindings_) expected.insert(b.sid);
  EXPECT_EQ(got, expected);
  // A second explicit tag, checked for each row beside the driving one: none of this service has it.
  NotificationRecord second = notification_;
  second.sid = make_sid("NT");
  second = store_->insert_notification(second, {}).value();
  BindingFilter f;
  f.tags = {"t", "u"};
  auto page = store_->resolve_page(second.seq, f, 100).value();
  EXPECT_TRUE(page.deliveries.empty());
  EXPECT_TRUE(page.done);
}

TEST_F(OutboxPagesTest, AResolvedPageIsOneRowAndItsDeliveriesHaveNone) {
  auto page = resolve(6);
  ASSERT_EQ(page.deliveries.size(), 6u);
  EXPECT_FALSE(page.done);
  for (std::uint32_t i = 0; i < 6; ++i) {
    EXPECT_EQ(page.deliveries[i].seq, 0);
    EXPECT_NE(page.deliveries[i].page_seq, 0);
    EXPECT_EQ(page.deliveries[i].page_index, i);
    EXPECT_EQ(page.deliveries[i].binding_sid, bindings_[i].sid);
    EXPECT_EQ(page.deliveries[i].apns_id, apns_id_for(notification_.sid, bindings_[i].seq));
  }
  EXPECT_EQ(count("SELECT COUNT(*) FROM delivery_pages"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries"), 0);
  EXPECT_EQ(store_->pending_delivery_count().value(), 6);
  auto rest = resolve(6);
  EXPECT_EQ(rest.deliveries.size(), 4u);
  EXPECT_TRUE(rest.done);
  EXPECT_NE(rest.deliveries[0].page_seq, page.deliveries[0].page_seq);
  EXPECT_EQ(store_->pending_delivery_count().value(), 10);
  auto per = store_->pending_per_notification().value();
  ASSERT_EQ(per.size(), 1u);
  EXPECT_EQ(per[0], std::make_pair(notification_.seq, std::int64_t{10}));
}

// Two pages waiting for the writer at once are committed one by one, so that the first is answered without
// waiting for the second's rows; small writes waiting beside them still share one commit (group commit).
TEST_F(OutboxPagesTest, APageCommitsOnItsOwnWhileSmallWritesShareACommit) {
  // Hold the writer inside a write, so that the pages and the small writes below queue up behind it.
  test::WriterGate gate(*store_, kAccount, service_.sid);
  ASSERT_TRUE(gate.wait_entered());

  // Both pages first, then the small writes (the pauses order them in the writer's queue).
  std::vector<std::future<ResolvedPage>> pages;
  for (int i = 0; i < 2; ++i) {
    pages.push_back(std::async(std::launch::async, [&] { return resolve(4); }));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  constexpr int kSmallWrites = 6;
  std::vector<std::future<bool>> small;
  for (int i = 0; i < kSmallWrites; ++i) {
    small.push_back(std::async(std::launch::async, [&] { return add_service(kAccount).sid.size() == 34; }));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto commits_before = store_->commit_count();
  gate.open();

  ASSERT_TRUE(gate.result().has_value());
  std::set<std::int64_t> resolved;
  for (auto& f : pages) {
    auto page = f.get();
    EXPECT_EQ(page.deliveries.size(), 4u);
    for (const auto& d : page.deliveries) resolved.insert(d.page_seq * 100 + d.page_index);
  }
  EXPECT_EQ(resolved.size(), 8u);  // two distinct pages of four
  for (auto& f : small) EXPECT_TRUE(f.get());
  // The gate's write, each page's, and one for the small writes.
  EXPECT_EQ(store_->commit_count() - commits_before, 4u);
  EXPECT_EQ(resolve(100).deliveries.size(), 2u);  // the pages took 8 of the 10 bindings
}

// The fan-out's bookkeeping (a page, its outcomes, a claim) commits without syncing the WAL; an API write
// syncs, and so does a commit it shares with bookkeeping. Either is committed: another connection reads it.
TEST_F(OutboxPagesTest, BookkeepingCommitsDoNotSyncAndApiWritesDo) {
  const auto commits0 = store_->commit_count(), synced0 = store_->synced_commit_count();
  auto page = resolve(4);
  ASSERT_EQ(page.deliveries.size(), 4u);
  DeliveryOutcomes done;
  done.page_done.push_back({page.deliveries[0].page_seq, 0});
  ASSERT_TRUE(store_->record_outcomes(done));
  EXPECT_TRUE(store_->claim_due_deliveries(1, 10, 60000).has_value());
  EXPECT_EQ(store_->commit_count() - commits0, 3u);
  EXPECT_EQ(store_->synced_commit_count() - synced0, 0u);
  EXPECT_EQ(count("SELECT remaining FROM delivery_pages"), 3);  // committed, seen by another connection

  add_service(kAccount);
  EXPECT_EQ(store_->commit_count() - commits0, 4u);
  EXPECT_EQ(store_->synced_commit_count() - synced0, 1u);

  // Outcomes sharing a commit with an API write: that commit syncs.
  {
    test::WriterGate gate(*store_, kAccount, service_.sid);
    ASSERT_TRUE(gate.wait_entered());
    DeliveryOutcomes more;
    more.page_done.push_back({page.deliveries[1].page_seq, 1});
    auto outcomes = std::async(std::launch::async, [&] { return store_->record_outcomes(more).has_value(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto api = std::async(std::launch::async, [&] { return add_service(kAccount).sid.size() == 34; });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto commits1 = store_->commit_count(), synced1 = store_->synced_commit_count();
    ASSERT_TRUE(gate.result().has_value());
    EXPECT_TRUE(outcomes.get());
    EXPECT_TRUE(api.get());
    EXPECT_EQ(store_->commit_count() - commits1, 2u);  // the gate's, then the outcomes' with the API write's
    EXPECT_EQ(store_->synced_commit_count() - synced1, 2u);
  }
  EXPECT_EQ(count("SELECT remaining FROM delivery_pages"), 2);
}

TEST_F(OutboxPagesTest, DeliveredEntriesLeaveNoRowRetriesAndFailuresGetOne) {
  auto page = resolve(10);
  ASSERT_EQ(page.deliveries.size(), 10u);
  DeliveryOutcomes out;
  for (std::uint32_t i = 0; i < 8; ++i) out.page_done.push_back({page.deliveries[i].page_seq, i});
  DeliveryRecord retry = page.deliveries[8];
  retry.attempts = 1;
  retry.next_attempt_ms = 1;  // due at once
  retry.last_reason = "ServiceUnavailable";
  retry.provider_status = 503;
  out.new_rows.push_back(retry);
  out.page_done.push_back({retry.page_seq, 8});
  ASSERT_TRUE(store_->record_outcomes(out));
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries"), 1);
  EXPECT_EQ(count("SELECT remaining FROM delivery_pages"), 1);
  EXPECT_EQ(store_->pending_delivery_count().value(), 2);  // the retry row and the unsettled entry

  auto claimed = store_->claim_due_deliveries(2, 10, 60000).value();
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].binding_sid, bindings_[8].sid);
  EXPECT_EQ(claimed[0].apns_id, page.deliveries[8].apns_id);
  EXPECT_EQ(claimed[0].attempts, 1);
  EXPECT_EQ(claimed[0].last_reason, "ServiceUnavailable");

  DeliveryOutcomes last;
  DeliveryRecord failed = page.deliveries[9];
  failed.state = DeliveryState::failed;
  failed.attempts = 1;
  failed.last_reason = "BadDeviceToken";
  failed.provider_status = 400;
  last.new_rows.push_back(failed);
  last.page_done.push_back({failed.page_seq, 9});
  last.page_done.push_back({failed.page_seq, 9});  // settling twice counts once
  last.updates.push_back({claimed[0].seq, DeliveryState::delivered, 2, 0, "", 200});
  ASSERT_TRUE(store_->record_outcomes(last));
  EXPECT_EQ(count("SELECT COUNT(*) FROM delivery_pages"), 0);  // fully settled: gone
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE state = 2 AND last_reason = 'BadDeviceToken'"), 1);
  EXPECT_EQ(store_->pending_delivery_count().value(), 0);
}

TEST_F(OutboxPagesTest, AnUnsettledPageBecomesPendingRowsAfterARestart) {
  auto page = resolve(10);
  DeliveryOutcomes out;
  for (std::uint32_t i = 0; i < 4; ++i) out.page_done.push_back({page.deliveries[i].page_seq, i});
  ASSERT_TRUE(store_->record_outcomes(out));
  ASSERT_TRUE(store_->delete_binding(kAccount, service_.sid, bindings_[9].sid));
  store_.reset();  // the process "dies" with entries 4..9 on the wire
  store_ = std::make_unique<SqliteStore>(SqliteOptions{path_.string()});
  EXPECT_EQ(store_->release_leases().value(), 5);  // 4..8; 9's binding is gone
  EXPECT_EQ(count("SELECT COUNT(*) FROM delivery_pages"), 0);
  auto claimed = store_->claim_due_deliveries(1, 100, 60000).value();
  ASSERT_EQ(claimed.size(), 5u);
  for (std::size_t k = 0; k < claimed.size(); ++k) {
    EXPECT_EQ(claimed[k].binding_sid, bindings_[4 + k].sid);
    EXPECT_EQ(claimed[k].apns_id, page.deliveries[4 + k].apns_id);  // the same apns-id as the first send
    EXPECT_EQ(claimed[k].attempts, 0);
  }
}

}  // namespace
}  // namespace notifyd::sqlite
