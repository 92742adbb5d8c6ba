#include "daemon/store/sqlite/sqlite_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <span>
#include <thread>

#include "daemon/model/log.hpp"
#include "daemon/model/sid.hpp"
#include "daemon/model/thread_name.hpp"
#include "daemon/store/sqlite/delivery_page.hpp"
#include "daemon/store/sqlite/migrations.hpp"
#include "daemon/store/sqlite/sqlite_db.hpp"

namespace notifyd::sqlite {
namespace {

auto store_log() { return module_logger("store"); }

constexpr const char* kCredentialColumns =
    "seq, sid, account_sid, friendly_name, type, sandbox, certificate, private_key, secret, apn_topic, "
    "apn_key_id, apn_team_id, fcm_project_id, date_created, date_updated";

constexpr const char* kServiceColumns =
    "seq, sid, account_sid, friendly_name, apn_credential_sid, gcm_credential_sid, fcm_credential_sid, "
    "messaging_service_sid, facebook_messenger_page_id, default_apn_notification_protocol_version, "
    "default_gcm_notification_protocol_version, default_fcm_notification_protocol_version, "
    "default_alexa_notification_protocol_version, log_enabled, alexa_skill_id, delivery_callback_url, "
    "delivery_callback_enabled, date_created, date_updated";

constexpr const char* kBindingColumns =
    "seq, sid, account_sid, service_sid, credential_sid, identity, binding_type, address, tags, "
    "notification_protocol_version, endpoint, date_created, date_updated";

CredentialRecord read_credential(const Stmt& s) {
  CredentialRecord r;
  r.seq = s.column_int(0);
  r.sid = s.column_text(1);
  r.account_sid = s.column_text(2);
  r.friendly_name = s.column_optional_text(3);
  r.type = s.column_text(4);
  r.sandbox = s.column_int(5) != 0;
  r.certificate = s.column_text(6);
  r.private_key = s.column_text(7);
  r.secret = s.column_text(8);
  r.apn_topic = s.column_text(9);
  r.apn_key_id = s.column_text(10);
  r.apn_team_id = s.column_text(11);
  r.fcm_project_id = s.column_text(12);
  r.date_created = s.column_int(13);
  r.date_updated = s.column_int(14);
  return r;
}

// Binds the columns after seq, in kCredentialColumns order, from index `first`.
void bind_credential(Stmt& s, const CredentialRecord& r, int first) {
  s.bind(first, std::string_view(r.sid))
      .bind(first + 1, std::string_view(r.account_sid))
      .bind(first + 2, r.friendly_name)
      .bind(first + 3, std::string_view(r.type))
      .bind(first + 4, std::int64_t{r.sandbox})
      .bind(first + 5, std::string_view(r.certificate))
      .bind(first + 6, std::string_view(r.private_key))
      .bind(first + 7, std::string_view(r.secret))
      .bind(first + 8, std::string_view(r.apn_topic))
      .bind(first + 9, std::string_view(r.apn_key_id))
      .bind(first + 10, std::string_view(r.apn_team_id))
      .bind(first + 11, std::string_view(r.fcm_project_id))
      .bind(first + 12, r.date_created)
      .bind(first + 13, r.date_updated);
}

ServiceRecord read_service(const Stmt& s) {
  ServiceRecord r;
  r.seq = s.column_int(0);
  r.sid = s.column_text(1);
  r.account_sid = s.column_text(2);
  r.friendly_name = s.column_optional_text(3);
  r.apn_credential_sid = s.column_optional_text(4);
  r.gcm_credential_sid = s.column_optional_text(5);
  r.fcm_credential_sid = s.column_optional_text(6);
  r.messaging_service_sid = s.column_optional_text(7);
  r.facebook_messenger_page_id = s.column_optional_text(8);
  r.default_apn_notification_protocol_version = s.column_text(9);
  r.default_gcm_notification_protocol_version = s.column_text(10);
  r.default_fcm_notification_protocol_version = s.column_text(11);
  r.default_alexa_notification_protocol_version = s.column_text(12);
  r.log_enabled = s.column_int(13) != 0;
  r.alexa_skill_id = s.column_optional_text(14);
  r.delivery_callback_url = s.column_optional_text(15);
  r.delivery_callback_enabled = s.column_int(16) != 0;
  r.date_created = s.column_int(17);
  r.date_updated = s.column_int(18);
  return r;
}

void bind_service(Stmt& s, const ServiceRecord& r, int first) {
  s.bind(first, std::string_view(r.sid))
      .bind(first + 1, std::string_view(r.account_sid))
      .bind(first + 2, r.friendly_name)
      .bind(first + 3, r.apn_credential_sid)
      .bind(first + 4, r.gcm_credential_sid)
      .bind(first + 5, r.fcm_credential_sid)
      .bind(first + 6, r.messaging_service_sid)
      .bind(first + 7, r.facebook_messenger_page_id)
      .bind(first + 8, std::string_view(r.default_apn_notification_protocol_version))
      .bind(first + 9, std::string_view(r.default_gcm_notification_protocol_version))
      .bind(first + 10, std::string_view(r.default_fcm_notification_protocol_version))
      .bind(first + 11, std::string_view(r.default_alexa_notification_protocol_version))
      .bind(first + 12, std::int64_t{r.log_enabled})
      .bind(first + 13, r.alexa_skill_id)
      .bind(first + 14, r.delivery_callback_url)
      .bind(first + 15, std::int64_t{r.delivery_callback_enabled})
      .bind(first + 16, r.date_created)
      .bind(first + 17, r.date_updated);
}

std::string tags_to_json(const std::vector<std::string>& tags) {
  boost::json::array a;
  for (const auto& t : tags) a.emplace_back(t);
  return boost::json::serialize(a);
}

std::vector<std::string> tags_from_json(const std::string& text) {
  std::vector<std::string> tags;
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_array()) return tags;
  for (const auto& t : v.as_array()) {
    if (t.is_string()) tags.emplace_back(t.as_string());
  }
  return tags;
}

BindingRecord read_binding(const Stmt& s) {
  BindingRecord r;
  r.seq = s.column_int(0);
  r.sid = s.column_text(1);
  r.account_sid = s.column_text(2);
  r.service_sid = s.column_text(3);
  r.credential_sid = s.column_optional_text(4);
  r.identity = s.column_text(5);
  r.binding_type = s.column_text(6);
  r.address = s.column_text(7);
  r.tags = tags_from_json(s.column_text(8));
  r.notification_protocol_version = s.column_text(9);
  r.endpoint = s.column_optional_text(10);
  r.date_created = s.column_int(11);
  r.date_updated = s.column_int(12);
  return r;
}

std::string placeholders(std::size_t n) {
  std::string p;
  for (std::size_t i = 0; i < n; ++i) p += i ? ",?" : "?";
  return p;
}

// A keyset page query: `where` already holds the filter; binds come from `bind_filter`, which
// returns the next free index. Fetches one row more than asked to learn whether more exist.
template <class T, class ReadRow, class BindFilter>
Page<T> run_page_query(Db& db, const std::string& table, const char* columns, std::string where,
                       const PageRequest& page, ReadRow read_row, BindFilter bind_filter) {
  bool backward = page.cursor && page.cursor->backward;
  if (page.cursor) where += backward ? " AND seq < ?" : " AND seq > ?";
  std::string sql = std::string("SELECT ") + columns + " FROM " + table + " WHERE " + where +
                    " ORDER BY seq " + (backward ? "DESC" : "ASC") + " LIMIT ?";
  auto& stmt = db.prepare(sql);
  int next = bind_filter(stmt);
  if (page.cursor) stmt.bind(next++, page.cursor->seq);
  stmt.bind(next, static_cast<std::int64_t>(page.size + 1));
  Page<T> out;
  while (stmt.step()) {
    if (out.items.size() == page.size) {
      out.more = true;
      break;
    }
    out.items.push_back(read_row(stmt));
  }
  stmt.reset();
  if (backward) std::reverse(out.items.begin(), out.items.end());
  return out;
}

// How a write shares a commit. Most writes are small, and one commit serves every write waiting for it
// (group commit). A large one, a fan-out page of thousands of rows, commits on its own: grouped with the
// next page, it made its caller wait for that page's rows too (about 12 ms of idle senders early in a
// fan-out, bench/README).
enum class Commit { grouped, alone };

// What a write's commit must survive before its caller is answered. An API write, and so every 2xx, survives
// power loss: its commit syncs the WAL (synchronous=FULL). The fan-out's bookkeeping (resolved pages,
// outcomes, claims) survives the process, which is what keeps a delivery from being sent twice after a crash:
// it is in the WAL at once, and on the disk with the next synced commit or checkpoint (the checkpointer's,
// normally within 200 ms). A power loss before then sends those deliveries again; none is lost. Sparing the
// sync spares the writer a wait about 90 times per 100,000 deliveries (bench/README, ninth round).
enum class Survives { power_loss, process_crash };

struct WriteJob {
  std::function<bool(Db&)> run;                // true: keep its changes
  std::function<void(bool committed)> finish;  // after the batch's COMMIT (or its failure)
  Commit commit = Commit::grouped;
  Survives survives = Survives::power_loss;
};

}  // namespace

