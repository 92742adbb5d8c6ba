// CallbackSender against real HTTP/1.1 receivers on 127.0.0.1 (FakeHttpServer): the signed form POST, the
// official python3-twilio RequestValidator accepting it, retries (503, 429 + Retry-After), giving up, a slow
// receiver not delaying enqueue() or other receivers, queue overflow and a bounded drain(). Senders run on a
// test-owned io_context; every wait is bounded.
#include "daemon/fanout/callbacks.hpp"

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/fanout/twilio_signature.hpp"
#include "daemon/model/log.hpp"
#include "tests/support/fake_http_server.hpp"
#include "tests/support/run_coroutine.hpp"

namespace notifyd::fanout {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::FakeHttpRequest;
using test::FakeHttpResponse;
using test::FakeHttpServer;
using test::IoThreads;
using Clock = std::chrono::steady_clock;

constexpr const char* kAccountSid = "AC0123456789abcdef0123456789abcdef";
constexpr const char* kAuthToken = "f00dfeedf00dfeedf00dfeedf00dfeed";
constexpr const char* kNotificationSid = "NT0123456789abcdef0123456789abcdef";
constexpr const char* kPython = "/usr/bin/python3";

Callback make_callback(std::string url, std::string binding_sid = "BS0123456789abcdef0123456789abcdef") {
  Callback c;
  c.url = std::move(url);
  c.auth_token = kAuthToken;
  c.account_sid = kAccountSid;
  c.params.notification_sid = kNotificationSid;
  c.params.binding_sid = std::move(binding_sid);
  c.params.identity = "alice";
  c.params.binding_type = "apn";
  c.params.status = CallbackStatus::delivered;
  return c;
}

std::string binding(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "BS%032d", i);
  return buf;
}

// Options that keep tests fast: short backoff and timeouts.
CallbackOptions fast_options() {
  CallbackOptions o;
  o.initial_backoff = 50ms;
  o.max_backoff = 200ms;
  o.connect_timeout = 2s;
  o.request_timeout = 5s;
  return o;
}

::testing::AssertionResult eventually(const std::function<bool()>& predicate,
                                      std::chrono::milliseconds timeout, std::string_view what) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (predicate()) return ::testing::AssertionSuccess();
    std::this_thread::sleep_for(5ms);
  }
  if (predicate()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "timed out after " << timeout.count() << " ms waiting for " << what;
}

// tests/e2e/check_signature.py, found from this file's path (CMake compiles it by absolute path).
std::filesystem::path check_signature_script() {
  return std::filesystem::path(NOTIFYD_SOURCE_DIR) / "tests" / "e2e" / "check_signature.py";
}

