// Tests for the config loader: values, defaults, every kind of error with its "origin:line: key.path",
// secret files (beside the config and under $CREDENTIALS_DIRECTORY), the shipped config files, and redaction.
#include "daemon/config/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace notifyd {
namespace {

namespace fs = std::filesystem;

constexpr char kOrigin[] = "test.toml";
constexpr char kAccountSid[] = "AC0123456789abcdef0123456789abcdef";
constexpr char kOtherAccountSid[] = "ACfedcba9876543210fedcba9876543210";
constexpr char kKeySid[] = "SK0123456789abcdef0123456789abcdef";

// A minimal valid [[accounts]] block, appended after the text under test so its lines stay put.
std::string account_block(const std::string& sid = kAccountSid) {
  return "[[accounts]]\nsid = \"" + sid + "\"\nauth_token = \"token-1\"\n";
}

// The message of the ConfigError that parsing `text` throws, or "" (and a test failure) if none is thrown.
std::string error_of(const std::string& text, const std::string& origin = kOrigin) {
  try {
    parse_config(text, origin);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << text;
  return "";
}

// Checks that parsing fails with a message naming `key_path` on `line` of the origin.
void expect_error(const std::string& text, const std::string& key_path, int line,
                  const std::string& also = "") {
  const std::string message = error_of(text);
  const std::string where = std::string(kOrigin) + ":" + std::to_string(line) + ": " + key_path + ":";
  EXPECT_NE(message.find(where), std::string::npos) << "expected \"" << where << "\" in:\n" << message;
  if (!also.empty()) {
    EXPECT_NE(message.find(also), std::string::npos) << message;
  }
}

// A fresh directory under the system temp directory, removed with the fixture.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("notifyd-config-test-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  fs::path write(const std::string& name, const std::string& contents) const {
    const fs::path file = path_ / name;
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << contents;
    return file;
  }

 private:
  fs::path path_;
};

// Sets or clears $CREDENTIALS_DIRECTORY for one test and restores the previous value.
class ScopedCredentialsDirectory {
 public:
  explicit ScopedCredentialsDirectory(const std::optional<fs::path>& dir) {
    if (const char* old = std::getenv("CREDENTIALS_DIRECTORY")) old_ = old;
    if (dir) {
      ::setenv("CREDENTIALS_DIRECTORY", dir->c_str(), 1);
    } else {
      ::unsetenv("CREDENTIALS_DIRECTORY");
    }
  }
  ~ScopedCredentialsDirectory() {
    if (old_) {
      ::setenv("CREDENTIALS_DIRECTORY", old_->c_str(), 1);
    } else {
      ::unsetenv("CREDENTIALS_DIRECTORY");
    }
  }
  ScopedCredentialsDirectory(const ScopedCredentialsDirectory&) = delete;
  ScopedCredentialsDirectory& operator=(const ScopedCredentialsDirectory&) = delete;

 private:
  std::optional<std::string> old_;
};

fs::path repo_root() { return fs::path(NOTIFYD_SOURCE_DIR); }

// ---- valid configurations ----

