#pragma once
// http::Server: the HTTP/1.1 API listener (Beast, C++20 coroutines). Owned by the app; runs its
// acceptor and one coroutine per connection on the io_context it is given (any number of threads).
// Keep-alive, pipelined requests answered in order, header/body limits and read timeouts.
// Socket errors end the one connection they happen on; they are logged at debug, never thrown.
#include "daemon/model/api_error.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace notifyd::http {

struct Request {
  std::string method;         // "GET", "POST", ... as sent
  std::string target;         // origin-form target: path and query, undecoded
  std::string authorization;  // the Authorization header, or empty
  std::string content_type;
  std::string body;
  std::string remote;  // peer address, for logs
};

struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (Allow, WWW-Authenticate, ...)
};

// What the server calls for each request. handle() runs on the connection's executor; it must not block.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual boost::asio::awaitable<Response> handle(Request request) = 0;
  // Largest body accepted for this request (decided from the header alone).
  virtual std::size_t body_limit(std::string_view method, std::string_view target) const = 0;
  // The response for a failure the server detects itself (413 body too large, 400 malformed request).
  virtual Response error_response(const ApiError& error) const = 0;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port; listen() returns the one bound
  std::size_t max_header_bytes = 16384;
  std::chrono::milliseconds header_timeout{10000};  // whole header, and idle time between requests
  std::chrono::milliseconds body_timeout{30000};    // whole body
  std::chrono::milliseconds write_timeout{30000};
  int backlog = 1024;
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerOptions options, Handler& handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, listens and starts accepting. Returns the bound port. Throws boost::system::system_error
  // when the address cannot be bound (a startup failure).
  std::uint16_t listen();
  // Graceful stop: closes the acceptor, closes idle keep-alive connections, lets requests in progress
  // finish and be answered (then closes them), and after `grace` closes whatever remains.
  // `on_stopped` runs (on the io_context) once every connection is gone.
  void stop(std::chrono::milliseconds grace, std::function<void()> on_stopped);
  std::size_t connection_count() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace notifyd::http
