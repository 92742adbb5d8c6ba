#pragma once
// Http2Pool: HTTP/2 client connections to one origin (host, port, TLS identity), shared by all senders of
// one credential. Streams are multiplexed up to each connection's SETTINGS_MAX_CONCURRENT_STREAMS; the pool
// grows (up to max_connections) when every connection is stream- or flow-control-bound and shrinks when
// idle. Runs on one strand of the executor it is given; send() may be called from any coroutine.
// Failures are values (H2Result::failure), never exceptions.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "transports/http2/message.hpp"

namespace boost::asio::ssl {
class context;
}

namespace notifyd::http2 {

// H2Request, H2Response, H2Failure, H2Result: transports/http2/message.hpp

struct PoolOptions {
  std::string host;
  std::uint16_t port = 443;
  std::string authority;                           // ":authority"; host[:port] when empty
  std::shared_ptr<boost::asio::ssl::context> tls;  // verification on, client certificate if any, ALPN h2
  std::size_t min_connections = 0;                 // kept even when idle
  std::size_t max_connections = 4;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds ping_interval{60000};  // PING after this much idle; no ACK in ping_timeout: close
  std::chrono::milliseconds ping_timeout{10000};
  std::chrono::milliseconds idle_close{300000};    // close a connection with no stream for this long
  std::string log_prefix;                          // e.g. "[CR…]" for log lines
  std::vector<std::string> kept_response_headers;  // those H2Response::headers holds; empty: all
};

struct PoolStats {
  std::size_t connections = 0;
  std::size_t streams_in_flight = 0;
  std::size_t waiting = 0;  // sends waiting for a stream slot
  std::uint64_t connections_opened = 0;
  std::uint64_t goaways = 0;

  // Sums another pool's figures into these (a transport's total over its pools).
  PoolStats& operator+=(const PoolStats& other) {
    connections += other.connections;
    streams_in_flight += other.streams_in_flight;
    waiting += other.waiting;
    connections_opened += other.connections_opened;
    goaways += other.goaways;
    return *this;
  }
};

// Where the callback form of Http2Pool::send_returning reports: complete() is called once, on the executor
// given with it; both are the completion's to move from.
class SendCompletion {
 public:
  virtual ~SendCompletion() = default;
  virtual void complete(H2Result&& result, H2Request&& request) = 0;
};

class Http2Pool {
 public:
  Http2Pool(boost::asio::any_io_executor executor, PoolOptions options);
  ~Http2Pool();
  Http2Pool(const Http2Pool&) = delete;
  Http2Pool& operator=(const Http2Pool&) = delete;

  // Sends one request and waits for its whole response (or failure). Retries `refused` streams on
  // another connection by itself (bounded); other failures are returned to the caller.
  boost::asio::awaitable<H2Result> send(H2Request request);
  // The same, and the request back with the result, for a caller that may send it again (APNs: after a
  // provider-token refusal, or to a reload's new endpoint) without having kept a copy: moved back when no
  // stream holds it any more (the usual case), else copied.
  boost::asio::awaitable<std::tuple<H2Result, H2Request>> send_returning(H2Request request);
  // The same without a coroutine: returns at once; `done` completes on `executor`, never inside this call.
  void send_returning(H2Request&& request, const boost::asio::any_io_executor& executor,
                      std::unique_ptr<SendCompletion> done);
  // Opens a first connection ahead of the first send, when the pool has none (nor one opening): its TCP and
  // TLS handshakes then run while the caller prepares its requests. Returns at once; a failure to connect
  // (logged at debug) is met again by the first send.
  void warm();
  // Sends GOAWAY on every connection, waits (bounded by request_timeout) for open streams, then closes.
  boost::asio::awaitable<void> drain();
  PoolStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace notifyd::http2