TEST(ConfigTest, FullConfigParsesWithEveryValue) {
  TempDir dir;
  const fs::path ca = dir.write("ca.pem", "-----BEGIN CERTIFICATE-----\n");
  const std::string text = R"([server]
listen = "0.0.0.0:9090"
public_url = "https://notify.example.com/base/"
max_body_bytes = 1048576
max_header_bytes = 8192
header_timeout_ms = 5000
body_timeout_ms = 20000
shutdown_timeout_ms = 3000
threads = 4
delivery_threads = 2

[store]
backend = "postgres"
dsn = "postgresql://notifyd@/notifyd"
workers = 16

[log]
level = "debug"

[[accounts]]
sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "token-1"
[[accounts.api_keys]]
sid = "SK0123456789abcdef0123456789abcdef"
secret = "secret-1"
[[accounts.api_keys]]
sid = "SKfedcba9876543210fedcba9876543210"
secret = "secret-2"

[[accounts]]
sid = "ACfedcba9876543210fedcba9876543210"
auth_token = "token-2"

[apns]
production_url = "https://apns.test:8443"
sandbox_url = "http://127.0.0.1:9443/"
ca_file = "ca.pem"

[fcm]
url = "https://fcm.test"
ca_file = ")" + ca.string() +
                           R"("

[sms]
url = "http://127.0.0.1:7000"
account_sid = "AC00000000000000000000000000000000"
auth_token = "sms-token"
)";
  const Config c = parse_config(text, (dir.path() / "notifyd.toml").string());
  EXPECT_EQ(c.source_path, (dir.path() / "notifyd.toml").string());
  EXPECT_EQ(c.server.listen_host, "0.0.0.0");
  EXPECT_EQ(c.server.listen_port, 9090);
  EXPECT_EQ(c.server.public_url, "https://notify.example.com/base");
  EXPECT_EQ(c.server.max_body_bytes, 1048576u);
  EXPECT_EQ(c.server.max_header_bytes, 8192u);
  EXPECT_EQ(c.server.header_timeout_ms, 5000u);
  EXPECT_EQ(c.server.body_timeout_ms, 20000u);
  EXPECT_EQ(c.server.shutdown_timeout_ms, 3000u);
  EXPECT_EQ(c.server.threads, 4u);
  EXPECT_EQ(c.server.delivery_threads, 2u);
  EXPECT_EQ(c.store.backend, "postgres");
  EXPECT_EQ(c.store.dsn, "postgresql://notifyd@/notifyd");
  EXPECT_EQ(c.store.workers, 16u);
  EXPECT_EQ(c.log.level, "debug");
  ASSERT_EQ(c.accounts.size(), 2u);
  EXPECT_EQ(c.accounts[0].sid, kAccountSid);
  EXPECT_EQ(c.accounts[0].auth_token, "token-1");
  ASSERT_EQ(c.accounts[0].api_keys.size(), 2u);
  EXPECT_EQ(c.accounts[0].api_keys[0].sid, kKeySid);
  EXPECT_EQ(c.accounts[0].api_keys[0].secret, "secret-1");
  EXPECT_EQ(c.accounts[0].api_keys[1].secret, "secret-2");
  EXPECT_EQ(c.accounts[1].sid, kOtherAccountSid);
  EXPECT_EQ(c.accounts[1].auth_token, "token-2");
  EXPECT_TRUE(c.accounts[1].api_keys.empty());
  EXPECT_EQ(c.apns.production_url, "https://apns.test:8443");
  EXPECT_EQ(c.apns.sandbox_url, "http://127.0.0.1:9443");
  EXPECT_EQ(c.apns.ca_file, ca.string());  // relative: resolved beside the config file
  EXPECT_EQ(c.fcm.url, "https://fcm.test");
  EXPECT_EQ(c.fcm.ca_file, ca.string());
  EXPECT_EQ(c.sms.url, "http://127.0.0.1:7000");
  EXPECT_EQ(c.sms.account_sid, "AC00000000000000000000000000000000");
  EXPECT_EQ(c.sms.auth_token, "sms-token");
}

TEST(ConfigTest, OnlyAccountsGivenMeansDefaults) {
  const Config c = parse_config(account_block(), kOrigin);
  const Config defaults;
  EXPECT_EQ(c.server.listen_host, "127.0.0.1");
  EXPECT_EQ(c.server.listen_port, 8080);
  EXPECT_EQ(c.server.public_url, "http://127.0.0.1:8080");
  EXPECT_EQ(c.server.max_body_bytes, 65536u);
  EXPECT_EQ(c.server.max_header_bytes, 16384u);
  EXPECT_EQ(c.server.header_timeout_ms, 10000u);
  EXPECT_EQ(c.server.body_timeout_ms, 30000u);
  EXPECT_EQ(c.server.shutdown_timeout_ms, 10000u);
  EXPECT_EQ(c.server.threads, 0u);
  EXPECT_EQ(c.server.delivery_threads, 1u);
  EXPECT_EQ(c.store.backend, "sqlite");
  EXPECT_EQ(c.store.path, "/var/lib/notifyd/notifyd.db");
  EXPECT_EQ(c.store.workers, 64u);
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.apns.production_url, defaults.apns.production_url);
  EXPECT_EQ(c.apns.sandbox_url, defaults.apns.sandbox_url);
  EXPECT_EQ(c.fcm.url, defaults.fcm.url);
  EXPECT_EQ(c.sms.url, defaults.sms.url);
  EXPECT_TRUE(c.sms.auth_token.empty());
  ASSERT_EQ(c.accounts.size(), 1u);
  EXPECT_EQ(c.accounts[0].auth_token, "token-1");
}

