#include "tests/support/fake_h2_server.hpp"

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "tests/support/tls_test_certs.hpp"

namespace notifyd::test {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view as_view(const std::uint8_t* p, std::size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  if (!*static_cast<const bool*>(arg)) return SSL_TLSEXT_ERR_NOACK;
  static const unsigned char kH2[] = {2, 'h', '2'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kH2, sizeof kH2, in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int accept_any_cert(int, X509_STORE_CTX*) { return 1; }

std::pair<std::string, std::string> subject_and_uid(X509* cert) {
  std::pair<std::string, std::string> out;
  X509_NAME* name = X509_get_subject_name(cert);
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    out.first.assign(data, static_cast<std::size_t>(n));
    BIO_free(bio);
  }
  int index = X509_NAME_get_index_by_NID(name, NID_userId, -1);
  if (index >= 0) {
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index)));
    if (n >= 0) out.second.assign(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
    OPENSSL_free(utf8);
  }
  return out;
}

}  // namespace

// Named (not anonymous): FakeH2Server::State, which has external linkage, holds pointers to connections.
namespace fake_h2_detail {
class Connection;
void do_accept(FakeH2Server::State& state);
}  // namespace fake_h2_detail
using fake_h2_detail::Connection;

std::string FakeRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

bool FakeRequest::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return iequals(h.first, name); });
}

FakeResponse FakeResponse::json(int status, std::string body, FakeHeaders headers) {
  FakeResponse r;
  r.status = status;
  r.headers = std::move(headers);
  r.headers.emplace_back("content-type", "application/json");
  r.body = std::move(body);
  return r;
}

FakeResponse FakeResponse::reset(std::uint32_t error_code) {
  FakeResponse r;
  r.rst_stream = error_code;
  return r;
}

struct FakeH2Server::State {
  explicit State(FakeH2Options o) : options(std::move(o)) {}

  // What on_request() decided under the lock.
  struct Decision {
    std::shared_ptr<const Handler> handler;
    std::chrono::milliseconds delay{0};
    bool goaway = false;
    std::uint32_t goaway_code = 0;
    bool close = false;
    bool rst = false;
    std::uint32_t rst_code = 0;
  };

  Decision on_request(const FakeRequest& request) {
    Decision d;
    {
      std::lock_guard lock(mu);
      ++request_count;
      last_request_at = Clock::now();
      if (options.log_capacity > 0) {
        if (log.size() >= options.log_capacity) log.pop_front();
        log.push_back(request);
      }
      d.handler = handler;
      d.delay = delay;
      if (goaway_countdown > 0 && --goaway_countdown == 0) {
        d.goaway = true;
        d.goaway_code = goaway_code;
      }
      if (close_countdown > 0 && --close_countdown == 0) d.close = true;
      if (rst_remaining > 0) {
        --rst_remaining;
        d.rst = true;
        d.rst_code = rst_code;
      }
      ++event_seq;
    }
    cv.notify_all();
    return d;
  }

  void notify() {
    {
      std::lock_guard lock(mu);
      ++event_seq;
    }
    cv.notify_all();
  }

  void note_open_streams(std::uint32_t open) {
    std::uint32_t peak = peak_streams.load(std::memory_order_relaxed);
    while (open > peak && !peak_streams.compare_exchange_weak(peak, open, std::memory_order_relaxed)) {
    }
  }

  template <class F>
  void for_each_connection(F f);

  const FakeH2Options options;
  bool offer_h2 = options.offer_h2;  // read by the ALPN callback

  std::mutex mu;  // guards the fields below up to event_seq
  std::condition_variable cv;
  std::deque<FakeRequest> log;
  std::uint64_t request_count = 0;
  Clock::time_point last_request_at{};
  std::shared_ptr<const Handler> handler;
  std::chrono::milliseconds delay{0};
  std::uint64_t goaway_countdown = 0;
  std::uint32_t goaway_code = 0;
  std::uint64_t close_countdown = 0;
  std::uint64_t rst_remaining = 0;
  std::uint32_t rst_code = 0;
  std::uint64_t event_seq = 0;

