// Http2Pool against the in-process TLS HTTP/2 fake (tests/support/fake_h2_server) on 127.0.0.1, port 0:
// multiplexing, growth, GOAWAY, connection loss, TLS failures, idle close and PING. Every wait is bounded.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "tests/support/fake_h2_server.hpp"
#include "tests/support/tls_test_certs.hpp"
#include "transports/http2/pool.hpp"
#include "transports/http2/tls_context.hpp"

namespace notifyd::http2 {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::FakeH2Options;
using test::FakeH2Server;
using test::FakeRequest;
using test::FakeResponse;

class Http2PoolTest : public ::testing::Test {
 protected:
  PoolOptions options_for(const FakeH2Server& server) {
    PoolOptions o;
    o.host = server.host();
    o.port = server.port();
    o.tls = make_client_tls_context(ca_file_.string());
    o.max_connections = 4;
    o.connect_timeout = 3s;
    o.request_timeout = 5s;
    o.log_prefix = "[test]";
    return o;
  }

  // Runs the io_context until `done` holds or `timeout` passes; false on timeout.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      io_.run_one_for(20ms);
    }
    return true;
  }
  void run_for(std::chrono::milliseconds d) {
    auto deadline = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < deadline) io_.run_one_until(deadline);
  }

  // Starts `n` sends at once and waits (bounded) for all of them.
  std::vector<H2Result> send_all(Http2Pool& pool, std::size_t n, std::chrono::milliseconds timeout = 15s) {
    auto results = std::make_shared<std::vector<std::optional<H2Result>>>(n);
    for (std::size_t i = 0; i < n; ++i) {
      H2Request req;
      req.path = "/3/device/" + std::string(64, 'a') + std::to_string(i);
      req.headers = {{"content-type", "application/json"}, {"apns-topic", "com.example"}};
      req.body = "{\"n\":" + std::to_string(i) + "}";
      asio::co_spawn(io_, pool.send(std::move(req)), [results, i](std::exception_ptr e, H2Result r) {
        if (e) r = H2Result{H2Failure::reset, {}, "exception"};
        (*results)[i] = std::move(r);
      });
    }
    auto all_done = [&] {
      return std::all_of(results->begin(), results->end(), [](const auto& r) { return r.has_value(); });
    };
    EXPECT_TRUE(run_until(all_done, timeout)) << "sends did not finish in time";
    std::vector<H2Result> out;
    for (auto& r : *results)
      out.push_back(r ? std::move(*r) : H2Result{H2Failure::timeout, {}, "test timeout"});
    return out;
  }

  H2Result send_one(Http2Pool& pool) { return send_all(pool, 1).front(); }

  void drain(Http2Pool& pool) {
    bool done = false;
    asio::co_spawn(io_, pool.drain(), [&done](std::exception_ptr) { done = true; });
    EXPECT_TRUE(run_until([&] { return done; }));
  }

  test::TempFile ca_file_ = test::write_ca_file();
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
};

::testing::AssertionResult all_ok(const std::vector<H2Result>& results) {
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i].failure != H2Failure::none || results[i].response.status != 200) {
      return ::testing::AssertionFailure()
             << "send " << i << ": " << to_string(results[i].failure) << " status "
             << results[i].response.status << " " << results[i].detail;
    }
  }
  return ::testing::AssertionSuccess();
}

TEST_F(Http2PoolTest, MultiplexesConcurrentSendsOnOneConnection) {
  FakeH2Server server;
  server.set_response_delay(200ms);
  server.set_handler([](const FakeRequest& r) {
    return FakeResponse::json(200, r.body, {{"apns-id", std::to_string(r.stream_id)}});
  });
  Http2Pool pool(io_.get_executor(), options_for(server));
  auto results = send_all(pool, 50);
  EXPECT_TRUE(all_ok(results));
  EXPECT_EQ(results[7].response.body, "{\"n\":7}");
  EXPECT_FALSE(results[7].response.header("apns-id").empty());
  EXPECT_EQ(server.connections_accepted(), 1u);
  EXPECT_GE(server.peak_concurrent_streams(), 40u) << "streams were not multiplexed";
  auto last = server.last_request();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->authority, server.authority());
  EXPECT_EQ(last->method, "POST");
  EXPECT_EQ(last->header("apns-topic"), "com.example");
  EXPECT_EQ(pool.stats().connections, 1u);
  EXPECT_EQ(pool.stats().streams_in_flight, 0u);
}

