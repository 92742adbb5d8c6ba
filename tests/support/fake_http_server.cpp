#include "tests/support/fake_http_server.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "tests/support/tls_test_certs.hpp"

namespace notifyd::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    auto pos = kAlphabet.find(c);
    if (pos == std::string_view::npos) return std::nullopt;
    buffer = (buffer << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

}  // namespace

// ---- FakeHttpRequest / FakeHttpResponse ----

std::string FakeHttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

bool FakeHttpRequest::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return iequals(h.first, name); });
}

const std::string& FakeHttpRequest::form_value(std::string_view key) const {
  static const std::string kEmpty;
  for (auto& [k, v] : form_fields) {
    if (k == key) return v;
  }
  return kEmpty;
}

std::vector<std::string> FakeHttpRequest::form_values(std::string_view key) const {
  std::vector<std::string> out;
  for (auto& [k, v] : form_fields) {
    if (k == key) out.push_back(v);
  }
  return out;
}

std::optional<std::pair<std::string, std::string>> FakeHttpRequest::basic_auth() const {
  std::string value = header("authorization");
  if (value.size() < 6 || !iequals(std::string_view(value).substr(0, 6), "basic ")) return std::nullopt;
  auto decoded = base64_decode(std::string_view(value).substr(6));
  if (!decoded) return std::nullopt;
  auto colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::pair{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

FakeHttpResponse FakeHttpResponse::json(unsigned status, std::string body, FakeHttpFields headers) {
  FakeHttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  r.content_type = "application/json";
  return r;
}

FakeHttpFields FakeHttpServer::parse_form(std::string_view body) {
  FakeHttpFields out;
  while (!body.empty()) {
    auto amp = body.find('&');
    std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    if (eq == std::string_view::npos) {
      out.emplace_back(percent_decode(pair), "");
    } else {
      out.emplace_back(percent_decode(pair.substr(0, eq)), percent_decode(pair.substr(eq + 1)));
    }
  }
  return out;
}

// ---- server state ----

namespace fake_http_detail {
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void close() = 0;
};
}  // namespace fake_http_detail

struct FakeHttpServer::State {
  explicit State(FakeHttpOptions o) : options(std::move(o)) {}

  void notify() {
    {
      std::lock_guard lock(mu);
      ++event_seq;
    }
    cv.notify_all();
  }

  const FakeHttpOptions options;

  std::mutex mu;  // guards the fields below up to event_seq
  std::condition_variable cv;
  std::deque<FakeHttpRequest> log;
  std::uint64_t request_count = 0;
  std::shared_ptr<const Handler> handler;
  std::chrono::milliseconds delay{0};
  std::uint64_t event_seq = 0;

  std::atomic<std::uint64_t> accepted{0}, open{0};
  std::uint64_t next_connection_id = 1;  // server thread only
  // Server thread only (one thread runs the io_context).
  std::unordered_map<std::uint64_t, std::weak_ptr<fake_http_detail::SessionBase>> sessions;

  std::optional<ssl::context> tls;
  std::uint16_t port = 0;
  std::thread thread;
  asio::io_context ioc;  // declared late: destroyed before the state its pending handlers point to
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;
};

namespace fake_http_detail {

using State = FakeHttpServer::State;

template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(State& state, std::uint64_t id, Args&&... args)
      : state_(state), stream_(std::forward<Args>(args)...), timer_(state.ioc), id_(id) {}

  ~Session() override { state_.sessions.erase(id_); }

  void start() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      do_read();
    } else {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(10));
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](error_code ec) {
        if (ec) return self->close();
        self->do_read();
      });
    }
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    error_code ec;
    beast::get_lowest_layer(stream_).socket().close(ec);
    timer_.cancel();
    state_.open.fetch_sub(1);
    state_.notify();
  }

 private:
  void do_read() {
    if (closed_) return;
    parser_.emplace();
    parser_->body_limit(state_.options.body_limit);
    beast::get_lowest_layer(stream_).expires_after(state_.options.idle_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(error_code ec) {
    if (closed_) return;
    if (ec) return close();
    beast::get_lowest_layer(stream_).expires_never();
    bhttp::request<bhttp::string_body> msg = parser_->release();
    keep_alive_ = msg.keep_alive();

    FakeHttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    for (const auto& field : msg) req.headers.emplace_back(field.name_string(), field.value());
    req.body = std::move(msg.body());
    const std::string content_type = req.header("content-type");
    if (content_type.empty() || content_type.starts_with("application/x-www-form-urlencoded")) {
      req.form_fields = FakeHttpServer::parse_form(req.body);
    }
    req.connection_id = id_;
    req.request_on_connection = ++requests_;
    req.received_at = Clock::now();

    std::shared_ptr<const FakeHttpServer::Handler> handler;
    std::chrono::milliseconds delay;
    {
      std::lock_guard lock(state_.mu);
      ++state_.request_count;
      if (state_.options.log_capacity > 0) {
        if (state_.log.size() >= state_.options.log_capacity) state_.log.pop_front();
        state_.log.push_back(req);
      }
      handler = state_.handler;
      delay = state_.delay;
      ++state_.event_seq;
    }
    state_.cv.notify_all();

    FakeHttpResponse resp;
    if (handler) {
      try {
        resp = (*handler)(req);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "FakeHttpServer handler threw on " << req.method << " " << req.target << ": "
                      << e.what();
        resp = FakeHttpResponse{};
        resp.status = 500;
      }
    }
    delay = resp.delay.value_or(delay);
    response_.emplace();
    response_->version(11);
    response_->result(resp.status);
    for (auto& [k, v] : resp.headers) response_->insert(k, v);
    if (!resp.content_type.empty()) response_->set(bhttp::field::content_type, resp.content_type);
    response_->body() = std::move(resp.body);
    if (resp.close) keep_alive_ = false;
    response_->keep_alive(keep_alive_);
    response_->prepare_payload();
    if (delay.count() > 0) {
      timer_.expires_after(delay);
      timer_.async_wait([self = this->shared_from_this()](error_code ec) {
        if (!ec && !self->closed_) self->do_write();
      });
    } else {
      do_write();
    }
  }

  void do_write() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
    bhttp::async_write(stream_, *response_, [self = this->shared_from_this()](error_code ec, std::size_t) {
      if (ec || !self->keep_alive_) return self->close();
      self->do_read();
    });
  }

  State& state_;
  Stream stream_;
  asio::steady_timer timer_;
  const std::uint64_t id_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::string_body>> response_;
  std::uint64_t requests_ = 0;
  bool keep_alive_ = true;
  bool closed_ = false;
};

