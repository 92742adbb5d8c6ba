// Connection: thin Asio I/O around the sans-I/O Session. Three coroutines per connection, all on the
// pool's strand: the reader (read → Session::receive), the one writer (Session::take_output → write,
// parked on a timer that signal_write() cancels) and the keepalive (idle PING, PING timeout).
#include "transports/http2/connection.hpp"

#include <openssl/ssl.h>
#include <spdlog/logger.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <exception>
#include <tuple>

#include "daemon/model/log.hpp"

namespace notifyd::http2 {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto kToken = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kWriteChunk = 64 * 1024;

std::string verify_failure(SSL* ssl) {
  long v = SSL_get_verify_result(ssl);
  if (v == X509_V_OK) return {};
  return std::string(" (certificate: ") + X509_verify_cert_error_string(v) + ")";
}

}  // namespace

Connection::Connection(Strand strand, ConnectionOptions options, std::uint64_t id,
                       std::function<void()> on_event)
    : strand_(strand),
      options_(std::move(options)),
      id_(id),
      prefix_(options_.log_prefix + "[C" + std::to_string(id) + "]"),
      on_event_(std::move(on_event)),
      log_(module_logger("http2")),
      resolver_(strand),
      stream_(tcp::socket(strand), *options_.tls),
      connect_timer_(strand),
      ready_timer_(strand),
      write_timer_(strand),
      keepalive_timer_(strand),
      session_(SessionOptions{.authority = options_.authority,
                              .log_prefix = prefix_,
                              .kept_response_headers = options_.kept_response_headers}),
      last_read_(Clock::now()),
      last_busy_(Clock::now()) {}

Connection::~Connection() = default;

void Connection::spawn(asio::awaitable<void> loop, const char* what) {
  asio::co_spawn(strand_, std::move(loop), [log = log_, prefix = prefix_, what](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log->error("{} {} coroutine failed: {}", prefix, what, ex.what());
    } catch (...) {
      log->error("{} {} coroutine failed", prefix, what);
    }
  });
}

asio::awaitable<std::string> Connection::connect() {
  auto self = shared_from_this();
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto c = weak.lock();
    if (ec || !c || c->ready_) return;
    c->connect_timed_out_ = true;
    c->resolver_.cancel();
    boost::system::error_code ignored;
    c->stream_.lowest_layer().close(ignored);
    c->ready_timer_.cancel();
  });
  auto fail = [this](std::string why) {
    connect_timer_.cancel();
    if (connect_timed_out_) why = "connect timeout (" + why + ")";
    log_->debug("{} connect failed: {}", prefix_, why);
    close(why);
    return why;
  };

  // An IP literal is connected to as it is: the resolver would start its thread and ask getaddrinfo (which
  // enumerates the interfaces for AI_ADDRCONFIG), 1-24 ms before a fan-out's first request on this machine.
  boost::system::error_code addr_ec;
  const asio::ip::address literal = asio::ip::make_address(options_.host, addr_ec);
  boost::system::error_code cec;
  if (!addr_ec) {
    std::tie(cec) =
        co_await stream_.lowest_layer().async_connect(tcp::endpoint(literal, options_.port), kToken);
  } else {
    auto [rec, endpoints] =
        co_await resolver_.async_resolve(options_.host, std::to_string(options_.port), kToken);
    if (rec) co_return fail("resolve " + options_.host + ": " + rec.message());
    std::tie(cec, std::ignore) = co_await asio::async_connect(stream_.lowest_layer(), endpoints, kToken);
  }
  if (cec)
    co_return fail("connect " + options_.host + ":" + std::to_string(options_.port) + ": " + cec.message());
  boost::system::error_code ignored;
  stream_.lowest_layer().set_option(tcp::no_delay(true), ignored);

  if (addr_ec) {  // SNI only for names (RFC 6066: not for IP literals)
    SSL_set_tlsext_host_name(stream_.native_handle(), options_.host.c_str());
  }
  stream_.set_verify_mode(asio::ssl::verify_peer);
  stream_.set_verify_callback(asio::ssl::host_name_verification(options_.host));
  auto [hec] = co_await stream_.async_handshake(asio::ssl::stream_base::client, kToken);
  if (hec) co_return fail("TLS handshake: " + hec.message() + verify_failure(stream_.native_handle()));

  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(stream_.native_handle(), &alpn, &alpn_len);
  if (std::string_view(reinterpret_cast<const char*>(alpn), alpn_len) != "h2") {
    co_return fail("ALPN: the server did not select h2");
  }

  // Preface and SETTINGS go out; the peer's SETTINGS must arrive before the first stream is admitted.
  spawn(read_loop(self), "reader");
  spawn(write_loop(self), "writer");
  ready_timer_.expires_at(Clock::time_point::max());
  while (!session_.settings_received() && !closed_ && !connect_timed_out_) {
    co_await ready_timer_.async_wait(kToken);
  }
  if (closed_ || !session_.settings_received()) co_return fail("no SETTINGS from the peer");
  connect_timer_.cancel();
  ready_ = true;
  last_read_ = last_busy_ = Clock::now();
  spawn(keepalive_loop(self), "keepalive");
  log_->debug("{} connected to {}:{} max_concurrent_streams={}", prefix_, options_.host, options_.port,
              session_.remote_max_concurrent_streams());
  notify();
  co_return std::string();
}

