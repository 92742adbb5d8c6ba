// http::Server against raw TCP clients on 127.0.0.1 (port 0). The server's io_context runs on two
// threads; clients are synchronous sockets driven with poll() deadlines so no test can hang.
#include <gtest/gtest.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "daemon/http/server.hpp"

namespace notifyd::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kSmallBodyLimit = 1024;
constexpr std::size_t kUploadBodyLimit = 1 << 20;

// Echoes "METHOD TARGET\nBODY" (or the body's size for /upload). Targets under /slow wait
// slow_delay first, on a timer, so tests can hold a request in flight.
class EchoHandler : public Handler {
 public:
  std::atomic<int> started{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> slow_delay_ms{200};

  asio::awaitable<Response> handle(Request request) override {
    started.fetch_add(1);
    if (request.target.starts_with("/slow")) {
      asio::steady_timer timer(co_await asio::this_coro::executor);
      timer.expires_after(std::chrono::milliseconds(slow_delay_ms.load()));
      auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        cancelled.fetch_add(1);
        Response gone;  // named: GCC 12 mishandles braced temporaries in co_return/co_await
        gone.status = 503;
        co_return gone;
      }
    }
    if (request.target == "/throw") throw std::runtime_error("handler bug");
    if (request.target == "/nocontent") {
      Response empty;
      empty.status = 204;
      co_return empty;
    }
    Response response;
    response.content_type = "text/plain";
    response.body =
        request.method + " " + request.target + "\n" +
        (request.target.starts_with("/upload") ? std::to_string(request.body.size()) : request.body);
    response.headers.emplace_back("X-Auth-Present", request.authorization.empty() ? "no" : "yes");
    co_return response;
  }

  std::size_t body_limit(std::string_view, std::string_view target) const override {
    return target.starts_with("/upload") ? kUploadBodyLimit : kSmallBodyLimit;
  }

  Response error_response(const ApiError& error) const override {
    Response response;
    response.status = static_cast<unsigned>(error.status);
    response.body = "{\"code\": " + std::to_string(error.code) + ", \"message\": \"" + error.message +
                    "\", \"status\": " + std::to_string(error.status) + "}";
    return response;
  }
};

struct Reply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  bool has_header(const std::string& name) const { return headers.count(name) != 0; }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// A blocking-style client whose every wait has a deadline (poll on a non-blocking socket;
// SO_RCVTIMEO would be defeated by Asio's own poll loop in synchronous reads).
class RawClient {
 public:
  explicit RawClient(asio::io_context& io) : socket_(io) {}

  bool connect(std::uint16_t port, error_code* out = nullptr) {
    error_code ec;
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    if (!ec) socket_.non_blocking(true, ec);
    if (out) *out = ec;
    return !ec;
  }

  bool send(std::string_view data, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = Clock::now() + timeout;
    while (!data.empty()) {
      error_code ec;
      const std::size_t n = socket_.write_some(asio::buffer(data.data(), data.size()), ec);
      if (ec == asio::error::would_block) {
        if (!wait_for(POLLOUT, deadline)) return false;
        continue;
      }
      if (ec) return false;
      data.remove_prefix(n);
    }
    return true;
  }

  std::optional<Reply> read_response(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (auto reply = parse_one()) return reply;
      if (read_more(deadline) != ReadStatus::data) return std::nullopt;
    }
  }

  // True once the server closed the connection (EOF or reset) within `timeout`; data read on the
  // way is kept in pending().
  bool wait_closed(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      switch (read_more(deadline)) {
        case ReadStatus::data:
          continue;
        case ReadStatus::closed:
          return true;
        case ReadStatus::timeout:
          return false;
      }
    }
  }

  const std::string& pending() const { return pending_; }

 private:
  enum class ReadStatus { data, closed, timeout };

  bool wait_for(short events, Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd fd{socket_.native_handle(), events, 0};
    return ::poll(&fd, 1, static_cast<int>(left.count())) > 0;
  }

  ReadStatus read_more(Clock::time_point deadline) {
    for (;;) {
      char chunk[65536];
      error_code ec;
      const std::size_t n = socket_.read_some(asio::buffer(chunk), ec);
      if (ec == asio::error::would_block) {
        if (!wait_for(POLLIN, deadline)) return ReadStatus::timeout;
        continue;
      }
      if (ec) return ReadStatus::closed;
      pending_.append(chunk, n);
      return ReadStatus::data;
    }
  }

  // One complete Content-Length-delimited response from pending_, if there is one. Our server
  // never sends chunked responses.
  std::optional<Reply> parse_one() {
    const auto end = pending_.find("\r\n\r\n");
    if (end == std::string::npos) return std::nullopt;
    Reply reply;
    std::size_t line_end = pending_.find("\r\n");
    const std::string status_line = pending_.substr(0, line_end);
    const auto space = status_line.find(' ');
    if (space == std::string::npos) return std::nullopt;
    reply.status = static_cast<unsigned>(std::stoul(status_line.substr(space + 1, 3)));
    std::size_t pos = line_end + 2;
    while (pos < end) {
      line_end = pending_.find("\r\n", pos);
      const std::string line = pending_.substr(pos, line_end - pos);
      const auto colon = line.find(':');
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      reply.headers[lower(line.substr(0, colon))] = value;
      pos = line_end + 2;
    }
    const std::size_t length =
        reply.has_header("content-length") ? std::stoul(reply.header("content-length")) : 0;
    const std::size_t body_start = end + 4;
    if (pending_.size() < body_start + length) return std::nullopt;
    reply.body = pending_.substr(body_start, length);
    pending_.erase(0, body_start + length);
    return reply;
  }

  tcp::socket socket_;
  std::string pending_;
};

