// Unit tests for the SQLite store (daemon/store/sqlite): migrations, CRUD, tenancy, binding replacement
// and eviction, list filters, keyset paging, group commit and durability across reopen.
// Each test runs on its own temp database file, removed in TearDown.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <latch>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/model/sid.hpp"
#include "daemon/store/sqlite/migrations.hpp"
#include "daemon/store/sqlite/sqlite_db.hpp"
#include "daemon/store/sqlite/sqlite_store.hpp"
#include "tests/support/writer_gate.hpp"

namespace notifyd::sqlite {
namespace {

namespace fs = std::filesystem;

const std::string kAccountA = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const std::string kAccountB = "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

CredentialRecord make_credential(const std::string& account, const std::string& type = "apn") {
  CredentialRecord c;
  c.sid = make_sid("CR");
  c.account_sid = account;
  c.friendly_name = "cred " + c.sid.substr(2, 6);
  c.type = type;
  c.sandbox = true;
  c.certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  c.private_key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
  c.secret = R"({"project_id":"p"})";
  c.apn_topic = "com.example.app";
  c.apn_key_id = "KEYID12345";
  c.apn_team_id = "TEAMID1234";
  c.fcm_project_id = "p";
  c.date_created = 1700000000;
  c.date_updated = 1700000001;
  return c;
}

ServiceRecord make_service(const std::string& account, std::optional<std::string> name = std::nullopt) {
  ServiceRecord s;
  s.sid = make_sid("IS");
  s.account_sid = account;
  s.friendly_name = std::move(name);
  s.messaging_service_sid = "MG0123456789abcdef0123456789abcdef";
  s.default_fcm_notification_protocol_version = "4";
  s.log_enabled = false;
  s.delivery_callback_url = "https://example.com/cb";
  s.delivery_callback_enabled = true;
  s.date_created = 1700000100;
  s.date_updated = 1700000200;
  return s;
}

BindingRecord make_binding(const ServiceRecord& service, const std::string& identity, const std::string& type,
                           const std::string& address, std::vector<std::string> tags = {},
                           Seconds date_created = 1700000300) {
  BindingRecord b;
  b.sid = make_sid("BS");
  b.account_sid = service.account_sid;
  b.service_sid = service.sid;
  b.identity = identity;
  b.binding_type = type;
  b.address = address;
  b.tags = std::move(tags);
  b.notification_protocol_version = "3";
  b.date_created = date_created;
  b.date_updated = date_created;
  return b;
}

template <class T>
std::vector<std::string> sids_of(const std::vector<T>& items) {
  std::vector<std::string> out;
  for (const auto& i : items) out.push_back(i.sid);
  return out;
}

ApiError mutator_error() { return invalid_parameter("rejected by the mutator"); }

BindingFilter tags_filter(std::vector<std::string> tags) {
  BindingFilter f;
  f.tags = std::move(tags);
  return f;
}
BindingFilter identities_filter(std::vector<std::string> identities) {
  BindingFilter f;
  f.identities = std::move(identities);
  return f;
}
BindingFilter types_filter(std::vector<std::string> types) {
  BindingFilter f;
  f.binding_types = std::move(types);
  return f;
}
BindingFilter created_filter(std::optional<Seconds> from, std::optional<Seconds> before) {
  BindingFilter f;
  f.created_from = from;
  f.created_before = before;
  return f;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = fs::temp_directory_path() / ("notifyd-store-test-" + make_sid("") + ".db");
    open();
  }

  void TearDown() override {
    store_.reset();
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(path_.string() + suffix, ec);
  }

  void open() { store_ = std::make_unique<SqliteStore>(SqliteOptions{path_.string()}); }
  void reopen() {
    store_.reset();
    open();
  }

  ServiceRecord add_service(const std::string& account = kAccountA, std::optional<std::string> name = {}) {
    auto r = store_->insert_service(make_service(account, std::move(name)));
    EXPECT_TRUE(r.has_value());
    return r.has_value() ? *r : ServiceRecord{};
  }

  BindingRecord add_binding(const BindingRecord& b) {
    auto r = store_->insert_binding(b);
    EXPECT_TRUE(r.has_value()) << (r.has_value() ? "" : r.error().message);
    return r.has_value() ? r->binding : BindingRecord{};
  }

  std::vector<std::string> list_sids(const ServiceRecord& service, const BindingFilter& filter,
                                     const std::string& account = kAccountA) {
    auto r = store_->list_bindings(account, service.sid, filter, PageRequest{10000, std::nullopt});
    EXPECT_TRUE(r.has_value());
    if (!r) return {};
    EXPECT_FALSE(r->more);
    return sids_of(r->items);
  }

  std::int64_t count_rows(const std::string& sql, const std::string& param) {
    Db db(path_.string(), false);
    auto& s = db.prepare(sql);
    s.bind(1, std::string_view(param));
    EXPECT_TRUE(s.step());
    auto n = s.column_int(0);
    s.reset();
    return n;
  }

  fs::path path_;
  std::unique_ptr<SqliteStore> store_;
};

void expect_not_found(const Status& st) {
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().status, 404);
  EXPECT_EQ(st.error().code, 20404);
}

template <class T>
void expect_not_found(const Result<T>& r) {
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status, 404);
  EXPECT_EQ(r.error().code, 20404);
}

// ---- migrations

TEST_F(StoreTest, NewDatabaseMigratedToNewestVersion) {
  const int newest = migrations().back().version;
  store_.reset();
  Db db(path_.string(), false);
  EXPECT_EQ(schema_version(db), newest);
}