SubmitResult Connection::submit(std::shared_ptr<const H2Request> request, Session::Completion on_complete) {
  if (!ready()) return SubmitResult{0, H2Failure::refused, "connection not ready"};
  auto r = session_.submit(std::move(request), std::move(on_complete));
  if (r) {
    last_busy_ = Clock::now();
    signal_write();
  }
  return r;
}

bool Connection::cancel(std::int32_t stream_id, H2Failure failure, std::string detail) {
  bool cancelled = session_.cancel(stream_id, failure, std::move(detail));
  if (cancelled) signal_write();
  notify();
  return cancelled;
}

void Connection::shutdown() {
  if (closed_) return;
  session_.shutdown();
  signal_write();
}

void Connection::close(std::string reason) {
  if (closed_) return;
  closed_ = true;
  log_->debug("{} closed: {}", prefix_, reason);
  session_.fail_all(H2Failure::connection_lost, reason);
  boost::system::error_code ignored;
  resolver_.cancel();
  connect_timer_.cancel();
  ready_timer_.cancel();
  writer_parked_ = false;
  write_timer_.cancel();
  keepalive_timer_.cancel();
  stream_.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.lowest_layer().close(ignored);
  notify();
}

Connection::Clock::duration Connection::idle_for(Clock::time_point now) const {
  if (session_.open_streams() > 0) return Clock::duration::zero();
  return now - last_busy_;
}

// Only a parked writer needs waking: a running one takes the session's output again before it parks. This
// keeps the timer cancel (a reactor lock) off the path of every submit in a batch.
void Connection::signal_write() {
  if (!writer_parked_) return;
  writer_parked_ = false;
  write_timer_.cancel();
}

void Connection::notify() {
  ready_timer_.cancel();
  if (event_posted_ || !on_event_) return;
  event_posted_ = true;
  asio::post(strand_, [self = shared_from_this()] {
    self->event_posted_ = false;
    self->on_event_();
  });
}

asio::awaitable<void> Connection::read_loop(std::shared_ptr<Connection> self) {
  std::array<std::uint8_t, 16 * 1024> buf;
  while (!self->closed_) {
    auto [ec, n] = co_await self->stream_.async_read_some(asio::buffer(buf), kToken);
    if (self->closed_) co_return;
    if (ec) {
      self->close(ec == asio::error::eof || ec == asio::ssl::error::stream_truncated
                      ? "peer closed the connection"
                      : "read: " + ec.message());
      co_return;
    }
    self->last_read_ = Clock::now();
    if (self->session_.open_streams() > 0) self->last_busy_ = self->last_read_;  // idle starts after the last
    bool ok = self->session_.receive({buf.data(), n});
    self->signal_write();  // ACKs, WINDOW_UPDATEs, freed window for bodies
    self->notify();
    if (!ok) {
      self->close("HTTP/2 protocol error from the peer");
      co_return;
    }
    if (!self->session_.alive() && !self->session_.want_write()) {
      self->close("session finished");
      co_return;
    }
  }
}

asio::awaitable<void> Connection::write_loop(std::shared_ptr<Connection> self) {
  std::string out;
  while (!self->closed_) {
    out.clear();
    const std::size_t open_before = self->session_.open_streams();
    self->session_.take_output(out, kWriteChunk);
    // Sending a RST_STREAM (a cancelled stream) closes it: the pool may now place a waiting send here.
    if (self->session_.open_streams() < open_before) self->notify();
    if (!out.empty()) {
      auto [ec, n] = co_await asio::async_write(self->stream_, asio::buffer(out), kToken);
      if (self->closed_) co_return;
      if (ec) {
        self->close("write: " + ec.message());
        co_return;
      }
      continue;
    }
    if (!self->session_.alive()) {
      self->close(self->session_.failed() ? "HTTP/2 session failed" : "session finished (GOAWAY)");
      co_return;
    }
    self->write_timer_.expires_at(Clock::time_point::max());
    self->writer_parked_ = true;
    co_await self->write_timer_.async_wait(kToken);
    self->writer_parked_ = false;
    // Let every submit already queued on the strand land in the session first, so one write carries them
    // all: without this, sends spread over several connections go out one or two frames per syscall
    // (bench/transport measured 30x the sendto calls and a quarter of the rate with two connections).
    co_await asio::post(self->write_timer_.get_executor(), asio::use_awaitable);
    co_await asio::post(self->write_timer_.get_executor(), asio::use_awaitable);
  }
}

asio::awaitable<void> Connection::keepalive_loop(std::shared_ptr<Connection> self) {
  using std::chrono::milliseconds;
  auto tick = std::clamp(std::min(self->options_.ping_interval, self->options_.ping_timeout) / 4,
                         milliseconds(5), milliseconds(1000));
  while (!self->closed_) {
    self->keepalive_timer_.expires_after(tick);
    co_await self->keepalive_timer_.async_wait(kToken);
    if (self->closed_) co_return;
    auto now = Clock::now();
    if (self->session_.ping_outstanding()) {
      if (now - self->session_.ping_sent_at() >= self->options_.ping_timeout) {
        self->close("no PING ACK within ping_timeout");
        co_return;
      }
    } else if (now - self->last_read_ >= self->options_.ping_interval) {
      self->log_->debug("{} PING (idle)", self->prefix_);
      self->session_.ping(now);
      self->signal_write();
    }
  }
}

}  // namespace notifyd::http2