TEST(ConfigTest, ListenAcceptsIpv4HostnamesAndBracketedIpv6) {
  const auto listen = [](const std::string& value) {
    return parse_config("[server]\nlisten = \"" + value + "\"\n" + account_block(), kOrigin).server;
  };
  EXPECT_EQ(listen("10.1.2.3:0").listen_port, 0);
  EXPECT_EQ(listen("localhost:65535").listen_host, "localhost");
  EXPECT_EQ(listen("localhost:65535").listen_port, 65535);
  EXPECT_EQ(listen("notify-1.internal.example:80").listen_host, "notify-1.internal.example");
  EXPECT_EQ(listen("[::1]:8080").listen_host, "::1");
  EXPECT_EQ(listen("[::]:443").listen_host, "::");
  EXPECT_EQ(listen("[::]:443").listen_port, 443);
}

TEST(ConfigTest, RelativeStorePathResolvesAgainstConfigDirectory) {
  TempDir dir;
  const std::string text = "[store]\npath = \"../state/notifyd.db\"\n" + account_block();
  const Config c = parse_config(text, (dir.path() / "etc" / "notifyd.toml").string());
  EXPECT_EQ(c.store.path, (dir.path() / "state" / "notifyd.db").string());
}

TEST(ConfigTest, InlineArrayOfAccountsIsAccepted) {
  const Config c = parse_config(std::string("accounts = [{ sid = \"") + kAccountSid +
                                    "\", auth_token = \"t\", api_keys = [{ sid = \"" + kKeySid +
                                    "\", secret = \"s\" }] }]\n",
                                kOrigin);
  ASSERT_EQ(c.accounts.size(), 1u);
  ASSERT_EQ(c.accounts[0].api_keys.size(), 1u);
  EXPECT_EQ(c.accounts[0].api_keys[0].secret, "s");
}

// ---- errors: each names the key path and the line ----

TEST(ConfigErrorTest, UnknownTopLevelKey) {
  expect_error("colour = \"blue\"\n" + account_block(), "colour", 1);
}

TEST(ConfigErrorTest, UnknownTopLevelTable) {
  expect_error("[server]\nlisten = \"127.0.0.1:1\"\n\n[telemetry]\nenabled = true\n" + account_block(),
               "telemetry", 4, "unknown key");
}

TEST(ConfigErrorTest, UnknownKeyInServer) {
  expect_error("[server]\nlisten = \"127.0.0.1:1\"\nlisten_port = 8080\n" + account_block(),
               "server.listen_port", 3, "unknown key");
}

TEST(ConfigErrorTest, UnknownKeyInAccounts) {
  expect_error(account_block() + "role = \"admin\"\n", "accounts[0].role", 4, "unknown key");
}

TEST(ConfigErrorTest, UnknownKeyInSecondAccount) {
  expect_error(account_block() + account_block(kOtherAccountSid) + "frendly_name = \"x\"\n",
               "accounts[1].frendly_name", 7);
}

TEST(ConfigErrorTest, UnknownKeyInApiKeys) {
  expect_error(
      account_block() + "[[accounts.api_keys]]\nsid = \"" + kKeySid + "\"\nsecret = \"s\"\nscope = \"all\"\n",
      "accounts[0].api_keys[0].scope", 7, "unknown key");
}

TEST(ConfigErrorTest, UnknownKeyInEveryOtherSection) {
  expect_error("[store]\nfile = \"x\"\n" + account_block(), "store.file", 2);
  expect_error("[log]\nformat = \"json\"\n" + account_block(), "log.format", 2);
  expect_error("[apns]\nkey = \"x\"\n" + account_block(), "apns.key", 2);
  expect_error("[fcm]\nproject = \"x\"\n" + account_block(), "fcm.project", 2);
  expect_error("[sms]\nfrom = \"+1555\"\n" + account_block(), "sms.from", 2);
}