TEST_F(StoreTest, MigrationsIdempotentOnReopen) {
  const int newest = migrations().back().version;
  auto service = add_service();
  reopen();
  reopen();
  {
    Db db(path_.string(), false);
    EXPECT_EQ(schema_version(db), newest);
    EXPECT_EQ(migrate(db), newest);  // nothing left to apply, and no error
    EXPECT_EQ(schema_version(db), newest);
  }
  EXPECT_TRUE(store_->find_service(kAccountA, service.sid).has_value());
}

TEST_F(StoreTest, NewerSchemaVersionRefusesToOpen) {
  const int newest = migrations().back().version;
  auto service = add_service();
  store_.reset();
  {
    Db db(path_.string(), false);
    db.exec(("PRAGMA user_version = " + std::to_string(newest + 1)).c_str());
  }
  EXPECT_THROW({ SqliteStore refused(SqliteOptions{path_.string()}); }, std::exception);
  {
    Db db(path_.string(), false);
    EXPECT_EQ(schema_version(db), newest + 1);  // left as it was
    EXPECT_THROW(migrate(db), SqliteError);
  }
}

// ---- credentials

TEST_F(StoreTest, CredentialCrud) {
  auto cred = make_credential(kAccountA);
  auto inserted = store_->insert_credential(cred);
  ASSERT_TRUE(inserted.has_value());
  EXPECT_GT(inserted->seq, 0);

  auto found = store_->find_credential(kAccountA, cred.sid);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->seq, inserted->seq);
  EXPECT_EQ(found->sid, cred.sid);
  EXPECT_EQ(found->account_sid, kAccountA);
  EXPECT_EQ(found->friendly_name, cred.friendly_name);
  EXPECT_EQ(found->type, "apn");
  EXPECT_TRUE(found->sandbox);
  EXPECT_EQ(found->certificate, cred.certificate);
  EXPECT_EQ(found->private_key, cred.private_key);
  EXPECT_EQ(found->secret, cred.secret);
  EXPECT_EQ(found->apn_topic, cred.apn_topic);
  EXPECT_EQ(found->apn_key_id, cred.apn_key_id);
  EXPECT_EQ(found->apn_team_id, cred.apn_team_id);
  EXPECT_EQ(found->fcm_project_id, cred.fcm_project_id);
  EXPECT_EQ(found->date_created, cred.date_created);
  EXPECT_EQ(found->date_updated, cred.date_updated);

  auto updated = store_->update_credential(kAccountA, cred.sid, [](CredentialRecord& c) -> Status {
    c.friendly_name = std::nullopt;
    c.sandbox = false;
    c.date_updated = 1800000000;
    return {};
  });
  ASSERT_TRUE(updated.has_value());
  EXPECT_FALSE(updated->friendly_name.has_value());
  found = store_->find_credential(kAccountA, cred.sid);
  ASSERT_TRUE(found.has_value());
  EXPECT_FALSE(found->friendly_name.has_value());
  EXPECT_FALSE(found->sandbox);
  EXPECT_EQ(found->date_updated, 1800000000);
  EXPECT_EQ(found->date_created, cred.date_created);

  auto other = store_->insert_credential(make_credential(kAccountA, "fcm"));
  ASSERT_TRUE(other.has_value());
  auto list = store_->list_credentials(kAccountA, PageRequest{});
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ(sids_of(list->items), (std::vector<std::string>{cred.sid, other->sid}));
  EXPECT_FALSE(list->more);

  EXPECT_TRUE(store_->delete_credential(kAccountA, cred.sid).has_value());
  expect_not_found(store_->find_credential(kAccountA, cred.sid));
  expect_not_found(store_->delete_credential(kAccountA, cred.sid));
  expect_not_found(
      store_->update_credential(kAccountA, cred.sid, [](CredentialRecord&) -> Status { return {}; }));
  list = store_->list_credentials(kAccountA, PageRequest{});
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ(sids_of(list->items), (std::vector<std::string>{other->sid}));
}

TEST_F(StoreTest, DuplicateCredentialSidFailsAndKeepsTheFirst) {
  auto cred = make_credential(kAccountA);
  ASSERT_TRUE(store_->insert_credential(cred).has_value());
  auto dup = cred;
  dup.friendly_name = "dup";
  auto r = store_->insert_credential(dup);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status, 500);
  auto found = store_->find_credential(kAccountA, cred.sid);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->friendly_name, cred.friendly_name);
  // The writer is still healthy afterwards.
  EXPECT_TRUE(store_->insert_credential(make_credential(kAccountA)).has_value());
}

// ---- services

