#pragma once
// HttpClient: a small synchronous HTTP/1.1 client for API tests (Beast's sync parser and serializer over a
// non-blocking TCP socket, every wait bounded by a poll() deadline). One keep-alive connection, reopened
// when the server closed it. Owned by one test thread; not thread-safe. Transport failures (connect,
// timeout, a malformed response) throw std::runtime_error, which GoogleTest reports as a test failure.
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace notifyd::test {

// Form fields in order; repeated keys are Twilio's arrays.
using Form = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
  std::string body;
  boost::json::value json;  // the parsed body; null when it is empty or not JSON
  bool json_ok = false;     // the body parsed as JSON

  bool has_header(std::string_view name) const;     // case-insensitive
  std::string header(std::string_view name) const;  // the first value, or ""
};

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";
  std::string body;
  std::string content_type;  // sent only when non-empty
  // The Authorization header: nullopt uses the client's default (set_basic_auth), "" sends none.
  std::optional<std::string> authorization;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

class HttpClient {
 public:
  HttpClient(std::string host, std::uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  // Default credentials for every request that does not set its own Authorization.
  void set_basic_auth(std::string_view user, std::string_view password);
  void clear_auth();

  HttpResponse get(std::string_view target);
  HttpResponse post_form(std::string_view target, const Form& form);
  HttpResponse del(std::string_view target);
  HttpResponse send(const HttpRequest& request);

  // Connections opened so far (keep-alive reuses one).
  int connections_opened() const;

  static std::string basic_auth(std::string_view user, std::string_view password);
  // application/x-www-form-urlencoded, every byte but unreserved ones percent-encoded.
  static std::string encode_form(const Form& form);
  static std::string encode_component(std::string_view s);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace notifyd::test
