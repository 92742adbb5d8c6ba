// http::Server implementation: one acceptor coroutine on its own strand, one session coroutine per
// connection on that connection's strand. The connection registry (Impl::mutex_) is the only state
// shared across strands; everything inside a Connection is touched only on its strand.
#include "daemon/http/server.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <exception>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "daemon/model/log.hpp"

namespace notifyd::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// Every socket operation completes with (error_code, ...) instead of throwing: socket errors are
// expected and end one connection, never the process.
using Token = asio::as_tuple_t<asio::use_awaitable_t<>>;
using Stream = Token::as_default_on_t<beast::tcp_stream>;
using Acceptor = Token::as_default_on_t<tcp::acceptor>;
using Timer = Token::as_default_on_t<asio::steady_timer>;
using Parser = bhttp::request_parser<bhttp::string_body>;

// Bytes read while waiting for the first byte of a request; the parser pulls the rest.
constexpr std::size_t kIdleReadChunk = 4096;
// After an error response (413, 400, 431) the peer may still be sending; reading what it sends for a
// short while before closing keeps the kernel from answering with an RST that would destroy our
// response in the client's receive buffer.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr std::size_t kLingerMaxBytes = 4 * 1024 * 1024;
// Backoff after a failed accept (EMFILE, ENFILE, ENOBUFS) so the loop does not spin.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

void log_exception(const std::shared_ptr<spdlog::logger>& log, std::string_view what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log->error("{} ended with an exception: {}", what, ex.what());
  } catch (...) {
    log->error("{} ended with an unknown exception", what);
  }
}

struct Connection {
  Connection(std::uint64_t id_in, tcp::socket socket) : id(id_in), stream(std::move(socket)) {}

  const std::uint64_t id;
  Stream stream;
  std::string remote;
  // Strand-only state below.
  bool idle = false;  // waiting for the first byte of the next request: stop() may close it at once
  bool closed = false;
  asio::cancellation_signal cancel;  // bound to the session coroutine; emitted when grace runs out

  void close() {
    if (closed) return;
    closed = true;
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
  }
};

// A syntax error from Beast's parser (as opposed to a timeout or a socket error).
bool is_parse_error(const error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
}

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(asio::io_context& io, ServerOptions options, Handler& handler)
      : io_(io),
        options_(std::move(options)),
        handler_(handler),
        strand_(asio::make_strand(io)),
        acceptor_(strand_),
        grace_timer_(strand_),
        log_(module_logger("http")) {}

  asio::io_context& io_;
  const ServerOptions options_;
  Handler& handler_;
  asio::strand<asio::io_context::executor_type> strand_;  // acceptor and grace timer
  Acceptor acceptor_;
  Timer grace_timer_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<std::uint64_t> next_id_{1};
  std::atomic<bool> stopping_{false};

  mutable std::mutex mutex_;  // guards the members below
  std::unordered_map<std::uint64_t, std::shared_ptr<Connection>> connections_;
  std::function<void()> on_stopped_;

  std::uint16_t listen();
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> run_session(std::shared_ptr<Connection> conn);
  asio::awaitable<bool> wait_for_request(std::shared_ptr<Connection> conn, beast::flat_buffer& buffer);
  asio::awaitable<bool> serve_one(std::shared_ptr<Connection> conn, beast::flat_buffer& buffer);
  asio::awaitable<bool> write_response(std::shared_ptr<Connection> conn, Response response, unsigned version,
                                       bool keep_alive);
  asio::awaitable<void> respond_error_and_close(std::shared_ptr<Connection> conn, ApiError error);
  void start_session(tcp::socket socket);
  void remove_connection(std::uint64_t id);
  void stop(std::chrono::milliseconds grace, std::function<void()> on_stopped);
  void close_all_now();
};