TEST_F(StoreTest, ServiceCrud) {
  auto service = make_service(kAccountA, "alpha");
  service.apn_credential_sid = "CR0123456789abcdef0123456789abcdef";
  service.alexa_skill_id = "amzn1.ask.skill.x";
  auto inserted = store_->insert_service(service);
  ASSERT_TRUE(inserted.has_value());

  auto found = store_->find_service(kAccountA, service.sid);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->seq, inserted->seq);
  EXPECT_EQ(found->friendly_name, "alpha");
  EXPECT_EQ(found->apn_credential_sid, service.apn_credential_sid);
  EXPECT_FALSE(found->gcm_credential_sid.has_value());
  EXPECT_FALSE(found->fcm_credential_sid.has_value());
  EXPECT_EQ(found->messaging_service_sid, service.messaging_service_sid);
  EXPECT_FALSE(found->facebook_messenger_page_id.has_value());
  EXPECT_EQ(found->default_apn_notification_protocol_version, "3");
  EXPECT_EQ(found->default_fcm_notification_protocol_version, "4");
  EXPECT_FALSE(found->log_enabled);
  EXPECT_EQ(found->alexa_skill_id, service.alexa_skill_id);
  EXPECT_EQ(found->delivery_callback_url, service.delivery_callback_url);
  EXPECT_TRUE(found->delivery_callback_enabled);
  EXPECT_EQ(found->date_created, service.date_created);
  EXPECT_EQ(found->date_updated, service.date_updated);

  auto updated = store_->update_service(kAccountA, service.sid, [](ServiceRecord& s) -> Status {
    s.friendly_name = "beta";
    s.log_enabled = true;
    s.apn_credential_sid = std::nullopt;
    return {};
  });
  ASSERT_TRUE(updated.has_value());
  EXPECT_EQ(updated->friendly_name, "beta");
  found = store_->find_service(kAccountA, service.sid);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->friendly_name, "beta");
  EXPECT_TRUE(found->log_enabled);
  EXPECT_FALSE(found->apn_credential_sid.has_value());

  auto other = add_service(kAccountA, "gamma");
  auto unnamed = add_service(kAccountA);
  auto all = store_->list_services(kAccountA, std::nullopt, PageRequest{});
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(sids_of(all->items), (std::vector<std::string>{service.sid, other.sid, unnamed.sid}));
  auto by_name = store_->list_services(kAccountA, "gamma", PageRequest{});
  ASSERT_TRUE(by_name.has_value());
  EXPECT_EQ(sids_of(by_name->items), (std::vector<std::string>{other.sid}));
  auto stale = store_->list_services(kAccountA, "alpha", PageRequest{});
  ASSERT_TRUE(stale.has_value());
  EXPECT_TRUE(stale->items.empty());

  EXPECT_TRUE(store_->delete_service(kAccountA, service.sid).has_value());
  expect_not_found(store_->find_service(kAccountA, service.sid));
  expect_not_found(store_->delete_service(kAccountA, service.sid));
  all = store_->list_services(kAccountA, std::nullopt, PageRequest{});
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(sids_of(all->items), (std::vector<std::string>{other.sid, unnamed.sid}));
}

// ---- bindings

TEST_F(StoreTest, BindingCrud) {
  auto service = add_service();
  auto b = make_binding(service, "alice", "apn", "token-1", {"vip", "beta"});
  b.credential_sid = "CR0123456789abcdef0123456789abcdef";
  b.endpoint = "endpoint-1";
  b.notification_protocol_version = "4";
  auto inserted = store_->insert_binding(b);
  ASSERT_TRUE(inserted.has_value());
  EXPECT_FALSE(inserted->replaced_sid.has_value());
  EXPECT_TRUE(inserted->evicted_sids.empty());
  EXPECT_GT(inserted->binding.seq, 0);

  auto found = store_->find_binding(kAccountA, service.sid, b.sid);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->seq, inserted->binding.seq);
  EXPECT_EQ(found->account_sid, kAccountA);
  EXPECT_EQ(found->service_sid, service.sid);
  EXPECT_EQ(found->credential_sid, b.credential_sid);
  EXPECT_EQ(found->identity, "alice");
  EXPECT_EQ(found->binding_type, "apn");
  EXPECT_EQ(found->address, "token-1");
  EXPECT_EQ(found->tags, (std::vector<std::string>{"vip", "beta"}));
  EXPECT_EQ(found->notification_protocol_version, "4");
  EXPECT_EQ(found->endpoint, "endpoint-1");
  EXPECT_EQ(found->date_created, b.date_created);
  EXPECT_EQ(found->date_updated, b.date_updated);

  auto plain = add_binding(make_binding(service, "bob", "sms", "+15551230000"));
  found = store_->find_binding(kAccountA, service.sid, plain.sid);
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->tags.empty());
  EXPECT_FALSE(found->endpoint.has_value());
  EXPECT_FALSE(found->credential_sid.has_value());

  // A binding is addressed through its own service only.
  auto elsewhere = add_service();
  expect_not_found(store_->find_binding(kAccountA, elsewhere.sid, b.sid));
  expect_not_found(store_->delete_binding(kAccountA, elsewhere.sid, b.sid));

  EXPECT_TRUE(store_->delete_binding(kAccountA, service.sid, b.sid).has_value());
  expect_not_found(store_->find_binding(kAccountA, service.sid, b.sid));
  expect_not_found(store_->delete_binding(kAccountA, service.sid, b.sid));
  EXPECT_EQ(list_sids(service, {}), (std::vector<std::string>{plain.sid}));
  EXPECT_TRUE(list_sids(service, tags_filter({"vip"})).empty());  // its tags went with it
}

TEST_F(StoreTest, BindingIntoMissingServiceIsNotFound) {
  ServiceRecord ghost = make_service(kAccountA);  // never inserted
  expect_not_found(store_->insert_binding(make_binding(ghost, "alice", "apn", "t")));
}

// ---- tenancy