void do_accept(State& state) {
  state.acceptor->async_accept(state.ioc, [&state](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !state.acceptor->is_open()) return;
    if (!ec) {
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      state.accepted.fetch_add(1);
      state.open.fetch_add(1);
      std::uint64_t id = state.next_connection_id++;
      std::shared_ptr<SessionBase> base;
      if (state.tls) {
        auto s = std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(state, id, std::move(socket),
                                                                                 *state.tls);
        s->start();
        base = s;
      } else {
        auto s = std::make_shared<Session<beast::tcp_stream>>(state, id, std::move(socket));
        s->start();
        base = s;
      }
      state.sessions.emplace(id, base);
      state.notify();
    }
    do_accept(state);
  });
}

}  // namespace fake_http_detail

FakeHttpServer::FakeHttpServer(FakeHttpOptions options)
    : state_(std::make_unique<State>(std::move(options))) {
  State& s = *state_;
  if (s.options.tls) {
    const TestPki& pki = shared_test_pki();
    const std::string& cert =
        s.options.certificate_pem.empty() ? pki.server.certificate_pem : s.options.certificate_pem;
    const std::string& key =
        s.options.private_key_pem.empty() ? pki.server.private_key_pem : s.options.private_key_pem;
    s.tls.emplace(ssl::context::tls_server);
    s.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    s.tls->use_certificate_chain(asio::buffer(cert));
    s.tls->use_private_key(asio::buffer(key), ssl::context::pem);
  }
  s.acceptor.emplace(s.ioc);
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  s.acceptor->open(endpoint.protocol());
  s.acceptor->set_option(tcp::acceptor::reuse_address(true));
  s.acceptor->bind(endpoint);
  s.acceptor->listen(asio::socket_base::max_listen_connections);
  s.port = s.acceptor->local_endpoint().port();
  s.work.emplace(s.ioc.get_executor());
  fake_http_detail::do_accept(s);
  s.thread = std::thread([&s] { s.ioc.run(); });
}