TEST(ConfigErrorTest, WrongTypes) {
  expect_error("[server]\n\nmax_body_bytes = \"64k\"\n" + account_block(), "server.max_body_bytes", 3,
               "expected an integer, got a string");
  expect_error("[server]\nlisten = 8080\n" + account_block(), "server.listen", 2, "expected a string");
  expect_error("[server]\nthreads = 2.0\n" + account_block(), "server.threads", 2, "got a float");
  expect_error("server = \"x\"\n" + account_block(), "server", 1, "expected a table");
  expect_error("[log]\nlevel = true\n" + account_block(), "log.level", 2, "got a boolean");
  expect_error("accounts = \"AC\"\n", "accounts", 1, "expected an array");
  expect_error(account_block() + "api_keys = 3\n", "accounts[0].api_keys", 4, "expected an array");
  expect_error(account_block() + "[accounts.api_keys]\n", "accounts[0].api_keys", 4,
               "write [[accounts.api_keys]]");
  expect_error("accounts = [1]\n", "accounts[0]", 1, "expected a table");
  expect_error("[accounts]\nsid = \"" + std::string(kAccountSid) + "\"\n", "accounts", 1,
               "write [[accounts]]");
}

TEST(ConfigErrorTest, OutOfRangeValues) {
  expect_error("[server]\nmax_body_bytes = 1023\n" + account_block(), "server.max_body_bytes", 2,
               "between 1024 and 104857600");
  expect_error("[server]\nmax_body_bytes = 104857601\n" + account_block(), "server.max_body_bytes", 2);
  expect_error("[server]\nmax_header_bytes = 2000000\n" + account_block(), "server.max_header_bytes", 2);
  expect_error("[server]\nheader_timeout_ms = 99\n" + account_block(), "server.header_timeout_ms", 2);
  expect_error("[server]\nbody_timeout_ms = 3600001\n" + account_block(), "server.body_timeout_ms", 2);
  expect_error("[server]\nshutdown_timeout_ms = -1\n" + account_block(), "server.shutdown_timeout_ms", 2);
  expect_error("[server]\nthreads = 257\n" + account_block(), "server.threads", 2);
  expect_error("[server]\ndelivery_threads = 0\n" + account_block(), "server.delivery_threads", 2,
               "between 1 and 256");
  expect_error("[server]\ndelivery_threads = 257\n" + account_block(), "server.delivery_threads", 2);
  expect_error("[store]\nworkers = 0\n" + account_block(), "store.workers", 2);
  expect_error("[store]\nworkers = 1025\n" + account_block(), "store.workers", 2);
}

TEST(ConfigErrorTest, BadEnumValues) {
  expect_error("[store]\nbackend = \"mysql\"\n" + account_block(), "store.backend", 2,
               "\"sqlite\", \"postgres\"");
  expect_error("[log]\nlevel = \"verbose\"\n" + account_block(), "log.level", 2, "must be one of");
}

TEST(ConfigErrorTest, BadListen) {
  for (const char* bad :
       {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:80a", ":8080", "::1:8080", "[::1]8080",
        "[::1]:", "[nope]:80", "300.1.2.3:80", "bad_host:80", "-x.example:80", "127.0.0.1:+80"}) {
    SCOPED_TRACE(bad);
    expect_error(std::string("[server]\nlisten = \"") + bad + "\"\n" + account_block(), "server.listen", 2);
  }
}

TEST(ConfigErrorTest, BadUrls) {
  expect_error("[server]\npublic_url = \"127.0.0.1:8080\"\n" + account_block(), "server.public_url", 2);
  expect_error("[server]\npublic_url = \"ftp://example.com\"\n" + account_block(), "server.public_url", 2,
               "http:// or https://");
  expect_error("[server]\npublic_url = \"https://example.com/?a=b\"\n" + account_block(), "server.public_url",
               2);
  expect_error("[apns]\nsandbox_url = \"not a url\"\n" + account_block(), "apns.sandbox_url", 2);
  expect_error("[fcm]\nurl = \"https://\"\n" + account_block(), "fcm.url", 2);
  expect_error("[sms]\n\nurl = \"mailto:x@example.com\"\n" + account_block(), "sms.url", 3);
}