TEST_F(StoreTest, OtherAccountSeesNothing) {
  auto cred = store_->insert_credential(make_credential(kAccountA));
  ASSERT_TRUE(cred.has_value());
  auto service = add_service(kAccountA, "mine");
  auto binding = add_binding(make_binding(service, "alice", "apn", "token-1", {"vip"}));

  bool called = false;
  expect_not_found(store_->find_credential(kAccountB, cred->sid));
  expect_not_found(store_->update_credential(kAccountB, cred->sid, [&](CredentialRecord& c) -> Status {
    called = true;
    c.friendly_name = "stolen";
    return {};
  }));
  expect_not_found(store_->delete_credential(kAccountB, cred->sid));
  auto creds = store_->list_credentials(kAccountB, PageRequest{});
  ASSERT_TRUE(creds.has_value());
  EXPECT_TRUE(creds->items.empty());

  expect_not_found(store_->find_service(kAccountB, service.sid));
  expect_not_found(store_->update_service(kAccountB, service.sid, [&](ServiceRecord& s) -> Status {
    called = true;
    s.friendly_name = "stolen";
    return {};
  }));
  expect_not_found(store_->delete_service(kAccountB, service.sid));
  auto services = store_->list_services(kAccountB, std::nullopt, PageRequest{});
  ASSERT_TRUE(services.has_value());
  EXPECT_TRUE(services->items.empty());
  services = store_->list_services(kAccountB, "mine", PageRequest{});
  ASSERT_TRUE(services.has_value());
  EXPECT_TRUE(services->items.empty());

  expect_not_found(store_->find_binding(kAccountB, service.sid, binding.sid));
  expect_not_found(store_->delete_binding(kAccountB, service.sid, binding.sid));
  EXPECT_TRUE(list_sids(service, {}, kAccountB).empty());
  EXPECT_TRUE(list_sids(service, tags_filter({"vip"}), kAccountB).empty());
  // Account B cannot add a binding to A's service either.
  auto intruder = make_binding(service, "mallory", "apn", "token-x");
  intruder.account_sid = kAccountB;
  expect_not_found(store_->insert_binding(intruder));

  EXPECT_FALSE(called);
  auto c = store_->find_credential(kAccountA, cred->sid);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->friendly_name, cred->friendly_name);
  auto s = store_->find_service(kAccountA, service.sid);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->friendly_name, "mine");
  EXPECT_EQ(list_sids(service, {}), (std::vector<std::string>{binding.sid}));
}

// ---- update mutators

TEST_F(StoreTest, CredentialMutatorErrorAbortsWithNoChange) {
  auto cred = make_credential(kAccountA);
  ASSERT_TRUE(store_->insert_credential(cred).has_value());
  auto r = store_->update_credential(kAccountA, cred.sid, [](CredentialRecord& c) -> Status {
    c.friendly_name = "changed";
    c.secret = "changed";
    return mutator_error();
  });
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status, 400);
  EXPECT_EQ(r.error().code, 20001);
  EXPECT_EQ(r.error().message, "rejected by the mutator");
  auto found = store_->find_credential(kAccountA, cred.sid);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->friendly_name, cred.friendly_name);
  EXPECT_EQ(found->secret, cred.secret);
}

TEST_F(StoreTest, ServiceMutatorErrorAbortsWithNoChange) {
  auto service = add_service(kAccountA, "original");
  auto r = store_->update_service(kAccountA, service.sid, [](ServiceRecord& s) -> Status {
    s.friendly_name = "changed";
    return mutator_error();
  });
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, 20001);
  auto found = store_->find_service(kAccountA, service.sid);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->friendly_name, "original");
}

// ---- binding replacement and eviction

TEST_F(StoreTest, SameAddressReplacedWithNewSidOthersUntouched) {
  auto service = add_service();
  auto other_service = add_service();
  auto old = add_binding(make_binding(service, "alice", "apn", "device-token", {"old-tag"}));
  auto same_address_other_service = add_binding(make_binding(other_service, "alice", "apn", "device-token"));
  auto same_address_other_type = add_binding(make_binding(service, "alice", "fcm", "device-token"));

  auto replacement = make_binding(service, "bob", "apn", "device-token", {"new-tag"});
  auto r = store_->insert_binding(replacement);
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->replaced_sid.has_value());
  EXPECT_EQ(*r->replaced_sid, old.sid);
  EXPECT_NE(r->binding.sid, old.sid);
  EXPECT_TRUE(r->evicted_sids.empty());

  expect_not_found(store_->find_binding(kAccountA, service.sid, old.sid));
  auto found = store_->find_binding(kAccountA, service.sid, replacement.sid);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->identity, "bob");
  EXPECT_TRUE(store_->find_binding(kAccountA, other_service.sid, same_address_other_service.sid).has_value());
  EXPECT_TRUE(store_->find_binding(kAccountA, service.sid, same_address_other_type.sid).has_value());

  EXPECT_TRUE(list_sids(service, tags_filter({"old-tag"})).empty());
  EXPECT_EQ(list_sids(service, tags_filter({"new-tag"})), (std::vector<std::string>{replacement.sid}));
  EXPECT_EQ(list_sids(service, {}), (std::vector<std::string>{same_address_other_type.sid, replacement.sid}));
  EXPECT_EQ(list_sids(other_service, {}), (std::vector<std::string>{same_address_other_service.sid}));
}