std::uint16_t Server::Impl::listen() {
  error_code ec;
  auto address = asio::ip::make_address(options_.host, ec);
  tcp::endpoint endpoint;
  if (!ec) {
    endpoint = tcp::endpoint(address, options_.port);
  } else {
    // A host name: resolve it once at startup (blocking is fine before the loop serves anything).
    tcp::resolver resolver(io_);
    auto results = resolver.resolve(options_.host, std::to_string(options_.port));
    endpoint = results.begin()->endpoint();
  }
  // The acceptor is not yet shared with any coroutine, so using it here off the strand is safe.
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(options_.backlog);
  const auto port = acceptor_.local_endpoint().port();
  log_->debug("listening on {}:{}", endpoint.address().to_string(), port);

  auto self = shared_from_this();
  asio::co_spawn(strand_, accept_loop(),
                 [self](std::exception_ptr e) { log_exception(self->log_, "acceptor", e); });
  return port;
}

asio::awaitable<void> Server::Impl::accept_loop() {
  auto self = shared_from_this();  // the Impl outlives this frame even if the Server goes away
  while (!stopping_.load()) {
    // Each connection gets its own strand so the io_context can run on any number of threads.
    auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(io_));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open() || stopping_.load()) break;
      log_->warn("accept failed: {}; retrying in {} ms", ec.message(), kAcceptRetryDelay.count());
      Timer retry(strand_);
      retry.expires_after(kAcceptRetryDelay);
      co_await retry.async_wait();
      continue;
    }
    start_session(std::move(socket));
  }
  log_->debug("acceptor stopped");
}