TEST(ConfigErrorTest, BadSids) {
  const std::string upper = "AC0123456789ABCDEF0123456789ABCDEF";
  expect_error(account_block(upper), "accounts[0].sid", 2, "32 lowercase hex");
  expect_error(account_block("AC0123"), "accounts[0].sid", 2);
  expect_error(account_block("SK0123456789abcdef0123456789abcdef"), "accounts[0].sid", 2);
  expect_error(
      account_block() + "[[accounts.api_keys]]\nsid = \"" + std::string(kAccountSid) + "\"\nsecret = \"s\"\n",
      "accounts[0].api_keys[0].sid", 5);
  expect_error("[sms]\naccount_sid = \"ACxyz\"\n" + account_block(), "sms.account_sid", 2);
}

TEST(ConfigErrorTest, BothAuthTokenAndAuthTokenFile) {
  expect_error(account_block() + "auth_token_file = \"token\"\n", "accounts[0].auth_token_file", 4,
               "not both");
}

TEST(ConfigErrorTest, NeitherAuthTokenNorFile) {
  expect_error("\n[[accounts]]\nsid = \"" + std::string(kAccountSid) + "\"\n", "accounts[0].auth_token", 2,
               "required");
}

TEST(ConfigErrorTest, ApiKeySecretRules) {
  const std::string key = "[[accounts.api_keys]]\nsid = \"" + std::string(kKeySid) + "\"\n";
  expect_error(account_block() + key, "accounts[0].api_keys[0].secret", 4, "required");
  expect_error(account_block() + key + "secret = \"a\"\nsecret_file = \"b\"\n",
               "accounts[0].api_keys[0].secret_file", 7, "not both");
  expect_error(account_block() + "[[accounts.api_keys]]\nsecret = \"a\"\n", "accounts[0].api_keys[0].sid", 4,
               "required key is missing");
}

TEST(ConfigErrorTest, SmsAuthTokenGivenTwice) {
  expect_error("[sms]\nauth_token = \"a\"\nauth_token_file = \"b\"\n" + account_block(),
               "sms.auth_token_file", 3);
}

TEST(ConfigErrorTest, MissingAccounts) {
  expect_error("[server]\nlisten = \"127.0.0.1:8080\"\n", "accounts", 1, "at least one");
  expect_error("", "accounts", 1, "at least one");
  expect_error("\naccounts = []\n", "accounts", 2, "at least one");
}

TEST(ConfigErrorTest, MissingAccountSid) {
  expect_error("[log]\nlevel = \"info\"\n[[accounts]]\nauth_token = \"t\"\n", "accounts[0].sid", 3,
               "required");
}

TEST(ConfigErrorTest, DuplicateAccountSids) {
  expect_error(account_block() + account_block(), "accounts[1].sid", 5, "duplicate SID");
}

TEST(ConfigErrorTest, DuplicateApiKeySidsAcrossAccounts) {
  const std::string key = "[[accounts.api_keys]]\nsid = \"" + std::string(kKeySid) + "\"\nsecret = \"s\"\n";
  expect_error(account_block() + key + account_block(kOtherAccountSid) + key, "accounts[1].api_keys[0].sid",
               11, "first defined on line 5");
}

TEST(ConfigErrorTest, StoreBackendNeedsItsKey) {
  expect_error("[store]\nbackend = \"postgres\"\n" + account_block(), "store.dsn", 1, "required");
  expect_error("[store]\npath = \"\"\n" + account_block(), "store.path", 2, "required");
}

TEST(ConfigErrorTest, MissingCaFile) {
  expect_error("[apns]\nca_file = \"/nonexistent/notifyd/ca.pem\"\n" + account_block(), "apns.ca_file", 2,
               "cannot read");
}

TEST(ConfigErrorTest, SyntaxErrorNamesTheLine) {
  const std::string message = error_of("[server]\nlisten = \"127.0.0.1:8080\n" + account_block());
  EXPECT_NE(message.find("test.toml:2:"), std::string::npos) << message;
}

