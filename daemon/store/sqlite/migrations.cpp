#include "daemon/store/sqlite/migrations.hpp"

#include <sqlite3.h>

#include <array>
#include <string>

#include "daemon/store/sqlite/sqlite_db.hpp"

namespace notifyd::sqlite {
namespace {

// Never edit a migration that has shipped: add a new one.
constexpr std::array kMigrations = {
    Migration{1, R"sql(
CREATE TABLE credentials (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  sid TEXT NOT NULL UNIQUE,
  account_sid TEXT NOT NULL,
  friendly_name TEXT,
  type TEXT NOT NULL,
  sandbox INTEGER NOT NULL,
  certificate TEXT NOT NULL,
  private_key TEXT NOT NULL,
  secret TEXT NOT NULL,
  apn_topic TEXT NOT NULL,
  apn_key_id TEXT NOT NULL,
  apn_team_id TEXT NOT NULL,
  fcm_project_id TEXT NOT NULL,
  date_created INTEGER NOT NULL,
  date_updated INTEGER NOT NULL
);
CREATE INDEX credentials_by_account ON credentials (account_sid, seq);

CREATE TABLE services (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  sid TEXT NOT NULL UNIQUE,
  account_sid TEXT NOT NULL,
  friendly_name TEXT,
  apn_credential_sid TEXT,
  gcm_credential_sid TEXT,
  fcm_credential_sid TEXT,
  messaging_service_sid TEXT,
  facebook_messenger_page_id TEXT,
  default_apn_notification_protocol_version TEXT NOT NULL,
  default_gcm_notification_protocol_version TEXT NOT NULL,
  default_fcm_notification_protocol_version TEXT NOT NULL,
  default_alexa_notification_protocol_version TEXT NOT NULL,
  log_enabled INTEGER NOT NULL,
  alexa_skill_id TEXT,
  delivery_callback_url TEXT,
  delivery_callback_enabled INTEGER NOT NULL,
  date_created INTEGER NOT NULL,
  date_updated INTEGER NOT NULL
);
CREATE INDEX services_by_account ON services (account_sid, seq);
CREATE INDEX services_by_friendly_name ON services (account_sid, friendly_name, seq);

CREATE TABLE bindings (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  sid TEXT NOT NULL UNIQUE,
  account_sid TEXT NOT NULL,
  service_sid TEXT NOT NULL,
  credential_sid TEXT,
  identity TEXT NOT NULL,
  binding_type TEXT NOT NULL,
  address TEXT NOT NULL,
  tags TEXT NOT NULL,
  notification_protocol_version TEXT NOT NULL,
  endpoint TEXT,
  date_created INTEGER NOT NULL,
  date_updated INTEGER NOT NULL
);
-- One per list filter and fan-out lookup: all of a service, by identity, by type, by address, by date.
CREATE INDEX bindings_by_service ON bindings (service_sid, seq);
CREATE INDEX bindings_by_identity ON bindings (service_sid, identity, seq);
CREATE INDEX bindings_by_type ON bindings (service_sid, binding_type, seq);
CREATE UNIQUE INDEX bindings_by_address ON bindings (service_sid, binding_type, address);
CREATE INDEX bindings_by_date_created ON bindings (service_sid, date_created, seq);
CREATE INDEX bindings_by_credential ON bindings (credential_sid) WHERE credential_sid IS NOT NULL;

-- Explicit tags, keyed for "bindings of this service with this tag, in seq order".
CREATE TABLE binding_tags (
  service_sid TEXT NOT NULL,
  tag TEXT NOT NULL,
  binding_seq INTEGER NOT NULL REFERENCES bindings (seq) ON DELETE CASCADE,
  PRIMARY KEY (service_sid, tag, binding_seq)
) WITHOUT ROWID;
CREATE INDEX binding_tags_by_binding ON binding_tags (binding_seq);
)sql"},
};

}  // namespace

std::span<const Migration> migrations() { return kMigrations; }

int schema_version(Db& db) {
  auto& stmt = db.prepare("PRAGMA user_version");
  stmt.step();
  int v = static_cast<int>(stmt.column_int(0));
  stmt.reset();
  return v;
}

int migrate(Db& db, int target) {
  const int newest = kMigrations.back().version;
  if (target <= 0 || target > newest) target = newest;
  int current = schema_version(db);
  if (current > newest) {
    throw SqliteError(SQLITE_ERROR, "database schema version " + std::to_string(current) +
                                        " is newer than this notifyd knows (" + std::to_string(newest) + ")");
  }
  for (const auto& m : kMigrations) {
    if (m.version <= current || m.version > target) continue;
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(m.sql);
      db.exec(("PRAGMA user_version = " + std::to_string(m.version)).c_str());
      db.exec("COMMIT");
    } catch (...) {
      db.exec("ROLLBACK");
      throw;
    }
    current = m.version;
  }
  return current;
}

}  // namespace notifyd::sqlite