// Runs tests/e2e/check_signature.py: 0 valid, 1 invalid, 77 no twilio module, -1 could not run.
int python_validate(const std::string& url, const test::FakeHttpFields& form, const std::string& signature) {
  boost::json::array pairs;
  for (const auto& [k, v] : form)
    pairs.push_back(boost::json::array{boost::json::string(k), boost::json::string(v)});
  const auto dir = std::filesystem::temp_directory_path();
  const auto params_file = dir / ("callbacks_test_params_" + std::to_string(::getpid()) + ".json");
  {
    std::ofstream out(params_file);
    out << boost::json::serialize(pairs);
  }
  const std::string script = check_signature_script().string();
  // URL and signature are single-quoted for the shell; neither contains a quote here.
  const std::string command = std::string(kPython) + " " + script + " --token " + kAuthToken + " '" + url +
                              "' @" + params_file.string() + " '" + signature + "'";
  const int status = std::system(command.c_str());
  std::filesystem::remove(params_file);
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

bool python_twilio_available() {
  if (::access(kPython, X_OK) != 0 || !std::filesystem::exists(check_signature_script())) return false;
  const std::string command = std::string(kPython) + " -c 'import twilio.request_validator' 2>/dev/null";
  return std::system(command.c_str()) == 0;
}

class CallbacksTest : public ::testing::Test {
 protected:
  IoThreads io_{2};
  FakeHttpServer server_;
};

TEST_F(CallbacksTest, SignedFormPost) {
  CallbackSender sender(io_.executor(), fast_options());
  const std::string url = server_.url() + "/hooks/status?tenant=a%20b&x=1";
  Callback c = make_callback(url);
  c.params.identity = "zoë +1 & co";
  c.params.status = CallbackStatus::failed;
  c.params.error_code = "52134";
  c.params.provider_status = "410";
  ASSERT_TRUE(sender.enqueue(c));
  ASSERT_TRUE(server_.wait_for_requests(1));
  ASSERT_TRUE(eventually([&] { return sender.stats().sent == 1; }, 5s, "sent == 1"));

  const auto req = *server_.last_request();
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/hooks/status?tenant=a%20b&x=1");
  EXPECT_TRUE(req.header("Content-Type").starts_with("application/x-www-form-urlencoded"));
  EXPECT_EQ(req.header("User-Agent"), "notifyd");
  EXPECT_EQ(req.form(), (test::FakeHttpFields{{"AccountSid", kAccountSid},
                                              {"NotificationSid", kNotificationSid},
                                              {"BindingSid", "BS0123456789abcdef0123456789abcdef"},
                                              {"Identity", "zoë +1 & co"},
                                              {"BindingType", "apn"},
                                              {"Status", "failed"},
                                              {"ErrorCode", "52134"},
                                              {"ProviderStatus", "410"}}));
  // The receiver's view: the URL it was called on and the decoded fields.
  const std::string signature = req.header("X-Twilio-Signature");
  EXPECT_EQ(signature, twilio_signature(kAuthToken, url, req.form()));
  EXPECT_NE(signature, twilio_signature("another-token", url, req.form()));

  const auto stats = sender.stats();
  EXPECT_EQ(stats.queued, 1u);
  EXPECT_EQ(stats.sent, 1u);
  EXPECT_EQ(stats.failed + stats.retried + stats.dropped, 0u);
  EXPECT_TRUE(io_.run(sender.drain(2s)));
}

TEST_F(CallbacksTest, OfficialTwilioValidatorAcceptsTheSignature) {
  if (!python_twilio_available())
    GTEST_SKIP() << kPython << " with the twilio module (or check_signature.py) is not available";
  CallbackSender sender(io_.executor(), fast_options());
  const std::string url = server_.url() + "/status?account=42";
  Callback c = make_callback(url);
  c.params.identity = "zoë user+1";
  c.params.status = CallbackStatus::expired;
  c.params.error_code = "30008";
  ASSERT_TRUE(sender.enqueue(c));
  ASSERT_TRUE(server_.wait_for_requests(1));
  const auto req = *server_.last_request();
  const std::string signature = req.header("X-Twilio-Signature");

  EXPECT_EQ(python_validate(url, req.form(), signature), 0) << "RequestValidator rejected " << signature;
  // The URL is part of what is signed: another port (here none, i.e. 80) must fail.
  const std::string no_port = "http://127.0.0.1/status?account=42";
  EXPECT_EQ(python_validate(no_port, req.form(), signature), 1) << "a URL it was not signed for must fail";
  // A tampered field or a wrong signature must be rejected, or the check above proves nothing.
  auto tampered = req.form();
  tampered[0].second = "AC_someone_else";
  EXPECT_EQ(python_validate(url, tampered, signature), 1);
  EXPECT_EQ(python_validate(url, req.form(), "AAAAAAAAAAAAAAAAAAAAAAAAAAA="), 1);
  EXPECT_TRUE(io_.run(sender.drain(2s)));
}

TEST_F(CallbacksTest, A503IsRetriedAndDeliveredOnce) {
  std::atomic<int> calls{0};
  server_.set_handler([&](const FakeHttpRequest&) {
    FakeHttpResponse r;
    r.status = calls++ == 0 ? 503 : 200;
    return r;
  });
  CallbackSender sender(io_.executor(), fast_options());
  ASSERT_TRUE(sender.enqueue(make_callback(server_.url() + "/cb")));
  ASSERT_TRUE(eventually([&] { return sender.stats().sent == 1; }, 5s, "sent == 1"));
  std::this_thread::sleep_for(300ms);  // several backoff periods: nothing more may arrive
  EXPECT_EQ(server_.request_count(), 2u);
  const auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].body, reqs[1].body);
  EXPECT_EQ(reqs[0].header("X-Twilio-Signature"), reqs[1].header("X-Twilio-Signature"));
  const auto stats = sender.stats();
  EXPECT_EQ(stats.retried, 1u);
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.pending, 0u);
}