TEST(ConfigErrorTest, AllProblemsAreReportedInLineOrder) {
  const std::string message = error_of("[server]\nthreads = 999\nbogus = 1\n" + account_block() + "x = 1\n");
  const auto first = message.find("test.toml:2: server.threads");
  const auto second = message.find("test.toml:3: server.bogus");
  const auto third = message.find("test.toml:7: accounts[0].x");
  ASSERT_NE(first, std::string::npos) << message;
  ASSERT_NE(second, std::string::npos) << message;
  ASSERT_NE(third, std::string::npos) << message;
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
}

TEST(ConfigErrorTest, LoadConfigOfMissingFileNamesIt) {
  try {
    load_config("/nonexistent/notifyd.toml");
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/notifyd.toml"), std::string::npos) << e.what();
  }
}

// ---- secret files ----

TEST(ConfigSecretFileTest, ReadsSecretFilesBesideTheConfig) {
  ScopedCredentialsDirectory env(std::nullopt);
  TempDir dir;
  dir.write("secrets/token", "file-token\n");
  const fs::path key_secret = dir.write("key-secret", "file-secret");
  const fs::path sms_token = dir.write("sms-token", "sms\r\n");
  const fs::path config =
      dir.write("notifyd.toml", "[[accounts]]\nsid = \"" + std::string(kAccountSid) +
                                    "\"\nauth_token_file = \"secrets/token\"\n"
                                    "[[accounts.api_keys]]\nsid = \"" +
                                    kKeySid + "\"\nsecret_file = \"" + key_secret.string() +
                                    "\"\n[sms]\nauth_token_file = \"sms-token\"\n");
  const Config c = load_config(config.string());
  ASSERT_EQ(c.accounts.size(), 1u);
  EXPECT_EQ(c.accounts[0].auth_token, "file-token");  // one trailing newline stripped
  EXPECT_EQ(c.accounts[0].api_keys[0].secret, "file-secret");
  EXPECT_EQ(c.sms.auth_token, "sms");
}

TEST(ConfigSecretFileTest, OnlyOneTrailingNewlineIsStripped) {
  ScopedCredentialsDirectory env(std::nullopt);
  TempDir dir;
  dir.write("token", "two\n\n");
  const Config c =
      parse_config("[[accounts]]\nsid = \"" + std::string(kAccountSid) + "\"\nauth_token_file = \"token\"\n",
                   (dir.path() / "notifyd.toml").string());
  EXPECT_EQ(c.accounts[0].auth_token, "two\n");
}

TEST(ConfigSecretFileTest, MissingSecretFile) {
  ScopedCredentialsDirectory env(std::nullopt);
  TempDir dir;
  const std::string text =
      "[[accounts]]\nsid = \"" + std::string(kAccountSid) + "\"\nauth_token_file = \"nope\"\n";
  try {
    parse_config(text, (dir.path() / "notifyd.toml").string());
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(":3: accounts[0].auth_token_file: cannot read"), std::string::npos) << message;
    EXPECT_NE(message.find((dir.path() / "nope").string()), std::string::npos) << message;
  }
}

TEST(ConfigSecretFileTest, EmptySecretFile) {
  ScopedCredentialsDirectory env(std::nullopt);
  TempDir dir;
  const fs::path empty = dir.write("empty", "\n");
  expect_error(account_block() + "[[accounts.api_keys]]\nsid = \"" + kKeySid + "\"\nsecret_file = \"" +
                   empty.string() + "\"\n",
               "accounts[0].api_keys[0].secret_file", 6, "is empty");
}

TEST(ConfigSecretFileTest, CredentialsDirectoryIsSearchedFirst) {
  TempDir dir;
  dir.write("etc/token", "beside-config");
  dir.write("credentials/token", "from-credentials\n");
  dir.write("etc/only-beside", "fallback");
  ScopedCredentialsDirectory env(dir.path() / "credentials");
  const std::string text = "[[accounts]]\nsid = \"" + std::string(kAccountSid) +
                           "\"\nauth_token_file = \"token\"\n"
                           "[[accounts.api_keys]]\nsid = \"" +
                           kKeySid + "\"\nsecret_file = \"only-beside\"\n";
  const Config c = parse_config(text, (dir.path() / "etc" / "notifyd.toml").string());
  EXPECT_EQ(c.accounts[0].auth_token, "from-credentials");
  // Not in $CREDENTIALS_DIRECTORY: found beside the config file instead.
  EXPECT_EQ(c.accounts[0].api_keys[0].secret, "fallback");
}

