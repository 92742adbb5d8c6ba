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
    Migration{2, R"sql(
-- The durable outbox: an accepted notification, and one delivery per recipient binding.
CREATE TABLE notifications (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  sid TEXT NOT NULL UNIQUE,
  account_sid TEXT NOT NULL,
  service_sid TEXT NOT NULL,
  request TEXT NOT NULL,
  callback_url TEXT,
  date_created INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  resolve_cursor INTEGER NOT NULL DEFAULT 0,
  resolved INTEGER NOT NULL DEFAULT 0,
  recipients INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notifications_unresolved ON notifications (seq) WHERE resolved = 0;

CREATE TABLE deliveries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  notification_seq INTEGER NOT NULL REFERENCES notifications (seq) ON DELETE CASCADE,
  target_key TEXT NOT NULL,
  binding_sid TEXT,
  binding_type TEXT NOT NULL,
  address TEXT NOT NULL,
  identity TEXT,
  credential_sid TEXT,
  protocol_version TEXT NOT NULL,
  binding_updated INTEGER NOT NULL DEFAULT 0,
  state INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL DEFAULT 0,
  leased INTEGER NOT NULL DEFAULT 0,
  last_reason TEXT,
  provider_status INTEGER NOT NULL DEFAULT 0,
  apns_id TEXT NOT NULL,
  UNIQUE (notification_seq, target_key)
);
-- Only pending deliveries are in it: the dispatcher's "what is due next".
CREATE INDEX deliveries_due ON deliveries (next_attempt_ms, seq) WHERE state = 0;
)sql"},
    Migration{3, R"sql(
-- A resolved page whose deliveries are sent straight from memory: one row per page instead of one per
-- delivery. `targets`: the bindings' seqs, as varint deltas; `done`: a bit per target, set once its outcome
-- is settled (delivered, or moved into a `deliveries` row to retry or to keep a failure); `remaining`: the
-- bits still clear. Deleted when none remain.
CREATE TABLE delivery_pages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  notification_seq INTEGER NOT NULL REFERENCES notifications (seq) ON DELETE CASCADE,
  targets BLOB NOT NULL,
  done BLOB NOT NULL,
  remaining INTEGER NOT NULL
);
CREATE INDEX delivery_pages_by_notification ON delivery_pages (notification_seq);
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
