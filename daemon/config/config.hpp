#pragma once
// Config: the daemon's configuration, one immutable tree read from TOML (see README "Configuration").
// Built once at start (and on reload) by load_config(); read-only afterwards, so any thread may read it.
// Fails by throwing ConfigError naming the key path and file:line: configuration errors are fatal at start.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace notifyd {

struct ApiKeyConfig {
  std::string sid;     // SK + 32 hex
  std::string secret;  // from `secret` or the file named by `secret_file`
};

struct AccountConfig {
  std::string sid;         // AC + 32 hex
  std::string auth_token;  // from `auth_token` or the file named by `auth_token_file`
  std::vector<ApiKeyConfig> api_keys;
};

struct ServerConfig {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8080;                  // 0: any free port (tests)
  std::string public_url = "http://127.0.0.1:8080";  // no trailing slash
  std::size_t max_body_bytes = 65536;
  std::size_t max_header_bytes = 16384;
  std::uint32_t header_timeout_ms = 10000;  // reading a request's header, and idle keep-alive
  std::uint32_t body_timeout_ms = 30000;    // reading a request's body
  std::uint32_t shutdown_timeout_ms = 10000;
  unsigned threads = 0;  // I/O threads; 0: one per core
  // Threads of the delivery side (dispatcher, transports' connections, callbacks), apart from the I/O
  // threads: with one, a delivery is handed from the dispatcher to its connection and back without crossing
  // threads.
  unsigned delivery_threads = 1;
};

struct StoreConfig {
  std::string backend = "sqlite";  // sqlite | postgres
  std::string path = "/var/lib/notifyd/notifyd.db";
  std::string dsn;
  unsigned workers = 64;  // threads that run store calls off the I/O threads
};

struct LogConfig {
  std::string level = "info";  // trace debug info warn error critical off
};

struct ApnsConfig {
  std::string production_url = "https://api.push.apple.com";
  std::string sandbox_url = "https://api.sandbox.push.apple.com";
  std::string ca_file;
};

struct FcmConfig {
  std::string url = "https://fcm.googleapis.com";
  std::string ca_file;
};

struct SmsConfig {
  std::string url = "https://api.twilio.com";
  std::string account_sid;
  std::string auth_token;  // or auth_token_file
};

// GET /metrics: open to anyone who can reach the listener unless a bearer token is set.
struct MetricsConfig {
  std::string bearer_token;  // from `bearer_token` or the file named by `bearer_token_file`; empty: no auth
};

struct Config {
  std::string source_path;  // the file it was read from
  ServerConfig server;
  StoreConfig store;
  LogConfig log;
  std::vector<AccountConfig> accounts;
  ApnsConfig apns;
  FcmConfig fcm;
  SmsConfig sms;
  MetricsConfig metrics;
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads and validates the TOML file at `path`. Unknown keys, wrong types, out-of-range values, duplicate
// account or key SIDs and unreadable secret files throw ConfigError, one "file:line: key.path: problem" line
// per problem (all are collected first, ordered by line). Relative secret-file, ca_file and store paths
// resolve against the config file's directory.
Config load_config(const std::string& path);
// The same from a string (tests); `origin` names it in messages.
Config parse_config(std::string_view toml_text, const std::string& origin);
// The effective configuration as TOML-like text for `--check-config`; every secret (auth tokens, API key
// secrets, the store DSN) shows as "<redacted>", so the output is safe to paste into a bug report.
std::string describe_config(const Config& config);

}  // namespace notifyd