TEST(ConfigSecretFileTest, AbsolutePathIgnoresCredentialsDirectory) {
  TempDir dir;
  const fs::path absolute = dir.write("abs/token", "absolute");
  dir.write("credentials" + absolute.string(), "wrong");
  ScopedCredentialsDirectory env(dir.path() / "credentials");
  const Config c = parse_config("[[accounts]]\nsid = \"" + std::string(kAccountSid) +
                                    "\"\nauth_token_file = \"" + absolute.string() + "\"\n",
                                kOrigin);
  EXPECT_EQ(c.accounts[0].auth_token, "absolute");
}

// ---- the shipped files ----

TEST(ConfigFilesTest, DevelopmentConfigLoads) {
  ScopedCredentialsDirectory env(std::nullopt);
  const Config c = load_config((repo_root() / "config" / "notifyd.toml").string());
  EXPECT_EQ(c.server.listen_host, "127.0.0.1");
  EXPECT_EQ(c.server.listen_port, 8080);
  EXPECT_EQ(c.server.public_url, "http://127.0.0.1:8080");
  EXPECT_EQ(c.store.backend, "sqlite");
  EXPECT_EQ(fs::path(c.store.path), (fs::absolute(repo_root()) / "state" / "notifyd.db").lexically_normal());
  EXPECT_EQ(c.log.level, "info");
  ASSERT_EQ(c.accounts.size(), 1u);
  EXPECT_EQ(c.accounts[0].sid, "ACdeadbeefdeadbeefdeadbeefdeadbeef");
  EXPECT_EQ(c.accounts[0].auth_token, "dev-auth-token-change-me");
  ASSERT_EQ(c.accounts[0].api_keys.size(), 1u);
  EXPECT_EQ(c.accounts[0].api_keys[0].sid, "SKdeadbeefdeadbeefdeadbeefdeadbeef");
  EXPECT_EQ(c.accounts[0].api_keys[0].secret, "dev-api-key-secret-change-me");
}

TEST(ConfigFilesTest, ExampleConfigLoads) {
  ScopedCredentialsDirectory env(std::nullopt);
  const Config c = load_config((repo_root() / "config" / "notifyd.example.toml").string());
  EXPECT_EQ(c.store.path, "/var/lib/notifyd/notifyd.db");
  EXPECT_EQ(c.accounts.size(), 1u);
}

// ---- describe_config ----

TEST(DescribeConfigTest, NeverShowsASecret) {
  const std::string text = R"([store]
backend = "postgres"
dsn = "postgresql://notifyd:dsn-password@db/notifyd"
[[accounts]]
sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "account-token-xyz"
[[accounts.api_keys]]
sid = "SK0123456789abcdef0123456789abcdef"
secret = "api-key-secret-xyz"
[sms]
account_sid = "AC00000000000000000000000000000000"
auth_token = "sms-token-xyz"
)";
  const std::string dump = describe_config(parse_config(text, kOrigin));
  for (const char* secret : {"account-token-xyz", "api-key-secret-xyz", "sms-token-xyz", "dsn-password"}) {
    EXPECT_EQ(dump.find(secret), std::string::npos) << secret << " leaked in:\n" << dump;
  }
  EXPECT_NE(dump.find("auth_token = \"<redacted>\""), std::string::npos) << dump;
  EXPECT_NE(dump.find("secret = \"<redacted>\""), std::string::npos) << dump;
  EXPECT_NE(dump.find("sid = \"AC0123456789abcdef0123456789abcdef\""), std::string::npos) << dump;
  EXPECT_NE(dump.find("sid = \"SK0123456789abcdef0123456789abcdef\""), std::string::npos) << dump;
}