  std::atomic<std::uint32_t> max_streams{options.max_concurrent_streams};
  std::atomic<bool> answer_pings{options.answer_pings};
  std::atomic<bool> holding_window_updates{options.hold_window_updates};
  std::atomic<std::uint64_t> data_bytes{0};
  std::atomic<std::uint64_t> accepted{0}, open{0}, handshakes_failed{0}, without_h2{0}, goaways{0}, rsts{0},
      pings{0};
  std::atomic<std::uint32_t> peak_streams{0};
  std::uint64_t next_connection_id = 1;  // acceptor only

  std::mutex connections_mu;
  std::unordered_map<std::uint64_t, std::weak_ptr<Connection>> connections;

  ssl::context tls{ssl::context::tls_server};
  std::uint16_t port = 0;
  std::vector<std::thread> threads;
  // Declared last so it is destroyed first: pending handlers (and the connections they own) go while the
  // state they point to is still alive.
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;
};

namespace fake_h2_detail {

using State = FakeH2Server::State;

// One accepted connection: TLS, then an nghttp2 server session. Every member is used on the connection's
// strand.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(State& state, tcp::socket socket, std::uint64_t id)
      : state_(state),
        stream_(std::move(socket), state.tls),
        linger_timer_(stream_.get_executor()),
        id_(id) {}

  ~Connection() {
    if (session_) nghttp2_session_del(session_);
    std::lock_guard lock(state_.connections_mu);
    state_.connections.erase(id_);
  }

  void start() {
    error_code ec;
    stream_.next_layer().set_option(tcp::no_delay(true), ec);
    stream_.async_handshake(ssl::stream_base::server,
                            [self = shared_from_this()](error_code ec) { self->on_handshake(ec); });
  }

