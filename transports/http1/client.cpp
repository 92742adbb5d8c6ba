// Http1Pool implementation. All pool state and every connection live on one strand: send() and drain() hop
// onto it with co_spawn, so the bookkeeping needs no lock (only the published stats have one, for readers on
// other threads). A connection is leased to one request at a time; a full pool queues senders in FIFO order
// and hands a released connection (or its slot) directly to the first of them.
#include "transports/http1/client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "daemon/model/log.hpp"
#include "daemon/model/strand.hpp"

namespace notifyd::http1 {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

// Socket operations complete with (error_code, ...) instead of throwing: network failures are values.
constexpr auto kToken = asio::as_tuple(asio::use_awaitable);
using Strand = asio::any_io_executor;  // a strand (make_strand_executor)

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

struct Connection {
  Connection(std::uint64_t id_in, const Strand& strand, ssl::context* tls_context) : id(id_in) {
    if (tls_context != nullptr) {
      tls.emplace(strand, *tls_context);
    } else {
      plain.emplace(strand);
    }
  }

  beast::tcp_stream& tcp() { return tls ? tls->next_layer() : *plain; }

  // No TLS close_notify: the peer learns from the FIN, and waiting for its reply could stall a drain.
  void close() {
    error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().close();
  }

  const std::uint64_t id;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  Clock::time_point idle_since{};
  std::uint64_t requests = 0;
};

using Timer = asio::steady_timer;

// A sender queued for a connection slot. Woken by cancelling its timer; `woken` tells that apart from its
// deadline passing.
struct Waiter {
  explicit Waiter(const Strand& strand) : timer(strand) {}
  Timer timer;
  bool woken = false;
  bool shutting_down = false;
  std::unique_ptr<Connection> connection;  // handed over; null = a free slot to open a new connection
};

struct Lease {
  Http1Failure failure = Http1Failure::none;
  std::unique_ptr<Connection> connection;  // null: open a new one in the slot held
  bool reused = false;
};

struct Exchange {
  Http1Result result;
  bool keep_alive = false;
  bool before_response = false;  // failed with no response byte received (safe to replay on a new connection)
};

Http1Result failed(Http1Failure failure, std::string detail) {
  Http1Result r;
  r.failure = failure;
  r.detail = std::move(detail);
  return r;
}

}  // namespace

const char* to_string(Http1Failure failure) {
  switch (failure) {
    case Http1Failure::none:
      return "none";
    case Http1Failure::connect_failed:
      return "connect_failed";
    case Http1Failure::connection_lost:
      return "connection_lost";
    case Http1Failure::timeout:
      return "timeout";
    case Http1Failure::shutting_down:
      return "shutting_down";
  }
  return "unknown";
}

std::string Http1Result::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

struct Http1Pool::Impl {
  Impl(asio::any_io_executor executor, Http1Options options)
      : options_(std::move(options)), strand_(make_strand_executor(executor)), log_(module_logger("http1")) {
    parse_base_url();
    if (tls_) make_tls_context();
    if (options_.max_connections == 0) options_.max_connections = 1;
  }

  void parse_base_url() {
    auto parsed = boost::urls::parse_absolute_uri(options_.base_url);
    if (!parsed) throw std::invalid_argument("not an absolute URL: " + options_.base_url);
    const auto& u = *parsed;
    if (u.scheme_id() == boost::urls::scheme::https) {
      tls_ = true;
    } else if (u.scheme_id() != boost::urls::scheme::http) {
      throw std::invalid_argument("URL scheme must be http or https: " + options_.base_url);
    }
    if (u.has_userinfo() || u.has_query() || u.has_fragment()) {
      throw std::invalid_argument("URL must not have user info, a query or a fragment: " + options_.base_url);
    }
    host_ = u.host_address();  // IPv6 without brackets, as the resolver wants it
    if (host_.empty()) throw std::invalid_argument("URL has no host: " + options_.base_url);
    error_code ec;
    asio::ip::make_address(host_, ec);
    host_is_ip_ = !ec;
    port_ = u.has_port() ? u.port_number() : (tls_ ? 443 : 80);
    if (u.has_port() && port_ == 0) throw std::invalid_argument("URL has port 0: " + options_.base_url);
    host_header_ = std::string(u.encoded_host_and_port());
    if (u.has_port() && port_ == (tls_ ? 443 : 80)) host_header_ = std::string(u.encoded_host());
    base_path_ = std::string(u.encoded_path());
    while (!base_path_.empty() && base_path_.back() == '/') base_path_.pop_back();
  }