std::string request(std::string_view method, std::string_view target, std::string_view body = {},
                    std::string_view extra_headers = {}) {
  std::string out = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n";
  out += extra_headers;
  if (!body.empty() || method == "POST") out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += "\r\n";
  out += body;
  return out;
}

template <class Predicate>
bool wait_until(Predicate predicate, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return predicate();
}

std::chrono::milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // NOTIFYD_TEST_DEBUG=1 shows the server's per-connection debug lines.
    if (std::getenv("NOTIFYD_TEST_DEBUG")) spdlog::set_level(spdlog::level::debug);
  }

  void start(ServerOptions options = {}) {
    server_ = std::make_unique<Server>(io_, options, handler_);
    port_ = server_->listen();
    ASSERT_NE(port_, 0);
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }

  // Starts a graceful stop; the returned future becomes ready when on_stopped runs.
  std::future<void> stop(std::chrono::milliseconds grace) {
    auto done = std::make_shared<std::promise<void>>();
    auto future = done->get_future();
    server_->stop(grace, [done] { done->set_value(); });
    return future;
  }

  void TearDown() override {
    if (server_ && !stopped_) {
      auto done = stop(0ms);
      EXPECT_EQ(done.wait_for(5s), std::future_status::ready) << "on_stopped never ran";
    }
    guard_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
  asio::io_context client_io_;  // owns the test clients' sockets; never run
  EchoHandler handler_;
  std::unique_ptr<Server> server_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  bool stopped_ = false;
};

TEST_F(HttpServerTest, AnswersOneRequest) {
  start();
  RawClient client(client_io_);
  ASSERT_TRUE(client.connect(port_));
  ASSERT_TRUE(client.send(request("POST", "/v1/Echo?x=1", "hello", "Authorization: Basic QUM6dG9r\r\n")));
  auto reply = client.read_response();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200u);
  EXPECT_EQ(reply->header("content-type"), "text/plain");
  EXPECT_EQ(reply->header("content-length"), std::to_string(reply->body.size()));
  EXPECT_EQ(reply->header("x-auth-present"), "yes");
  EXPECT_EQ(reply->body, "POST /v1/Echo?x=1\nhello");
}

TEST_F(HttpServerTest, NoContentHasNoBodyNorContentType) {
  start();
  RawClient client(client_io_);
  ASSERT_TRUE(client.connect(port_));
  ASSERT_TRUE(client.send(request("DELETE", "/nocontent") + request("GET", "/after")));
  auto reply = client.read_response();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 204u);
  EXPECT_FALSE(reply->has_header("content-type"));
  EXPECT_TRUE(reply->body.empty());
  // The next response starts right after the empty 204: nothing stray was written.
  auto next = client.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200u);
  EXPECT_EQ(next->body, "GET /after\n");
}

TEST_F(HttpServerTest, KeepAliveServesThreeRequestsOnOneConnection) {
  start();
  RawClient client(client_io_);
  ASSERT_TRUE(client.connect(port_));
  for (int i = 0; i < 3; ++i) {
    const std::string target = "/r" + std::to_string(i);
    ASSERT_TRUE(client.send(request("GET", target)));
    auto reply = client.read_response();
    ASSERT_TRUE(reply) << "request " << i;
    EXPECT_EQ(reply->status, 200u);
    EXPECT_EQ(reply->body, "GET " + target + "\n");
    EXPECT_FALSE(reply->has_header("connection"));
  }
  EXPECT_EQ(server_->connection_count(), 1u);
}