TEST_F(StoreTest, TwentyFirstBindingOfIdentityEvictsTheOldest) {
  auto service = add_service();
  auto other_service = add_service();
  std::vector<std::string> sids;
  for (std::size_t i = 0; i < kMaxBindingsPerIdentity; ++i) {
    std::vector<std::string> tags;
    if (i == 0) tags.push_back("first-only");
    auto r =
        store_->insert_binding(make_binding(service, "alice", "apn", "token-" + std::to_string(i), tags));
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->evicted_sids.empty()) << i;
    sids.push_back(r->binding.sid);
  }
  auto bob = add_binding(make_binding(service, "bob", "apn", "bob-token"));
  auto alice_elsewhere = add_binding(make_binding(other_service, "alice", "apn", "token-0"));

  auto r = store_->insert_binding(make_binding(service, "alice", "fcm", "token-20"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->evicted_sids, (std::vector<std::string>{sids[0]}));
  EXPECT_FALSE(r->replaced_sid.has_value());
  expect_not_found(store_->find_binding(kAccountA, service.sid, sids[0]));

  auto alice = list_sids(service, identities_filter({"alice"}));
  std::vector<std::string> expected(sids.begin() + 1, sids.end());
  expected.push_back(r->binding.sid);
  EXPECT_EQ(alice, expected);
  EXPECT_EQ(alice.size(), kMaxBindingsPerIdentity);
  EXPECT_TRUE(list_sids(service, tags_filter({"first-only"})).empty());

  // The next one evicts the next oldest; other identities and services are untouched.
  r = store_->insert_binding(make_binding(service, "alice", "fcm", "token-21"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->evicted_sids, (std::vector<std::string>{sids[1]}));
  EXPECT_EQ(list_sids(service, identities_filter({"alice"})).size(), kMaxBindingsPerIdentity);
  EXPECT_TRUE(store_->find_binding(kAccountA, service.sid, bob.sid).has_value());
  EXPECT_TRUE(store_->find_binding(kAccountA, other_service.sid, alice_elsewhere.sid).has_value());
}

TEST_F(StoreTest, ReplacingWithinAFullIdentityEvictsNothing) {
  auto service = add_service();
  std::vector<std::string> sids;
  for (std::size_t i = 0; i < kMaxBindingsPerIdentity; ++i) {
    sids.push_back(add_binding(make_binding(service, "alice", "apn", "token-" + std::to_string(i))).sid);
  }
  auto r = store_->insert_binding(make_binding(service, "alice", "apn", "token-5"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->replaced_sid, sids[5]);
  EXPECT_TRUE(r->evicted_sids.empty());
  EXPECT_EQ(list_sids(service, identities_filter({"alice"})).size(), kMaxBindingsPerIdentity);
  EXPECT_TRUE(store_->find_binding(kAccountA, service.sid, sids[0]).has_value());
}

// ---- cascades

TEST_F(StoreTest, DeleteServiceRemovesItsBindingsAndTags) {
  auto doomed = add_service();
  auto survivor = add_service();
  auto d1 = add_binding(make_binding(doomed, "alice", "apn", "t1", {"vip"}));
  auto d2 = add_binding(make_binding(doomed, "bob", "fcm", "t2", {"vip", "beta"}));
  auto s1 = add_binding(make_binding(survivor, "alice", "apn", "t1", {"vip"}));

  ASSERT_TRUE(store_->delete_service(kAccountA, doomed.sid).has_value());
  expect_not_found(store_->find_binding(kAccountA, doomed.sid, d1.sid));
  expect_not_found(store_->find_binding(kAccountA, doomed.sid, d2.sid));
  EXPECT_TRUE(list_sids(doomed, {}).empty());
  EXPECT_EQ(count_rows("SELECT count(*) FROM bindings WHERE service_sid = ?", doomed.sid), 0);
  EXPECT_EQ(count_rows("SELECT count(*) FROM binding_tags WHERE service_sid = ?", doomed.sid), 0);

  EXPECT_EQ(list_sids(survivor, tags_filter({"vip"})), (std::vector<std::string>{s1.sid}));
  auto s2 = add_binding(make_binding(survivor, "carol", "apn", "t3", {"vip"}));
  EXPECT_EQ(list_sids(survivor, tags_filter({"vip"})), (std::vector<std::string>{s1.sid, s2.sid}));
  EXPECT_EQ(count_rows("SELECT count(*) FROM binding_tags WHERE service_sid = ?", survivor.sid), 2);
}

TEST_F(StoreTest, DeleteCredentialClearsReferences) {
  auto apn = store_->insert_credential(make_credential(kAccountA, "apn"));
  auto fcm = store_->insert_credential(make_credential(kAccountA, "fcm"));
  ASSERT_TRUE(apn.has_value());
  ASSERT_TRUE(fcm.has_value());
  auto service = make_service(kAccountA);
  service.apn_credential_sid = apn->sid;
  service.gcm_credential_sid = apn->sid;  // not type-checked by the store: every column is cleared
  service.fcm_credential_sid = fcm->sid;
  ASSERT_TRUE(store_->insert_service(service).has_value());
  auto b_apn = make_binding(service, "alice", "apn", "t1");
  b_apn.credential_sid = apn->sid;
  add_binding(b_apn);
  auto b_fcm = make_binding(service, "alice", "fcm", "t2");
  b_fcm.credential_sid = fcm->sid;
  add_binding(b_fcm);

  ASSERT_TRUE(store_->delete_credential(kAccountA, apn->sid).has_value());
  expect_not_found(store_->find_credential(kAccountA, apn->sid));

  auto s = store_->find_service(kAccountA, service.sid);
  ASSERT_TRUE(s.has_value());
  EXPECT_FALSE(s->apn_credential_sid.has_value());
  EXPECT_FALSE(s->gcm_credential_sid.has_value());
  EXPECT_EQ(s->fcm_credential_sid, fcm->sid);
  auto b1 = store_->find_binding(kAccountA, service.sid, b_apn.sid);
  ASSERT_TRUE(b1.has_value());
  EXPECT_FALSE(b1->credential_sid.has_value());
  auto b2 = store_->find_binding(kAccountA, service.sid, b_fcm.sid);
  ASSERT_TRUE(b2.has_value());
  EXPECT_EQ(b2->credential_sid, fcm->sid);
}

// ---- list filters

class BindingFilterTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    service_ = add_service();
    b1_ = add_binding(make_binding(service_, "alice", "apn", "a1", {"a", "b"}, 1000)).sid;
    b2_ = add_binding(make_binding(service_, "alice", "fcm", "a2", {"a"}, 2000)).sid;
    b3_ = add_binding(make_binding(service_, "bob", "sms", "+15550000003", {"b"}, 3000)).sid;
    b4_ = add_binding(make_binding(service_, "carol", "apn", "c1", {"a", "b", "c"}, 4000)).sid;
    b5_ = add_binding(make_binding(service_, "dave", "gcm", "d1", {}, 5000)).sid;
    // Same identities and tags in another service never leak into this one.
    auto other = add_service();
    add_binding(make_binding(other, "alice", "apn", "x1", {"a", "b", "c"}, 3000));
  }
  using V = std::vector<std::string>;
  ServiceRecord service_;
  std::string b1_, b2_, b3_, b4_, b5_;
};

