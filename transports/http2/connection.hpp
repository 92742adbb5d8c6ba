#pragma once
// Connection: one TLS connection to the origin driving one Session. Owned (shared) by the Http2Pool and by
// its own coroutines (reader, writer, keepalive); every member is touched only on the pool's strand.
// Failures are values: connect() returns an error description, a dying connection completes its open
// streams through Session::fail_all (connection_lost, or refused for requests never sent).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "transports/http2/session.hpp"

namespace spdlog {
class logger;
}

namespace notifyd::http2 {

struct ConnectionOptions {
  std::string host;
  std::uint16_t port = 443;
  std::string authority;  // ":authority"
  std::shared_ptr<boost::asio::ssl::context> tls;
  std::chrono::milliseconds connect_timeout{10000};  // resolve + TCP + TLS + the peer's first SETTINGS
  std::chrono::milliseconds ping_interval{60000};    // PING after this long without a frame from the peer
  std::chrono::milliseconds ping_timeout{10000};     // no PING ACK within this: the connection is dead
  std::string log_prefix;
  std::vector<std::string> kept_response_headers;  // SessionOptions::kept_response_headers
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Strand = boost::asio::any_io_executor;  // a strand (make_strand_executor)
  using Clock = std::chrono::steady_clock;

  // `on_event` is posted (coalesced) to the strand after anything that may change capacity or liveness:
  // ready, streams completed, SETTINGS, GOAWAY, death.
  Connection(Strand strand, ConnectionOptions options, std::uint64_t id, std::function<void()> on_event);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Resolve, TCP connect, TLS handshake (SNI, hostname verification), ALPN must be h2, then waits for the
  // peer's SETTINGS; all within connect_timeout. Returns "" on success, else why it failed (the connection
  // is then dead). Starts the reader, writer and keepalive coroutines.
  boost::asio::awaitable<std::string> connect();

  SubmitResult submit(std::shared_ptr<const H2Request> request, Session::Completion on_complete);
  // False when the stream is unknown or already completed (its completion then ran or is queued).
  bool cancel(std::int32_t stream_id, H2Failure failure, std::string detail);
  // GOAWAY(NO_ERROR): no new streams; the connection closes once its open streams are done.
  void shutdown();
  // Abrupt: open streams fail (connection_lost), the socket is closed.
  void close(std::string reason);

  std::uint64_t id() const { return id_; }
  bool ready() const { return ready_ && !closed_; }
  bool dead() const { return closed_; }
  bool can_submit() const { return ready() && session_.can_submit(); }
  bool flow_blocked() const { return session_.flow_blocked(); }
  bool goaway_received() const { return session_.goaway_received(); }
  // Alive and still taking new streams in the future (no GOAWAY either way).
  bool accepting() const { return !closed_ && !session_.goaway_received() && !session_.shutting_down(); }
  std::size_t open_streams() const { return session_.open_streams(); }
  std::uint32_t max_streams() const { return session_.remote_max_concurrent_streams(); }
  // How long the connection has had no open stream (zero while it has one).
  Clock::duration idle_for(Clock::time_point now) const;
  const std::string& log_prefix() const { return prefix_; }

  bool goaway_counted = false;  // bookkeeping for the pool's stats

 private:
  static boost::asio::awaitable<void> read_loop(std::shared_ptr<Connection> self);
  static boost::asio::awaitable<void> write_loop(std::shared_ptr<Connection> self);
  static boost::asio::awaitable<void> keepalive_loop(std::shared_ptr<Connection> self);
  void spawn(boost::asio::awaitable<void> loop, const char* what);
  void signal_write();
  void notify();

  Strand strand_;
  ConnectionOptions options_;
  std::uint64_t id_;
  std::string prefix_;
  std::function<void()> on_event_;
  std::shared_ptr<spdlog::logger> log_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer ready_timer_;
  boost::asio::steady_timer write_timer_;
  boost::asio::steady_timer keepalive_timer_;
  Session session_;
  bool ready_ = false;
  bool closed_ = false;
  bool event_posted_ = false;
  bool writer_parked_ = false;  // the writer waits on write_timer_: signal_write() must wake it
  bool connect_timed_out_ = false;
  Clock::time_point last_read_;
  Clock::time_point last_busy_;
};

}  // namespace notifyd::http2
