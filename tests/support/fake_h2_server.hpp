#pragma once
// FakeH2Server: an in-process HTTP/2 server over TLS (ALPN h2) on 127.0.0.1, port 0, for APNs/FCM tests and
// benchmarks (Envoy's fake_upstream model). Owns its io_context and thread(s); nghttp2 server sessions driven
// sans-I/O (mem_recv/mem_send), one strand per connection. The handler runs on a server thread (concurrently
// with itself only if options.threads > 1); every other method is thread-safe and may be called from the
// test. Setup failures (bind, TLS context) throw std::runtime_error from the constructor; waits return
// ::testing::AssertionResult and are always bounded by a timeout.
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace notifyd::test {

using FakeHeaders = std::vector<std::pair<std::string, std::string>>;

struct FakeRequest {
  std::string method{};     // ":method"
  std::string path{};       // ":path"
  std::string authority{};  // ":authority"
  std::string scheme{};     // ":scheme"
  FakeHeaders headers{};    // regular headers as received (lowercase names), in order
  std::string body{};
  std::uint64_t connection_id = 0;  // 1, 2, ... in accept order
  std::int32_t stream_id = 0;
  std::size_t open_streams = 0;  // streams open on this connection when this one began (itself included)
  bool client_cert_presented = false;
  std::string client_subject{};  // the client certificate's subject (RFC 2253), "" without one
  std::string client_uid{};      // its subject UID (the APNs topic), "" if absent
  std::chrono::steady_clock::time_point received_at{};

  std::string header(std::string_view name) const;  // first value, case-insensitive; "" when absent
  bool has_header(std::string_view name) const;
};

struct FakeResponse {
  int status = 200;
  FakeHeaders headers{};  // lowercase names; ":status" is added
  std::string body{};
  std::optional<std::chrono::milliseconds> delay{};  // overrides set_response_delay() for this response
  std::optional<std::uint32_t> rst_stream{};         // reset the stream with this code instead of answering

  static FakeResponse json(int status, std::string body, FakeHeaders headers = {});
  static FakeResponse reset(std::uint32_t error_code);  // e.g. 7 = REFUSED_STREAM, 2 = INTERNAL_ERROR
};

enum class ClientCertPolicy {
  kIgnore,      // no CertificateRequest: clients send no certificate
  kAcceptAny,   // ask for one; if presented, record subject/UID without chain verification (self-signed ok)
  kRequireAny,  // a certificate is required, not verified (handshake fails without one)
  kRequireTrusted,  // required and must chain to client_ca_pem (handshake fails otherwise)
};

struct FakeH2Options {
  bool offer_h2 = true;  // false: the ALPN callback selects nothing (the server still speaks h2 if the client
                         // insists, so a client that ignores ALPN is caught by its own test)
  std::string certificate_pem{};  // empty: shared_test_pki().server
  std::string private_key_pem{};
  ClientCertPolicy client_cert = ClientCertPolicy::kAcceptAny;
  std::string client_ca_pem{};                  // for kRequireTrusted; empty: shared_test_pki().ca
  std::uint32_t max_concurrent_streams = 1000;  // SETTINGS_MAX_CONCURRENT_STREAMS of new connections
  std::uint32_t initial_window_size = 65535;    // SETTINGS_INITIAL_WINDOW_SIZE
  std::int32_t connection_window_size = 65535;  // the server's receive window for the whole connection
  std::size_t threads = 1;                      // io_context threads
  std::size_t log_capacity = 10000;  // requests kept in full (oldest dropped); counts are always exact
  bool answer_pings = true;          // false: PINGs are never acknowledged (dead-peer tests)
  // true: received DATA is not acknowledged with WINDOW_UPDATE until release_window_updates(), so the
  // client's send windows stay spent (flow-control-bound tests)
  bool hold_window_updates = false;
};

class FakeH2Server {
 public:
  using Handler = std::function<FakeResponse(const FakeRequest&)>;

  explicit FakeH2Server(FakeH2Options options = {});  // listening and running on return
  ~FakeH2Server();                                    // closes every connection, joins the threads
  FakeH2Server(const FakeH2Server&) = delete;
  FakeH2Server& operator=(const FakeH2Server&) = delete;

  std::uint16_t port() const;
  std::string host() const { return "127.0.0.1"; }
  std::string authority() const;  // "127.0.0.1:<port>"
  std::string url() const;        // "https://127.0.0.1:<port>"

  // Default handler: 200 with an empty body. Replacing it affects requests completing afterwards.
  void set_handler(Handler handler);

  // ---- fault knobs (take effect for requests completing after the call) ----
  // SETTINGS_MAX_CONCURRENT_STREAMS: for new connections, and a SETTINGS frame on every open one.
  void set_max_concurrent_streams(std::uint32_t n);
  // One-shot, server-wide: the connection that receives the n-th request counted from this call sends
  // GOAWAY(last_stream_id = that request's stream, error_code). That request and those below it are answered;
  // streams above it are reset with REFUSED_STREAM, unprocessed (not logged, no handler). The connection
  // closes once its remaining streams are done. n = 0 disarms.
  void goaway_after(std::uint64_t n, std::uint32_t error_code = 0);
  // The next k requests are answered with RST_STREAM(error_code) instead of the handler (they are logged).
  void rst_stream(std::uint32_t error_code, std::uint64_t k = 1);
  // Every response (unless FakeResponse::delay says otherwise) is sent this long after the request; timers
  // only, other streams proceed meanwhile.
  void set_response_delay(std::chrono::milliseconds delay);
  // One-shot, server-wide: the connection that receives the n-th request counted from this call is closed
  // abruptly (TCP, no GOAWAY) without answering it or any other open stream; the request is logged.
  void close_connection_after(std::uint64_t n);
  // Immediate actions on every open connection.
  void send_goaway_to_all(std::uint32_t error_code = 0);  // last_stream_id = last stream seen
  void close_all_connections();                           // abrupt TCP close
  void set_answer_pings(bool answer);
  // With FakeH2Options::hold_window_updates: every open connection acknowledges the DATA it held back
  // (WINDOW_UPDATE as nghttp2 sends it) and, from then on, acknowledges DATA as it arrives. No effect
  // otherwise.
  void release_window_updates();

  // ---- observation ----
  std::uint64_t request_count() const;  // completed requests received (logged), since start or clear_log()
  // When the latest of them was counted (a benchmark polls request_count() instead of waiting in
  // wait_until(), whose waiter every request wakes, and takes its end time from here).
  std::chrono::steady_clock::time_point last_request_at() const;
  std::vector<FakeRequest> requests() const;                    // the retained log, oldest first
  std::vector<FakeRequest> last_requests(std::size_t n) const;  // up to n, oldest first
  std::optional<FakeRequest> last_request() const;
  void clear_log();  // forgets the log and zeroes request_count()

  std::uint64_t connections_accepted() const;  // TCP connections accepted
  std::uint64_t connections_open() const;      // currently open (TLS done or not)
  std::uint64_t handshakes_failed() const;     // TLS handshake failures (e.g. missing/untrusted client cert)
  std::uint64_t connections_without_h2() const;   // TLS done but ALPN did not select h2
  std::uint32_t peak_concurrent_streams() const;  // max streams open at once on any one connection
  void reset_peak_concurrent_streams();
  std::uint64_t goaways_sent() const;
  std::uint64_t rst_streams_sent() const;     // every RST_STREAM sent, by a knob or by nghttp2 itself
  std::uint64_t pings_received() const;       // PING frames without ACK
  std::uint64_t data_bytes_received() const;  // DATA payload (request bodies) on every connection, in total

  // ---- bounded waits ----
  ::testing::AssertionResult wait_for_requests(std::uint64_t n,
                                               std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ::testing::AssertionResult wait_for_connections(
      std::uint64_t accepted, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ::testing::AssertionResult wait_for_open_connections(
      std::uint64_t open, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits until `predicate` holds; it is re-evaluated after every server event (request, connection, frame)
  // and every 50 ms. `what` names the condition in the failure message.
  ::testing::AssertionResult wait_until(const std::function<bool()>& predicate,
                                        std::chrono::milliseconds timeout,
                                        std::string_view what = "condition");

  struct State;  // implementation detail (io_context, TLS context, log, knobs), outlives every connection

 private:
  std::unique_ptr<State> state_;
};

}  // namespace notifyd::test