TEST_F(CallbacksTest, A429WaitsForRetryAfter) {
  std::atomic<int> calls{0};
  server_.set_handler([&](const FakeHttpRequest&) {
    FakeHttpResponse r;
    if (calls++ == 0) {
      r.status = 429;
      r.headers = {{"Retry-After", "1"}};
    }
    return r;
  });
  CallbackSender sender(io_.executor(), fast_options());  // backoff alone would retry after ≤ 50 ms
  ASSERT_TRUE(sender.enqueue(make_callback(server_.url() + "/cb")));
  ASSERT_TRUE(server_.wait_for_requests(2, 5s));
  const auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_GE(reqs[1].received_at - reqs[0].received_at, 950ms);
  ASSERT_TRUE(eventually([&] { return sender.stats().sent == 1; }, 2s, "sent == 1"));
}

TEST_F(CallbacksTest, A4xxGivesUpAndAttemptsAreBounded) {
  server_.set_handler([](const FakeHttpRequest& req) {
    FakeHttpResponse r;
    r.status = req.path == "/gone" ? 404 : 500;
    return r;
  });
  auto options = fast_options();
  options.max_attempts = 3;
  CallbackSender sender(io_.executor(), options);
  ASSERT_TRUE(sender.enqueue(make_callback(server_.url() + "/gone", binding(1))));
  ASSERT_TRUE(sender.enqueue(make_callback(server_.url() + "/broken", binding(2))));
  ASSERT_TRUE(eventually([&] { return sender.stats().failed == 2; }, 5s, "failed == 2"));
  std::this_thread::sleep_for(300ms);
  const auto reqs = server_.requests();
  EXPECT_EQ(std::count_if(reqs.begin(), reqs.end(), [](const auto& r) { return r.path == "/gone"; }), 1);
  EXPECT_EQ(std::count_if(reqs.begin(), reqs.end(), [](const auto& r) { return r.path == "/broken"; }), 3);
  const auto stats = sender.stats();
  EXPECT_EQ(stats.retried, 2u);
  EXPECT_EQ(stats.sent, 0u);
}

TEST_F(CallbacksTest, ConnectionFailureIsRetried) {
  std::uint16_t dead_port = 0;
  {
    FakeHttpServer gone;  // a port nothing listens on once it is destroyed
    dead_port = gone.port();
  }
  auto options = fast_options();
  options.max_attempts = 2;
  CallbackSender sender(io_.executor(), options);
  ASSERT_TRUE(sender.enqueue(make_callback("http://127.0.0.1:" + std::to_string(dead_port) + "/cb")));
  ASSERT_TRUE(eventually([&] { return sender.stats().failed == 1; }, 5s, "failed == 1"));
  EXPECT_EQ(sender.stats().retried, 1u);
}

TEST_F(CallbacksTest, InvalidUrlsAreRefused) {
  CallbackSender sender(io_.executor(), fast_options());
  EXPECT_FALSE(sender.enqueue(make_callback("ftp://127.0.0.1/cb")));
  EXPECT_FALSE(sender.enqueue(make_callback("/relative")));
  EXPECT_FALSE(sender.enqueue(make_callback("http://user:pass@127.0.0.1/cb")));
  EXPECT_FALSE(sender.enqueue(make_callback("http:///nohost")));
  const auto stats = sender.stats();
  EXPECT_EQ(stats.failed, 4u);
  EXPECT_EQ(stats.queued, 0u);
}

TEST_F(CallbacksTest, SlowReceiverDelaysNeitherEnqueueNorOtherReceivers) {
  FakeHttpServer slow;
  slow.set_response_delay(3s);
  CallbackSender sender(io_.executor(), fast_options());  // 8 senders, at most 4 per receiver

  const auto start = Clock::now();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(sender.enqueue(make_callback(slow.url() + "/slow", binding(i))));
  ASSERT_TRUE(slow.wait_for_requests(4, 2s));  // four in flight, two waiting for a slot
  const auto before_fast = Clock::now();
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(sender.enqueue(make_callback(server_.url() + "/fast", binding(100 + i))));
  const auto enqueued = Clock::now();
  EXPECT_LT(enqueued - before_fast, 100ms) << "enqueue() waited";

  ASSERT_TRUE(server_.wait_for_requests(20, 2s));
  ASSERT_TRUE(eventually([&] { return sender.stats().sent >= 20; }, 2s, "fast receiver's callbacks sent"));
  EXPECT_LT(Clock::now() - start, 2500ms) << "the fast receiver waited for the slow one";
  EXPECT_LT(slow.request_count(), 6u);  // the slow receiver's callbacks are still being answered

  ASSERT_TRUE(eventually([&] { return sender.stats().sent == 26; }, 10s, "all callbacks sent"));
  EXPECT_EQ(slow.request_count(), 6u);
  EXPECT_TRUE(io_.run(sender.drain(2s)));
}

