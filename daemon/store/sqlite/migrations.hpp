#pragma once
// Versioned schema migrations for the SQLite store. Run once at open, on the opening thread.
// Each migration runs in its own transaction together with the bump of PRAGMA user_version, so a
// crash mid-way leaves the database at the previous version. Throws SqliteError on failure.
#include <span>

namespace notifyd::sqlite {

class Db;

struct Migration {
  int version;
  const char* sql;
};

std::span<const Migration> migrations();
int schema_version(Db& db);
// Applies every migration above the database's version, up to `target` (default: all). Returns the
// version reached. Refuses (throws) a database newer than this build knows.
int migrate(Db& db, int target = 0);

}  // namespace notifyd::sqlite