FakeHttpServer::~FakeHttpServer() {
  State& s = *state_;
  asio::post(s.ioc, [&s] {
    error_code ec;
    s.acceptor->close(ec);
  });
  close_all_connections();
  s.work.reset();
  auto deadline = Clock::now() + std::chrono::seconds(2);
  while (s.open.load() > 0 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  s.ioc.stop();
  s.thread.join();
}

std::uint16_t FakeHttpServer::port() const { return state_->port; }

std::string FakeHttpServer::url() const {
  return std::string(state_->options.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(state_->port);
}

void FakeHttpServer::set_handler(Handler handler) {
  auto h = handler ? std::make_shared<const Handler>(std::move(handler)) : nullptr;
  std::lock_guard lock(state_->mu);
  state_->handler = std::move(h);
}

void FakeHttpServer::set_response_delay(std::chrono::milliseconds delay) {
  std::lock_guard lock(state_->mu);
  state_->delay = delay;
}

void FakeHttpServer::close_all_connections() {
  State& s = *state_;
  asio::post(s.ioc, [&s] {
    std::vector<std::shared_ptr<fake_http_detail::SessionBase>> live;
    for (auto& [id, weak] : s.sessions) {
      if (auto p = weak.lock()) live.push_back(std::move(p));
    }
    for (auto& p : live) p->close();
  });
}

std::uint64_t FakeHttpServer::request_count() const {
  std::lock_guard lock(state_->mu);
  return state_->request_count;
}

std::vector<FakeHttpRequest> FakeHttpServer::requests() const {
  std::lock_guard lock(state_->mu);
  return {state_->log.begin(), state_->log.end()};
}

std::vector<FakeHttpRequest> FakeHttpServer::last_requests(std::size_t n) const {
  std::lock_guard lock(state_->mu);
  n = std::min(n, state_->log.size());
  return {state_->log.end() - static_cast<std::ptrdiff_t>(n), state_->log.end()};
}

std::optional<FakeHttpRequest> FakeHttpServer::last_request() const {
  std::lock_guard lock(state_->mu);
  if (state_->log.empty()) return std::nullopt;
  return state_->log.back();
}

void FakeHttpServer::clear_log() {
  std::lock_guard lock(state_->mu);
  state_->log.clear();
  state_->request_count = 0;
}

std::uint64_t FakeHttpServer::connections_accepted() const { return state_->accepted.load(); }
std::uint64_t FakeHttpServer::connections_open() const { return state_->open.load(); }

::testing::AssertionResult FakeHttpServer::wait_until(const std::function<bool()>& predicate,
                                                      std::chrono::milliseconds timeout,
                                                      std::string_view what) {
  State& s = *state_;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::uint64_t seq;
    {
      std::lock_guard lock(s.mu);
      seq = s.event_seq;
    }
    if (predicate()) return ::testing::AssertionSuccess();
    auto now = Clock::now();
    if (now >= deadline) {
      return ::testing::AssertionFailure()
             << "FakeHttpServer: timed out after " << timeout.count() << " ms waiting for " << what;
    }
    std::unique_lock lock(s.mu);
    s.cv.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(50)),
                    [&] { return s.event_seq != seq; });
  }
}

::testing::AssertionResult FakeHttpServer::wait_for_requests(std::uint64_t n,
                                                             std::chrono::milliseconds timeout) {
  auto r = wait_until([&] { return request_count() >= n; }, timeout, std::to_string(n) + " requests");
  if (!r) r << " (got " << request_count() << ")";
  return r;
}

// ---- ready-made handlers ----

FakeHttpServer::Handler FakeHttpServer::twilio_messages(std::string account_sid, std::string auth_token) {
  auto counter = std::make_shared<std::atomic<std::uint64_t>>(0);
  return [account_sid = std::move(account_sid), auth_token = std::move(auth_token),
          counter](const FakeHttpRequest& req) {
    auto error = [](unsigned status, int code, std::string message) {
      boost::json::object o{{"code", code}, {"message", std::move(message)}, {"status", status}};
      return FakeHttpResponse::json(status, boost::json::serialize(o));
    };
    const std::string expected_path = "/2010-04-01/Accounts/" + account_sid + "/Messages.json";
    if (req.method != "POST" || req.path != expected_path)
      return error(404, 20404, "The requested resource was not found");
    auto auth = req.basic_auth();
    if (!auth || auth->first != account_sid || auth->second != auth_token) {
      return error(401, 20003, "Authenticate");
    }
    std::string to = req.form_value("To");
    if (to.empty()) return error(400, 21604, "A 'To' phone number is required.");
    char sid[35];
    std::snprintf(sid, sizeof sid, "SM%032llx", static_cast<unsigned long long>(++*counter));
    boost::json::object o{{"sid", sid},
                          {"account_sid", account_sid},
                          {"to", to},
                          {"from", req.form_value("From")},
                          {"messaging_service_sid", req.form_value("MessagingServiceSid")},
                          {"body", req.form_value("Body")},
                          {"status", "queued"},
                          {"num_media", std::to_string(req.form_values("MediaUrl").size())}};
    return FakeHttpResponse::json(201, boost::json::serialize(o));
  };
}

FakeHttpServer::Handler FakeHttpServer::oauth_token(std::string access_token, int expires_in) {
  return [access_token = std::move(access_token), expires_in](const FakeHttpRequest& req) {
    if (req.method != "POST" ||
        req.form_value("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" ||
        req.form_value("assertion").empty()) {
      return FakeHttpResponse::json(400, R"({"error":"invalid_grant","error_description":"Invalid grant"})");
    }
    boost::json::object o{
        {"access_token", access_token}, {"expires_in", expires_in}, {"token_type", "Bearer"}};
    return FakeHttpResponse::json(200, boost::json::serialize(o));
  };
}

}  // namespace notifyd::test
