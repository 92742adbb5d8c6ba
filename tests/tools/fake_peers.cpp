// notifyd_fake_peers: the in-process fakes of tests/support as one process for the end-to-end suites.
//
// Starts, all on 127.0.0.1 with ephemeral ports:
//   apns          FakeH2Server (HTTP/2, TLS, ALPN h2, client certificate recorded: subject UID = topic)
//   apns_sandbox  FakeH2Server, same
//   fcm           FakeH2Server
//   oauth         FakeHttpServer (plain http), FakeHttpServer::oauth_token()
//   sms           FakeHttpServer (plain http), FakeHttpServer::twilio_messages(sms_account_sid, sms_auth_token)
//   callbacks     FakeHttpServer (plain http), records form posts (and X-Twilio-Signature), answers 200
//   control       FakeHttpServer (plain http), the control API below
// The shared test CA is written to a file (for the daemon's [apns] ca_file and [fcm] ca_file), then ONE JSON
// line goes to stdout:
//   {"apns_url", "apns_sandbox_url", "fcm_url", "oauth_url", "token_uri", "sms_url", "sms_account_sid",
//    "sms_auth_token", "callbacks_url", "control_url", "ca_file", "<peer>_port"..., "clock_origin"}
// Control API (plain HTTP):
//   GET  /requests?peer=apns|apns_sandbox|fcm|sms|oauth|callbacks  → JSON list of the received requests:
//        {method, path, query, headers: [[name, value]...], body, client_uid, client_subject, form: [[k, v]...],
//         t (seconds since this process started, monotonic), connection_id, stream_id}
//   GET  /count?peer=...        → {"count": n} (exact, even beyond the retained log)
//   POST /script?peer=apns|apns_sandbox|fcm|sms|oauth|callbacks  body: JSON list of
//        {"status": 503, "headers": {"retry-after": "2"} or [[k, v]...], "body": "..." or a JSON value,
//         "delay_ms": n, "count": n}
//        returned, in order, for the next requests of that peer (count repeats an entry); then the defaults
//        again (APNs 200 empty with apns-id echoed; FCM 200 {"name":"projects/p/messages/1"}; SMS the
//        twilio_messages handler; OAuth the oauth_token handler; callbacks 200).
//   POST /delay?peer=...&ms=n   every default response of that peer is sent n ms after the request (timers).
//   POST /max_streams?peer=apns|apns_sandbox|fcm&n=k   SETTINGS_MAX_CONCURRENT_STREAMS (new and open connections).
//   A script entry may carry "match": a substring of the request's path or body; it then applies only to
//   such a request (other requests skip it), so concurrent deliveries cannot steal it.
//   POST /reset                 forgets every log, script and delay.
// Exits (status 0) on SIGTERM, SIGINT or EOF on stdin.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/fake_h2_server.hpp"
#include "tests/support/fake_http_server.hpp"
#include "tests/support/tls_test_certs.hpp"