  // Called through post() from other threads.
  void submit_max_streams(std::uint32_t n) {
    if (!session_ || closed_) return;
    nghttp2_settings_entry entry{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, n};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, &entry, 1);
    flush();
  }
  void submit_goaway(std::uint32_t code) {
    if (!session_ || closed_) return;
    start_goaway(last_stream_seen_, code);
    flush();
  }
  // Acknowledges the DATA held back under FakeH2Options::hold_window_updates (state_.holding_window_updates
  // is already false, so later DATA is acknowledged as it arrives).
  void release_windows() {
    if (!session_ || closed_ || held_connection_bytes_ == 0) return;
    nghttp2_session_consume_connection(session_, held_connection_bytes_);
    held_connection_bytes_ = 0;
    for (auto& s : streams_) {
      if (s->held_bytes == 0) continue;
      nghttp2_session_consume_stream(session_, s->request.stream_id, s->held_bytes);
      s->held_bytes = 0;
    }
    flush();
  }
  void close() {
    if (closed_) return;
    closed_ = true;
    error_code ec;
    stream_.lowest_layer().close(ec);
    linger_timer_.cancel();
    for (auto& s : streams_) {
      if (s->timer) s->timer->cancel();
    }
    state_.open.fetch_sub(1);
    state_.notify();
  }
  auto executor() { return stream_.get_executor(); }

 private:
  struct StreamData {
    std::uint64_t generation = 0;  // bumped on reuse, so a stale timer can tell
    FakeRequest request;
    FakeResponse response;
    std::size_t body_offset = 0;
    std::size_t held_bytes = 0;  // DATA not yet acknowledged (hold_window_updates)
    std::optional<asio::steady_timer> timer;
    std::vector<nghttp2_nv> nva;
    std::array<char, 8> status{};
  };

  void on_handshake(error_code ec) {
    if (ec) {
      state_.handshakes_failed.fetch_add(1);
      close();
      return;
    }
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(stream_.native_handle(), &alpn, &alpn_len);
    if (as_view(alpn, alpn_len) != "h2") state_.without_h2.fetch_add(1);
    if (X509* cert = SSL_get1_peer_certificate(stream_.native_handle())) {
      client_cert_ = true;
      std::tie(client_subject_, client_uid_) = subject_and_uid(cert);
      X509_free(cert);
    }
    if (!init_session()) {
      close();
      return;
    }
    flush();
    do_read();
  }

  bool init_session() {
    nghttp2_session_callbacks* cbs = nullptr;
    if (nghttp2_session_callbacks_new(&cbs) != 0) return false;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &Connection::on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &Connection::on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &Connection::on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &Connection::on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &Connection::on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &Connection::on_stream_close);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_ping_ack(opt, 1);
    if (state_.options.hold_window_updates) nghttp2_option_set_no_auto_window_update(opt, 1);
    int rv = nghttp2_session_server_new2(&session_, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) return false;
    std::array<nghttp2_settings_entry, 2> settings{{
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, state_.max_streams.load()},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, state_.options.initial_window_size},
    }};
    if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size()) != 0)
      return false;
    const std::int32_t window = state_.options.connection_window_size;
    return window <= 65535 ||
           nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, window) == 0;
  }

  void do_read() {
    stream_.async_read_some(
        asio::buffer(read_buf_),
        [self = shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(error_code ec, std::size_t n) {
    if (closed_) return;
    if (ec) {
      close();
      return;
    }
    if (lingering_) {  // discard until EOF or the linger timer
      do_read();
      return;
    }
    ssize_t rv = nghttp2_session_mem_recv(session_, read_buf_.data(), n);
    if (rv < 0) {
      close();
      return;
    }
    flush();
    if (!closed_) do_read();
  }

  // Batches everything nghttp2 has to send into one write; one write in flight at a time.
  void flush() {
    if (writing_ || closed_ || lingering_) return;
    out_.clear();
    for (;;) {
      const std::uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        close();
        return;
      }
      if (n == 0) break;
      out_.insert(out_.end(), data, data + n);
      if (out_.size() >= kMaxWrite) break;
    }
    if (out_.empty()) {
      if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) linger_close();
      return;
    }
    writing_ = true;
    asio::async_write(stream_, asio::buffer(out_), [self = shared_from_this()](error_code ec, std::size_t) {
      self->writing_ = false;
      if (ec) {
        self->close();
        return;
      }
      self->flush();
    });
  }

  // Done after GOAWAY: FIN, then read and discard until the peer closes (or 1 s) so our last frames are not
  // lost to a TCP reset.
  void linger_close() {
    if (lingering_ || closed_) return;
    lingering_ = true;
    error_code ec;
    stream_.lowest_layer().shutdown(tcp::socket::shutdown_send, ec);
    linger_timer_.expires_after(std::chrono::seconds(1));
    linger_timer_.async_wait([self = shared_from_this()](error_code) { self->close(); });
  }

  StreamData* acquire() {
    StreamData* sd;
    if (!free_.empty()) {
      sd = free_.back();
      free_.pop_back();
    } else {
      streams_.push_back(std::make_unique<StreamData>());
      sd = streams_.back().get();
    }
    ++sd->generation;
    return sd;
  }

  void release(StreamData* sd) {
    if (sd->timer) sd->timer->cancel();
    ++sd->generation;
    FakeRequest& r = sd->request;
    r.method.clear();
    r.path.clear();
    r.authority.clear();
    r.scheme.clear();
    r.headers.clear();
    r.body.clear();
    sd->response = FakeResponse{};
    sd->body_offset = 0;
    sd->held_bytes = 0;
    free_.push_back(sd);
  }

  StreamData* stream_data(std::int32_t stream_id) {
    return static_cast<StreamData*>(nghttp2_session_get_stream_user_data(session_, stream_id));
  }

  void start_goaway(std::int32_t last_stream_id, std::uint32_t code) {
    if (goaway_last_ && *goaway_last_ <= last_stream_id) return;
    goaway_last_ = last_stream_id;
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last_stream_id, code, nullptr, 0);
  }

  void on_request(StreamData* sd) {
    if (closed_) return;  // close_connection_after() fired earlier in this read
    const std::int32_t stream_id = sd->request.stream_id;
    if (goaway_last_ && stream_id > *goaway_last_) {  // above GOAWAY's last_stream_id: not processed
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_REFUSED_STREAM);
      return;
    }
    FakeRequest& req = sd->request;
    req.connection_id = id_;
    req.client_cert_presented = client_cert_;
    req.client_subject = client_subject_;
    req.client_uid = client_uid_;
    req.received_at = Clock::now();
    State::Decision d = state_.on_request(req);
    if (d.close) {
      close();
      return;
    }
    if (d.goaway) start_goaway(stream_id, d.goaway_code);
    if (d.rst) {
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, d.rst_code);
      return;
    }
    if (d.handler) {
      try {
        sd->response = (*d.handler)(req);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "FakeH2Server handler threw on " << req.method << " " << req.path << ": "
                      << e.what();
        sd->response = FakeResponse{};
        sd->response.status = 500;
      }
    } else {
      sd->response = FakeResponse{};
    }
    if (sd->response.rst_stream) {
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, *sd->response.rst_stream);
      return;
    }
    std::chrono::milliseconds delay = sd->response.delay.value_or(d.delay);
    if (delay.count() <= 0) {
      submit_response(sd);
      return;
    }
    if (!sd->timer) sd->timer.emplace(stream_.get_executor());
    sd->timer->expires_after(delay);
    sd->timer->async_wait([self = shared_from_this(), sd, gen = sd->generation](error_code ec) {
      if (ec || self->closed_ || sd->generation != gen) return;
      self->submit_response(sd);
      self->flush();
    });
  }

  void submit_response(StreamData* sd) {
    FakeResponse& resp = sd->response;
    auto [end, ec] = std::to_chars(sd->status.data(), sd->status.data() + sd->status.size(), resp.status);
    (void)ec;
    auto nv = [](const char* name, std::size_t name_len, const char* value, std::size_t value_len) {
      return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name)),
                        reinterpret_cast<std::uint8_t*>(const_cast<char*>(value)), name_len, value_len,
                        NGHTTP2_NV_FLAG_NONE};
    };
    sd->nva.clear();
    sd->nva.push_back(nv(":status", 7, sd->status.data(), static_cast<std::size_t>(end - sd->status.data())));
    for (const auto& [k, v] : resp.headers) sd->nva.push_back(nv(k.data(), k.size(), v.data(), v.size()));
    nghttp2_data_provider provider{};
    provider.source.ptr = sd;
    provider.read_callback = &Connection::read_body;
    nghttp2_submit_response(session_, sd->request.stream_id, sd->nva.data(), sd->nva.size(),
                            resp.body.empty() ? nullptr : &provider);
  }

  // ---- nghttp2 callbacks (run inside mem_recv/mem_send, on the strand) ----

  static int on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    auto* self = static_cast<Connection*>(user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    StreamData* sd = self->acquire();
    sd->request.stream_id = frame->hd.stream_id;
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, sd);
    ++self->open_streams_;
    sd->request.open_streams = self->open_streams_;
    self->state_.note_open_streams(self->open_streams_);
    self->last_stream_seen_ = std::max(self->last_stream_seen_, frame->hd.stream_id);
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                       std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                       void* user) {
    auto* self = static_cast<Connection*>(user);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    StreamData* sd = self->stream_data(frame->hd.stream_id);
    if (!sd) return 0;
    std::string_view n = as_view(name, namelen), v = as_view(value, valuelen);
    FakeRequest& r = sd->request;
    if (n == ":method") {
      r.method = v;
    } else if (n == ":path") {
      r.path = v;
    } else if (n == ":authority") {
      r.authority = v;
    } else if (n == ":scheme") {
      r.scheme = v;
    } else {
      r.headers.emplace_back(n, v);
    }
    return 0;
  }

  static int on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t stream_id, const std::uint8_t* data,
                           std::size_t len, void* user) {
    auto* self = static_cast<Connection*>(user);
    StreamData* sd = self->stream_data(stream_id);
    if (sd) sd->request.body.append(as_view(data, len));
    if (self->state_.options.hold_window_updates) {  // nghttp2 leaves WINDOW_UPDATE to us
      if (self->state_.holding_window_updates.load()) {
        self->held_connection_bytes_ += len;
        if (sd) sd->held_bytes += len;
      } else {
        nghttp2_session_consume(self->session_, stream_id, len);
      }
    }
    self->state_.data_bytes.fetch_add(len);
    if (self->state_.options.hold_window_updates) self->state_.notify();  // a test may wait on the bytes
    return 0;
  }

  static int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    auto* self = static_cast<Connection*>(user);
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
      case NGHTTP2_DATA:
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
          if (StreamData* sd = self->stream_data(frame->hd.stream_id)) self->on_request(sd);
        }
        break;
      case NGHTTP2_PING:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
          self->state_.pings.fetch_add(1);
          if (self->state_.answer_pings.load()) {
            nghttp2_submit_ping(session, NGHTTP2_FLAG_ACK, frame->ping.opaque_data);
          }
          self->state_.notify();
        }
        break;
      default:
        break;
    }
    return 0;
  }

  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto* self = static_cast<Connection*>(user);
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
      self->state_.rsts.fetch_add(1);
      self->state_.notify();
    } else if (frame->hd.type == NGHTTP2_GOAWAY) {
      self->state_.goaways.fetch_add(1);
      self->state_.notify();
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t, void* user) {
    auto* self = static_cast<Connection*>(user);
    if (StreamData* sd = self->stream_data(stream_id)) {
      --self->open_streams_;
      nghttp2_session_set_stream_user_data(self->session_, stream_id, nullptr);
      self->release(sd);
    }
    return 0;
  }

  static ssize_t read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                           std::uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* sd = static_cast<StreamData*>(source->ptr);
    const std::string& body = sd->response.body;
    std::size_t n = std::min(length, body.size() - sd->body_offset);
    std::copy_n(body.data() + sd->body_offset, n, buf);
    sd->body_offset += n;
    if (sd->body_offset == body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  static constexpr std::size_t kMaxWrite = 64 * 1024;

  State& state_;
  ssl::stream<tcp::socket> stream_;
  asio::steady_timer linger_timer_;
  const std::uint64_t id_;
  nghttp2_session* session_ = nullptr;
  std::array<std::uint8_t, 16 * 1024> read_buf_{};
  std::vector<std::uint8_t> out_;
  bool writing_ = false;
  bool closed_ = false;
  bool lingering_ = false;
  std::uint32_t open_streams_ = 0;
  std::int32_t last_stream_seen_ = 0;
  // DATA not yet acknowledged on the connection (hold_window_updates)
  std::size_t held_connection_bytes_ = 0;
  std::optional<std::int32_t> goaway_last_;
  bool client_cert_ = false;
  std::string client_subject_;
  std::string client_uid_;
  std::vector<std::unique_ptr<StreamData>> streams_;  // owns every StreamData; free_ lists the idle ones
  std::vector<StreamData*> free_;
};