  void make_tls_context() {
    tls_context_ = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(tls_context_->native_handle(), TLS1_2_VERSION);
    tls_context_->set_verify_mode(ssl::verify_peer);
    error_code ec;
    tls_context_->set_default_verify_paths(ec);
    if (ec) log_->warn("{}system CA store unavailable: {}", options_.log_prefix, ec.message());
    if (!options_.ca_file.empty()) {
      tls_context_->load_verify_file(options_.ca_file, ec);
      if (ec) throw std::runtime_error("cannot load ca_file " + options_.ca_file + ": " + ec.message());
    }
  }

  // --- strand only below -------------------------------------------------------------------------------

  void publish_stats() {
    std::lock_guard lock(stats_mutex_);
    stats_.connections = open_;
    stats_.idle = idle_.size();
    stats_.in_flight = in_flight_;
    stats_.waiting = waiters_.size();
    stats_.connections_opened = connections_opened_;
    stats_.requests = requests_;
    stats_.retries = retries_;
  }

  // The most recently used idle connection; stale ones (the oldest, at the front) are closed first.
  std::unique_ptr<Connection> take_idle() {
    auto now = Clock::now();
    while (!idle_.empty() && now - idle_.front()->idle_since >= options_.idle_timeout) {
      log_->debug("{}[C{}] idle too long, closed", options_.log_prefix, idle_.front()->id);
      idle_.front()->close();
      idle_.pop_front();
      --open_;
    }
    if (idle_.empty()) return nullptr;
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return conn;
  }

  asio::awaitable<Lease> acquire(Clock::time_point deadline) {
    Lease lease;
    if (draining_) {
      lease.failure = Http1Failure::shutting_down;
      co_return lease;
    }
    if (auto conn = take_idle()) {
      ++in_flight_;
      lease.connection = std::move(conn);
      lease.reused = true;
      co_return lease;
    }
    if (open_ < options_.max_connections) {
      ++open_;
      ++in_flight_;
      co_return lease;
    }
    auto waiter = std::make_shared<Waiter>(strand_);
    waiter->timer.expires_at(deadline);
    waiters_.push_back(waiter);
    publish_stats();
    co_await waiter->timer.async_wait(kToken);
    if (!waiter->woken) {
      waiters_.erase(std::find(waiters_.begin(), waiters_.end(), waiter));
      publish_stats();
      lease.failure = Http1Failure::timeout;
      co_return lease;
    }
    if (waiter->shutting_down) {
      lease.failure = Http1Failure::shutting_down;
      co_return lease;
    }
    // release() moved the slot (and in_flight_ count) to us.
    lease.reused = waiter->connection != nullptr;
    lease.connection = std::move(waiter->connection);
    co_return lease;
  }

  // Gives back a leased slot: `conn` still usable, or null when it was closed (or never opened).
  void release(std::unique_ptr<Connection> conn) {
    if (conn && draining_) {
      conn->close();
      conn.reset();
    }
    if (!waiters_.empty()) {
      // The slot passes straight to the next sender; open_ and in_flight_ stay as they are.
      auto waiter = waiters_.front();
      waiters_.pop_front();
      waiter->woken = true;
      if (conn) conn->idle_since = Clock::now();
      waiter->connection = std::move(conn);
      waiter->timer.cancel();
      publish_stats();
      return;
    }
    --in_flight_;
    if (conn) {
      conn->idle_since = Clock::now();
      idle_.push_back(std::move(conn));
    } else {
      --open_;
    }
    if (in_flight_ == 0) {
      for (auto& t : drain_waiters_) t->cancel();
    }
    publish_stats();
  }

  struct Opened {
    std::unique_ptr<Connection> connection;
    Http1Failure failure = Http1Failure::none;
    std::string detail;
  };