namespace {

using namespace notifyd::test;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

const Clock::time_point g_start = Clock::now();

double seconds_since_start(Clock::time_point t) {
  return std::chrono::duration<double>(t - g_start).count();
}

// One scripted answer, protocol-neutral.
struct Scripted {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::optional<std::chrono::milliseconds> delay;
  std::string match;  // applies only to a request whose path or body contains this ("" = any request)
};

class Script {
 public:
  void push(std::vector<Scripted> entries) {
    std::lock_guard lock(mutex_);
    for (auto& e : entries) queue_.push_back(std::move(e));
  }
  // The first entry whose match is empty or found in `path` or `body`.
  std::optional<Scripted> pop(const std::string& path, const std::string& body) {
    std::lock_guard lock(mutex_);
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (it->match.empty() || path.find(it->match) != std::string::npos ||
          body.find(it->match) != std::string::npos) {
        Scripted s = std::move(*it);
        queue_.erase(it);
        return s;
      }
    }
    return std::nullopt;
  }
  void clear() {
    std::lock_guard lock(mutex_);
    queue_.clear();
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::deque<Scripted> queue_;
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<Scripted> parse_script(const std::string& text) {
  json::value v = json::parse(text);
  if (!v.is_array()) throw std::runtime_error("script must be a JSON list");
  std::vector<Scripted> out;
  for (const auto& item : v.as_array()) {
    if (!item.is_object()) throw std::runtime_error("script entries must be objects");
    const auto& o = item.as_object();
    Scripted s;
    if (auto* st = o.if_contains("status")) s.status = static_cast<int>(st->to_number<std::int64_t>());
    if (auto* h = o.if_contains("headers")) {
      if (h->is_object()) {
        for (const auto& kv : h->as_object()) {
          s.headers.emplace_back(lower(std::string(kv.key())),
                                 kv.value().is_string() ? std::string(kv.value().as_string())
                                                        : json::serialize(kv.value()));
        }
      } else if (h->is_array()) {
        for (const auto& pair : h->as_array()) {
          const auto& a = pair.as_array();
          s.headers.emplace_back(lower(std::string(a.at(0).as_string())), std::string(a.at(1).as_string()));
        }
      }
    }
    if (auto* b = o.if_contains("body")) {
      s.body = b->is_string() ? std::string(b->as_string()) : json::serialize(*b);
    }
    if (auto* m = o.if_contains("match")) s.match = std::string(m->as_string());
    if (auto* d = o.if_contains("delay_ms")) s.delay = std::chrono::milliseconds(d->to_number<std::int64_t>());
    std::int64_t count = 1;
    if (auto* c = o.if_contains("count")) count = c->to_number<std::int64_t>();
    for (std::int64_t i = 0; i < count; ++i) out.push_back(s);
  }
  return out;
}

FakeResponse to_h2(const Scripted& s) {
  FakeResponse r;
  r.status = s.status;
  r.headers = s.headers;
  r.body = s.body;
  r.delay = s.delay;
  bool has_ct = false;
  for (const auto& [k, v] : r.headers) has_ct = has_ct || k == "content-type";
  if (!has_ct && !r.body.empty() && (r.body.front() == '{' || r.body.front() == '['))
    r.headers.emplace_back("content-type", "application/json");
  return r;
}

FakeHttpResponse to_http(const Scripted& s) {
  FakeHttpResponse r;
  r.status = static_cast<unsigned>(s.status);
  for (const auto& [k, v] : s.headers) {
    if (k == "content-type")
      r.content_type = v;
    else
      r.headers.emplace_back(k, v);
  }
  r.body = s.body;
  r.delay = s.delay;
  if (r.content_type.empty() && !r.body.empty() && (r.body.front() == '{' || r.body.front() == '['))
    r.content_type = "application/json";
  return r;
}

json::array pairs_json(const std::vector<std::pair<std::string, std::string>>& pairs) {
  json::array a;
  for (const auto& [k, v] : pairs) a.push_back(json::array{json::string(k), json::string(v)});
  return a;
}

json::object request_json(const FakeRequest& r) {
  json::object o;
  o["method"] = r.method;
  o["path"] = r.path;
  o["authority"] = r.authority;
  o["headers"] = pairs_json(r.headers);
  o["body"] = r.body;
  o["client_uid"] = r.client_uid;
  o["client_subject"] = r.client_subject;
  o["client_cert_presented"] = r.client_cert_presented;
  o["form"] = json::array();
  o["connection_id"] = r.connection_id;
  o["stream_id"] = r.stream_id;
  o["t"] = seconds_since_start(r.received_at);
  return o;
}

json::object request_json(const FakeHttpRequest& r) {
  json::object o;
  o["method"] = r.method;
  o["path"] = r.path;
  o["query"] = r.query;
  o["target"] = r.target;
  o["headers"] = pairs_json(r.headers);
  o["body"] = r.body;
  o["client_uid"] = "";
  o["form"] = pairs_json(r.form_fields);
  o["connection_id"] = r.connection_id;
  o["t"] = seconds_since_start(r.received_at);
  if (auto auth = r.basic_auth()) {
    o["basic_auth"] = json::array{json::string(auth->first), json::string(auth->second)};
  } else {
    o["basic_auth"] = nullptr;
  }
  return o;
}

std::string random_hex(std::size_t n) {
  std::random_device rd;
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s.push_back(digits[rd() % 16]);
  return s;
}

std::string query_value(const std::string& query, const std::string& key) {
  for (const auto& [k, v] : FakeHttpServer::parse_form(query)) {
    if (k == key) return v;
  }
  return "";
}

struct H2Peer {
  std::unique_ptr<FakeH2Server> server;
  Script script;
};

struct HttpPeer {
  std::unique_ptr<FakeHttpServer> server;
  Script script;
};

std::atomic<bool> g_stdin_eof{false};

}  // namespace

int main() {
  // Block the termination signals in every thread (the servers' threads inherit the mask); main waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  try {
    const std::string sms_account_sid = "AC" + random_hex(32);
    const std::string sms_auth_token = random_hex(32);

    std::map<std::string, std::unique_ptr<H2Peer>> h2;
    std::map<std::string, std::unique_ptr<HttpPeer>> http;

    for (const char* name : {"apns", "apns_sandbox", "fcm"}) {
      auto peer = std::make_unique<H2Peer>();
      FakeH2Options options;
      options.client_cert = ClientCertPolicy::kAcceptAny;
      options.log_capacity = 200000;
      peer->server = std::make_unique<FakeH2Server>(options);
      const bool is_fcm = std::string(name) == "fcm";
      H2Peer* p = peer.get();
      peer->server->set_handler([p, is_fcm](const FakeRequest& req) {
        if (auto s = p->script.pop(req.path, req.body)) {
          FakeResponse r = to_h2(*s);
          if (!is_fcm && !req.header("apns-id").empty()) {
            bool has = false;
            for (const auto& [k, v] : r.headers) has = has || k == "apns-id";
            if (!has) r.headers.emplace_back("apns-id", req.header("apns-id"));
          }
          return r;
        }
        if (is_fcm) return FakeResponse::json(200, R"({"name":"projects/p/messages/1"})");
        FakeResponse r;
        r.status = 200;
        if (!req.header("apns-id").empty()) r.headers.emplace_back("apns-id", req.header("apns-id"));
        return r;
      });
      h2.emplace(name, std::move(peer));
    }

    for (const char* name : {"oauth", "sms", "callbacks"}) {
      auto peer = std::make_unique<HttpPeer>();
      FakeHttpOptions options;
      options.log_capacity = 200000;
      peer->server = std::make_unique<FakeHttpServer>(options);
      FakeHttpServer::Handler fallback;
      const std::string n = name;
      if (n == "oauth") {
        fallback = FakeHttpServer::oauth_token();
      } else if (n == "sms") {
        fallback = FakeHttpServer::twilio_messages(sms_account_sid, sms_auth_token);
      } else {
        fallback = [](const FakeHttpRequest&) {
          FakeHttpResponse r;
          r.status = 200;
          return r;
        };
      }
      HttpPeer* p = peer.get();
      peer->server->set_handler([p, fallback](const FakeHttpRequest& req) {
        if (auto s = p->script.pop(req.target, req.body)) return to_http(*s);
        return fallback(req);
      });
      http.emplace(name, std::move(peer));
    }

    TempFile ca_file = write_ca_file(shared_test_pki());

    FakeHttpServer control;
    control.set_handler([&](const FakeHttpRequest& req) -> FakeHttpResponse {
      try {
        const std::string peer = query_value(req.query, "peer");
        auto bad = [](unsigned status, const std::string& message) {
          return FakeHttpResponse::json(status, json::serialize(json::object{{"error", message}}));
        };
        if (req.path == "/reset" && req.method == "POST") {
          for (auto& [k, p] : h2) {
            p->script.clear();
            p->server->set_response_delay(std::chrono::milliseconds(0));
            p->server->set_max_concurrent_streams(1000);
            p->server->clear_log();
          }
          for (auto& [k, p] : http) {
            p->script.clear();
            p->server->set_response_delay(std::chrono::milliseconds(0));
            p->server->clear_log();
          }
          return FakeHttpResponse::json(200, "{}");
        }
        auto h2_it = h2.find(peer);
        auto http_it = http.find(peer);
        if (h2_it == h2.end() && http_it == http.end()) return bad(404, "unknown peer '" + peer + "'");
        if (req.path == "/requests" && req.method == "GET") {
          json::array out;
          if (h2_it != h2.end()) {
            for (const auto& r : h2_it->second->server->requests()) out.push_back(request_json(r));
          } else {
            for (const auto& r : http_it->second->server->requests()) out.push_back(request_json(r));
          }
          return FakeHttpResponse::json(200, json::serialize(out));
        }
        if (req.path == "/count" && req.method == "GET") {
          std::uint64_t n = h2_it != h2.end() ? h2_it->second->server->request_count()
                                              : http_it->second->server->request_count();
          return FakeHttpResponse::json(200, json::serialize(json::object{{"count", n}}));
        }
        if (req.path == "/script" && req.method == "POST") {
          auto entries = parse_script(req.body);
          Script& script = h2_it != h2.end() ? h2_it->second->script : http_it->second->script;
          script.push(std::move(entries));
          return FakeHttpResponse::json(200, json::serialize(json::object{{"pending", script.size()}}));
        }
        if (req.path == "/delay" && req.method == "POST") {
          std::chrono::milliseconds ms(std::stoll(query_value(req.query, "ms")));
          if (h2_it != h2.end())
            h2_it->second->server->set_response_delay(ms);
          else
            http_it->second->server->set_response_delay(ms);
          return FakeHttpResponse::json(200, "{}");
        }
        if (req.path == "/max_streams" && req.method == "POST" && h2_it != h2.end()) {
          h2_it->second->server->set_max_concurrent_streams(
              static_cast<std::uint32_t>(std::stoul(query_value(req.query, "n"))));
          return FakeHttpResponse::json(200, "{}");
        }
        return bad(404, "no such control endpoint " + req.method + " " + req.path);
      } catch (const std::exception& e) {
        return FakeHttpResponse::json(400, json::serialize(json::object{{"error", e.what()}}));
      }
    });

    json::object info;
    info["apns_url"] = h2["apns"]->server->url();
    info["apns_sandbox_url"] = h2["apns_sandbox"]->server->url();
    info["fcm_url"] = h2["fcm"]->server->url();
    info["oauth_url"] = http["oauth"]->server->url();
    info["token_uri"] = http["oauth"]->server->url() + "/token";
    info["sms_url"] = http["sms"]->server->url();
    info["sms_account_sid"] = sms_account_sid;
    info["sms_auth_token"] = sms_auth_token;
    info["callbacks_url"] = http["callbacks"]->server->url();
    info["control_url"] = control.url();
    info["ca_file"] = ca_file.string();
    for (const auto& [k, p] : h2) info[k + "_port"] = p->server->port();
    for (const auto& [k, p] : http) info[k + "_port"] = p->server->port();
    info["control_port"] = control.port();
    info["pid"] = static_cast<std::int64_t>(::getpid());
    // steady_clock is CLOCK_MONOTONIC: python's time.monotonic() - clock_origin is on the scale of "t".
    info["clock_origin"] = std::chrono::duration<double>(g_start.time_since_epoch()).count();
    std::cout << json::serialize(info) << std::endl;

    // stdin EOF → exit. A detached reader: it may stay blocked in read() until the process ends.
    std::thread([] {
      char buf[256];
      for (;;) {
        ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EINTR)) break;
      }
      g_stdin_eof = true;
    }).detach();

    for (;;) {
      timespec timeout{0, 200 * 1000 * 1000};
      int sig = sigtimedwait(&signals, nullptr, &timeout);
      if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) break;
      if (g_stdin_eof) break;
    }
    std::cerr << "notifyd_fake_peers: exiting" << std::endl;
    // Servers are destroyed here (connections closed, threads joined); ca_file is removed.
  } catch (const std::exception& e) {
    std::cerr << "notifyd_fake_peers: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
