#pragma once
// HTTP/2 request/response values shared by Session (sans-I/O), Connection and Http2Pool. Plain data:
// no I/O, no executor. Failures are values (H2Result::failure), never exceptions.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace notifyd::http2 {

using HeaderList = std::vector<std::pair<std::string, std::string>>;  // lowercase names

struct H2Request {
  std::string method = "POST";
  std::string path;  // ":path", e.g. "/3/device/<token>"
  // Headers many requests carry alike (one APNs credential's topic, content type, provider token), built
  // once and shared instead of copied into every request; sent before `headers`. May be null.
  std::shared_ptr<const HeaderList> shared_headers;
  HeaderList headers;  // this request's own
  std::string body;
};

struct H2Response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // lowercase names
  std::string body;
  std::string header(std::string_view name) const;  // "" when absent
};

enum class H2Failure {
  none,             // `response` holds the peer's answer, whatever its status
  connect_failed,   // TCP connect, TLS handshake or ALPN (no h2) failed: retryable
  connection_lost,  // the connection died with this stream open: retryable, may have been processed
  refused,          // GOAWAY above last_stream_id or RST_STREAM REFUSED_STREAM: not processed, retry at once
  reset,            // RST_STREAM with another code
  timeout,          // no answer within request_timeout
  shutting_down,    // the pool is draining
};

struct H2Result {
  H2Failure failure = H2Failure::none;
  H2Response response;
  std::string detail;  // for logs
};

const char* to_string(H2Failure failure);

// A ":path" fit for a log line: long segments (device tokens) cut to their first 8 characters.
std::string redact_path(std::string_view path);

}  // namespace notifyd::http2
