#include "tests/support/http_client.hpp"

#include <openssl/evp.h>
#include <poll.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <stdexcept>

namespace notifyd::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// A SyncReadStream/SyncWriteStream over a non-blocking socket whose every operation waits at most until
// `deadline` (Asio's own synchronous reads would poll forever, defeating SO_RCVTIMEO).
class DeadlineStream {
 public:
  DeadlineStream(tcp::socket& socket, Clock::time_point deadline) : socket_(socket), deadline_(deadline) {}

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, error_code& ec) {
    for (;;) {
      std::size_t n = socket_.read_some(buffers, ec);
      if (ec != asio::error::would_block && ec != asio::error::try_again) return n;
      if (!wait(POLLIN, ec)) return 0;
    }
  }
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    error_code ec;
    std::size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, error_code& ec) {
    for (;;) {
      std::size_t n = socket_.write_some(buffers, ec);
      if (ec != asio::error::would_block && ec != asio::error::try_again) return n;
      if (!wait(POLLOUT, ec)) return 0;
    }
  }
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    error_code ec;
    std::size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  bool wait(short events, error_code& ec) {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
      if (left <= 0) {
        ec = asio::error::timed_out;
        return false;
      }
      pollfd p{socket_.native_handle(), events, 0};
      int r = ::poll(&p, 1, static_cast<int>(left));
      if (r > 0) {
        ec = {};
        return true;
      }
      if (r < 0 && errno != EINTR) {
        ec = error_code(errno, boost::system::system_category());
        return false;
      }
    }
  }

  tcp::socket& socket_;
  Clock::time_point deadline_;
};

// An absolute URL on this client's server becomes its origin-form target; anything else is sent as is.
std::string origin_form(std::string_view target, std::string_view host, std::uint16_t port) {
  if (!target.starts_with("http://") && !target.starts_with("https://")) return std::string(target);
  auto url = boost::urls::parse_absolute_uri(target);
  if (!url) throw std::runtime_error("HttpClient: not a URL: " + std::string(target));
  if (url->scheme() != "http" || url->host() != host || url->port() != std::to_string(port)) {
    throw std::runtime_error("HttpClient: URL " + std::string(target) + " is not on http://" +
                             std::string(host) + ":" + std::to_string(port));
  }
  std::string out(url->encoded_path());
  if (out.empty()) out = "/";
  if (url->has_query()) out += "?" + std::string(url->encoded_query());
  return out;
}

}  // namespace

bool HttpResponse::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return iequals(h.first, name); });
}

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

struct HttpClient::Impl {
  std::string host;
  std::uint16_t port;
  std::chrono::milliseconds timeout;
  std::string default_auth;
  asio::io_context io;
  tcp::socket socket{io};
  beast::flat_buffer buffer;
  int opened = 0;

  Impl(std::string h, std::uint16_t p, std::chrono::milliseconds t)
      : host(std::move(h)), port(p), timeout(t) {}

  void close() {
    error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    buffer.clear();
  }

  void connect() {
    close();
    error_code ec;
    socket.connect(tcp::endpoint(asio::ip::make_address(host), port), ec);
    if (!ec) socket.non_blocking(true, ec);
    if (ec)
      throw std::runtime_error("HttpClient: connect to " + host + ":" + std::to_string(port) + ": " +
                               ec.message());
    ++opened;
  }

  // One exchange on the current connection. `fresh` false: the connection was reused, and a failure
  // before any response byte is reported as `retry` (the server closed an idle connection).
  HttpResponse exchange(const bhttp::request<bhttp::string_body>& req, bool fresh, bool& retry) {
    retry = false;
    DeadlineStream stream(socket, Clock::now() + timeout);
    error_code ec;
    bhttp::write(stream, req, ec);
    if (ec) {
      if (!fresh) {
        retry = true;
        return {};
      }
      throw std::runtime_error("HttpClient: write " + std::string(req.target()) + ": " + ec.message());
    }
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64u << 20);
    if (req.method() == bhttp::verb::head) parser.skip(true);
    bhttp::read(stream, buffer, parser, ec);
    if (ec) {
      bool nothing_read = !parser.got_some();
      close();
      if (!fresh && nothing_read && ec != asio::error::timed_out) {
        retry = true;
        return {};
      }
      throw std::runtime_error("HttpClient: reading the response to " + std::string(req.method_string()) +
                               " " + std::string(req.target()) + ": " + ec.message());
    }
    auto& res = parser.get();
    HttpResponse out;
    out.status = res.result_int();
    for (const auto& field : res) out.headers.emplace_back(field.name_string(), field.value());
    out.body = std::move(res.body());
    if (!out.body.empty()) {
      boost::json::error_code jec;
      out.json = boost::json::parse(out.body, jec);
      out.json_ok = !jec;
      if (jec) out.json = nullptr;
    }
    if (!res.keep_alive()) close();
    return out;
  }
};

HttpClient::HttpClient(std::string host, std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(std::move(host), port, timeout)) {}
HttpClient::~HttpClient() {
  if (impl_) impl_->close();
}
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

void HttpClient::set_basic_auth(std::string_view user, std::string_view password) {
  impl_->default_auth = basic_auth(user, password);
}
void HttpClient::clear_auth() { impl_->default_auth.clear(); }
int HttpClient::connections_opened() const { return impl_->opened; }

HttpResponse HttpClient::get(std::string_view target) {
  HttpRequest r;
  r.method = "GET";
  r.target = target;
  return send(r);
}

HttpResponse HttpClient::post_form(std::string_view target, const Form& form) {
  HttpRequest r;
  r.method = "POST";
  r.target = target;
  r.body = encode_form(form);
  r.content_type = "application/x-www-form-urlencoded";
  return send(r);
}

HttpResponse HttpClient::del(std::string_view target) {
  HttpRequest r;
  r.method = "DELETE";
  r.target = target;
  return send(r);
}

HttpResponse HttpClient::send(const HttpRequest& request) {
  bhttp::request<bhttp::string_body> req;
  req.method_string(request.method);
  req.target(origin_form(request.target, impl_->host, impl_->port));
  req.version(11);
  req.set(bhttp::field::host, impl_->host + ":" + std::to_string(impl_->port));
  req.set(bhttp::field::user_agent, "notifyd-tests");
  req.set(bhttp::field::accept, "application/json");
  const std::string& auth = request.authorization ? *request.authorization : impl_->default_auth;
  if (!auth.empty()) req.set(bhttp::field::authorization, auth);
  if (!request.content_type.empty()) req.set(bhttp::field::content_type, request.content_type);
  for (const auto& [k, v] : request.headers) req.insert(k, v);
  req.body() = request.body;
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") req.prepare_payload();

  bool fresh = !impl_->socket.is_open();
  if (fresh) impl_->connect();
  bool retry = false;
  HttpResponse out = impl_->exchange(req, fresh, retry);
  if (retry) {
    impl_->connect();
    out = impl_->exchange(req, true, retry);
  }
  return out;
}

std::string HttpClient::basic_auth(std::string_view user, std::string_view password) {
  std::string plain = std::string(user) + ":" + std::string(password);
  std::string encoded(4 * ((plain.size() + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                      reinterpret_cast<const unsigned char*>(plain.data()), static_cast<int>(plain.size()));
  encoded.resize(static_cast<std::size_t>(n));
  return "Basic " + encoded;
}

std::string HttpClient::encode_component(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string HttpClient::encode_form(const Form& form) {
  std::string out;
  for (const auto& [k, v] : form) {
    if (!out.empty()) out += '&';
    out += encode_component(k) + "=" + encode_component(v);
  }
  return out;
}

}  // namespace notifyd::test