TEST_F(BindingFilterTest, NoFilterListsAllInOrder) {
  EXPECT_EQ(list_sids(service_, {}), (V{b1_, b2_, b3_, b4_, b5_}));
}

TEST_F(BindingFilterTest, IdentitiesAnyOf) {
  EXPECT_EQ(list_sids(service_, identities_filter({"alice"})), (V{b1_, b2_}));
  EXPECT_EQ(list_sids(service_, identities_filter({"bob", "alice"})), (V{b1_, b2_, b3_}));
  EXPECT_EQ(list_sids(service_, identities_filter({"nobody"})), V{});
}

TEST_F(BindingFilterTest, TagsAllOf) {
  EXPECT_EQ(list_sids(service_, tags_filter({"a"})), (V{b1_, b2_, b4_}));
  EXPECT_EQ(list_sids(service_, tags_filter({"a", "b"})), (V{b1_, b4_}));
  EXPECT_EQ(list_sids(service_, tags_filter({"b", "a", "c"})), (V{b4_}));
  EXPECT_EQ(list_sids(service_, tags_filter({"a", "zzz"})), V{});
}

TEST_F(BindingFilterTest, ImplicitTags) {
  EXPECT_EQ(list_sids(service_, tags_filter({"all"})), (V{b1_, b2_, b3_, b4_, b5_}));
  EXPECT_EQ(list_sids(service_, tags_filter({"all", "a"})), (V{b1_, b2_, b4_}));
  EXPECT_EQ(list_sids(service_, tags_filter({"apn"})), (V{b1_, b4_}));
  EXPECT_EQ(list_sids(service_, tags_filter({"sms"})), (V{b3_}));
  EXPECT_EQ(list_sids(service_, tags_filter({"gcm", "all"})), (V{b5_}));
  EXPECT_EQ(list_sids(service_, tags_filter({"apn", "c"})), (V{b4_}));
  EXPECT_EQ(list_sids(service_, tags_filter({"fcm", "b"})), V{});
  EXPECT_EQ(list_sids(service_, tags_filter({"alexa"})), V{});
}

TEST_F(BindingFilterTest, BindingTypes) {
  EXPECT_EQ(list_sids(service_, types_filter({"apn"})), (V{b1_, b4_}));
  EXPECT_EQ(list_sids(service_, types_filter({"sms", "apn"})), (V{b1_, b3_, b4_}));
  EXPECT_EQ(list_sids(service_, types_filter({"alexa"})), V{});
}

TEST_F(BindingFilterTest, CreatedRange) {
  EXPECT_EQ(list_sids(service_, created_filter(2000, std::nullopt)), (V{b2_, b3_, b4_, b5_}));  // inclusive
  EXPECT_EQ(list_sids(service_, created_filter(std::nullopt, 4000)), (V{b1_, b2_, b3_}));       // exclusive
  EXPECT_EQ(list_sids(service_, created_filter(2000, 4000)), (V{b2_, b3_}));
  EXPECT_EQ(list_sids(service_, created_filter(5001, std::nullopt)), V{});
}

TEST_F(BindingFilterTest, Combined) {
  BindingFilter f{.identities = {"alice", "carol", "bob"},
                  .tags = {"b"},
                  .binding_types = {"apn", "sms"},
                  .created_from = 1000,
                  .created_before = 4000};
  EXPECT_EQ(list_sids(service_, f), (V{b1_, b3_}));
  f.tags = {"a", "apn"};
  EXPECT_EQ(list_sids(service_, f), (V{b1_}));
}

// ---- keyset paging

class PagingTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    service_ = add_service();
    for (int i = 0; i < 8; ++i) {
      sids_.push_back(add_binding(make_binding(service_, "user-" + std::to_string(i), "apn",
                                               "t" + std::to_string(i), {"all-of-them"}))
                          .sid);
    }
  }
  Page<BindingRecord> page(std::optional<PageCursor> cursor, const BindingFilter& filter = {}) {
    auto r = store_->list_bindings(kAccountA, service_.sid, filter, PageRequest{3, cursor});
    EXPECT_TRUE(r.has_value());
    return r.has_value() ? *r : Page<BindingRecord>{};
  }
  using V = std::vector<std::string>;
  ServiceRecord service_;
  V sids_;
};