// An IP literal is connected to without the resolver (every other test here); a name goes through it, with
// SNI and the certificate checked against the name (the test certificate has DNS:localhost).
TEST_F(Http2PoolTest, ConnectsToAHostNameThroughTheResolver) {
  FakeH2Server server;
  auto options = options_for(server);
  options.host = "localhost";
  Http2Pool pool(io_.get_executor(), options);
  EXPECT_TRUE(all_ok(send_all(pool, 3)));
  EXPECT_EQ(server.connections_accepted(), 1u);
  auto last = server.last_request();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->authority, "localhost:" + std::to_string(server.port()));
}

TEST_F(Http2PoolTest, NeverExceedsThePeersStreamLimit) {
  FakeH2Options so;
  so.max_concurrent_streams = 5;
  FakeH2Server server(so);
  server.set_response_delay(100ms);
  auto o = options_for(server);
  o.max_connections = 1;
  Http2Pool pool(io_.get_executor(), o);
  EXPECT_TRUE(all_ok(send_all(pool, 20)));
  EXPECT_EQ(server.connections_accepted(), 1u);
  EXPECT_EQ(server.peak_concurrent_streams(), 5u);
}

TEST_F(Http2PoolTest, GrowsWhenEachConnectionAllowsOneStream) {
  FakeH2Options so;
  so.max_concurrent_streams = 1;
  FakeH2Server server(so);
  server.set_response_delay(300ms);
  auto o = options_for(server);
  o.max_connections = 3;
  Http2Pool pool(io_.get_executor(), o);
  EXPECT_TRUE(all_ok(send_all(pool, 6)));
  EXPECT_GE(server.connections_accepted(), 2u);
  EXPECT_LE(server.connections_accepted(), 3u);
  EXPECT_EQ(server.peak_concurrent_streams(), 1u);
  EXPECT_LE(pool.stats().connections, 3u);
}

// A connection whose send window is spent (the peer holds back WINDOW_UPDATE) cannot carry another body:
// once a send's body waits for window there, further sends with bodies go through a new connection instead
// of queueing behind it, and complete while the first still waits.
TEST_F(Http2PoolTest, GrowsWhenAConnectionsSendWindowIsSpent) {
  FakeH2Options so;
  so.hold_window_updates = true;
  FakeH2Server server(so);
  server.set_handler(
      [](const FakeRequest& r) { return FakeResponse::json(200, std::to_string(r.body.size())); });
  auto o = options_for(server);
  o.max_connections = 2;
  Http2Pool pool(io_.get_executor(), o);

  using Slot = std::shared_ptr<std::optional<H2Result>>;
  auto start_send = [&](std::size_t body_size) {
    auto slot = std::make_shared<std::optional<H2Result>>();
    H2Request req;
    req.path = "/3/device/" + std::string(64, 'b');
    req.body = std::string(body_size, 'x');
    asio::co_spawn(io_, pool.send(std::move(req)), [slot](std::exception_ptr e, H2Result r) {
      if (e) r = H2Result{H2Failure::reset, {}, "exception"};
      *slot = std::move(r);
    });
    return slot;
  };

  // 65,535 bytes (the connection's initial send window) go out; the rest of the body waits for WINDOW_UPDATE.
  constexpr std::size_t kWindow = 65535;
  Slot large = start_send(kWindow + 4465);
  ASSERT_TRUE(run_until([&] { return server.data_bytes_received() >= kWindow; }, 5s))
      << "the large body did not fill the window (" << server.data_bytes_received() << " bytes)";
  run_for(50ms);  // nothing more arrives: the window is spent
  ASSERT_EQ(server.data_bytes_received(), kWindow);
  ASSERT_FALSE(large->has_value()) << to_string((*large)->failure) << " " << (*large)->detail;

  std::vector<Slot> small;
  for (int i = 0; i < 3; ++i) small.push_back(start_send(100));
  const bool small_done = run_until(
      [&] { return std::all_of(small.begin(), small.end(), [](const Slot& s) { return s->has_value(); }); },
      3s);
  EXPECT_TRUE(small_done) << "sends with bodies queued behind the spent window";
  EXPECT_FALSE(large->has_value()) << "the large body still waits for its window";
  EXPECT_EQ(server.connections_accepted(), 2u);
  if (small_done) {
    for (const Slot& s : small) EXPECT_TRUE(all_ok({**s}));
    for (const FakeRequest& r : server.requests()) {
      EXPECT_EQ(r.body.size(), 100u) << "only the small sends are complete yet";
      EXPECT_EQ(r.connection_id, 2u) << "a small send went through the connection with the spent window";
    }
  }

  server.release_window_updates();
  ASSERT_TRUE(run_until([&] { return large->has_value(); }, 5s)) << "WINDOW_UPDATE did not let it finish";
  ASSERT_TRUE(run_until(
      [&] { return std::all_of(small.begin(), small.end(), [](const Slot& s) { return s->has_value(); }); },
      5s));
  EXPECT_TRUE(all_ok({**large}));
  EXPECT_EQ((*large)->response.body, std::to_string(kWindow + 4465));
  auto last = server.last_request();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->connection_id, 1u);
  EXPECT_EQ(server.connections_accepted(), 2u);
}

