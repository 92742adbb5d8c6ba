#include "daemon/store/sqlite/sqlite_db.hpp"

#include <sqlite3.h>

namespace notifyd::sqlite {
namespace {

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what) {
  throw SqliteError(rc, std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
}

void finalize(sqlite3_stmt* s) { sqlite3_finalize(s); }

}  // namespace

Stmt& Stmt::bind(int index, std::string_view value) {
  int rc = sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt_), rc, "bind");
  return *this;
}

Stmt& Stmt::bind(int index, std::int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt_), rc, "bind");
  return *this;
}

Stmt& Stmt::bind(int index, const std::optional<std::string>& value) {
  if (value) return bind(index, std::string_view(*value));
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt_), rc, "bind");
  return *this;
}

Stmt& Stmt::bind_blob(int index, std::span<const std::uint8_t> value) {
  int rc = sqlite3_bind_blob(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt_), rc, "bind");
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(sqlite3_db_handle(stmt_), rc, "step");
}

void Stmt::run() {
  while (step()) {
  }
}

std::int64_t Stmt::column_int(int index) const { return sqlite3_column_int64(stmt_, index); }

std::string Stmt::column_text(int index) const {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, index))) : std::string();
}

std::optional<std::string> Stmt::column_optional_text(int index) const {
  if (sqlite3_column_type(stmt_, index) == SQLITE_NULL) return std::nullopt;
  return column_text(index);
}

std::vector<std::uint8_t> Stmt::column_blob(int index) const {
  auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, index));
  auto n = static_cast<std::size_t>(sqlite3_column_bytes(stmt_, index));
  return p ? std::vector<std::uint8_t>(p, p + n) : std::vector<std::uint8_t>();
}

void Stmt::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Db::Db(const std::string& path, bool create) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw SqliteError(rc, "open " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 10000);
  // WAL lets readers run beside the single writer; synchronous=FULL makes each commit durable
  // across power loss, affordable because commits are grouped.
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec("PRAGMA foreign_keys=ON");
}

Db::~Db() {
  stmts_.clear();
  cache_.clear();
  if (db_) sqlite3_close(db_);
}

void Db::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw SqliteError(rc, msg);
  }
}

Stmt& Db::prepare(const std::string& sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) {
    it->second->reset();
    return *it->second;
  }
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &raw,
                              nullptr);
  if (rc != SQLITE_OK) fail(db_, rc, "prepare");
  cache_.emplace(sql, std::unique_ptr<sqlite3_stmt, void (*)(sqlite3_stmt*)>(raw, &finalize));
  auto [pos, _] = stmts_.emplace(sql, std::make_unique<Stmt>(raw));
  return *pos->second;
}

std::int64_t Db::changes() const { return sqlite3_changes64(db_); }
std::int64_t Db::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

}  // namespace notifyd::sqlite