void Server::Impl::start_session(tcp::socket socket) {
  auto conn = std::make_shared<Connection>(next_id_.fetch_add(1), std::move(socket));
  {
    error_code ec;
    auto ep = conn->stream.socket().remote_endpoint(ec);
    conn->remote = ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  {
    std::lock_guard lock(mutex_);
    // stop() may have run between the accept completing and here; such a connection is refused.
    if (stopping_.load()) {
      log_->debug("[C{}] refused from {}: server stopping", conn->id, conn->remote);
      error_code ignored;
      conn->stream.socket().close(ignored);
      return;
    }
    connections_.emplace(conn->id, conn);
  }
  log_->debug("[C{}] accepted from {}", conn->id, conn->remote);
  auto self = shared_from_this();
  auto ex = conn->stream.get_executor();
  const auto id = conn->id;
  asio::co_spawn(ex, run_session(conn),
                 asio::bind_cancellation_slot(conn->cancel.slot(), [self, id](std::exception_ptr e) {
                   log_exception(self->log_, fmt::format("[C{}] session", id), e);
                   self->remove_connection(id);
                 }));
}

void Server::Impl::remove_connection(std::uint64_t id) {
  std::function<void()> done;
  {
    std::lock_guard lock(mutex_);
    connections_.erase(id);
    if (stopping_.load() && connections_.empty() && on_stopped_) done = std::exchange(on_stopped_, nullptr);
  }
  if (done) {
    auto self = shared_from_this();
    // Nothing left to force-close: the grace timer would only keep the io_context busy.
    asio::post(strand_, [self] { self->grace_timer_.cancel(); });
    asio::post(io_, std::move(done));
  }
}

asio::awaitable<void> Server::Impl::run_session(std::shared_ptr<Connection> conn) {
  auto self = shared_from_this();
  // Persistent across requests: bytes of a pipelined next request stay here and are parsed next.
  beast::flat_buffer buffer;
  try {
    for (;;) {
      if (buffer.size() == 0 && !co_await wait_for_request(conn, buffer)) break;
      if (!co_await serve_one(conn, buffer)) break;
    }
  } catch (const boost::system::system_error& e) {
    // Only cancellation after the grace period lands here (throw_if_cancelled); it is a normal end.
    if (e.code() != asio::error::operation_aborted) throw;
    log_->debug("[C{}] cancelled", conn->id);
  }
  conn->close();
  log_->debug("[C{}] closed", conn->id);
}

asio::awaitable<bool> Server::Impl::wait_for_request(std::shared_ptr<Connection> conn,
                                                     beast::flat_buffer& buffer) {
  // Checked on the strand right before parking, so a stop() that posts to this strand either sees
  // the connection idle or the connection sees stopping_.
  if (stopping_.load()) {
    log_->debug("[C{}] closing idle connection: server stopping", conn->id);
    co_return false;
  }
  conn->idle = true;
  // The header timeout doubles as the keep-alive idle timeout.
  conn->stream.expires_after(options_.header_timeout);
  auto [ec, n] = co_await conn->stream.async_read_some(buffer.prepare(kIdleReadChunk));
  conn->idle = false;
  if (ec) {
    if (conn->closed) {
      // stop() closed it and already said so.
    } else if (ec == beast::error::timeout) {
      log_->debug("[C{}] idle timeout", conn->id);
    } else if (ec == asio::error::eof || ec == asio::error::connection_reset) {
      log_->debug("[C{}] peer closed", conn->id);
    } else if (ec != asio::error::operation_aborted && ec != asio::error::bad_descriptor) {
      log_->debug("[C{}] read failed: {}", conn->id, ec.message());
    }
    co_return false;
  }
  buffer.commit(n);
  co_return true;
}

asio::awaitable<bool> Server::Impl::serve_one(std::shared_ptr<Connection> conn, beast::flat_buffer& buffer) {
  Parser parser;
  parser.header_limit(
      static_cast<std::uint32_t>(std::min<std::size_t>(options_.max_header_bytes, UINT32_MAX)));
  // The real limit depends on the target and is set once the header is known; the parser would
  // otherwise reject a Content-Length over its 1 MB default before we can ask the handler.
  parser.body_limit(boost::none);

  conn->stream.expires_after(options_.header_timeout);
  {
    auto [ec, n] = co_await bhttp::async_read_header(conn->stream, buffer, parser);
    if (ec) {
      if (ec == bhttp::error::header_limit) {
        log_->debug("[C{}] header over {} bytes", conn->id, options_.max_header_bytes);
        // Named, not a braced temporary: GCC 12 destroys brace-initialised temporaries in a
        // co_await argument twice (double free).
        ApiError error{431, codes::kInvalidParameter, "Request header fields too large"};
        co_await respond_error_and_close(conn, std::move(error));
      } else if (ec == beast::error::timeout) {
        log_->debug("[C{}] header timeout", conn->id);
      } else if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
                 ec == asio::error::eof || ec == asio::error::connection_reset ||
                 ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
        log_->debug("[C{}] closed while reading header: {}", conn->id, ec.message());
      } else if (is_parse_error(ec)) {
        log_->debug("[C{}] malformed header: {}", conn->id, ec.message());
        ApiError error = invalid_parameter("Malformed HTTP request");
        co_await respond_error_and_close(conn, std::move(error));
      } else {
        log_->debug("[C{}] header read failed: {}", conn->id, ec.message());
      }
      co_return false;
    }
  }

  const auto& header = parser.get();
  const std::string method(header.method_string());
  const std::string target(header.target());
  const std::size_t limit = handler_.body_limit(method, target);
  const auto too_large = [&] {
    return ApiError{413, codes::kTooLarge, "Request body larger than " + std::to_string(limit) + " bytes"};
  };
  if (auto length = parser.content_length(); length && *length > limit) {
    log_->debug("[C{}] {} {}: Content-Length {} over limit {}", conn->id, method, target, *length, limit);
    ApiError error = too_large();
    co_await respond_error_and_close(conn, std::move(error));
    co_return false;
  }
  parser.body_limit(limit);

  if (!parser.is_done()) {
    // Clients that ask (curl for large bodies) wait for this before sending the body.
    if (beast::iequals(header[bhttp::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      conn->stream.expires_after(options_.write_timeout);
      auto [ec, n] =
          co_await asio::async_write(conn->stream, asio::buffer(kContinue.data(), kContinue.size()));
      if (ec) {
        log_->debug("[C{}] write of 100 Continue failed: {}", conn->id, ec.message());
        co_return false;
      }
    }
    conn->stream.expires_after(options_.body_timeout);
    auto [ec, n] = co_await bhttp::async_read(conn->stream, buffer, parser);
    if (ec) {
      if (ec == bhttp::error::body_limit) {
        log_->debug("[C{}] {} {}: body over limit {}", conn->id, method, target, limit);
        ApiError error = too_large();
        co_await respond_error_and_close(conn, std::move(error));
      } else if (ec == beast::error::timeout) {
        log_->debug("[C{}] {} {}: body timeout", conn->id, method, target);
      } else if (is_parse_error(ec)) {
        log_->debug("[C{}] {} {}: malformed body: {}", conn->id, method, target, ec.message());
        ApiError error = invalid_parameter("Malformed HTTP request body");
        co_await respond_error_and_close(conn, std::move(error));
      } else {
        log_->debug("[C{}] {} {}: body read failed: {}", conn->id, method, target, ec.message());
      }
      co_return false;
    }
  }

  auto message = parser.release();
  const unsigned version = message.version();
  bool keep_alive = message.keep_alive();
  Request request;
  request.method = method;
  request.target = target;
  request.authorization = std::string(message[bhttp::field::authorization]);
  request.content_type = std::string(message[bhttp::field::content_type]);
  request.body = std::move(message.body());
  request.remote = conn->remote;

  Response response;
  try {
    response = co_await handler_.handle(std::move(request));
  } catch (const boost::system::system_error& e) {
    if (conn->closed) {
      // Grace ran out and the handler was cancelled: nobody is left to answer.
      log_->debug("[C{}] {} {}: handler cancelled", conn->id, method, target);
      co_return false;
    }
    log_->error("[C{}] {} {}: handler threw: {}", conn->id, method, target, e.what());
    response = handler_.error_response(internal_error("Internal server error"));
    keep_alive = false;
  } catch (const std::exception& e) {
    log_->error("[C{}] {} {}: handler threw: {}", conn->id, method, target, e.what());
    response = handler_.error_response(internal_error("Internal server error"));
    keep_alive = false;
  }
  if (conn->closed) co_return false;
  // During a graceful stop the request in progress is answered, and the connection ends with it.
  if (stopping_.load()) keep_alive = false;
  log_->debug("[C{}] {} {} -> {}{}", conn->id, method, target, response.status, keep_alive ? "" : " (close)");
  if (!co_await write_response(conn, std::move(response), version, keep_alive)) co_return false;
  if (!keep_alive) {
    error_code ignored;
    conn->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    co_return false;
  }
  co_return true;
}

asio::awaitable<bool> Server::Impl::write_response(std::shared_ptr<Connection> conn, Response response,
                                                   unsigned version, bool keep_alive) {
  bhttp::response<bhttp::string_body> out;
  out.version(version == 10 ? 10 : 11);
  out.result(response.status);
  const bool bodiless = response.status / 100 == 1 || response.status == 204 || response.status == 304;
  if (!bodiless && !response.content_type.empty()) out.set(bhttp::field::content_type, response.content_type);
  for (auto& [name, value] : response.headers) out.insert(name, value);
  if (!bodiless) out.body() = std::move(response.body);
  // Sets Content-Length (none for 1xx/204/304, which must not carry a body).
  out.prepare_payload();
  out.keep_alive(keep_alive);

  conn->stream.expires_after(options_.write_timeout);
  auto [ec, n] = co_await bhttp::async_write(conn->stream, out);
  if (ec) {
    log_->debug("[C{}] write failed: {}", conn->id, ec.message());
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> Server::Impl::respond_error_and_close(std::shared_ptr<Connection> conn,
                                                            ApiError error) {
  auto response = handler_.error_response(error);
  if (!co_await write_response(conn, std::move(response), 11, false)) co_return;
  error_code ignored;
  conn->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  // Lingering close: drain (bounded in time and bytes) so our response is not lost to an RST.
  conn->stream.expires_after(kLingerTime);
  std::array<char, 16384> sink;
  std::size_t drained = 0;
  while (drained < kLingerMaxBytes) {
    auto [ec, n] = co_await conn->stream.async_read_some(asio::buffer(sink));
    if (ec) break;
    drained += n;
  }
}

void Server::Impl::stop(std::chrono::milliseconds grace, std::function<void()> on_stopped) {
  std::vector<std::shared_ptr<Connection>> snapshot;
  std::function<void()> done;
  {
    std::lock_guard lock(mutex_);
    if (stopping_.exchange(true)) {
      log_->debug("stop() called again: the first grace period stands");
      if (on_stopped) {
        // Still honour the caller: run it with (or after) the first stop's completion.
        if (connections_.empty() && !on_stopped_) {
          done = std::move(on_stopped);
        } else if (on_stopped_) {
          on_stopped_ = [a = std::move(on_stopped_), b = std::move(on_stopped)] {
            a();
            b();
          };
        } else {
          on_stopped_ = std::move(on_stopped);
        }
      }
      if (done) asio::post(io_, std::move(done));
      return;
    }
    on_stopped_ = std::move(on_stopped);
    for (auto& [id, conn] : connections_) snapshot.push_back(conn);
    if (connections_.empty() && on_stopped_) done = std::exchange(on_stopped_, nullptr);
  }
  log_->info("stopping: {} connections open, grace {} ms", snapshot.size(), grace.count());
  auto self = shared_from_this();
  asio::post(strand_, [self, grace] {
    error_code ignored;
    self->acceptor_.close(ignored);
    {
      // The last connection may have gone already; its cancel() then ran before this, and a timer
      // armed now would keep the io_context busy for the whole grace period for nothing.
      std::lock_guard lock(self->mutex_);
      if (self->connections_.empty()) return;
    }
    self->grace_timer_.expires_after(grace);
    self->grace_timer_.async_wait([self](error_code ec) {
      if (ec) return;  // cancelled: every connection ended in time
      self->close_all_now();
    });
  });
  for (auto& conn : snapshot) {
    asio::post(conn->stream.get_executor(), [self, conn] {
      if (conn->idle) {
        self->log_->debug("[C{}] closing idle connection: server stopping", conn->id);
        conn->close();
      }
    });
  }
  if (done) asio::post(io_, std::move(done));
}

void Server::Impl::close_all_now() {
  std::vector<std::shared_ptr<Connection>> snapshot;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, conn] : connections_) snapshot.push_back(conn);
  }
  if (!snapshot.empty()) log_->info("grace period over: closing {} connections", snapshot.size());
  for (auto& conn : snapshot) {
    asio::post(conn->stream.get_executor(), [self = shared_from_this(), conn] {
      // Already closed: the session has ended or is ending, and must not be signalled any more.
      if (conn->closed) return;
      self->log_->debug("[C{}] closing: grace period over", conn->id);
      conn->close();
      // Interrupts a handler that is still awaiting something cancellable (a timer, a socket).
      conn->cancel.emit(asio::cancellation_type::terminal);
    });
  }
}

Server::Server(asio::io_context& io, ServerOptions options, Handler& handler)
    : impl_(std::make_shared<Impl>(io, std::move(options), handler)) {}

Server::~Server() {
  // Coroutines hold the Impl and may outlive this object; make sure they wind down promptly.
  bool already = false;
  {
    std::lock_guard lock(impl_->mutex_);
    already = impl_->stopping_.load();
  }
  if (!already) impl_->stop(std::chrono::milliseconds(0), nullptr);
  impl_->close_all_now();
}

std::uint16_t Server::listen() { return impl_->listen(); }

void Server::stop(std::chrono::milliseconds grace, std::function<void()> on_stopped) {
  impl_->stop(grace, std::move(on_stopped));
}

std::size_t Server::connection_count() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->connections_.size();
}

}  // namespace notifyd::http