TEST_F(Http2PoolTest, GoawayMidFlightIsRetriedElsewhere) {
  FakeH2Server server;
  server.set_response_delay(100ms);
  server.goaway_after(3);
  Http2Pool pool(io_.get_executor(), options_for(server));
  EXPECT_TRUE(all_ok(send_all(pool, 12)));
  EXPECT_EQ(server.goaways_sent(), 1u);
  EXPECT_GE(server.connections_accepted(), 2u);
  EXPECT_EQ(pool.stats().goaways, 1u);
  EXPECT_EQ(server.request_count(), 12u) << "refused streams were not processed, their retries were";
}

TEST_F(Http2PoolTest, RefusedStreamIsRetriedAndOtherResetIsReturned) {
  FakeH2Server server;
  Http2Pool pool(io_.get_executor(), options_for(server));
  server.rst_stream(7);  // REFUSED_STREAM
  EXPECT_TRUE(all_ok({send_one(pool)}));
  server.rst_stream(2);  // INTERNAL_ERROR
  auto r = send_one(pool);
  EXPECT_EQ(r.failure, H2Failure::reset) << r.detail;
}

TEST_F(Http2PoolTest, ServerDeathIsConnectionLost) {
  FakeH2Server server;
  server.set_response_delay(5s);
  Http2Pool pool(io_.get_executor(), options_for(server));
  auto results = std::make_shared<std::vector<std::optional<H2Result>>>(3);
  for (std::size_t i = 0; i < 3; ++i) {
    H2Request req;
    req.path = "/slow";
    req.body = "x";
    asio::co_spawn(io_, pool.send(std::move(req)),
                   [results, i](std::exception_ptr, H2Result r) { (*results)[i] = std::move(r); });
  }
  ASSERT_TRUE(run_until([&] { return server.request_count() == 3; }));
  server.close_all_connections();
  ASSERT_TRUE(run_until([&] { return (*results)[0] && (*results)[1] && (*results)[2]; }));
  for (auto& r : *results) EXPECT_EQ(r->failure, H2Failure::connection_lost) << r->detail;
  EXPECT_TRUE(run_until([&] { return pool.stats().connections == 0; }));
}

TEST_F(Http2PoolTest, RequestTimeout) {
  FakeH2Server server;
  server.set_response_delay(3s);
  auto o = options_for(server);
  o.request_timeout = 300ms;
  Http2Pool pool(io_.get_executor(), o);
  auto r = send_one(pool);
  EXPECT_EQ(r.failure, H2Failure::timeout) << r.detail;
  EXPECT_EQ(pool.stats().connections, 1u) << "a slow stream does not kill the connection";
}

// One deadline timer per pool serves every send: those on a stream are cancelled (RST_STREAM), those still
// waiting for a slot leave the queue; both fail as timeouts, and the pool then serves new sends.
TEST_F(Http2PoolTest, RequestTimeoutEndsSendsOnStreamsAndSendsWaitingForASlot) {
  FakeH2Options so;
  so.max_concurrent_streams = 2;
  FakeH2Server server(so);
  server.set_response_delay(3s);
  auto o = options_for(server);
  o.max_connections = 1;
  o.request_timeout = 300ms;
  Http2Pool pool(io_.get_executor(), o);
  auto results = send_all(pool, 5);
  std::size_t on_stream = 0, waiting = 0;
  for (const auto& r : results) {
    ASSERT_EQ(r.failure, H2Failure::timeout) << r.detail;
    on_stream += r.detail == "no response within request_timeout" ? 1 : 0;
    waiting += r.detail == "no stream slot within request_timeout" ? 1 : 0;
  }
  EXPECT_EQ(on_stream, 2u) << "the peer allows 2 streams";
  EXPECT_EQ(waiting, 3u);
  EXPECT_EQ(pool.stats().streams_in_flight, 0u);
  EXPECT_EQ(pool.stats().waiting, 0u);
  server.set_response_delay(0ms);
  EXPECT_TRUE(all_ok({send_one(pool)})) << "the pool serves new sends after the timeouts";
  EXPECT_EQ(server.connections_accepted(), 1u);
}