TEST_F(HttpServerTest, Http10WithoutKeepAliveIsClosedAfterTheResponse) {
  start();
  RawClient client(client_io_);
  ASSERT_TRUE(client.connect(port_));
  ASSERT_TRUE(client.send("GET /old HTTP/1.0\r\n\r\n"));
  auto reply = client.read_response();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200u);
  EXPECT_TRUE(client.wait_closed(2s));
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  handler_.slow_delay_ms = 150;  // the first answer is the slowest: order must still hold
  RawClient client(client_io_);
  ASSERT_TRUE(client.connect(port_));
  ASSERT_TRUE(client.send(request("GET", "/slow/1") + request("POST", "/2", "two") + request("GET", "/3")));
  const char* expected[] = {"GET /slow/1\n", "POST /2\ntwo", "GET /3\n"};
  for (const char* body : expected) {
    auto reply = client.read_response();
    ASSERT_TRUE(reply) << body;
    EXPECT_EQ(reply->status, 200u);
    EXPECT_EQ(reply->body, body);
  }
}

TEST_F(HttpServerTest, BodyOverLimitIs413AndCloses) {
  start();
  RawClient client(client_io_);
  ASSERT_TRUE(client.connect(port_));
  ASSERT_TRUE(client.send(request("POST", "/v1/Services", std::string(kSmallBodyLimit + 1, 'a'))));
  auto reply = client.read_response();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 413u);
  EXPECT_NE(reply->body.find("\"code\": 20413"), std::string::npos) << reply->body;
  EXPECT_EQ(lower(reply->header("connection")), "close");
  EXPECT_TRUE(client.wait_closed(3s));
  EXPECT_EQ(handler_.started.load(), 0);
}

TEST_F(HttpServerTest, ChunkedBodyOverLimitIs413) {
  start();
  RawClient client(client_io_);
  ASSERT_TRUE(client.connect(port_));
  std::string chunked = "POST /v1/Services HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) chunked += "200\r\n" + std::string(0x200, 'b') + "\r\n";
  chunked += "0\r\n\r\n";
  ASSERT_TRUE(client.send(chunked));
  auto reply = client.read_response();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 413u);
  EXPECT_TRUE(client.wait_closed(3s));
}

TEST_F(HttpServerTest, PerTargetBodyLimitAcceptsOneMegabyteUpload) {
  start();
  RawClient client(client_io_);
  ASSERT_TRUE(client.connect(port_));
  ASSERT_TRUE(client.send(request("POST", "/upload", std::string(kUploadBodyLimit, 'x'))));
  auto reply = client.read_response();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200u);
  EXPECT_EQ(reply->body, "POST /upload\n" + std::to_string(kUploadBodyLimit));

  // One byte more is refused, from the Content-Length alone.
  ASSERT_TRUE(client.send(request("POST", "/upload", std::string(kUploadBodyLimit + 1, 'x'))));
  reply = client.read_response();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 413u);
}

TEST_F(HttpServerTest, ExpectContinueGets100BeforeTheBody) {
  start();
  RawClient client(client_io_);
  ASSERT_TRUE(client.connect(port_));
  ASSERT_TRUE(
      client.send("POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"));
  auto interim = client.read_response();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100u);
  ASSERT_TRUE(client.send("abc"));
  auto reply = client.read_response();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200u);
  EXPECT_EQ(reply->body, "POST /e\nabc");
}

TEST_F(HttpServerTest, HeaderOverLimitIs431) {
  ServerOptions options;
  options.max_header_bytes = 4096;
  start(options);
  RawClient client(client_io_);
  ASSERT_TRUE(client.connect(port_));
  ASSERT_TRUE(client.send(request("GET", "/", {}, "X-Pad: " + std::string(8192, 'p') + "\r\n")));
  auto reply = client.read_response();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 431u);
  EXPECT_TRUE(client.wait_closed(3s));
  EXPECT_EQ(handler_.started.load(), 0);
}

TEST_F(HttpServerTest, MalformedRequestIs400AndCloses) {
  start();
  RawClient client(client_io_);
  ASSERT_TRUE(client.connect(port_));
  ASSERT_TRUE(client.send("GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n"));
  auto reply = client.read_response();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 400u);
  EXPECT_NE(reply->body.find("20001"), std::string::npos);
  EXPECT_TRUE(client.wait_closed(3s));
}

