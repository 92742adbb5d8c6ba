#pragma once
// Db and Stmt: thin RAII over one sqlite3 connection and its cached prepared statements.
// A Db is used by one thread at a time (the store hands connections out). Errors: SqliteError, thrown
// only inside the store, which turns it into a 500 ApiError at its boundary.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace notifyd::sqlite {

class SqliteError : public std::runtime_error {
 public:
  SqliteError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* stmt) : stmt_(stmt) {}
  // Binds by 1-based index; chainable. nullopt binds NULL.
  Stmt& bind(int index, std::string_view value);
  Stmt& bind(int index, std::int64_t value);
  Stmt& bind(int index, const std::optional<std::string>& value);
  Stmt& bind_blob(int index, std::span<const std::uint8_t> value);
  // Steps once: true when a row is available, false when done.
  bool step();
  void run();  // steps to completion, ignoring rows
  std::int64_t column_int(int index) const;
  std::string column_text(int index) const;
  std::optional<std::string> column_optional_text(int index) const;
  std::vector<std::uint8_t> column_blob(int index) const;
  void reset();

 private:
  sqlite3_stmt* stmt_;
};

class Db {
 public:
  // Opens (creating if `create`) the database at `path` with the pragmas notifyd relies on.
  Db(const std::string& path, bool create);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(const char* sql);
  // A cached statement, reset and unbound, ready to bind.
  Stmt& prepare(const std::string& sql);
  std::int64_t changes() const;
  std::int64_t last_insert_rowid() const;
  sqlite3* handle() { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<sqlite3_stmt, void (*)(sqlite3_stmt*)>> cache_;
  std::unordered_map<std::string, std::unique_ptr<Stmt>> stmts_;
};

}  // namespace notifyd::sqlite