// Resumes on whatever thread the pool hands the result over; counts the resumptions on `expected`.
asio::awaitable<H2Result> send_noting_thread(Http2Pool& pool, H2Request req, std::thread::id expected,
                                             std::shared_ptr<std::atomic<std::size_t>> on_expected) {
  H2Result r = co_await pool.send(std::move(req));
  if (std::this_thread::get_id() == expected) on_expected->fetch_add(1);
  co_return r;
}

// Callers on another io_context (another thread) than the pool's: each result resumes its caller on the
// caller's own executor, never on the pool's thread.
TEST_F(Http2PoolTest, ResultsResumeCallersOnTheirOwnExecutor) {
  FakeH2Server server;
  server.set_response_delay(50ms);
  Http2Pool pool(io_.get_executor(), options_for(server));
  asio::io_context callers;
  auto guard = asio::make_work_guard(callers);
  std::thread callers_thread([&] { callers.run(); });
  constexpr std::size_t kSends = 20;
  auto results = std::make_shared<std::vector<std::optional<H2Result>>>(kSends);
  auto on_caller_thread = std::make_shared<std::atomic<std::size_t>>(0);
  auto done = std::make_shared<std::atomic<std::size_t>>(0);
  for (std::size_t i = 0; i < kSends; ++i) {
    H2Request req;
    req.path = "/3/device/" + std::to_string(i);
    req.body = "{}";
    asio::co_spawn(callers,
                   send_noting_thread(pool, std::move(req), callers_thread.get_id(), on_caller_thread),
                   [results, done, i](std::exception_ptr, H2Result r) {
                     (*results)[i] = std::move(r);
                     done->fetch_add(1);
                   });
  }
  bool finished = run_until([&] { return done->load() == kSends; });
  guard.reset();
  callers.stop();
  callers_thread.join();
  ASSERT_TRUE(finished) << done->load() << " of " << kSends << " sends finished";
  EXPECT_EQ(on_caller_thread->load(), kSends);
  for (const auto& r : *results) EXPECT_TRUE(all_ok({*r}));
}

TEST_F(Http2PoolTest, AlpnWithoutH2IsConnectFailed) {
  FakeH2Options so;
  so.offer_h2 = false;
  FakeH2Server server(so);
  Http2Pool pool(io_.get_executor(), options_for(server));
  auto r = send_one(pool);
  EXPECT_EQ(r.failure, H2Failure::connect_failed);
  EXPECT_NE(r.detail.find("ALPN"), std::string::npos) << r.detail;
  EXPECT_EQ(server.request_count(), 0u);
}

TEST_F(Http2PoolTest, UntrustedCertificateIsConnectFailed) {
  FakeH2Server server;
  auto o = options_for(server);
  o.tls = make_client_tls_context("");  // system CAs only: the test CA is not trusted
  Http2Pool pool(io_.get_executor(), o);
  auto r = send_one(pool);
  EXPECT_EQ(r.failure, H2Failure::connect_failed);
  EXPECT_NE(r.detail.find("certificate"), std::string::npos) << r.detail;
  EXPECT_EQ(server.request_count(), 0u);
}

TEST_F(Http2PoolTest, NoListenerIsConnectFailed) {
  std::uint16_t port = 0;
  {
    FakeH2Server gone;
    port = gone.port();
  }
  PoolOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.tls = make_client_tls_context(ca_file_.string());
  o.connect_timeout = 2s;
  Http2Pool pool(io_.get_executor(), o);
  auto results = send_all(pool, 3);
  for (auto& r : results) EXPECT_EQ(r.failure, H2Failure::connect_failed) << r.detail;
}

TEST_F(Http2PoolTest, ClientCertificateIsPresented) {
  FakeH2Server server;
  auto cert = test::make_client_cert("com.example.app");
  auto o = options_for(server);
  o.tls = make_client_tls_context(ca_file_.string(), cert.certificate_pem, cert.private_key_pem);
  Http2Pool pool(io_.get_executor(), o);
  EXPECT_TRUE(all_ok({send_one(pool)}));
  auto last = server.last_request();
  ASSERT_TRUE(last);
  EXPECT_TRUE(last->client_cert_presented);
  EXPECT_EQ(last->client_uid, "com.example.app");
}

TEST_F(Http2PoolTest, IdleConnectionIsClosed) {
  FakeH2Server server;
  auto o = options_for(server);
  o.idle_close = 200ms;
  Http2Pool pool(io_.get_executor(), o);
  EXPECT_TRUE(all_ok({send_one(pool)}));
  EXPECT_TRUE(run_until([&] { return pool.stats().connections == 0; }, 3s));
  EXPECT_TRUE(server.wait_for_open_connections(0, 3s));
  EXPECT_TRUE(all_ok({send_one(pool)}));  // reopened on demand
  EXPECT_EQ(pool.stats().connections_opened, 2u);
}

