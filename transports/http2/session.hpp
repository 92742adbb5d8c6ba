#pragma once
// Session: one HTTP/2 client session over nghttp2, sans-I/O (nghttp2_session_mem_recv / mem_send).
// Owned by one Connection (or a test) and used from one thread/strand at a time; it never touches a socket.
// Failures are values: every submitted stream completes exactly once through its callback with an H2Result.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "transports/http2/message.hpp"
#include "transports/http2/session_memory.hpp"

struct nghttp2_session;

namespace spdlog {
class logger;
}

namespace notifyd::http2 {

struct SessionOptions {
  std::string authority;  // ":authority"
  std::string scheme = "https";
  std::string log_prefix;                            // e.g. "[C3]" for log lines
  std::uint32_t local_window = 1U << 20;             // our receive window (stream and connection)
  std::size_t max_response_body = 4U * 1024 * 1024;  // larger: the stream is reset (reset failure)
  // The response headers kept in H2Response::headers (lowercase names); empty: all of them. A provider's
  // client reads one or two (retry-after); copying the others (APNs echoes apns-id) cost two allocations a
  // response.
  std::vector<std::string> kept_response_headers;
};

struct SubmitResult {
  std::int32_t stream_id = 0;  // > 0 when admitted
  H2Failure failure = H2Failure::none;
  std::string detail;
  explicit operator bool() const { return stream_id > 0; }
};

class Session {
 public:
  // The result is the completion's to move from (a reference: it is not moved once more on its way in).
  using Completion = std::function<void(std::int32_t stream_id, H2Result&& result)>;

  // Queues the client preface and our SETTINGS (ENABLE_PUSH 0, windows). Throws std::bad_alloc only.
  explicit Session(SessionOptions options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // True while a new stream may be opened: no GOAWAY either way, not failed, and fewer open streams
  // than the peer's SETTINGS_MAX_CONCURRENT_STREAMS.
  bool can_submit() const;
  // Opens a stream for `request` (body sent through a data provider, respecting flow control).
  // `on_complete` runs once, from inside receive()/take_output()/fail_all()/cancel(), never from submit().
  // The session holds `request` until nghttp2 closes the stream (HPACK reads the header strings in place);
  // a caller that may resend it (Http2Pool on `refused`) shares it instead of copying it.
  SubmitResult submit(std::shared_ptr<const H2Request> request, Completion on_complete);
  SubmitResult submit(H2Request request, Completion on_complete);
  // Resets an open stream with CANCEL and completes it with `failure` (e.g. timeout). False if unknown.
  bool cancel(std::int32_t stream_id, H2Failure failure, std::string detail);

  // Feeds bytes read from the peer. False on a protocol error: the session is then failed (all open
  // streams completed as connection_lost) but may still have a GOAWAY to flush via take_output().
  bool receive(std::span<const std::uint8_t> bytes);
  // Appends everything the session wants to send (up to `limit` bytes) to `out`; returns bytes added.
  std::size_t take_output(std::string& out, std::size_t limit = 64 * 1024);
  bool want_write() const;
  // False once the session is finished (GOAWAY exchanged and no streams, terminated, or failed).
  bool alive() const;

  // Sends a PING (opaque data = a counter). No-op when one is already outstanding.
  void ping(std::chrono::steady_clock::time_point now);
  bool ping_outstanding() const { return ping_outstanding_; }
  std::chrono::steady_clock::time_point ping_sent_at() const { return ping_sent_at_; }
  std::uint64_t pings_acked() const { return pings_acked_; }

  // Graceful close: GOAWAY(NO_ERROR) now (no new streams either way), terminate once streams finish.
  void shutdown();
  // Connection-level failure (socket closed, timeout): every open stream completes with `failure`
  // (streams whose HEADERS never left complete as `refused`). Idempotent.
  void fail_all(H2Failure failure, std::string detail);

  std::size_t open_streams() const { return streams_.size(); }
  std::uint32_t remote_max_concurrent_streams() const;
  bool settings_received() const { return settings_received_; }
  bool goaway_received() const { return goaway_received_; }
  std::int32_t goaway_last_stream_id() const { return goaway_last_stream_id_; }
  bool failed() const { return failed_; }
  bool shutting_down() const { return shutting_down_; }
  // Flow control: our send window towards the peer (connection level, and one stream's).
  std::int32_t remote_window() const;
  std::int32_t stream_remote_window(std::int32_t stream_id) const;
  // True when request bodies are waiting on the peer's flow-control window.
  bool flow_blocked() const;

 private:
  struct Stream;
  struct Callbacks;
  friend struct Callbacks;

  using StreamMap = std::unordered_map<std::int32_t, std::unique_ptr<Stream>>;

  void complete(std::int32_t stream_id, H2Result result);
  void flush_completions();
  // Keeps a closed stream's map node (and its Stream) for the next submit: no allocation per request.
  void recycle(StreamMap::node_type node);

  SessionOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  SessionMemory memory_;  // before session_: nghttp2 frees into it when the session is deleted
  nghttp2_session* session_ = nullptr;
  StreamMap streams_;
  std::vector<StreamMap::node_type> spare_streams_;  // reset, ready for reuse (bounded)
  std::vector<std::pair<Completion, std::pair<std::int32_t, H2Result>>> done_;  // run after nghttp2 returns
  std::vector<std::pair<Completion, std::pair<std::int32_t, H2Result>>> running_;  // being run by flush
  bool settings_received_ = false;
  bool goaway_received_ = false;
  std::int32_t goaway_last_stream_id_ = 0;
  std::uint32_t goaway_error_ = 0;
  bool failed_ = false;
  bool shutting_down_ = false;
  bool flushing_ = false;
  bool apns_id_name_indexed_ = false;  // see submit()
  bool ping_outstanding_ = false;
  std::chrono::steady_clock::time_point ping_sent_at_{};
  std::uint64_t ping_counter_ = 0;
  std::uint64_t pings_acked_ = 0;
};

}  // namespace notifyd::http2
