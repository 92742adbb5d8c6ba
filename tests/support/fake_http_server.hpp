#pragma once
// FakeHttpServer: an in-process HTTP/1.1 server (Beast) on 127.0.0.1, port 0, plain or TLS, keep-alive, for
// the SMS gateway, the OAuth2 token endpoint and delivery-callback receivers (Envoy's fake_upstream model).
// Owns its io_context and one thread; the handler runs on that thread (never concurrently with itself) and
// must not block for long; a handler that throws fails the test (ADD_FAILURE) and its request gets a 500.
// Every other method is thread-safe. Setup failures throw std::runtime_error from the constructor; waits
// return
// ::testing::AssertionResult and are always bounded by a timeout.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace notifyd::test {

using FakeHttpFields = std::vector<std::pair<std::string, std::string>>;

struct FakeHttpRequest {
  std::string method{};      // "POST"
  std::string target{};      // "/2010-04-01/Accounts/AC.../Messages.json?x=y"
  std::string path{};        // target without the query
  std::string query{};       // after '?', "" when none
  FakeHttpFields headers{};  // as received, in order
  std::string body{};
  std::uint64_t connection_id = 0;  // 1, 2, ... in accept order
  std::uint64_t request_on_connection =
      0;  // 1 for the first request of a connection (keep-alive shows as > 1)
  std::chrono::steady_clock::time_point received_at{};

  std::string header(std::string_view name) const;  // first value, case-insensitive; "" when absent
  bool has_header(std::string_view name) const;
  // The application/x-www-form-urlencoded body, decoded, in order (repeated keys repeat); filled by the
  // server when the Content-Type says so (or is absent), else empty.
  FakeHttpFields form_fields{};

  const FakeHttpFields& form() const { return form_fields; }
  const std::string& form_value(std::string_view key) const;         // first value, "" when absent
  std::vector<std::string> form_values(std::string_view key) const;  // all values (MediaUrl)
  // The Authorization: Basic credentials decoded, or nullopt.
  std::optional<std::pair<std::string, std::string>> basic_auth() const;
};

struct FakeHttpResponse {
  unsigned status = 200;
  FakeHttpFields headers{};
  std::string body{};
  std::string content_type{};                        // sent when non-empty
  std::optional<std::chrono::milliseconds> delay{};  // overrides set_response_delay()
  bool close = false;                                // answer with "Connection: close" and close afterwards

  static FakeHttpResponse json(unsigned status, std::string body, FakeHttpFields headers = {});
};

struct FakeHttpOptions {
  bool tls = false;               // https with shared_test_pki().server unless certificate_pem is set
  std::string certificate_pem{};  // (TLS only)
  std::string private_key_pem{};
  std::size_t body_limit = 2 * 1024 * 1024;
  std::chrono::milliseconds idle_timeout{30000};  // keep-alive connections idle this long are closed
  std::size_t log_capacity = 10000;  // requests kept in full (oldest dropped); counts are always exact
};

class FakeHttpServer {
 public:
  using Handler = std::function<FakeHttpResponse(const FakeHttpRequest&)>;

  explicit FakeHttpServer(FakeHttpOptions options = {});  // listening and running on return
  ~FakeHttpServer();                                      // closes every connection, joins the thread
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  std::uint16_t port() const;
  std::string host() const { return "127.0.0.1"; }
  std::string url() const;  // "http://127.0.0.1:<port>" or "https://..."

  // Default handler: 200, empty body. Replacing it affects requests read afterwards.
  void set_handler(Handler handler);
  void set_response_delay(std::chrono::milliseconds delay);  // timers only; other connections proceed
  void close_all_connections();                              // abrupt TCP close of every open connection

  std::uint64_t request_count() const;
  std::vector<FakeHttpRequest> requests() const;  // the retained log, oldest first
  std::vector<FakeHttpRequest> last_requests(std::size_t n) const;
  std::optional<FakeHttpRequest> last_request() const;
  void clear_log();  // forgets the log and zeroes request_count()
  std::uint64_t connections_accepted() const;
  std::uint64_t connections_open() const;

  ::testing::AssertionResult wait_for_requests(std::uint64_t n,
                                               std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ::testing::AssertionResult wait_until(const std::function<bool()>& predicate,
                                        std::chrono::milliseconds timeout,
                                        std::string_view what = "condition");

  // ---- ready-made handlers ----
  // A Twilio Messages API: POST /2010-04-01/Accounts/{account_sid}/Messages.json with Basic auth
  // account_sid:auth_token → 201 with a Message JSON (sid SM…, status "queued", to, body); wrong credentials
  // → 401 (code 20003); no To → 400 (code 21604); other paths → 404.
  static Handler twilio_messages(std::string account_sid, std::string auth_token);
  // An OAuth2 token endpoint: POST form
  // grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT> → 200 {"access_token":
  // "<access_token>", "expires_in": <expires_in>, "token_type": "Bearer"}; a missing assertion or another
  // grant_type → 400 {"error": "invalid_grant"}. The JWT signature is not checked.
  static Handler oauth_token(std::string access_token = "ya29.fake-access-token", int expires_in = 3599);

  // Percent-decoding of application/x-www-form-urlencoded ('+' is a space).
  static FakeHttpFields parse_form(std::string_view body);

  struct State;  // implementation detail

 private:
  std::unique_ptr<State> state_;
};

}  // namespace notifyd::test