// warm() opens one connection ahead of any send, once; the first send then finds it ready.
TEST_F(Http2PoolTest, WarmOpensOneConnectionAheadOfTheFirstSend) {
  FakeH2Server server;
  Http2Pool pool(io_.get_executor(), options_for(server));
  pool.warm();
  pool.warm();  // while the first is connecting: nothing more
  EXPECT_TRUE(run_until([&] { return server.connections_open() == 1; }, 5s));
  run_for(200ms);  // its handshakes finish
  pool.warm();     // one is open: nothing more
  run_for(50ms);
  EXPECT_EQ(server.connections_accepted(), 1u);
  EXPECT_EQ(server.request_count(), 0u);
  EXPECT_TRUE(all_ok({send_one(pool)}));
  EXPECT_EQ(pool.stats().connections_opened, 1u);
  EXPECT_EQ(server.connections_accepted(), 1u);
}

// A warmed connection no send ever used is closed when idle, like any other.
TEST_F(Http2PoolTest, AnUnusedWarmConnectionIsClosedWhenIdle) {
  FakeH2Server server;
  auto o = options_for(server);
  o.idle_close = 200ms;
  Http2Pool pool(io_.get_executor(), o);
  pool.warm();
  EXPECT_TRUE(run_until([&] { return server.connections_open() == 1; }, 5s));
  EXPECT_TRUE(run_until([&] { return pool.stats().connections == 0 && server.connections_open() == 0; }, 5s));
  EXPECT_EQ(server.request_count(), 0u);
}

TEST_F(Http2PoolTest, MinConnectionsAreKeptWhenIdle) {
  FakeH2Server server;
  auto o = options_for(server);
  o.idle_close = 100ms;
  o.min_connections = 1;
  Http2Pool pool(io_.get_executor(), o);
  EXPECT_TRUE(all_ok({send_one(pool)}));
  run_for(600ms);
  EXPECT_EQ(pool.stats().connections, 1u);
  EXPECT_EQ(server.connections_open(), 1u);
}

TEST_F(Http2PoolTest, PingKeepsAnIdleConnectionAlive) {
  FakeH2Server server;
  auto o = options_for(server);
  o.ping_interval = 50ms;
  o.ping_timeout = 300ms;
  Http2Pool pool(io_.get_executor(), o);
  EXPECT_TRUE(all_ok({send_one(pool)}));
  run_for(700ms);
  EXPECT_GE(server.pings_received(), 3u);
  EXPECT_EQ(pool.stats().connections, 1u);
  EXPECT_TRUE(all_ok({send_one(pool)}));
  EXPECT_EQ(server.connections_accepted(), 1u);
}

TEST_F(Http2PoolTest, UnansweredPingClosesTheConnection) {
  FakeH2Options so;
  so.answer_pings = false;
  FakeH2Server server(so);
  auto o = options_for(server);
  o.ping_interval = 50ms;
  o.ping_timeout = 200ms;
  Http2Pool pool(io_.get_executor(), o);
  EXPECT_TRUE(all_ok({send_one(pool)}));
  EXPECT_TRUE(run_until([&] { return pool.stats().connections == 0; }, 3s));
  EXPECT_TRUE(server.wait_for_open_connections(0, 3s));
}

TEST_F(Http2PoolTest, DrainFinishesInFlightThenRefusesNewSends) {
  FakeH2Server server;
  server.set_response_delay(200ms);
  Http2Pool pool(io_.get_executor(), options_for(server));
  auto results = std::make_shared<std::vector<std::optional<H2Result>>>(2);
  for (std::size_t i = 0; i < 2; ++i) {
    H2Request req;
    req.path = "/x";
    asio::co_spawn(io_, pool.send(std::move(req)),
                   [results, i](std::exception_ptr, H2Result r) { (*results)[i] = std::move(r); });
  }
  ASSERT_TRUE(run_until([&] { return server.request_count() == 2 || server.connections_open() == 1; }));
  ASSERT_TRUE(run_until([&] { return pool.stats().streams_in_flight == 2; }));
  drain(pool);
  ASSERT_TRUE((*results)[0] && (*results)[1]);
  EXPECT_TRUE(all_ok({*(*results)[0], *(*results)[1]}));
  EXPECT_TRUE(server.wait_for_open_connections(0, 3s));
  auto r = send_one(pool);
  EXPECT_EQ(r.failure, H2Failure::shutting_down);
}

}  // namespace
}  // namespace notifyd::http2
