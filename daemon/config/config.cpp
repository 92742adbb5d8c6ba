// Config loader: one table of rules per TOML table ({key, type, range}; the default is the member initializer
// in config.hpp, so table and struct cannot disagree). Every problem is collected before throwing, so
// `--check-config` can list all of them at once, each as "file:line: key.path: problem".
#include "daemon/config/config.hpp"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <algorithm>
#include <boost/url/parse.hpp>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <span>
#include <sstream>
#include <string_view>
#include <utility>

namespace notifyd {
namespace {

namespace fs = std::filesystem;

struct Problem {
  std::uint32_t line;
  std::string text;
};

// Everything the rules need besides the value itself: where relative paths point, and where problems go.
struct Context {
  std::string origin;
  fs::path config_dir;
  std::optional<fs::path> credentials_dir;  // $CREDENTIALS_DIRECTORY (systemd LoadCredential=)
  std::vector<Problem> problems;
  std::map<std::string, std::uint32_t> sid_lines;  // account and API key SIDs seen so far -> line

  void report(const toml::source_region& where, std::string_view key_path, std::string_view problem) {
    // A node made by the parser always has a line; the root table of an empty document may say 0.
    const std::uint32_t line = std::max<std::uint32_t>(where.begin.line, 1);
    problems.push_back({line, origin + ":" + std::to_string(line) + ": " + std::string(key_path) + ": " +
                                  std::string(problem)});
  }
};

std::string join_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return std::string(parent) + "." + std::string(key);
}

std::string index_path(std::string_view parent, std::size_t index) {
  return std::string(parent) + "[" + std::to_string(index) + "]";
}

// "accounts[0].api_keys" -> "accounts.api_keys", the name as written in a TOML table header.
std::string without_indices(std::string_view path) {
  std::string out;
  bool in_index = false;
  for (char c : path) {
    if (c == '[') in_index = true;
    if (!in_index) out += c;
    if (c == ']') in_index = false;
  }
  return out;
}

std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// One row of a rule table. `store` gets a value already checked for type (and range, for integers) and
// returns a problem, or "" when it accepted the value.
template <class Section>
struct KeyRule {
  using Store = std::function<std::string(Section&, const toml::node&, Context&, const std::string& path)>;
  std::string_view key;
  toml::node_type type;
  std::int64_t min = 0;  // integers only
  std::int64_t max = 0;
  bool required = false;
  Store store;
};

template <class Section, class Int>
KeyRule<Section> integer_key(std::string_view key, Int Section::*member, std::int64_t min, std::int64_t max) {
  return {key,
          toml::node_type::integer,
          min,
          max,
          false,
          [member](Section& s, const toml::node& n, Context&, const std::string&) {
            s.*member = static_cast<Int>(*n.value<std::int64_t>());
            return std::string();
          }};
}

// A string check normalizes the value in place and returns a problem, or "".
using StringCheck = std::function<std::string(std::string& value, const Context&)>;

template <class Section>
KeyRule<Section> string_key(std::string_view key, std::string Section::*member, StringCheck check = nullptr,
                            bool required = false) {
  return {key,
          toml::node_type::string,
          0,
          0,
          required,
          [member, check](Section& s, const toml::node& n, Context& ctx, const std::string&) {
            std::string value = *n.value<std::string>();
            if (check) {
              if (std::string problem = check(value, ctx); !problem.empty()) return problem;
            }
            s.*member = std::move(value);
            return std::string();
          }};
}

template <class Section>
KeyRule<Section> table_key(std::string_view key, typename KeyRule<Section>::Store store) {
  return {key, toml::node_type::table, 0, 0, false, std::move(store)};
}

// Applies `rules` to `table`: unknown keys, wrong types, out-of-range integers and missing required keys
// are reported against the key's own line (the table's line for a missing key).
template <class Section>
void apply_rules(const toml::table& table, const std::string& path, std::span<const KeyRule<Section>> rules,
                 Section& section, Context& ctx) {
  for (auto&& [key, node] : table) {
    const std::string key_path = join_path(path, key.str());
    const auto rule =
        std::find_if(rules.begin(), rules.end(), [&](const auto& r) { return r.key == key.str(); });
    if (rule == rules.end()) {
      std::string known;
      for (const auto& r : rules) known += (known.empty() ? "" : ", ") + std::string(r.key);
      ctx.report(key.source(), key_path, "unknown key (expected one of: " + known + ")");
      continue;
    }
    if (node.type() != rule->type) {
      std::string problem =
          "expected " + std::string(type_name(rule->type)) + ", got " + std::string(type_name(node.type()));
      // The easy slip: [accounts] where [[accounts]] (an array of tables) was meant.
      if (rule->type == toml::node_type::array && node.is_table())
        problem += " (write [[" + without_indices(key_path) + "]])";
      ctx.report(node.source(), key_path, problem);
      continue;
    }
    if (rule->type == toml::node_type::integer) {
      const std::int64_t value = *node.template value<std::int64_t>();
      if (value < rule->min || value > rule->max) {
        ctx.report(node.source(), key_path,
                   "must be between " + std::to_string(rule->min) + " and " + std::to_string(rule->max) +
                       ", got " + std::to_string(value));
        continue;
      }
    }
    if (std::string problem = rule->store(section, node, ctx, key_path); !problem.empty()) {
      ctx.report(node.source(), key_path, problem);
    }
  }
  for (const auto& rule : rules) {
    if (rule.required && !table.contains(rule.key)) {
      ctx.report(table.source(), join_path(path, rule.key), "required key is missing");
    }
  }
}

// ---- value checks ----

bool is_lower_hex_sid(std::string_view s, std::string_view prefix) {
  if (s.size() != prefix.size() + 32 || !s.starts_with(prefix)) return false;
  return std::all_of(s.begin() + prefix.size(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

StringCheck sid_check(std::string prefix) {
  return [prefix](std::string& value, const Context&) -> std::string {
    if (is_lower_hex_sid(value, prefix)) return "";
    return "must be \"" + prefix + "\" followed by 32 lowercase hex digits, got \"" + value + "\"";
  };
}

StringCheck one_of_check(std::vector<std::string> allowed) {
  return [allowed](std::string& value, const Context&) -> std::string {
    if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return "";
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "\"" : ", \"") + a + "\"";
    return "must be one of " + list + ", got \"" + value + "\"";
  };
}

// An absolute http(s) URL with a host and no query, fragment or user info; trailing slashes are removed
// because every user of these URLs appends a path starting with '/'.
std::string url_check(std::string& value, const Context&) {
  auto parsed = boost::urls::parse_absolute_uri(value);
  if (!parsed) return "not an absolute URL: \"" + value + "\"";
  const auto scheme = parsed->scheme_id();
  if (scheme != boost::urls::scheme::http && scheme != boost::urls::scheme::https) {
    return "must be an http:// or https:// URL, got \"" + value + "\"";
  }
  if (parsed->host().empty()) return "URL has no host: \"" + value + "\"";
  if (parsed->has_userinfo() || parsed->has_query() || parsed->has_fragment()) {
    return "URL must not have user info, a query or a fragment: \"" + value + "\"";
  }
  while (value.ends_with('/')) value.pop_back();
  return "";
}

bool is_hostname(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  std::size_t start = 0;
  while (start <= host.size()) {
    const std::size_t dot = std::min(host.find('.', start), host.size());
    const std::string_view label = host.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
        return false;
    }
    start = dot + 1;
  }
  // All digits and dots would be a mistyped IPv4 address ("300.1.1.1"), not a name.
  return host.find_first_not_of("0123456789.") != std::string_view::npos;
}

// "host:port", "[v6-address]:port". The host is stored without brackets, ready for asio's make_address
// or a resolver.
std::string parse_listen(std::string_view value, std::string& host, std::uint16_t& port) {
  const std::string bad =
      "must be \"host:port\" (IPv4 address or host name) or \"[IPv6-address]:port\", got \"" +
      std::string(value) + "\"";
  std::string_view host_part;
  std::string_view port_part;
  if (value.starts_with('[')) {
    const std::size_t close = value.find(']');
    if (close == std::string_view::npos || close + 1 >= value.size() || value[close + 1] != ':') return bad;
    host_part = value.substr(1, close - 1);
    port_part = value.substr(close + 2);
    in6_addr addr6{};
    if (inet_pton(AF_INET6, std::string(host_part).c_str(), &addr6) != 1) {
      return "not an IPv6 address: \"" + std::string(host_part) + "\"";
    }
  } else {
    const std::size_t colon = value.rfind(':');
    if (colon == std::string_view::npos) return bad;
    host_part = value.substr(0, colon);
    port_part = value.substr(colon + 1);
    if (host_part.find(':') != std::string_view::npos) return bad + " (write IPv6 addresses in brackets)";
    in_addr addr4{};
    if (inet_pton(AF_INET, std::string(host_part).c_str(), &addr4) != 1 && !is_hostname(host_part)) {
      return "not an IPv4 address or host name: \"" + std::string(host_part) + "\"";
    }
  }
  unsigned parsed_port = 0;
  const auto [end, ec] = std::from_chars(port_part.data(), port_part.data() + port_part.size(), parsed_port);
  if (port_part.empty() || ec != std::errc() || end != port_part.data() + port_part.size() ||
      parsed_port > 65535) {
    return "port must be 0..65535, got \"" + std::string(port_part) + "\"";
  }
  host = std::string(host_part);
  port = static_cast<std::uint16_t>(parsed_port);
  return "";
}

fs::path resolve(const fs::path& path, const fs::path& base) {
  if (path.is_absolute()) return path.lexically_normal();
  return (base / path).lexically_normal();
}

// A relative path resolves against the config file's directory, so the file works from any working directory.
StringCheck relative_to_config_check() {
  return [](std::string& value, const Context& ctx) -> std::string {
    if (!value.empty()) value = resolve(value, ctx.config_dir).string();
    return "";
  };
}

// Empty means "no extra CAs"; otherwise the file must be readable now, not at the first TLS handshake.
std::string ca_file_check(std::string& value, const Context& ctx) {
  if (value.empty()) return "";
  value = resolve(value, ctx.config_dir).string();
  std::error_code ec;
  if (fs::is_directory(value, ec)) return "\"" + value + "\" is a directory";
  std::FILE* f = std::fopen(value.c_str(), "rb");
  if (f == nullptr) return "cannot read \"" + value + "\": " + std::strerror(errno);
  std::fclose(f);
  return "";
}

// Reads a secret file: systemd's LoadCredential= puts credentials in $CREDENTIALS_DIRECTORY, so a relative
// name is looked up there first, then beside the config file. One trailing newline (what `echo` and most
// editors add) is not part of the secret.
std::string read_secret_file(const std::string& name, const Context& ctx, std::string& secret) {
  fs::path path = resolve(name, ctx.config_dir);
  if (ctx.credentials_dir && fs::path(name).is_relative()) {
    const fs::path credential = resolve(name, *ctx.credentials_dir);
    std::error_code ec;
    if (fs::exists(credential, ec)) path = credential;
  }
  std::error_code ec;
  if (fs::is_directory(path, ec)) return "\"" + path.string() + "\" is a directory";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return "cannot read \"" + path.string() + "\": " + std::strerror(errno);
  std::string contents;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) contents.append(buffer, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return "cannot read \"" + path.string() + "\"";
  if (contents.ends_with('\n')) contents.pop_back();
  if (contents.ends_with('\r')) contents.pop_back();
  if (contents.empty()) return "\"" + path.string() + "\" is empty";
  secret = std::move(contents);
  return "";
}

template <class Section>
KeyRule<Section> secret_file_key(std::string_view key, std::string Section::*member) {
  return {key,
          toml::node_type::string,
          0,
          0,
          false,
          [member](Section& s, const toml::node& n, Context& ctx, const std::string&) {
            return read_secret_file(*n.value<std::string>(), ctx, s.*member);
          }};
}

template <class Section>
KeyRule<Section> sid_key(std::string_view key, std::string Section::*member, std::string prefix) {
  return {key,
          toml::node_type::string,
          0,
          0,
          true,
          [member, check = sid_check(std::move(prefix))](Section& s, const toml::node& n, Context& ctx,
                                                         const std::string&) {
            std::string value = *n.value<std::string>();
            if (std::string problem = check(value, ctx); !problem.empty()) return problem;
            const std::uint32_t line = n.source().begin.line;
            if (auto [it, inserted] = ctx.sid_lines.emplace(value, line); !inserted) {
              return "duplicate SID \"" + value + "\" (first defined on line " + std::to_string(it->second) +
                     ")";
            }
            s.*member = std::move(value);
            return std::string();
          }};
}

// `value_key` and `file_key` are two ways to give one secret; giving both is ambiguous.
void check_secret_source(const toml::table& table, const std::string& path, std::string_view value_key,
                         std::string_view file_key, bool required, Context& ctx) {
  const toml::node* value = table.get(value_key);
  const toml::node* file = table.get(file_key);
  if (value != nullptr && file != nullptr) {
    ctx.report(file->source(), join_path(path, file_key),
               "give either " + std::string(value_key) + " or " + std::string(file_key) + ", not both");
  } else if (required && value == nullptr && file == nullptr) {
    ctx.report(table.source(), join_path(path, value_key),
               "required key is missing (or give " + std::string(file_key) + ")");
  }
}

// ---- the rule tables ----

const std::vector<KeyRule<ServerConfig>>& server_rules() {
  static const std::vector<KeyRule<ServerConfig>> rules = {
      {"listen", toml::node_type::string, 0, 0, false,
       [](ServerConfig& s, const toml::node& n, Context&, const std::string&) {
         return parse_listen(*n.value<std::string>(), s.listen_host, s.listen_port);
       }},
      string_key("public_url", &ServerConfig::public_url, url_check),
      integer_key("max_body_bytes", &ServerConfig::max_body_bytes, 1024, 104857600),
      integer_key("max_header_bytes", &ServerConfig::max_header_bytes, 1024, 1048576),
      integer_key("header_timeout_ms", &ServerConfig::header_timeout_ms, 100, 3600000),
      integer_key("body_timeout_ms", &ServerConfig::body_timeout_ms, 100, 3600000),
      integer_key("shutdown_timeout_ms", &ServerConfig::shutdown_timeout_ms, 100, 3600000),
      // DESIGN.md's name for it, in seconds; shutdown_timeout_ms is the finer-grained spelling.
      KeyRule<ServerConfig>{"shutdown_timeout", toml::node_type::integer, 1, 3600, false,
                            [](ServerConfig& s, const toml::node& n, Context&, const std::string&) {
                              s.shutdown_timeout_ms =
                                  static_cast<std::uint32_t>(*n.value<std::int64_t>() * 1000);
                              return std::string();
                            }},
      integer_key("threads", &ServerConfig::threads, 0, 256),
      integer_key("delivery_threads", &ServerConfig::delivery_threads, 1, 256),
  };
  return rules;
}

const std::vector<KeyRule<StoreConfig>>& store_rules() {
  static const std::vector<KeyRule<StoreConfig>> rules = {
      string_key("backend", &StoreConfig::backend, one_of_check({"sqlite", "postgres"})),
      string_key("path", &StoreConfig::path, relative_to_config_check()),
      string_key("dsn", &StoreConfig::dsn),
      integer_key("workers", &StoreConfig::workers, 1, 1024),
  };
  return rules;
}

const std::vector<KeyRule<LogConfig>>& log_rules() {
  static const std::vector<KeyRule<LogConfig>> rules = {
      string_key("level", &LogConfig::level,
                 one_of_check({"trace", "debug", "info", "warn", "error", "critical", "off"})),
  };
  return rules;
}

const std::vector<KeyRule<ApiKeyConfig>>& api_key_rules() {
  static const std::vector<KeyRule<ApiKeyConfig>> rules = {
      sid_key("sid", &ApiKeyConfig::sid, "SK"),
      string_key("secret", &ApiKeyConfig::secret),
      secret_file_key("secret_file", &ApiKeyConfig::secret),
  };
  return rules;
}

// An array of tables: `[[name]]` blocks or an inline array of inline tables.
template <class Item>
std::string apply_to_each(const toml::node& node, const std::string& path,
                          const std::vector<KeyRule<Item>>& rules, std::vector<Item>& out, Context& ctx,
                          const std::function<void(const toml::table&, const std::string&)>& after) {
  const toml::array& array = *node.as_array();
  for (std::size_t i = 0; i < array.size(); ++i) {
    const std::string item_path = index_path(path, i);
    const toml::table* table = array[i].as_table();
    if (table == nullptr) {
      ctx.report(array[i].source(), item_path,
                 "expected a table, got " + std::string(type_name(array[i].type())));
      continue;
    }
    Item item;
    apply_rules<Item>(*table, item_path, rules, item, ctx);
    after(*table, item_path);
    out.push_back(std::move(item));
  }
  return "";
}

const std::vector<KeyRule<AccountConfig>>& account_rules() {
  static const std::vector<KeyRule<AccountConfig>> rules = {
      sid_key("sid", &AccountConfig::sid, "AC"),
      string_key("auth_token", &AccountConfig::auth_token),
      secret_file_key("auth_token_file", &AccountConfig::auth_token),
      {"api_keys", toml::node_type::array, 0, 0, false,
       [](AccountConfig& a, const toml::node& n, Context& ctx, const std::string& path) {
         return apply_to_each<ApiKeyConfig>(n, path, api_key_rules(), a.api_keys, ctx,
                                            [&ctx](const toml::table& t, const std::string& p) {
                                              check_secret_source(t, p, "secret", "secret_file", true, ctx);
                                            });
       }},
  };
  return rules;
}

const std::vector<KeyRule<ApnsConfig>>& apns_rules() {
  static const std::vector<KeyRule<ApnsConfig>> rules = {
      string_key("production_url", &ApnsConfig::production_url, url_check),
      string_key("sandbox_url", &ApnsConfig::sandbox_url, url_check),
      string_key("ca_file", &ApnsConfig::ca_file, ca_file_check),
  };
  return rules;
}

const std::vector<KeyRule<FcmConfig>>& fcm_rules() {
  static const std::vector<KeyRule<FcmConfig>> rules = {
      string_key("url", &FcmConfig::url, url_check),
      string_key("ca_file", &FcmConfig::ca_file, ca_file_check),
  };
  return rules;
}

const std::vector<KeyRule<SmsConfig>>& sms_rules() {
  static const std::vector<KeyRule<SmsConfig>> rules = {
      string_key("url", &SmsConfig::url, url_check),
      string_key("account_sid", &SmsConfig::account_sid,
                 [](std::string& value, const Context& ctx) {
                   return value.empty() ? std::string() : sid_check("AC")(value, ctx);
                 }),
      string_key("auth_token", &SmsConfig::auth_token),
      secret_file_key("auth_token_file", &SmsConfig::auth_token),
  };
  return rules;
}

const std::vector<KeyRule<MetricsConfig>>& metrics_rules() {
  static const std::vector<KeyRule<MetricsConfig>> rules = {
      string_key("bearer_token", &MetricsConfig::bearer_token),
      secret_file_key("bearer_token_file", &MetricsConfig::bearer_token),
  };
  return rules;
}

// A section: a sub-table checked by its own rules, plus checks that span several of its keys.
template <class Section>
KeyRule<Config> section_key(std::string_view key, Section Config::*member,
                            const std::vector<KeyRule<Section>>& (*rules)(),
                            void (*after)(const toml::table&, const std::string&, Section&,
                                          Context&) = nullptr) {
  return table_key<Config>(
      key, [member, rules, after](Config& c, const toml::node& n, Context& ctx, const std::string& path) {
        apply_rules<Section>(*n.as_table(), path, rules(), c.*member, ctx);
        if (after != nullptr) after(*n.as_table(), path, c.*member, ctx);
        return std::string();
      });
}

void check_store(const toml::table& table, const std::string& path, StoreConfig& store, Context& ctx) {
  const auto where = [&](std::string_view key) {
    const toml::node* n = table.get(key);
    return n != nullptr ? n->source() : table.source();
  };
  if (store.backend == "sqlite" && store.path.empty()) {
    ctx.report(where("path"), join_path(path, "path"), "required when backend = \"sqlite\"");
  }
  if (store.backend == "postgres" && store.dsn.empty()) {
    ctx.report(where("dsn"), join_path(path, "dsn"), "required when backend = \"postgres\"");
  }
}

void check_sms(const toml::table& table, const std::string& path, SmsConfig&, Context& ctx) {
  check_secret_source(table, path, "auth_token", "auth_token_file", false, ctx);
}

// A scraper sends the token in `Authorization: Bearer <token>`: spaces and control characters would not
// survive in a header value. The message never shows the token.
void check_metrics(const toml::table& table, const std::string& path, MetricsConfig& metrics, Context& ctx) {
  check_secret_source(table, path, "bearer_token", "bearer_token_file", false, ctx);
  const auto is_visible_ascii = [](char c) { return c > 0x20 && c < 0x7f; };
  if (!std::all_of(metrics.bearer_token.begin(), metrics.bearer_token.end(), is_visible_ascii)) {
    const char* key = table.contains("bearer_token_file") ? "bearer_token_file" : "bearer_token";
    const toml::node* n = table.get(key);
    ctx.report(n != nullptr ? n->source() : table.source(), join_path(path, key),
               "the token may contain only visible ASCII characters (no spaces or control characters)");
    metrics.bearer_token.clear();
  }
}

const std::vector<KeyRule<Config>>& root_rules() {
  static const std::vector<KeyRule<Config>> rules = {
      section_key("server", &Config::server, server_rules),
      section_key("store", &Config::store, store_rules, check_store),
      section_key("log", &Config::log, log_rules),
      {"accounts", toml::node_type::array, 0, 0, false,
       [](Config& c, const toml::node& n, Context& ctx, const std::string& path) -> std::string {
         if (n.as_array()->empty()) return "at least one [[accounts]] table is required";
         return apply_to_each<AccountConfig>(
             n, path, account_rules(), c.accounts, ctx, [&ctx](const toml::table& t, const std::string& p) {
               check_secret_source(t, p, "auth_token", "auth_token_file", true, ctx);
             });
       }},
      section_key("apns", &Config::apns, apns_rules),
      section_key("fcm", &Config::fcm, fcm_rules),
      section_key("sms", &Config::sms, sms_rules, check_sms),
      section_key("metrics", &Config::metrics, metrics_rules, check_metrics),
  };
  return rules;
}

// ---- describe_config helpers ----

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// An unset secret shows as "" so the dump says whether one is configured, never what it is.
std::string redacted(std::string_view secret) { return secret.empty() ? "\"\"" : "\"<redacted>\""; }

}  // namespace

Config parse_config(std::string_view toml_text, const std::string& origin) {
  Context ctx;
  ctx.origin = origin;
  ctx.config_dir = origin.empty() ? fs::current_path() : fs::absolute(origin).parent_path();
  if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir != nullptr && *dir != '\0') {
    ctx.credentials_dir = fs::path(dir);
  }