struct SqliteStore::Impl {
  SqliteOptions options;
  std::unique_ptr<Db> writer_db;
  bool commits_synced = true;  // writer_db's synchronous setting (the writer thread's only)
  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::deque<WriteJob> queue;
  bool stopping = false;
  std::thread writer;
  std::atomic<std::uint64_t> commits{0};
  std::atomic<std::uint64_t> synced_commits{0};
  // WAL checkpoints run on their own thread and connection, so no commit waits for one.
  std::thread checkpointer;
  std::condition_variable checkpoint_cv;

  std::mutex readers_mu;
  std::vector<std::unique_ptr<Db>> idle_readers;

  void writer_loop();
  void checkpoint_loop();

  // Runs `fn` in the next group commit and waits until that commit is durable (or failed).
  template <class T>
  Result<T> write(const std::function<Result<T>(Db&)>& fn, Commit commit = Commit::grouped,
                  Survives survives = Survives::power_loss) {
    std::optional<Result<T>> out;
    std::mutex done_mu;
    std::condition_variable done_cv;
    bool done = false;
    WriteJob job{[&](Db& db) {
                   try {
                     out.emplace(fn(db));
                   } catch (const std::exception& e) {
                     store_log()->error("write failed: {}", e.what());
                     out.emplace(internal_error("The store failed to write"));
                   }
                   return out->has_value();
                 },
                 [&](bool committed) {
                   if (!committed && out && out->has_value()) {
                     out.emplace(internal_error("The store failed to commit"));
                   }
                   std::lock_guard lk(done_mu);
                   done = true;
                   done_cv.notify_one();
                 },
                 commit, survives};
    {
      std::lock_guard lk(queue_mu);
      if (stopping) return internal_error("The store is closing");
      queue.push_back(std::move(job));
    }
    queue_cv.notify_one();
    std::unique_lock lk(done_mu);
    done_cv.wait(lk, [&] { return done; });
    if (!out) return internal_error("The store failed to write");
    return std::move(*out);
  }

  template <class T>
  Result<T> read(const std::function<Result<T>(Db&)>& fn) {
    std::unique_ptr<Db> db;
    {
      std::lock_guard lk(readers_mu);
      if (!idle_readers.empty()) {
        db = std::move(idle_readers.back());
        idle_readers.pop_back();
      }
    }
    try {
      if (!db) db = std::make_unique<Db>(options.path, false);
      Result<T> r = fn(*db);
      std::lock_guard lk(readers_mu);
      idle_readers.push_back(std::move(db));
      return r;
    } catch (const std::exception& e) {
      // The connection may be in an unknown state: drop it rather than return it to the pool.
      store_log()->error("read failed: {}", e.what());
      return internal_error("The store failed to read");
    }
  }
};