TEST_F(HttpServerTest, HandlerExceptionIs500AndCloses) {
  start();
  RawClient client(client_io_);
  ASSERT_TRUE(client.connect(port_));
  ASSERT_TRUE(client.send(request("GET", "/throw")));
  auto reply = client.read_response();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 500u);
  EXPECT_NE(reply->body.find("20500"), std::string::npos);
  EXPECT_TRUE(client.wait_closed(2s));
}

TEST_F(HttpServerTest, SlowHeaderTimesOut) {
  ServerOptions options;
  options.header_timeout = 300ms;
  start(options);
  RawClient client(client_io_);
  ASSERT_TRUE(client.connect(port_));
  const auto begin = Clock::now();
  ASSERT_TRUE(client.send("GET /slowloris HTTP/1.1\r\nHost: t\r\n"));
  EXPECT_TRUE(client.wait_closed(2s));
  EXPECT_LT(since(begin), 1000ms);
  EXPECT_GE(since(begin), 250ms);
  EXPECT_EQ(handler_.started.load(), 0);
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionTimesOut) {
  ServerOptions options;
  options.header_timeout = 300ms;
  start(options);
  RawClient client(client_io_);
  ASSERT_TRUE(client.connect(port_));
  ASSERT_TRUE(client.send(request("GET", "/once")));
  ASSERT_TRUE(client.read_response());
  const auto begin = Clock::now();
  EXPECT_TRUE(client.wait_closed(2s));
  EXPECT_LT(since(begin), 1000ms);
  EXPECT_TRUE(wait_until([&] { return server_->connection_count() == 0; }, 2s));
}

TEST_F(HttpServerTest, SlowBodyTimesOut) {
  ServerOptions options;
  options.body_timeout = 300ms;
  start(options);
  RawClient client(client_io_);
  ASSERT_TRUE(client.connect(port_));
  const auto begin = Clock::now();
  ASSERT_TRUE(client.send("POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly-a-part"));
  EXPECT_TRUE(client.wait_closed(2s));
  EXPECT_LT(since(begin), 1000ms);
  EXPECT_EQ(client.pending(), "");  // closed without an answer
  EXPECT_EQ(handler_.started.load(), 0);
}

TEST_F(HttpServerTest, GracefulStopFinishesInFlightAndClosesIdle) {
  start();
  handler_.slow_delay_ms = 600;

  RawClient idle(client_io_);
  ASSERT_TRUE(idle.connect(port_));
  ASSERT_TRUE(idle.send(request("GET", "/first")));
  ASSERT_TRUE(idle.read_response());  // now parked, waiting for a next request

  RawClient busy(client_io_);
  ASSERT_TRUE(busy.connect(port_));
  ASSERT_TRUE(busy.send(request("GET", "/slow/inflight")));

  RawClient half(client_io_);  // has sent part of a header when the stop begins
  ASSERT_TRUE(half.connect(port_));
  ASSERT_TRUE(half.send("GET /half HTTP/1.1\r\n"));

  ASSERT_TRUE(wait_until([&] { return handler_.started.load() == 2; }, 2s));
  ASSERT_TRUE(wait_until([&] { return server_->connection_count() == 3; }, 2s));
  std::this_thread::sleep_for(100ms);  // let the server read the partial header

  const auto begin = Clock::now();
  auto stopped = stop(5s);
  stopped_ = true;

  // Idle connections go at once, long before the slow request is done.
  EXPECT_TRUE(idle.wait_closed(2s));
  EXPECT_LT(since(begin), 400ms);

  // New connections are refused once the acceptor is closed.
  EXPECT_TRUE(wait_until(
      [&] {
        RawClient late(client_io_);
        return !late.connect(port_);
      },
      2s));

  // The half-read request is completed and answered, then the connection closes.
  ASSERT_TRUE(half.send("Host: t\r\n\r\n"));
  auto half_reply = half.read_response(3s);
  ASSERT_TRUE(half_reply);
  EXPECT_EQ(half_reply->status, 200u);
  EXPECT_EQ(lower(half_reply->header("connection")), "close");
  EXPECT_TRUE(half.wait_closed(2s));

  // The in-flight request is answered with Connection: close.
  auto reply = busy.read_response(3s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200u);
  EXPECT_EQ(reply->body, "GET /slow/inflight\n");
  EXPECT_EQ(lower(reply->header("connection")), "close");
  EXPECT_TRUE(busy.wait_closed(2s));

  EXPECT_EQ(stopped.wait_for(3s), std::future_status::ready);
  EXPECT_EQ(server_->connection_count(), 0u);
  EXPECT_EQ(handler_.cancelled.load(), 0);
}