  toml::table root;
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    const std::uint32_t line = std::max<std::uint32_t>(e.source().begin.line, 1);
    throw ConfigError(origin + ":" + std::to_string(line) + ": " + std::string(e.description()));
  }

  Config config;
  config.source_path = origin;
  apply_rules<Config>(root, "", root_rules(), config, ctx);
  if (!root.contains("accounts")) {
    ctx.report(root.source(), "accounts", "at least one [[accounts]] table is required");
  }

  if (!ctx.problems.empty()) {
    std::stable_sort(ctx.problems.begin(), ctx.problems.end(),
                     [](const Problem& a, const Problem& b) { return a.line < b.line; });
    std::string message;
    for (const auto& p : ctx.problems) message += (message.empty() ? "" : "\n") + p.text;
    throw ConfigError(message);
  }
  return config;
}

Config load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError(path + ": cannot read");
  return parse_config(text.str(), path);
}

std::string describe_config(const Config& config) {
  std::ostringstream out;
  const auto& s = config.server;
  const bool v6 = s.listen_host.find(':') != std::string::npos;
  const std::string listen =
      (v6 ? "[" + s.listen_host + "]" : s.listen_host) + ":" + std::to_string(s.listen_port);
  out << "# effective configuration read from " << config.source_path << "\n"
      << "[server]\n"
      << "listen = " << toml_string(listen) << "\n"
      << "public_url = " << toml_string(s.public_url) << "\n"
      << "max_body_bytes = " << s.max_body_bytes << "\n"
      << "max_header_bytes = " << s.max_header_bytes << "\n"
      << "header_timeout_ms = " << s.header_timeout_ms << "\n"
      << "body_timeout_ms = " << s.body_timeout_ms << "\n"
      << "shutdown_timeout_ms = " << s.shutdown_timeout_ms << "\n"
      << "threads = " << s.threads << "\n"
      << "delivery_threads = " << s.delivery_threads << "\n\n"
      << "[store]\n"
      << "backend = " << toml_string(config.store.backend) << "\n"
      << "path = " << toml_string(config.store.path)
      << "\n"
      // A DSN may carry a password (postgresql://user:pw@host/db).
      << "dsn = " << redacted(config.store.dsn) << "\n"
      << "workers = " << config.store.workers << "\n\n"
      << "[log]\n"
      << "level = " << toml_string(config.log.level) << "\n";
  for (const auto& account : config.accounts) {
    out << "\n[[accounts]]\n"
        << "sid = " << toml_string(account.sid) << "\n"
        << "auth_token = " << redacted(account.auth_token) << "\n";
    for (const auto& key : account.api_keys) {
      out << "[[accounts.api_keys]]\n"
          << "sid = " << toml_string(key.sid) << "\n"
          << "secret = " << redacted(key.secret) << "\n";
    }
  }
  out << "\n[apns]\n"
      << "production_url = " << toml_string(config.apns.production_url) << "\n"
      << "sandbox_url = " << toml_string(config.apns.sandbox_url) << "\n"
      << "ca_file = " << toml_string(config.apns.ca_file) << "\n\n"
      << "[fcm]\n"
      << "url = " << toml_string(config.fcm.url) << "\n"
      << "ca_file = " << toml_string(config.fcm.ca_file) << "\n\n"
      << "[sms]\n"
      << "url = " << toml_string(config.sms.url) << "\n"
      << "account_sid = " << toml_string(config.sms.account_sid) << "\n"
      << "auth_token = " << redacted(config.sms.auth_token) << "\n\n"
      << "[metrics]\n"
      << "bearer_token = " << redacted(config.metrics.bearer_token) << "\n";
  return out.str();
}

}  // namespace notifyd