void SqliteStore::Impl::writer_loop() {
  std::vector<WriteJob> batch;
  for (;;) {
    batch.clear();
    {
      std::unique_lock lk(queue_mu);
      queue_cv.wait(lk, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) return;  // stopping, and every queued write is done
      while (!queue.empty() && batch.size() < options.max_batch) {
        // A write that commits alone ends the batch before it, or is the whole batch when it comes first.
        if (queue.front().commit == Commit::alone && !batch.empty()) break;
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
        if (batch.back().commit == Commit::alone) break;
      }
    }
    Db& db = *writer_db;
    bool committed = false;
    try {
      // One job that must survive power loss makes the whole commit synced.
      const bool sync = std::any_of(batch.begin(), batch.end(),
                                    [](const WriteJob& j) { return j.survives == Survives::power_loss; });
      if (sync != commits_synced) {
        db.exec(sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        commits_synced = sync;
      }
      db.prepare("BEGIN IMMEDIATE").run();
      for (auto& job : batch) {
        db.prepare("SAVEPOINT w").run();
        if (job.run(db)) {
          db.prepare("RELEASE w").run();
        } else {
          db.prepare("ROLLBACK TO w").run();
          db.prepare("RELEASE w").run();
        }
      }
      db.prepare("COMMIT").run();
      committed = true;
      commits.fetch_add(1, std::memory_order_relaxed);
      if (sync) synced_commits.fetch_add(1, std::memory_order_relaxed);
    } catch (const std::exception& e) {
      store_log()->error("group commit of {} writes failed: {}", batch.size(), e.what());
      try {
        db.exec("ROLLBACK");
      } catch (const std::exception& rollback_error) {
        store_log()->error("rollback failed: {}", rollback_error.what());
      }
    }
    for (auto& job : batch) job.finish(committed);
  }
}

void SqliteStore::Impl::checkpoint_loop() {
  std::unique_ptr<Db> db;
  std::uint64_t checkpointed_at = 0;
  for (;;) {
    {
      std::unique_lock lk(queue_mu);
      checkpoint_cv.wait_for(lk, std::chrono::milliseconds(200), [&] { return stopping; });
      if (stopping) return;
    }
    std::uint64_t now = commits.load(std::memory_order_relaxed);
    if (now == checkpointed_at) continue;
    try {
      if (!db) db = std::make_unique<Db>(options.path, false);
      // PASSIVE: copies what no reader still needs, never blocks the writer.
      db->exec("PRAGMA wal_checkpoint(PASSIVE)");
      checkpointed_at = now;
    } catch (const std::exception& e) {
      store_log()->warn("WAL checkpoint failed (retried later): {}", e.what());
      db.reset();
    }
  }
}

SqliteStore::SqliteStore(SqliteOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  auto parent = std::filesystem::path(impl_->options.path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  impl_->writer_db = std::make_unique<Db>(impl_->options.path, true);
  int version = migrate(*impl_->writer_db);
  store_log()->info("sqlite store open at {} (schema version {})", impl_->options.path, version);
  impl_->writer_db->exec("PRAGMA wal_autocheckpoint=0");  // the checkpointer thread does it instead
  impl_->writer = std::thread([impl = impl_.get()] {
    set_thread_name("notifyd-writer");
    impl->writer_loop();
  });
  impl_->checkpointer = std::thread([impl = impl_.get()] {
    set_thread_name("notifyd-ckpt");
    impl->checkpoint_loop();
  });
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard lk(impl_->queue_mu);
    impl_->stopping = true;
  }
  impl_->queue_cv.notify_all();
  impl_->checkpoint_cv.notify_all();
  if (impl_->writer.joinable()) impl_->writer.join();
  if (impl_->checkpointer.joinable()) impl_->checkpointer.join();
  try {
    impl_->writer_db->exec("PRAGMA wal_checkpoint(TRUNCATE)");  // leave a small WAL behind
  } catch (const std::exception& e) {
    store_log()->warn("final WAL checkpoint failed: {}", e.what());
  }
}

std::uint64_t SqliteStore::commit_count() const { return impl_->commits.load(std::memory_order_relaxed); }

std::uint64_t SqliteStore::synced_commit_count() const {
  return impl_->synced_commits.load(std::memory_order_relaxed);
}

// ---- credentials

Result<CredentialRecord> SqliteStore::insert_credential(CredentialRecord credential) {
  return impl_->write<CredentialRecord>([&](Db& db) -> Result<CredentialRecord> {
    auto& s = db.prepare(std::string("INSERT INTO credentials (") + kCredentialColumns +
                         ") VALUES (NULL,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    bind_credential(s, credential, 1);
    s.run();
    CredentialRecord out = credential;
    out.seq = db.last_insert_rowid();
    return out;
  });
}

namespace {
std::optional<CredentialRecord> select_credential(Db& db, std::string_view account_sid,
                                                  std::string_view sid) {
  auto& s = db.prepare(std::string("SELECT ") + kCredentialColumns +
                       " FROM credentials WHERE sid = ? AND account_sid = ?");
  s.bind(1, sid).bind(2, account_sid);
  std::optional<CredentialRecord> r;
  if (s.step()) r = read_credential(s);
  s.reset();
  return r;
}

std::optional<ServiceRecord> select_service(Db& db, std::string_view account_sid, std::string_view sid) {
  auto& s = db.prepare(std::string("SELECT ") + kServiceColumns +
                       " FROM services WHERE sid = ? AND account_sid = ?");
  s.bind(1, sid).bind(2, account_sid);
  std::optional<ServiceRecord> r;
  if (s.step()) r = read_service(s);
  s.reset();
  return r;
}
}  // namespace

Result<CredentialRecord> SqliteStore::find_credential(std::string_view account_sid, std::string_view sid) {
  return impl_->read<CredentialRecord>([&](Db& db) -> Result<CredentialRecord> {
    if (auto r = select_credential(db, account_sid, sid)) return *r;
    return store_not_found();
  });
}

Result<CredentialRecord> SqliteStore::update_credential(std::string_view account_sid, std::string_view sid,
                                                        std::function<Status(CredentialRecord&)> change) {
  return impl_->write<CredentialRecord>([&](Db& db) -> Result<CredentialRecord> {
    auto current = select_credential(db, account_sid, sid);
    if (!current) return store_not_found();
    if (auto st = change(*current); !st) return st.error();
    auto& s = db.prepare(
        "UPDATE credentials SET sid=?, account_sid=?, friendly_name=?, type=?, sandbox=?, certificate=?, "
        "private_key=?, secret=?, apn_topic=?, apn_key_id=?, apn_team_id=?, fcm_project_id=?, "
        "date_created=?, "
        "date_updated=? WHERE seq=?");
    bind_credential(s, *current, 1);
    s.bind(15, current->seq);
    s.run();
    return *current;
  });
}

Status SqliteStore::delete_credential(std::string_view account_sid, std::string_view sid) {
  return impl_->write<void>([&](Db& db) -> Status {
    if (!select_credential(db, account_sid, sid)) return store_not_found();
    for (const char* column : {"apn_credential_sid", "gcm_credential_sid", "fcm_credential_sid"}) {
      std::string c(column);
      db.prepare("UPDATE services SET " + c + " = NULL WHERE account_sid = ? AND " + c + " = ?")
          .bind(1, account_sid)
          .bind(2, sid)
          .run();
    }
    db.prepare("UPDATE bindings SET credential_sid = NULL WHERE credential_sid = ? AND account_sid = ?")
        .bind(1, sid)
        .bind(2, account_sid)
        .run();
    db.prepare("DELETE FROM credentials WHERE sid = ? AND account_sid = ?")
        .bind(1, sid)
        .bind(2, account_sid)
        .run();
    return {};
  });
}

Result<Page<CredentialRecord>> SqliteStore::list_credentials(std::string_view account_sid, PageRequest page) {
  return impl_->read<Page<CredentialRecord>>([&](Db& db) -> Result<Page<CredentialRecord>> {
    return run_page_query<CredentialRecord>(db, "credentials", kCredentialColumns, "account_sid = ?", page,
                                            read_credential, [&](Stmt& s) {
                                              s.bind(1, account_sid);
                                              return 2;
                                            });
  });
}

// ---- services

Result<ServiceRecord> SqliteStore::insert_service(ServiceRecord service) {
  return impl_->write<ServiceRecord>([&](Db& db) -> Result<ServiceRecord> {
    auto& s = db.prepare(std::string("INSERT INTO services (") + kServiceColumns +
                         ") VALUES (NULL,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    bind_service(s, service, 1);
    s.run();
    ServiceRecord out = service;
    out.seq = db.last_insert_rowid();
    return out;
  });
}

Result<ServiceRecord> SqliteStore::find_service(std::string_view account_sid, std::string_view sid) {
  return impl_->read<ServiceRecord>([&](Db& db) -> Result<ServiceRecord> {
    if (auto r = select_service(db, account_sid, sid)) return *r;
    return store_not_found();
  });
}

Result<ServiceRecord> SqliteStore::update_service(std::string_view account_sid, std::string_view sid,
                                                  std::function<Status(ServiceRecord&)> change) {
  return impl_->write<ServiceRecord>([&](Db& db) -> Result<ServiceRecord> {
    auto current = select_service(db, account_sid, sid);
    if (!current) return store_not_found();
    if (auto st = change(*current); !st) return st.error();
    auto& s = db.prepare(
        "UPDATE services SET sid=?, account_sid=?, friendly_name=?, apn_credential_sid=?, "
        "gcm_credential_sid=?, "
        "fcm_credential_sid=?, messaging_service_sid=?, facebook_messenger_page_id=?, "
        "default_apn_notification_protocol_version=?, default_gcm_notification_protocol_version=?, "
        "default_fcm_notification_protocol_version=?, default_alexa_notification_protocol_version=?, "
        "log_enabled=?, alexa_skill_id=?, delivery_callback_url=?, delivery_callback_enabled=?, "
        "date_created=?, "
        "date_updated=? WHERE seq=?");
    bind_service(s, *current, 1);
    s.bind(19, current->seq);
    s.run();
    return *current;
  });
}

Status SqliteStore::delete_service(std::string_view account_sid, std::string_view sid) {
  return impl_->write<void>([&](Db& db) -> Status {
    if (!select_service(db, account_sid, sid)) return store_not_found();
    db.prepare("DELETE FROM binding_tags WHERE service_sid = ?").bind(1, sid).run();
    db.prepare("DELETE FROM bindings WHERE service_sid = ?").bind(1, sid).run();
    db.prepare("DELETE FROM services WHERE sid = ? AND account_sid = ?")
        .bind(1, sid)
        .bind(2, account_sid)
        .run();
    return {};
  });
}

Result<Page<ServiceRecord>> SqliteStore::list_services(std::string_view account_sid,
                                                       std::optional<std::string> friendly_name,
                                                       PageRequest page) {
  return impl_->read<Page<ServiceRecord>>([&](Db& db) -> Result<Page<ServiceRecord>> {
    std::string where = friendly_name ? "account_sid = ? AND friendly_name = ?" : "account_sid = ?";
    return run_page_query<ServiceRecord>(db, "services", kServiceColumns, where, page, read_service,
                                         [&](Stmt& s) {
                                           s.bind(1, account_sid);
                                           if (friendly_name) s.bind(2, std::string_view(*friendly_name));
                                           return friendly_name ? 3 : 2;
                                         });
  });
}

// ---- bindings

namespace {
std::optional<BindingRecord> select_binding(Db& db, std::string_view account_sid,
                                            std::string_view service_sid, std::string_view sid) {
  auto& s = db.prepare(std::string("SELECT ") + kBindingColumns +
                       " FROM bindings WHERE sid = ? AND service_sid = ? AND account_sid = ?");
  s.bind(1, sid).bind(2, service_sid).bind(3, account_sid);
  std::optional<BindingRecord> r;
  if (s.step()) r = read_binding(s);
  s.reset();
  return r;
}

void delete_binding_row(Db& db, std::int64_t seq) {
  db.prepare("DELETE FROM bindings WHERE seq = ?").bind(1, seq).run();  // tags go by ON DELETE CASCADE
}
}  // namespace

Result<BindingInsert> SqliteStore::insert_binding(BindingRecord binding) {
  return impl_->write<BindingInsert>([&](Db& db) -> Result<BindingInsert> {
    if (!select_service(db, binding.account_sid, binding.service_sid)) return store_not_found();
    BindingInsert out;

    auto& same = db.prepare(
        "SELECT seq, sid FROM bindings WHERE service_sid = ? AND binding_type = ? AND address = ?");
    same.bind(1, std::string_view(binding.service_sid))
        .bind(2, std::string_view(binding.binding_type))
        .bind(3, std::string_view(binding.address));
    std::optional<std::int64_t> replaced_seq;
    if (same.step()) {
      replaced_seq = same.column_int(0);
      out.replaced_sid = same.column_text(1);
    }
    same.reset();
    if (replaced_seq) delete_binding_row(db, *replaced_seq);

    // Keep at most kMaxBindingsPerIdentity, counting the one being added: evict the oldest.
    auto& of_identity =
        db.prepare("SELECT seq, sid FROM bindings WHERE service_sid = ? AND identity = ? ORDER BY seq");
    of_identity.bind(1, std::string_view(binding.service_sid)).bind(2, std::string_view(binding.identity));
    std::vector<std::pair<std::int64_t, std::string>> existing;
    while (of_identity.step()) existing.emplace_back(of_identity.column_int(0), of_identity.column_text(1));
    of_identity.reset();
    for (std::size_t i = 0; existing.size() - i >= kMaxBindingsPerIdentity; ++i) {
      delete_binding_row(db, existing[i].first);
      out.evicted_sids.push_back(existing[i].second);
    }

    auto& ins = db.prepare(std::string("INSERT INTO bindings (") + kBindingColumns +
                           ") VALUES (NULL,?,?,?,?,?,?,?,?,?,?,?,?)");
    ins.bind(1, std::string_view(binding.sid))
        .bind(2, std::string_view(binding.account_sid))
        .bind(3, std::string_view(binding.service_sid))
        .bind(4, binding.credential_sid)
        .bind(5, std::string_view(binding.identity))
        .bind(6, std::string_view(binding.binding_type))
        .bind(7, std::string_view(binding.address))
        .bind(8, std::string_view(tags_to_json(binding.tags)))
        .bind(9, std::string_view(binding.notification_protocol_version))
        .bind(10, binding.endpoint)
        .bind(11, binding.date_created)
        .bind(12, binding.date_updated);
    ins.run();
    binding.seq = db.last_insert_rowid();
    auto& tag =
        db.prepare("INSERT OR IGNORE INTO binding_tags (service_sid, tag, binding_seq) VALUES (?,?,?)");
    for (const auto& t : binding.tags) {
      tag.bind(1, std::string_view(binding.service_sid)).bind(2, std::string_view(t)).bind(3, binding.seq);
      tag.run();
      tag.reset();
    }
    out.binding = std::move(binding);
    return out;
  });
}

Result<BindingRecord> SqliteStore::find_binding(std::string_view account_sid, std::string_view service_sid,
                                                std::string_view sid) {
  return impl_->read<BindingRecord>([&](Db& db) -> Result<BindingRecord> {
    if (auto r = select_binding(db, account_sid, service_sid, sid)) return *r;
    return store_not_found();
  });
}

Status SqliteStore::delete_binding(std::string_view account_sid, std::string_view service_sid,
                                   std::string_view sid) {
  return impl_->write<void>([&](Db& db) -> Status {
    auto existing = select_binding(db, account_sid, service_sid, sid);
    if (!existing) return store_not_found();
    delete_binding_row(db, existing->seq);
    return {};
  });
}

namespace {

// The WHERE clause of a binding filter within one service, and its binds in order.
struct FilterSql {
  bool scoped = true;  // begins with the service and account (bound first)
  std::string where;
  std::vector<std::string> texts;  // bound after service_sid and account_sid
  std::vector<std::int64_t> ints;  // bound after the texts
};

// `driving_tag`: a tag the caller already matches by reading binding_tags (see resolve_page); left out here.
// Columns are qualified, so the clause also serves a query that joins binding_tags.
// With a driving tag, the clause leaves out the service and account too (and bind_filter() their binds): the
// caller's binding_tags rows are of the service already, and its SID is unique (two text comparisons a row).
FilterSql binding_filter_sql(const BindingFilter& filter, std::string_view driving_tag = {}) {
  FilterSql f;
  f.scoped = driving_tag.empty();
  f.where = f.scoped ? "bindings.service_sid = ? AND bindings.account_sid = ?" : "1";
  if (!filter.identities.empty())
    f.where += " AND bindings.identity IN (" + placeholders(filter.identities.size()) + ")";
  f.texts.insert(f.texts.end(), filter.identities.begin(), filter.identities.end());
  if (!filter.binding_types.empty()) {
    f.where += " AND bindings.binding_type IN (" + placeholders(filter.binding_types.size()) + ")";
    f.texts.insert(f.texts.end(), filter.binding_types.begin(), filter.binding_types.end());
  }
  bool driving_skipped = false;
  for (const auto& t : filter.tags) {
    constexpr const char* kHasTag =
        "EXISTS (SELECT 1 FROM binding_tags t WHERE t.service_sid = bindings.service_sid AND t.tag = ? AND "
        "t.binding_seq = bindings.seq)";
    if (t == "all") continue;
    if (!driving_skipped && !driving_tag.empty() && t == driving_tag) {
      driving_skipped = true;
      continue;
    }
    if (is_implicit_tag(t)) {
      f.where += std::string(" AND (bindings.binding_type = ? OR ") + kHasTag + ")";
      f.texts.push_back(t);
    } else {
      f.where += std::string(" AND ") + kHasTag;
    }
    f.texts.push_back(t);
  }
  if (filter.created_from) {
    f.where += " AND bindings.date_created >= ?";
    f.ints.push_back(*filter.created_from);
  }
  if (filter.created_before) {
    f.where += " AND bindings.date_created < ?";
    f.ints.push_back(*filter.created_before);
  }
  return f;
}

// Binds service, account and the filter's values from index `first`; returns the next free index.
int bind_filter(Stmt& s, const FilterSql& f, std::string_view service_sid, std::string_view account_sid,
                int first = 1) {
  int i = first;
  if (f.scoped) {
    s.bind(i, service_sid).bind(i + 1, account_sid);
    i += 2;
  }
  for (const auto& t : f.texts) s.bind(i++, std::string_view(t));
  for (auto v : f.ints) s.bind(i++, v);
  return i;
}

}  // namespace

Result<Page<BindingRecord>> SqliteStore::list_bindings(std::string_view account_sid,
                                                       std::string_view service_sid,
                                                       const BindingFilter& filter, PageRequest page) {
  return impl_->read<Page<BindingRecord>>([&](Db& db) -> Result<Page<BindingRecord>> {
    FilterSql f = binding_filter_sql(filter);
    return run_page_query<BindingRecord>(
        db, "bindings", kBindingColumns, f.where, page, read_binding,
        [&](Stmt& s) { return bind_filter(s, f, service_sid, account_sid); });
  });
}

// ---- the outbox

namespace {

constexpr const char* kNotificationColumns =
    "seq, sid, account_sid, service_sid, request, callback_url, date_created, expires_at, resolve_cursor, "
    "resolved, recipients";

NotificationRecord read_notification(const Stmt& s) {
  NotificationRecord n;
  n.seq = s.column_int(0);
  n.sid = s.column_text(1);
  n.account_sid = s.column_text(2);
  n.service_sid = s.column_text(3);
  n.request = s.column_text(4);
  n.callback_url = s.column_optional_text(5);
  n.date_created = s.column_int(6);
  n.expires_at = s.column_int(7);
  n.resolve_cursor = s.column_int(8);
  n.resolved = s.column_int(9) != 0;
  n.recipients = s.column_int(10);
  return n;
}

constexpr const char* kDeliveryColumns =
    "seq, notification_seq, target_key, binding_sid, binding_type, address, identity, credential_sid, "
    "protocol_version, binding_updated, state, attempts, next_attempt_ms, last_reason, provider_status, "
    "apns_id";

DeliveryRecord read_delivery(const Stmt& s) {
  DeliveryRecord d;
  d.seq = s.column_int(0);
  d.notification_seq = s.column_int(1);
  d.target_key = s.column_text(2);
  d.binding_sid = s.column_optional_text(3);
  d.binding_type = s.column_text(4);
  d.address = s.column_text(5);
  d.identity = s.column_optional_text(6);
  d.credential_sid = s.column_optional_text(7);
  d.protocol_version = s.column_text(8);
  d.binding_updated = s.column_int(9);
  d.state = static_cast<DeliveryState>(s.column_int(10));
  d.attempts = static_cast<int>(s.column_int(11));
  d.next_attempt_ms = s.column_int(12);
  d.last_reason = s.column_optional_text(13).value_or("");
  d.provider_status = static_cast<int>(s.column_int(14));
  d.apns_id = s.column_text(15);
  return d;
}

// INSERT OR IGNORE, with the delivery's whole state: a target already in this notification is not added
// twice. Returns whether added; sets d.seq when it was.
bool insert_delivery(Db& db, DeliveryRecord& d) {
  auto& s = db.prepare(
      "INSERT OR IGNORE INTO deliveries (notification_seq, target_key, binding_sid, binding_type, address, "
      "identity, credential_sid, protocol_version, binding_updated, state, attempts, next_attempt_ms, "
      "last_reason, provider_status, apns_id, leased) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0)");
  s.bind(1, d.notification_seq)
      .bind(2, d.target_key.empty() && d.binding_sid ? std::string_view(*d.binding_sid)
                                                     : std::string_view(d.target_key))
      .bind(3, d.binding_sid)
      .bind(4, std::string_view(d.binding_type))
      .bind(5, std::string_view(d.address))
      .bind(6, d.identity)
      .bind(7, d.credential_sid)
      .bind(8, std::string_view(d.protocol_version))
      .bind(9, d.binding_updated)
      .bind(10, static_cast<std::int64_t>(d.state))
      .bind(11, static_cast<std::int64_t>(d.attempts))
      .bind(12, d.next_attempt_ms)
      .bind(13, std::string_view(d.last_reason))
      .bind(14, static_cast<std::int64_t>(d.provider_status))
      .bind(15, std::string_view(d.apns_id));
  s.run();
  if (db.changes() == 0) return false;
  d.seq = db.last_insert_rowid();
  return true;
}

// A pending delivery of a notification to the binding in the current row of `s`, whose columns from `first`
// are sid, identity, binding_type, address, credential_sid, notification_protocol_version, date_updated.
// Filled in place (a DeliveryRecord is costly to move). Its target_key is left empty: insert_delivery takes
// the binding SID for it, and a resolved page's deliveries mostly never get a row.
void fill_delivery_to_binding(DeliveryRecord& d, const Stmt& s, int first, std::int64_t notification_seq,
                              const ApnsIds& apns_ids, std::int64_t binding_seq) {
  d.notification_seq = notification_seq;
  d.binding_sid = s.column_text(first);
  d.identity = s.column_text(first + 1);
  d.binding_type = s.column_text(first + 2);
  d.address = s.column_text(first + 3);
  d.credential_sid = s.column_optional_text(first + 4);
  d.protocol_version = s.column_text(first + 5);
  d.binding_updated = s.column_int(first + 6);
  d.apns_id = apns_ids.for_binding(binding_seq);
}

}  // namespace

Result<NotificationRecord> SqliteStore::insert_notification(NotificationRecord n,
                                                            std::vector<DeliveryRecord> direct) {
  return impl_->write<NotificationRecord>([&](Db& db) -> Result<NotificationRecord> {
    auto& s = db.prepare(
        "INSERT INTO notifications (sid, account_sid, service_sid, request, callback_url, date_created, "
        "expires_at, "
        "resolve_cursor, resolved, recipients) VALUES (?,?,?,?,?,?,?,0,?,0)");
    s.bind(1, std::string_view(n.sid))
        .bind(2, std::string_view(n.account_sid))
        .bind(3, std::string_view(n.service_sid))
        .bind(4, std::string_view(n.request))
        .bind(5, n.callback_url)
        .bind(6, n.date_created)
        .bind(7, n.expires_at)
        .bind(8, std::int64_t{n.resolved});
    s.run();
    NotificationRecord out = n;
    out.seq = db.last_insert_rowid();
    std::int64_t added = 0;
    for (auto& d : direct) {
      d.notification_seq = out.seq;
      if (insert_delivery(db, d)) ++added;
    }
    if (added) {
      db.prepare("UPDATE notifications SET recipients = ? WHERE seq = ?")
          .bind(1, added)
          .bind(2, out.seq)
          .run();
    }
    out.recipients = added;
    return out;
  });
}

Result<std::vector<NotificationRecord>> SqliteStore::unresolved_notifications(std::size_t limit) {
  return impl_->read<std::vector<NotificationRecord>>([&](Db& db) -> Result<std::vector<NotificationRecord>> {
    auto& s = db.prepare(std::string("SELECT ") + kNotificationColumns +
                         " FROM notifications WHERE resolved = 0 ORDER BY seq LIMIT ?");
    s.bind(1, static_cast<std::int64_t>(limit));
    std::vector<NotificationRecord> out;
    while (s.step()) out.push_back(read_notification(s));
    s.reset();
    return out;
  });
}

Result<NotificationRecord> SqliteStore::find_notification(std::int64_t seq) {
  return impl_->read<NotificationRecord>([&](Db& db) -> Result<NotificationRecord> {
    auto& s = db.prepare(std::string("SELECT ") + kNotificationColumns + " FROM notifications WHERE seq = ?");
    s.bind(1, seq);
    std::optional<NotificationRecord> n;
    if (s.step()) n = read_notification(s);
    s.reset();
    if (!n) return store_not_found();
    return *n;
  });
}

Result<ResolvedPage> SqliteStore::resolve_page(std::int64_t notification_seq, const BindingFilter& filter,
                                               std::size_t page_size) {
  auto resolve = [&](Db& db) -> Result<ResolvedPage> {
    auto& ns = db.prepare(
        "SELECT account_sid, service_sid, resolve_cursor, resolved, sid FROM notifications WHERE seq = ?");
    ns.bind(1, notification_seq);
    if (!ns.step()) {
      ns.reset();
      return store_not_found();
    }
    std::string account_sid = ns.column_text(0), service_sid = ns.column_text(1);
    std::int64_t cursor = ns.column_int(2);
    bool resolved = ns.column_int(3) != 0;
    std::string notification_sid = ns.column_text(4);
    ns.reset();
    ResolvedPage page;
    if (resolved) {
      page.done = true;
      return page;
    }
    // With an explicit tag, the page is read along binding_tags' key (service, tag, seq) and each binding
    // fetched by seq: about three times cheaper a row than scanning the service's bindings and probing
    // binding_tags for each.
    std::string driving_tag;
    for (const auto& t : filter.tags) {
      if (!is_implicit_tag(t)) {
        driving_tag = t;
        break;
      }
    }
    FilterSql f = binding_filter_sql(filter, driving_tag);
    constexpr const char* kColumns =
        "SELECT bindings.seq, bindings.sid, bindings.identity, bindings.binding_type, bindings.address, "
        "bindings.credential_sid, bindings.notification_protocol_version, bindings.date_updated ";
    Stmt* stmt = nullptr;
    if (driving_tag.empty()) {
      stmt = &db.prepare(std::string(kColumns) + "FROM bindings WHERE " + f.where +
                         " AND bindings.seq > ? ORDER BY bindings.seq LIMIT ?");
      int i = bind_filter(*stmt, f, service_sid, account_sid);
      stmt->bind(i, cursor).bind(i + 1, static_cast<std::int64_t>(page_size));
    } else {
      // CROSS JOIN: binding_tags stays the outer loop, as the ORDER BY wants.
      stmt = &db.prepare(std::string(kColumns) +
                         "FROM binding_tags drv CROSS JOIN bindings ON bindings.seq = drv.binding_seq "
                         "WHERE drv.service_sid = ? AND drv.tag = ? AND drv.binding_seq > ? AND " +
                         f.where + " ORDER BY drv.binding_seq LIMIT ?");
      stmt->bind(1, std::string_view(service_sid)).bind(2, std::string_view(driving_tag)).bind(3, cursor);
      int i = bind_filter(*stmt, f, service_sid, account_sid, 4);
      stmt->bind(i, static_cast<std::int64_t>(page_size));
    }
    Stmt& q = *stmt;
    std::vector<DeliveryRecord> batch;
    std::vector<std::int64_t> binding_seqs;
    batch.reserve(page_size);
    binding_seqs.reserve(page_size);
    const ApnsIds apns_ids(notification_sid);
    while (q.step()) {
      cursor = q.column_int(0);
      binding_seqs.push_back(cursor);
      fill_delivery_to_binding(batch.emplace_back(), q, 1, notification_seq, apns_ids, cursor);
    }
    q.reset();
    page.done = batch.size() < page_size;
    if (!batch.empty()) {
      // One row for the page; each binding is in exactly one page, as the cursor only moves forward.
      std::vector<std::uint8_t> none((batch.size() + 7) / 8, 0);
      db.prepare("INSERT INTO delivery_pages (notification_seq, targets, done, remaining) VALUES (?,?,?,?)")
          .bind(1, notification_seq)
          .bind_blob(2, encode_page_targets(binding_seqs))
          .bind_blob(3, none)
          .bind(4, static_cast<std::int64_t>(batch.size()))
          .run();
      std::int64_t page_seq = db.last_insert_rowid();
      for (std::size_t k = 0; k < batch.size(); ++k) {
        batch[k].page_seq = page_seq;
        batch[k].page_index = static_cast<std::uint32_t>(k);
      }
      page.added = batch.size();
      page.deliveries = std::move(batch);
    }
    db.prepare(
          "UPDATE notifications SET resolve_cursor = ?, resolved = ?, recipients = recipients + ? WHERE seq "
          "= ?")
        .bind(1, cursor)
        .bind(2, std::int64_t{page.done})
        .bind(3, static_cast<std::int64_t>(page.added))
        .bind(4, notification_seq)
        .run();
    return page;
  };
  return impl_->write<ResolvedPage>(resolve, Commit::alone, Survives::process_crash);
}

Result<std::vector<DeliveryRecord>> SqliteStore::claim_due_deliveries(std::int64_t now_ms, std::size_t limit,
                                                                      std::int64_t lease_ms) {
  auto claim = [&](Db& db) -> Result<std::vector<DeliveryRecord>> {
    auto& q =
        db.prepare(std::string("SELECT ") + kDeliveryColumns +
                   " FROM deliveries WHERE state = 0 AND next_attempt_ms <= ? ORDER BY next_attempt_ms, seq "
                   "LIMIT ?");
    q.bind(1, now_ms).bind(2, static_cast<std::int64_t>(limit));
    std::vector<DeliveryRecord> out;
    while (q.step()) out.push_back(read_delivery(q));
    q.reset();
    auto& lease = db.prepare("UPDATE deliveries SET next_attempt_ms = ?, leased = 1 WHERE seq = ?");
    for (const auto& d : out) {
      lease.bind(1, now_ms + lease_ms).bind(2, d.seq);
      lease.run();
      lease.reset();
    }
    return out;
  };
  return impl_->write<std::vector<DeliveryRecord>>(claim, Commit::grouped, Survives::process_crash);
}

namespace {

// Sets the bits of one page's settled entries; deletes the page when none is left unsettled.
void settle_page_entries(Db& db, std::int64_t page_seq, std::span<const std::uint32_t> indexes) {
  auto& q = db.prepare("SELECT done, remaining FROM delivery_pages WHERE seq = ?");
  q.bind(1, page_seq);
  if (!q.step()) {
    q.reset();
    return;  // already settled and deleted
  }
  auto done = q.column_blob(0);
  std::int64_t remaining = q.column_int(1);
  q.reset();
  for (auto i : indexes) {
    if (set_page_bit(done, i)) --remaining;
  }
  if (remaining <= 0) {
    db.prepare("DELETE FROM delivery_pages WHERE seq = ?").bind(1, page_seq).run();
    return;
  }
  db.prepare("UPDATE delivery_pages SET done = ?, remaining = ? WHERE seq = ?")
      .bind_blob(1, done)
      .bind(2, remaining)
      .bind(3, page_seq)
      .run();
}

}  // namespace

Status SqliteStore::record_outcomes(DeliveryOutcomes outcomes) {
  auto record = [&](Db& db) -> Status {
    auto& s = db.prepare(
        "UPDATE deliveries SET state = ?, attempts = ?, next_attempt_ms = ?, last_reason = ?, "
        "provider_status = ?, "
        "leased = 0 WHERE seq = ?");
    for (const auto& u : outcomes.updates) {
      s.bind(1, static_cast<std::int64_t>(u.state))
          .bind(2, static_cast<std::int64_t>(u.attempts))
          .bind(3, u.next_attempt_ms)
          .bind(4, std::string_view(u.last_reason))
          .bind(5, static_cast<std::int64_t>(u.provider_status))
          .bind(6, u.seq);
      s.run();
      s.reset();
    }
    for (auto& d : outcomes.new_rows) insert_delivery(db, d);
    // Page by page: a flush usually touches one or two pages.
    std::map<std::int64_t, std::vector<std::uint32_t>> by_page;
    for (const auto& e : outcomes.page_done) by_page[e.page_seq].push_back(e.page_index);
    for (const auto& [page_seq, indexes] : by_page) settle_page_entries(db, page_seq, indexes);
    return {};
  };
  return impl_->write<void>(record, Commit::grouped, Survives::process_crash);
}

namespace {

// Turns the unsettled entries of every page into pending rows, due at once. Returns how many rows.
std::int64_t page_entries_to_rows(Db& db) {
  struct PageRow {
    std::int64_t seq, notification_seq;
    std::vector<std::int64_t> targets;
    std::vector<std::uint8_t> done;
    std::int64_t remaining;
  };
  std::vector<PageRow> pages;
  auto& q =
      db.prepare("SELECT seq, notification_seq, targets, done, remaining FROM delivery_pages ORDER BY seq");
  while (q.step()) {
    pages.push_back({q.column_int(0), q.column_int(1), decode_page_targets(q.column_blob(2)),
                     q.column_blob(3), q.column_int(4)});
  }
  q.reset();
  std::int64_t rows = 0;
  for (const auto& page : pages) {
    auto& n = db.prepare("SELECT sid FROM notifications WHERE seq = ?");
    n.bind(1, page.notification_seq);
    std::string notification_sid = n.step() ? n.column_text(0) : std::string();
    n.reset();
    std::int64_t gone = 0, unsettled = 0;
    for (std::size_t i = 0; i < page.targets.size(); ++i) {
      if (page_bit(page.done, i)) continue;
      ++unsettled;
      auto& b = db.prepare(
          "SELECT sid, identity, binding_type, address, credential_sid, notification_protocol_version, "
          "date_updated FROM bindings WHERE seq = ?");
      b.bind(1, page.targets[i]);
      if (!b.step()) {
        b.reset();
        ++gone;  // deleted since it was resolved: nobody to deliver to
        continue;
      }
      DeliveryRecord d;
      fill_delivery_to_binding(d, b, 0, page.notification_seq, ApnsIds(notification_sid), page.targets[i]);
      b.reset();
      if (insert_delivery(db, d)) ++rows;
    }
    if (unsettled != page.remaining) {
      store_log()->error("page {} of notification {} is damaged: {} unsettled entries readable, {} recorded",
                         page.seq, notification_sid, unsettled, page.remaining);
    }
    if (gone) {
      store_log()->info("page {} of notification {}: {} bindings deleted since it was resolved get nothing",
                        page.seq, notification_sid, gone);
    }
    db.prepare("DELETE FROM delivery_pages WHERE seq = ?").bind(1, page.seq).run();
  }
  return rows;
}

}  // namespace

Result<std::int64_t> SqliteStore::release_leases() {
  return impl_->write<std::int64_t>([&](Db& db) -> Result<std::int64_t> {
    db.prepare("UPDATE deliveries SET leased = 0, next_attempt_ms = 0 WHERE state = 0 AND leased = 1").run();
    std::int64_t released = db.changes();
    return released + page_entries_to_rows(db);
  });
}

Result<std::vector<std::pair<std::int64_t, std::int64_t>>> SqliteStore::pending_per_notification() {
  using Rows = std::vector<std::pair<std::int64_t, std::int64_t>>;
  return impl_->read<Rows>([&](Db& db) -> Result<Rows> {
    auto& s = db.prepare(
        "SELECT notification_seq, SUM(n) FROM ("
        "SELECT notification_seq, COUNT(*) AS n FROM deliveries WHERE state = 0 GROUP BY notification_seq "
        "UNION ALL SELECT notification_seq, SUM(remaining) FROM delivery_pages GROUP BY notification_seq) "
        "GROUP BY notification_seq");
    Rows out;
    while (s.step()) out.emplace_back(s.column_int(0), s.column_int(1));
    s.reset();
    return out;
  });
}

Result<std::int64_t> SqliteStore::pending_delivery_count() {
  return impl_->read<std::int64_t>([&](Db& db) -> Result<std::int64_t> {
    auto& s = db.prepare(
        "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 0) + "
        "(SELECT COALESCE(SUM(remaining), 0) FROM delivery_pages)");
    s.step();
    std::int64_t n = s.column_int(0);
    s.reset();
    return n;
  });
}

Result<bool> SqliteStore::remove_invalid_binding(std::string_view binding_sid, std::string_view address,
                                                 std::optional<Seconds> invalid_since) {
  return impl_->write<bool>([&](Db& db) -> Result<bool> {
    auto& s = db.prepare("SELECT seq, date_updated FROM bindings WHERE sid = ? AND address = ?");
    s.bind(1, binding_sid).bind(2, address);
    if (!s.step()) {
      s.reset();
      return false;  // already gone, or replaced under a new SID
    }
    std::int64_t seq = s.column_int(0);
    Seconds updated = s.column_int(1);
    s.reset();
    // The device registered again after the provider saw the token die: the binding is live again.
    if (invalid_since && updated > *invalid_since) return false;
    delete_binding_row(db, seq);
    return true;
  });
}

}  // namespace notifyd::sqlite
