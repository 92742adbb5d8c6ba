#pragma once
// Http1Pool: keep-alive HTTP/1.1 client connections to one origin (http or https), owned by one transport or
// service (SMS gateway, OAuth2 token endpoint, delivery callbacks). Thread-safe: send() may be called from
// any coroutine on any executor; a connection is used by one request at a time. Failures are values
// (Http1Result::failure), never exceptions; only the constructor throws, for a bad base URL or CA file.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace notifyd::http1 {

using Http1Headers = std::vector<std::pair<std::string, std::string>>;

struct Http1Request {
  std::string method = "GET";
  std::string target = "/";  // origin-form (path and query), sent verbatim; see Http1Pool::base_path()
  Http1Headers headers;      // Host, Content-Length and Connection are the pool's
  std::string body;
};

enum class Http1Failure {
  none,             // a complete response was received (any status)
  connect_failed,   // resolve, TCP connect or TLS handshake (including certificate verification) failed
  connection_lost,  // the connection broke after the request may have reached the peer
  timeout,          // connect_timeout, request_timeout, or no connection free within request_timeout
  shutting_down,    // drain() has begun
};

const char* to_string(Http1Failure failure);

struct Http1Result {
  Http1Failure failure = Http1Failure::none;
  std::string detail;   // why it failed ("certificate verify failed: ...", "Connection refused"), for logs
  unsigned status = 0;  // 0 unless failure == none
  Http1Headers headers;
  std::string body;

  bool ok() const { return failure == Http1Failure::none; }
  std::string header(std::string_view name) const;  // the first value, case-insensitive; "" when absent
};

struct Http1Options {
  std::string base_url;  // "https://api.twilio.com" or "http://127.0.0.1:8080/prefix"
  std::string ca_file;   // extra trusted CAs (PEM) on top of the system store; https only
  std::size_t max_connections = 4;
  std::chrono::milliseconds connect_timeout{10000};  // resolve + TCP connect + TLS handshake
  std::chrono::milliseconds request_timeout{30000};  // waiting for a connection, then write + whole response
  // An idle connection older than this is closed instead of reused: servers close idle keep-alive
  // connections after some time of their own (commonly 60 s), and a request racing that close is lost.
  std::chrono::milliseconds idle_timeout{50000};
  std::size_t max_response_bytes = 1024 * 1024;
  std::string user_agent = "notifyd";
  std::string log_prefix;  // e.g. "[sms]" for log lines
};

struct Http1PoolStats {
  std::size_t connections = 0;  // open or opening
  std::size_t idle = 0;
  std::size_t in_flight = 0;
  std::size_t waiting = 0;  // sends waiting for a connection slot
  std::uint64_t connections_opened = 0;
  std::uint64_t requests = 0;
  std::uint64_t retries = 0;  // requests replayed after a reused connection failed before any response byte
};

class Http1Pool {
 public:
  // Throws std::invalid_argument for a base URL that is not absolute http(s) with a host, and
  // std::runtime_error when ca_file cannot be loaded (configuration errors, found at startup).
  Http1Pool(boost::asio::any_io_executor executor, Http1Options options);
  ~Http1Pool();
  Http1Pool(const Http1Pool&) = delete;
  Http1Pool& operator=(const Http1Pool&) = delete;

  // Sends one request and reads its whole response. A request that fails on a reused keep-alive connection
  // before any response byte arrived (the server closed it meanwhile) is sent once more on a fresh one.
  boost::asio::awaitable<Http1Result> send(Http1Request request);
  // New sends fail with shutting_down; waits (bounded by request_timeout) for requests in flight, then
  // closes every connection.
  boost::asio::awaitable<void> drain();

  Http1PoolStats stats() const;
  // The base URL's path without a trailing slash ("" or "/prefix"): prepend it to request targets.
  const std::string& base_path() const;
  const std::string& host() const;
  std::uint16_t port() const;
  bool tls() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace notifyd::http1