void do_accept(State& state) {
  state.acceptor->async_accept(asio::make_strand(state.ioc), [&state](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !state.acceptor->is_open()) return;
    if (!ec) {
      state.accepted.fetch_add(1);
      state.open.fetch_add(1);
      auto conn = std::make_shared<Connection>(state, std::move(socket), state.next_connection_id++);
      {
        std::lock_guard lock(state.connections_mu);
        state.connections.emplace(state.next_connection_id - 1, conn);
      }
      conn->start();
      state.notify();
    }
    do_accept(state);
  });
}

}  // namespace fake_h2_detail

template <class F>
void FakeH2Server::State::for_each_connection(F f) {
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(connections_mu);
    for (auto& [id, weak] : connections) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live) asio::post(c->executor(), [c, f] { f(*c); });
}

FakeH2Server::FakeH2Server(FakeH2Options options) : state_(std::make_unique<State>(std::move(options))) {
  State& s = *state_;
  const TestPki& pki = shared_test_pki();
  const std::string& cert =
      s.options.certificate_pem.empty() ? pki.server.certificate_pem : s.options.certificate_pem;
  const std::string& key =
      s.options.private_key_pem.empty() ? pki.server.private_key_pem : s.options.private_key_pem;
  s.tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  s.tls.use_certificate_chain(asio::buffer(cert));
  s.tls.use_private_key(asio::buffer(key), ssl::context::pem);
  SSL_CTX_set_alpn_select_cb(s.tls.native_handle(), &alpn_select, &s.offer_h2);
  switch (s.options.client_cert) {
    case ClientCertPolicy::kIgnore:
      break;
    case ClientCertPolicy::kAcceptAny:
      SSL_CTX_set_verify(s.tls.native_handle(), SSL_VERIFY_PEER, &accept_any_cert);
      break;
    case ClientCertPolicy::kRequireAny:
      SSL_CTX_set_verify(s.tls.native_handle(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                         &accept_any_cert);
      break;
    case ClientCertPolicy::kRequireTrusted: {
      const std::string& ca =
          s.options.client_ca_pem.empty() ? pki.ca.certificate_pem : s.options.client_ca_pem;
      s.tls.add_certificate_authority(asio::buffer(ca));
      SSL_CTX_set_verify(s.tls.native_handle(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
    }
  }

  s.acceptor.emplace(s.ioc);
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  s.acceptor->open(endpoint.protocol());
  s.acceptor->set_option(tcp::acceptor::reuse_address(true));
  s.acceptor->bind(endpoint);
  s.acceptor->listen(asio::socket_base::max_listen_connections);
  s.port = s.acceptor->local_endpoint().port();
  s.work.emplace(s.ioc.get_executor());
  fake_h2_detail::do_accept(s);
  for (std::size_t i = 0; i < std::max<std::size_t>(1, s.options.threads); ++i) {
    s.threads.emplace_back([&s] {
      pthread_setname_np(pthread_self(), "fake-h2");  // for per-thread figures (bench_fanout, top -H)
      s.ioc.run();
    });
  }
}

FakeH2Server::~FakeH2Server() {
  State& s = *state_;
  asio::post(s.ioc, [&s] {
    error_code ec;
    s.acceptor->close(ec);
  });
  s.for_each_connection([](Connection& c) { c.close(); });
  s.work.reset();
  // Give the closes a moment to run, then stop whatever is left (delay timers, lingering reads).
  auto deadline = Clock::now() + std::chrono::seconds(2);
  while (s.open.load() > 0 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  s.ioc.stop();
  for (auto& t : s.threads) t.join();
}

std::uint16_t FakeH2Server::port() const { return state_->port; }
std::string FakeH2Server::authority() const { return "127.0.0.1:" + std::to_string(state_->port); }
std::string FakeH2Server::url() const { return "https://" + authority(); }

void FakeH2Server::set_handler(Handler handler) {
  auto h = handler ? std::make_shared<const Handler>(std::move(handler)) : nullptr;
  std::lock_guard lock(state_->mu);
  state_->handler = std::move(h);
}

void FakeH2Server::set_max_concurrent_streams(std::uint32_t n) {
  state_->max_streams.store(n);
  state_->for_each_connection([n](Connection& c) { c.submit_max_streams(n); });
}

void FakeH2Server::goaway_after(std::uint64_t n, std::uint32_t error_code) {
  std::lock_guard lock(state_->mu);
  state_->goaway_countdown = n;
  state_->goaway_code = error_code;
}

void FakeH2Server::rst_stream(std::uint32_t error_code, std::uint64_t k) {
  std::lock_guard lock(state_->mu);
  state_->rst_remaining = k;
  state_->rst_code = error_code;
}

void FakeH2Server::set_response_delay(std::chrono::milliseconds delay) {
  std::lock_guard lock(state_->mu);
  state_->delay = delay;
}

void FakeH2Server::close_connection_after(std::uint64_t n) {
  std::lock_guard lock(state_->mu);
  state_->close_countdown = n;
}

void FakeH2Server::send_goaway_to_all(std::uint32_t error_code) {
  state_->for_each_connection([error_code](Connection& c) { c.submit_goaway(error_code); });
}

void FakeH2Server::close_all_connections() {
  state_->for_each_connection([](Connection& c) { c.close(); });
}

void FakeH2Server::set_answer_pings(bool answer) { state_->answer_pings.store(answer); }

void FakeH2Server::release_window_updates() {
  state_->holding_window_updates.store(false);
  state_->for_each_connection([](Connection& c) { c.release_windows(); });
}

std::uint64_t FakeH2Server::request_count() const {
  std::lock_guard lock(state_->mu);
  return state_->request_count;
}

std::vector<FakeRequest> FakeH2Server::requests() const {
  std::lock_guard lock(state_->mu);
  return {state_->log.begin(), state_->log.end()};
}

std::vector<FakeRequest> FakeH2Server::last_requests(std::size_t n) const {
  std::lock_guard lock(state_->mu);
  n = std::min(n, state_->log.size());
  return {state_->log.end() - static_cast<std::ptrdiff_t>(n), state_->log.end()};
}

std::optional<FakeRequest> FakeH2Server::last_request() const {
  std::lock_guard lock(state_->mu);
  if (state_->log.empty()) return std::nullopt;
  return state_->log.back();
}

std::chrono::steady_clock::time_point FakeH2Server::last_request_at() const {
  std::lock_guard lock(state_->mu);
  return state_->last_request_at;
}

void FakeH2Server::clear_log() {
  std::lock_guard lock(state_->mu);
  state_->log.clear();
  state_->request_count = 0;
}

std::uint64_t FakeH2Server::connections_accepted() const { return state_->accepted.load(); }
std::uint64_t FakeH2Server::connections_open() const { return state_->open.load(); }
std::uint64_t FakeH2Server::handshakes_failed() const { return state_->handshakes_failed.load(); }
std::uint64_t FakeH2Server::connections_without_h2() const { return state_->without_h2.load(); }
std::uint32_t FakeH2Server::peak_concurrent_streams() const { return state_->peak_streams.load(); }
void FakeH2Server::reset_peak_concurrent_streams() { state_->peak_streams.store(0); }
std::uint64_t FakeH2Server::goaways_sent() const { return state_->goaways.load(); }
std::uint64_t FakeH2Server::rst_streams_sent() const { return state_->rsts.load(); }
std::uint64_t FakeH2Server::pings_received() const { return state_->pings.load(); }
std::uint64_t FakeH2Server::data_bytes_received() const { return state_->data_bytes.load(); }

::testing::AssertionResult FakeH2Server::wait_until(const std::function<bool()>& predicate,
                                                    std::chrono::milliseconds timeout,
                                                    std::string_view what) {
  State& s = *state_;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::uint64_t seq;
    {
      std::lock_guard lock(s.mu);
      seq = s.event_seq;
    }
    if (predicate()) return ::testing::AssertionSuccess();
    auto now = Clock::now();
    if (now >= deadline) {
      return ::testing::AssertionFailure()
             << "FakeH2Server: timed out after " << timeout.count() << " ms waiting for " << what;
    }
    std::unique_lock lock(s.mu);
    s.cv.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(50)),
                    [&] { return s.event_seq != seq; });
  }
}

::testing::AssertionResult FakeH2Server::wait_for_requests(std::uint64_t n,
                                                           std::chrono::milliseconds timeout) {
  auto r = wait_until([&] { return request_count() >= n; }, timeout, std::to_string(n) + " requests");
  if (!r) r << " (got " << request_count() << ")";
  return r;
}

::testing::AssertionResult FakeH2Server::wait_for_connections(std::uint64_t accepted,
                                                              std::chrono::milliseconds timeout) {
  auto r = wait_until([&] { return connections_accepted() >= accepted; }, timeout,
                      std::to_string(accepted) + " accepted connections");
  if (!r) r << " (got " << connections_accepted() << ")";
  return r;
}

::testing::AssertionResult FakeH2Server::wait_for_open_connections(std::uint64_t open,
                                                                   std::chrono::milliseconds timeout) {
  auto r = wait_until([&] { return connections_open() == open; }, timeout,
                      std::to_string(open) + " open connections");
  if (!r) r << " (open: " << connections_open() << ")";
  return r;
}

}  // namespace notifyd::test