TEST(DescribeConfigTest, DumpIsValidConfigWithTheSameValues) {
  const Config original = parse_config(
      "[server]\nlisten = \"[::1]:9000\"\nthreads = 3\ndelivery_threads = 4\n" + account_block(), kOrigin);
  const std::string dump = describe_config(original);
  EXPECT_NE(dump.find("listen = \"[::1]:9000\""), std::string::npos) << dump;
  // Parsing the dump back gives the same non-secret values (secrets read back as the literal "<redacted>").
  const Config again = parse_config(dump, kOrigin);
  EXPECT_EQ(again.server.listen_host, "::1");
  EXPECT_EQ(again.server.listen_port, 9000);
  EXPECT_EQ(again.server.threads, 3u);
  EXPECT_EQ(again.server.delivery_threads, 4u);
  EXPECT_EQ(again.accounts[0].sid, kAccountSid);
  EXPECT_EQ(again.accounts[0].auth_token, "<redacted>");
}

TEST(ConfigTest, ShutdownTimeoutInSecondsAsDesignNamesIt) {
  const Config c = parse_config("[server]\nshutdown_timeout = 25\n" + account_block(), kOrigin);
  EXPECT_EQ(c.server.shutdown_timeout_ms, 25000u);
  expect_error("[server]\nshutdown_timeout = 0\n" + account_block(), "server.shutdown_timeout", 2);
}

// ---- [metrics] ----

TEST(ConfigMetricsTest, NoBearerTokenByDefault) {
  const Config c = parse_config(account_block(), kOrigin);
  EXPECT_EQ(c.metrics.bearer_token, "");
}

TEST(ConfigMetricsTest, BearerTokenInline) {
  const Config c = parse_config("[metrics]\nbearer_token = \"scrape-token-1\"\n" + account_block(), kOrigin);
  EXPECT_EQ(c.metrics.bearer_token, "scrape-token-1");
}

TEST(ConfigMetricsTest, BearerTokenFileFromCredentialsDirectory) {
  TempDir dir;
  dir.write("etc/metrics-token", "beside-config");
  dir.write("credentials/metrics-token", "from-credentials\n");
  ScopedCredentialsDirectory env(dir.path() / "credentials");
  const Config c = parse_config("[metrics]\nbearer_token_file = \"metrics-token\"\n" + account_block(),
                                (dir.path() / "etc" / "notifyd.toml").string());
  EXPECT_EQ(c.metrics.bearer_token, "from-credentials");
}

TEST(ConfigMetricsTest, BearerTokenFileBesideTheConfig) {
  ScopedCredentialsDirectory env(std::nullopt);
  TempDir dir;
  dir.write("metrics-token", "beside\n");
  const Config c = parse_config("[metrics]\nbearer_token_file = \"metrics-token\"\n" + account_block(),
                                (dir.path() / "notifyd.toml").string());
  EXPECT_EQ(c.metrics.bearer_token, "beside");
}

TEST(ConfigMetricsTest, Errors) {
  ScopedCredentialsDirectory env(std::nullopt);
  expect_error("[metrics]\nbearer_token = \"a\"\nbearer_token_file = \"b\"\n" + account_block(),
               "metrics.bearer_token_file", 3, "not both");
  expect_error("[metrics]\nbearer_token_file = \"/nonexistent/metrics-token\"\n" + account_block(),
               "metrics.bearer_token_file", 2, "cannot read");
  expect_error("[metrics]\nbearer_token = 42\n" + account_block(), "metrics.bearer_token", 2,
               "expected a string");
  expect_error("[metrics]\npath = \"/metrics\"\n" + account_block(), "metrics.path", 2, "unknown key");
  // Not sendable in an Authorization header; the message does not echo the token.
  const std::string message = error_of("[metrics]\nbearer_token = \"has space-secret\"\n" + account_block());
  EXPECT_NE(message.find("test.toml:2: metrics.bearer_token: the token may contain only visible ASCII"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("space-secret"), std::string::npos) << message;
}

TEST(ConfigMetricsTest, DescribeRedactsTheBearerToken) {
  const std::string dump = describe_config(
      parse_config("[metrics]\nbearer_token = \"scrape-secret-xyz\"\n" + account_block(), kOrigin));
  EXPECT_EQ(dump.find("scrape-secret-xyz"), std::string::npos) << dump;
  EXPECT_NE(dump.find("[metrics]\nbearer_token = \"<redacted>\""), std::string::npos) << dump;
  // The dump still reads back as a valid configuration.
  EXPECT_EQ(parse_config(dump, kOrigin).metrics.bearer_token, "<redacted>");
}

}  // namespace
}  // namespace notifyd