  asio::awaitable<Opened> open_connection() {
    using namespace asio::experimental::awaitable_operators;
    Opened out;
    auto conn = std::make_unique<Connection>(next_connection_id_++, strand_, tls_context_.get());
    const auto deadline = Clock::now() + options_.connect_timeout;

    tcp::resolver resolver(strand_);
    Timer timer(strand_);
    timer.expires_at(deadline);
    auto resolved =
        co_await (resolver.async_resolve(host_, std::to_string(port_), kToken) || timer.async_wait(kToken));
    if (resolved.index() == 1) {
      out.failure = Http1Failure::timeout;
      out.detail = "resolving " + host_ + " timed out";
      co_return out;
    }
    auto [rec, endpoints] = std::get<0>(std::move(resolved));
    if (rec) {
      out.failure = Http1Failure::connect_failed;
      out.detail = "resolving " + host_ + ": " + rec.message();
      co_return out;
    }

    conn->tcp().expires_at(deadline);
    auto [cec, endpoint] = co_await conn->tcp().async_connect(endpoints, kToken);
    if (cec) {
      out.failure = cec == beast::error::timeout ? Http1Failure::timeout : Http1Failure::connect_failed;
      out.detail = "connect to " + host_ + ":" + std::to_string(port_) + ": " + cec.message();
      co_return out;
    }
    conn->tcp().socket().set_option(tcp::no_delay(true));

    if (conn->tls) {
      SSL* ssl_handle = conn->tls->native_handle();
      if (host_is_ip_) {
        // No SNI for IP literals (RFC 6066 §3); the certificate must carry the address as an IP SAN.
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle), host_.c_str());
      } else {
        SSL_set_tlsext_host_name(ssl_handle, host_.c_str());
        SSL_set1_host(ssl_handle, host_.c_str());
      }
      auto [hec] = co_await conn->tls->async_handshake(ssl::stream_base::client, kToken);
      if (hec) {
        out.failure = hec == beast::error::timeout ? Http1Failure::timeout : Http1Failure::connect_failed;
        long verify = SSL_get_verify_result(ssl_handle);
        out.detail = "TLS handshake with " + host_ + ": " +
                     (verify != X509_V_OK
                          ? std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify)
                          : hec.message());
        co_return out;
      }
    }
    ++connections_opened_;
    log_->debug("{}[C{}] connected to {} ({}{})", options_.log_prefix, conn->id,
                endpoint.address().to_string(), tls_ ? "https " : "http ", host_header_);
    out.connection = std::move(conn);
    co_return out;
  }

  template <class Stream>
  asio::awaitable<Exchange> exchange_on(Stream& stream, Connection& conn,
                                        const bhttp::request<bhttp::string_body>& req) {
    Exchange ex;
    conn.tcp().expires_after(options_.request_timeout);
    auto [wec, written] = co_await bhttp::async_write(stream, req, kToken);
    (void)written;
    if (wec) {
      bool timed_out = wec == beast::error::timeout;
      ex.result = failed(timed_out ? Http1Failure::timeout : Http1Failure::connection_lost,
                         "writing request: " + wec.message());
      ex.before_response = !timed_out;
      co_return ex;
    }
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(options_.max_response_bytes);
    auto [rec, read] = co_await bhttp::async_read(stream, conn.buffer, parser, kToken);
    (void)read;
    if (rec) {
      bool timed_out = rec == beast::error::timeout;
      ex.result = failed(timed_out ? Http1Failure::timeout : Http1Failure::connection_lost,
                         "reading response: " + rec.message());
      ex.before_response = !timed_out && !parser.got_some() && conn.buffer.size() == 0;
      co_return ex;
    }
    auto msg = parser.release();
    ex.keep_alive = msg.keep_alive();
    ex.result.status = msg.result_int();
    for (const auto& field : msg) {
      ex.result.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    ex.result.body = std::move(msg.body());
    co_return ex;
  }

  asio::awaitable<Exchange> exchange(Connection& conn, const bhttp::request<bhttp::string_body>& req) {
    ++conn.requests;
    if (conn.tls) co_return co_await exchange_on(*conn.tls, conn, req);
    co_return co_await exchange_on(*conn.plain, conn, req);
  }

  bhttp::request<bhttp::string_body> build_request(Http1Request& request) const {
    bhttp::request<bhttp::string_body> req;
    req.method_string(request.method);
    req.target(request.target);
    req.version(11);
    req.set(bhttp::field::host, host_header_);
    req.set(bhttp::field::user_agent, options_.user_agent);
    for (auto& [name, value] : request.headers) req.insert(name, value);
    req.body() = std::move(request.body);
    req.keep_alive(true);
    req.prepare_payload();
    return req;
  }

  static asio::awaitable<Http1Result> run_send(std::shared_ptr<Impl> self, Http1Request request) {
    const auto deadline = Clock::now() + self->options_.request_timeout;
    auto req = self->build_request(request);
    Lease lease = co_await self->acquire(deadline);
    if (lease.failure != Http1Failure::none) {
      co_return failed(lease.failure, lease.failure == Http1Failure::timeout ? "no connection free in time"
                                                                             : "pool is draining");
    }
    ++self->requests_;
    self->publish_stats();
    bool replayed = false;
    for (;;) {
      if (!lease.connection) {
        Opened opened = co_await self->open_connection();
        if (!opened.connection) {
          self->log_->debug("{}connect failed: {}", self->options_.log_prefix, opened.detail);
          self->release(nullptr);
          co_return failed(opened.failure, std::move(opened.detail));
        }
        lease.connection = std::move(opened.connection);
        lease.reused = false;
        self->publish_stats();
      }
      Exchange ex = co_await self->exchange(*lease.connection, req);
      if (ex.result.ok()) {
        if (!ex.keep_alive) {
          lease.connection->close();
          lease.connection.reset();
        }
        self->release(std::move(lease.connection));
        co_return std::move(ex.result);
      }
      const auto id = lease.connection->id;
      lease.connection->close();
      lease.connection.reset();
      // A kept-alive connection the server closed while it sat idle fails exactly like this; the request
      // never reached the application, so one replay on a fresh connection is safe and invisible.
      if (lease.reused && ex.before_response && !replayed && !self->draining_) {
        self->log_->debug("{}[C{}] reused connection failed before any response ({}), replaying",
                          self->options_.log_prefix, id, ex.result.detail);
        replayed = true;
        ++self->retries_;
        continue;
      }
      self->log_->debug("{}[C{}] {}: {}", self->options_.log_prefix, id, to_string(ex.result.failure),
                        ex.result.detail);
      self->release(nullptr);
      co_return std::move(ex.result);
    }
  }

  static asio::awaitable<void> run_drain(std::shared_ptr<Impl> self) {
    self->draining_ = true;
    while (!self->waiters_.empty()) {
      auto waiter = self->waiters_.front();
      self->waiters_.pop_front();
      waiter->woken = true;
      waiter->shutting_down = true;
      waiter->timer.cancel();
    }
    if (self->in_flight_ > 0) {
      auto timer = std::make_shared<Timer>(self->strand_);
      timer->expires_after(self->options_.request_timeout);
      self->drain_waiters_.push_back(timer);
      co_await timer->async_wait(kToken);
      std::erase(self->drain_waiters_, timer);
    }
    for (auto& conn : self->idle_) {
      conn->close();
      --self->open_;
    }
    self->idle_.clear();
    self->publish_stats();
    self->log_->debug("{}drained ({} still in flight)", self->options_.log_prefix, self->in_flight_);
  }

  Http1Options options_;
  Strand strand_;
  std::shared_ptr<spdlog::logger> log_;
  bool tls_ = false;
  bool host_is_ip_ = false;
  std::string host_;
  std::uint16_t port_ = 0;
  std::string host_header_;
  std::string base_path_;
  std::unique_ptr<ssl::context> tls_context_;

  // Strand-only state.
  std::deque<std::unique_ptr<Connection>> idle_;  // most recently used at the back
  std::size_t open_ = 0;                          // connection slots held: idle + leased (open or opening)
  std::size_t in_flight_ = 0;                     // leased slots
  std::deque<std::shared_ptr<Waiter>> waiters_;
  std::vector<std::shared_ptr<Timer>> drain_waiters_;
  bool draining_ = false;
  std::uint64_t next_connection_id_ = 1;
  std::uint64_t connections_opened_ = 0;
  std::uint64_t requests_ = 0;
  std::uint64_t retries_ = 0;

  mutable std::mutex stats_mutex_;
  Http1PoolStats stats_;  // a copy for stats(), guarded by stats_mutex_
};

Http1Pool::Http1Pool(asio::any_io_executor executor, Http1Options options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {}

Http1Pool::~Http1Pool() = default;

asio::awaitable<Http1Result> Http1Pool::send(Http1Request request) {
  co_return co_await asio::co_spawn(impl_->strand_, Impl::run_send(impl_, std::move(request)),
                                    asio::use_awaitable);
}

asio::awaitable<void> Http1Pool::drain() {
  co_await asio::co_spawn(impl_->strand_, Impl::run_drain(impl_), asio::use_awaitable);
}

Http1PoolStats Http1Pool::stats() const {
  std::lock_guard lock(impl_->stats_mutex_);
  return impl_->stats_;
}

const std::string& Http1Pool::base_path() const { return impl_->base_path_; }
const std::string& Http1Pool::host() const { return impl_->host_; }
std::uint16_t Http1Pool::port() const { return impl_->port_; }
bool Http1Pool::tls() const { return impl_->tls_; }

}  // namespace notifyd::http1