TEST_F(PagingTest, ForwardThroughThreePages) {
  for (const BindingFilter& filter : {BindingFilter{}, tags_filter({"all-of-them"})}) {
    auto p1 = page(std::nullopt, filter);
    EXPECT_EQ(sids_of(p1.items), (V{sids_[0], sids_[1], sids_[2]}));
    EXPECT_TRUE(p1.more);
    auto p2 = page(PageCursor{p1.items.back().seq, false}, filter);
    EXPECT_EQ(sids_of(p2.items), (V{sids_[3], sids_[4], sids_[5]}));
    EXPECT_TRUE(p2.more);
    auto p3 = page(PageCursor{p2.items.back().seq, false}, filter);
    EXPECT_EQ(sids_of(p3.items), (V{sids_[6], sids_[7]}));
    EXPECT_FALSE(p3.more);
  }
}

TEST_F(PagingTest, ExactMultipleHasNoPhantomPage) {
  auto r = store_->list_bindings(kAccountA, service_.sid, {}, PageRequest{4, std::nullopt});
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->more);
  r = store_->list_bindings(kAccountA, service_.sid, {},
                            PageRequest{4, PageCursor{r->items.back().seq, false}});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->items.size(), 4u);
  EXPECT_FALSE(r->more);
}

TEST_F(PagingTest, BackwardCursorReturnsPreviousPageAscending) {
  auto p1 = page(std::nullopt);
  auto p2 = page(PageCursor{p1.items.back().seq, false});
  auto p3 = page(PageCursor{p2.items.back().seq, false});
  ASSERT_EQ(p3.items.size(), 2u);

  auto back2 = page(PageCursor{p3.items.front().seq, true});
  EXPECT_EQ(sids_of(back2.items), (V{sids_[3], sids_[4], sids_[5]}));
  EXPECT_TRUE(back2.more);  // more rows before it
  auto back1 = page(PageCursor{back2.items.front().seq, true});
  EXPECT_EQ(sids_of(back1.items), (V{sids_[0], sids_[1], sids_[2]}));
  EXPECT_FALSE(back1.more);
}

TEST_F(PagingTest, CursorSurvivesDeletionOfEarlierRows) {
  auto p1 = page(std::nullopt);
  ASSERT_EQ(p1.items.size(), 3u);
  PageCursor next{p1.items.back().seq, false};
  ASSERT_TRUE(store_->delete_binding(kAccountA, service_.sid, sids_[0]).has_value());
  ASSERT_TRUE(store_->delete_binding(kAccountA, service_.sid, sids_[1]).has_value());
  auto p2 = page(next);
  EXPECT_EQ(sids_of(p2.items), (V{sids_[3], sids_[4], sids_[5]}));  // an OFFSET would skip two
  EXPECT_TRUE(p2.more);
  // Deleting the cursor's own row does not break it either.
  ASSERT_TRUE(store_->delete_binding(kAccountA, service_.sid, sids_[2]).has_value());
  p2 = page(next);
  EXPECT_EQ(sids_of(p2.items), (V{sids_[3], sids_[4], sids_[5]}));
}

TEST_F(StoreTest, CredentialAndServiceListsPage) {
  std::vector<std::string> creds, services;
  for (int i = 0; i < 5; ++i) {
    auto c = store_->insert_credential(make_credential(kAccountA));
    ASSERT_TRUE(c.has_value());
    creds.push_back(c->sid);
    services.push_back(add_service(kAccountA, "same").sid);
  }
  std::vector<std::string> seen;
  std::optional<PageCursor> cursor;
  for (int guard = 0; guard < 10; ++guard) {
    auto p = store_->list_credentials(kAccountA, PageRequest{2, cursor});
    ASSERT_TRUE(p.has_value());
    for (const auto& c : p->items) seen.push_back(c.sid);
    if (!p->more) break;
    cursor = PageCursor{p->items.back().seq, false};
  }
  EXPECT_EQ(seen, creds);

  seen.clear();
  cursor.reset();
  for (int guard = 0; guard < 10; ++guard) {
    auto p = store_->list_services(kAccountA, "same", PageRequest{2, cursor});
    ASSERT_TRUE(p.has_value());
    for (const auto& s : p->items) seen.push_back(s.sid);
    if (!p->more) break;
    cursor = PageCursor{p->items.back().seq, false};
  }
  EXPECT_EQ(seen, services);
}

// ---- group commit

TEST_F(StoreTest, ConcurrentInsertsAreGroupedIntoFewCommits) {
  constexpr int kThreads = 64;
  constexpr int kPerThread = 20;
  auto service = add_service();
  const auto commits_before = store_->commit_count();

  std::atomic<int> failures{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        auto b = make_binding(service, "user-" + std::to_string(t), "apn",
                              "token-" + std::to_string(t) + "-" + std::to_string(i));
        auto r = store_->insert_binding(b);
        if (!r || !r->evicted_sids.empty() || r->replaced_sid) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();

  EXPECT_EQ(failures.load(), 0);
  const auto commits = store_->commit_count() - commits_before;
  RecordProperty("commits", static_cast<int>(commits));
  EXPECT_GE(commits, 1u);
  EXPECT_LT(commits, static_cast<std::uint64_t>(kThreads * kPerThread) / 4)
      << "writes were not grouped: " << commits << " commits";
  auto all = list_sids(service, {});
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), all.size());
  for (int t = 0; t < kThreads; t += 9) {
    EXPECT_EQ(list_sids(service, identities_filter({"user-" + std::to_string(t)})).size(),
              static_cast<std::size_t>(kPerThread));
  }
}