TEST_F(CallbacksTest, QueueOverflowDropsTheOldest) {
  server_.set_response_delay(400ms);
  auto options = fast_options();
  options.senders = 1;
  options.queue_capacity = 3;
  CallbackSender sender(io_.executor(), options);
  ASSERT_TRUE(sender.enqueue(make_callback(server_.url() + "/cb", binding(1))));
  ASSERT_TRUE(server_.wait_for_requests(1, 2s));  // binding 1 is in flight, not waiting
  for (int i = 2; i <= 6; ++i) ASSERT_TRUE(sender.enqueue(make_callback(server_.url() + "/cb", binding(i))));
  auto stats = sender.stats();
  EXPECT_EQ(stats.dropped, 2u);  // 2 and 3 made room for 5 and 6
  EXPECT_EQ(stats.pending, 3u);
  EXPECT_EQ(stats.queued, 6u);

  ASSERT_TRUE(eventually([&] { return sender.stats().sent == 4; }, 5s, "sent == 4"));
  std::vector<std::string> received;
  for (const auto& r : server_.requests()) received.push_back(r.form_value("BindingSid"));
  EXPECT_EQ(received, (std::vector<std::string>{binding(1), binding(4), binding(5), binding(6)}));
}

TEST_F(CallbacksTest, DrainDeliversWhatIsQueued) {
  CallbackSender sender(io_.executor(), fast_options());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(sender.enqueue(make_callback(server_.url() + "/cb", binding(i))));
  EXPECT_TRUE(io_.run(sender.drain(5s)));
  EXPECT_EQ(server_.request_count(), 50u);
  EXPECT_EQ(sender.stats().sent, 50u);
  EXPECT_FALSE(sender.enqueue(make_callback(server_.url() + "/cb")));  // stopped
  EXPECT_EQ(sender.stats().dropped, 1u);
}

TEST_F(CallbacksTest, DrainIsBounded) {
  server_.set_response_delay(10s);
  auto options = fast_options();
  options.senders = 1;
  options.request_timeout = 1s;
  CallbackSender sender(io_.executor(), options);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(sender.enqueue(make_callback(server_.url() + "/cb", binding(i))));
  ASSERT_TRUE(server_.wait_for_requests(1, 2s));
  const auto start = Clock::now();
  EXPECT_FALSE(io_.run(sender.drain(200ms)));
  const auto took = Clock::now() - start;
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 2500ms);  // 200 ms + at most request_timeout for the one in flight
  const auto stats = sender.stats();
  EXPECT_EQ(stats.sent, 0u);
  EXPECT_EQ(stats.dropped, 3u);  // two waiting, one timed out in flight and not retried
  EXPECT_EQ(stats.pending, 0u);
  EXPECT_EQ(stats.in_flight, 0u);
}

TEST_F(CallbacksTest, LogsCarryIdsButNeverTheToken) {
  auto log = module_logger("callbacks");
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  const auto old_level = log->level();
  log->sinks().push_back(sink);
  log->set_level(spdlog::level::debug);
  {
    server_.set_handler([](const FakeHttpRequest& req) {
      FakeHttpResponse r;
      r.status = req.path == "/retry" ? 503 : 403;
      return r;
    });
    auto options = fast_options();
    options.max_attempts = 2;
    options.queue_capacity = 1;
    options.senders = 1;
    CallbackSender sender(io_.executor(), options);
    ASSERT_TRUE(sender.enqueue(make_callback(server_.url() + "/retry?secret=q", binding(1))));
    ASSERT_TRUE(sender.enqueue(make_callback(server_.url() + "/forbidden", binding(2))));
    ASSERT_TRUE(sender.enqueue(make_callback(server_.url() + "/forbidden", binding(3))));
    ASSERT_TRUE(
        eventually([&] { return sender.stats().failed + sender.stats().dropped >= 3; }, 5s, "outcomes"));
    io_.run(sender.drain(1s));
  }
  log->sinks().pop_back();
  log->set_level(old_level);
  const std::string text = captured.str();
  EXPECT_NE(text.find(std::string("[") + kNotificationSid + "][" + binding(1) + "]"), std::string::npos)
      << text;
  EXPECT_EQ(text.find(kAuthToken), std::string::npos) << text;
  EXPECT_EQ(text.find("secret=q"), std::string::npos) << "a callback URL's query was logged: " << text;
}

}  // namespace
}  // namespace notifyd::fanout