TEST_F(HttpServerTest, GracePeriodExpiryClosesWhatRemains) {
  start();
  handler_.slow_delay_ms = 10000;
  RawClient busy(client_io_);
  ASSERT_TRUE(busy.connect(port_));
  ASSERT_TRUE(busy.send(request("GET", "/slow/forever")));
  ASSERT_TRUE(wait_until([&] { return handler_.started.load() == 1; }, 2s));

  const auto begin = Clock::now();
  auto stopped = stop(200ms);
  stopped_ = true;
  EXPECT_TRUE(busy.wait_closed(3s));
  EXPECT_GE(since(begin), 150ms);
  EXPECT_EQ(busy.pending(), "");  // no answer: the handler was cut off
  EXPECT_EQ(stopped.wait_for(3s), std::future_status::ready);
  EXPECT_LT(since(begin), 3000ms);
  EXPECT_EQ(handler_.cancelled.load(), 1);
  EXPECT_EQ(server_->connection_count(), 0u);
}

TEST_F(HttpServerTest, StopWithoutConnectionsReportsAtOnce) {
  start();
  auto stopped = stop(5s);
  stopped_ = true;
  EXPECT_EQ(stopped.wait_for(1s), std::future_status::ready);
}

// Median and total latency of `count` sequential keep-alive requests from a fresh client.
struct Latency {
  std::chrono::nanoseconds p50{};
  std::chrono::nanoseconds total{};
};

std::optional<Latency> measure(asio::io_context& io, std::uint16_t port, int count) {
  RawClient client(io);
  if (!client.connect(port)) return std::nullopt;
  std::vector<std::chrono::nanoseconds> samples;
  const auto begin = Clock::now();
  for (int i = 0; i < count; ++i) {
    const auto t0 = Clock::now();
    if (!client.send(request("GET", "/ping"))) return std::nullopt;
    auto reply = client.read_response(2s);
    if (!reply || reply->status != 200) return std::nullopt;
    samples.push_back(Clock::now() - t0);
  }
  Latency out;
  out.total = Clock::now() - begin;
  std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
  out.p50 = samples[samples.size() / 2];
  return out;
}

TEST_F(HttpServerTest, ThousandIdleConnectionsDoNotSlowOtherClients) {
  constexpr int kIdle = 1000;
  constexpr int kRequests = 200;
  // Both ends of each idle connection live in this process.
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);
  }
  if (limit.rlim_cur < 2 * kIdle + 100) GTEST_SKIP() << "RLIMIT_NOFILE too low: " << limit.rlim_cur;

  start();
  measure(client_io_, port_, 20);  // warm-up: allocations, page faults
  auto baseline = measure(client_io_, port_, kRequests);
  ASSERT_TRUE(baseline);

  const auto open_deadline = Clock::now() + 30s;
  std::vector<std::unique_ptr<RawClient>> idle;
  idle.reserve(kIdle);
  for (int i = 0; i < kIdle && Clock::now() < open_deadline; ++i) {
    auto client = std::make_unique<RawClient>(client_io_);
    ASSERT_TRUE(client->connect(port_)) << "idle connection " << i;
    idle.push_back(std::move(client));
  }
  ASSERT_EQ(idle.size(), static_cast<std::size_t>(kIdle));
  ASSERT_TRUE(wait_until([&] { return server_->connection_count() >= kIdle; }, 10s))
      << server_->connection_count();

  auto loaded = measure(client_io_, port_, kRequests);
  ASSERT_TRUE(loaded);
  const auto us = [](std::chrono::nanoseconds d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  };
  std::printf("baseline p50 %lld us total %lld us; with %d idle: p50 %lld us total %lld us\n",
              static_cast<long long>(us(baseline->p50)), static_cast<long long>(us(baseline->total)), kIdle,
              static_cast<long long>(us(loaded->p50)), static_cast<long long>(us(loaded->total)));
  // A floor keeps scheduler noise on a shared machine from turning microseconds into a failure.
  const auto floor = std::chrono::nanoseconds(100us);
  EXPECT_LT(loaded->p50, 3 * std::max(baseline->p50, floor));
  EXPECT_TRUE(wait_until([&] { return server_->connection_count() == kIdle; }, 2s));
}

}  // namespace
}  // namespace notifyd::http