TEST_F(StoreTest, FailingWriteInABatchDoesNotUndoTheOthers) {
  auto service = add_service(kAccountA, "unchanged");
  auto gate_service = add_service(kAccountA, "gate");
  auto existing_cred = make_credential(kAccountA);
  ASSERT_TRUE(store_->insert_credential(existing_cred).has_value());

  // Hold the writer inside a batch so the writes below queue up and are committed together.
  test::WriterGate gate(*store_, kAccountA, gate_service.sid);
  ASSERT_TRUE(gate.wait_entered());

  constexpr int kWriters = 24;
  std::vector<std::future<bool>> inserts;
  std::vector<std::future<Result<ServiceRecord>>> failing_updates;
  std::vector<std::future<Result<CredentialRecord>>> duplicate_inserts;
  std::vector<BindingRecord> bindings;
  for (int i = 0; i < kWriters; ++i) {
    bindings.push_back(
        make_binding(service, "user-" + std::to_string(i), "apn", "token-" + std::to_string(i)));
  }
  for (int i = 0; i < kWriters; ++i) {
    inserts.push_back(
        std::async(std::launch::async, [&, i] { return store_->insert_binding(bindings[i]).has_value(); }));
    if (i % 3 == 0) {
      failing_updates.push_back(std::async(std::launch::async, [&] {
        return store_->update_service(kAccountA, service.sid, [](ServiceRecord& s) -> Status {
          s.friendly_name = "changed";
          return mutator_error();
        });
      }));
    }
    if (i % 8 == 0) {
      duplicate_inserts.push_back(
          std::async(std::launch::async, [&] { return store_->insert_credential(existing_cred); }));
    }
  }
  // Let the writers enqueue behind the gate (correctness below does not depend on this delay).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto commits_before = store_->commit_count();
  gate.open();

  auto gate_result = gate.result();
  ASSERT_TRUE(gate_result.has_value());
  for (auto& f : inserts) EXPECT_TRUE(f.get());
  for (auto& f : failing_updates) {
    auto r = f.get();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, 20001);
  }
  for (auto& f : duplicate_inserts) {
    auto r = f.get();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 500);
  }
  const auto commits = store_->commit_count() - commits_before;
  RecordProperty("commits", static_cast<int>(commits));
  EXPECT_LT(commits, static_cast<std::uint64_t>(kWriters)) << "the writes were not batched";

  for (const auto& b : bindings) {
    EXPECT_TRUE(store_->find_binding(kAccountA, service.sid, b.sid).has_value()) << b.sid;
  }
  EXPECT_EQ(list_sids(service, {}).size(), static_cast<std::size_t>(kWriters));
  auto s = store_->find_service(kAccountA, service.sid);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->friendly_name, "unchanged");
  auto g = store_->find_service(kAccountA, gate_service.sid);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->friendly_name, "gate passed");
  auto c = store_->find_credential(kAccountA, existing_cred.sid);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->friendly_name, existing_cred.friendly_name);

  // And it all survives a reopen.
  reopen();
  EXPECT_EQ(list_sids(service, {}).size(), static_cast<std::size_t>(kWriters));
}

// ---- durability across reopen

TEST_F(StoreTest, DataSurvivesReopen) {
  auto cred = make_credential(kAccountA, "fcm");
  ASSERT_TRUE(store_->insert_credential(cred).has_value());
  auto service = make_service(kAccountA, "persisted");
  service.fcm_credential_sid = cred.sid;
  ASSERT_TRUE(store_->insert_service(service).has_value());
  auto b = make_binding(service, "alice", "fcm", "fcm-token", {"vip", "beta"});
  b.credential_sid = cred.sid;
  b.endpoint = "ep";
  auto inserted = add_binding(b);
  ASSERT_TRUE(store_
                  ->update_service(kAccountA, service.sid,
                                   [](ServiceRecord& s) -> Status {
                                     s.log_enabled = true;
                                     return {};
                                   })
                  .has_value());

  reopen();

  auto c = store_->find_credential(kAccountA, cred.sid);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->secret, cred.secret);
  EXPECT_EQ(c->type, "fcm");
  auto s = store_->find_service(kAccountA, service.sid);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->friendly_name, "persisted");
  EXPECT_EQ(s->fcm_credential_sid, cred.sid);
  EXPECT_TRUE(s->log_enabled);
  auto found = store_->find_binding(kAccountA, service.sid, b.sid);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->seq, inserted.seq);
  EXPECT_EQ(found->tags, (std::vector<std::string>{"vip", "beta"}));
  EXPECT_EQ(found->credential_sid, cred.sid);
  EXPECT_EQ(found->endpoint, "ep");
  EXPECT_EQ(list_sids(service, tags_filter({"vip", "fcm"})), (std::vector<std::string>{b.sid}));

  // Sequences keep growing after a reopen, so keyset cursors stay ordered.
  auto later = add_binding(make_binding(service, "bob", "apn", "apn-token"));
  EXPECT_GT(later.seq, inserted.seq);
}

}  // namespace
}  // namespace notifyd::sqlite
