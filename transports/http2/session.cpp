// Session: nghttp2 client callbacks turned into per-stream H2Results. Completions are queued while
// nghttp2 is on the stack and run once it has returned, so a completion may call back into the Session.
#include "transports/http2/session.hpp"

#include <nghttp2/nghttp2.h>
#include <spdlog/logger.h>
#include <sys/types.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <limits>
#include <new>

#include "daemon/model/log.hpp"

namespace notifyd::http2 {

struct Session::Stream {
  std::int32_t id = 0;
  std::shared_ptr<const H2Request> request;  // never null
  std::size_t body_offset = 0;
  H2Response response;
  Completion on_complete;
  bool headers_sent = false;
  bool response_complete = false;
  bool completed = false;  // on_complete handed to done_; the entry lives until nghttp2 closes the stream
  bool body_too_large = false;
};

namespace {

std::string_view as_view(const std::uint8_t* p, std::size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

// NO_COPY: names and values live in the Stream (or the session's options) until the stream closes, so
// nghttp2 need not copy each header of every request.
nghttp2_nv make_nv(const std::string& name, const std::string& value,
                   std::uint8_t flags = NGHTTP2_NV_FLAG_NONE) {
  flags |= NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
  return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), flags};
}

}  // namespace

struct Session::Callbacks {
  static Session& self(void* user_data) { return *static_cast<Session*>(user_data); }

  static Stream* find(Session& s, std::int32_t id) {
    auto it = s.streams_.find(id);
    return it == s.streams_.end() ? nullptr : it->second.get();
  }

  static ssize_t read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                           std::uint32_t* data_flags, nghttp2_data_source* source, void*) {
    auto* st = static_cast<Stream*>(source->ptr);
    if (st->completed) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // cancelled: reset the stream
    const std::string& body = st->request->body;
    std::size_t n = std::min(length, body.size() - st->body_offset);
    std::memcpy(buf, body.data() + st->body_offset, n);
    st->body_offset += n;
    if (st->body_offset == body.size()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                       std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                       void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Stream* st = find(self(user_data), frame->hd.stream_id);
    if (st == nullptr) return 0;
    auto n = as_view(name, namelen);
    auto v = as_view(value, valuelen);
    if (n == ":status") {
      int status = 0;
      std::from_chars(v.data(), v.data() + v.size(), status);
      st->response.status = status;
      st->response.headers.clear();  // a final status after 1xx starts over
      return 0;
    }
    if (!n.empty() && n.front() == ':') return 0;
    const auto& kept = self(user_data).options_.kept_response_headers;
    if (!kept.empty() && std::find(kept.begin(), kept.end(), n) == kept.end()) return 0;
    st->response.headers.emplace_back(std::string(n), std::string(v));
    return 0;
  }

  static int on_data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t stream_id,
                           const std::uint8_t* data, std::size_t len, void* user_data) {
    Session& s = self(user_data);
    Stream* st = find(s, stream_id);
    if (st == nullptr || st->completed) return 0;
    if (st->response.body.size() + len > s.options_.max_response_body) {
      st->body_too_large = true;
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
      return 0;
    }
    st->response.body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    Session& s = self(user_data);
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
      case NGHTTP2_DATA:
        if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
          if (Stream* st = find(s, frame->hd.stream_id); st != nullptr && st->response.status >= 200) {
            st->response_complete = true;
          }
        }
        break;
      case NGHTTP2_SETTINGS:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
          s.settings_received_ = true;
          s.log_->debug(
              "{} SETTINGS max_concurrent_streams={} initial_window={}", s.options_.log_prefix,
              s.remote_max_concurrent_streams(),
              nghttp2_session_get_remote_settings(s.session_, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE));
        }
        break;
      case NGHTTP2_GOAWAY:
        s.goaway_received_ = true;
        s.goaway_last_stream_id_ = frame->goaway.last_stream_id;
        s.goaway_error_ = frame->goaway.error_code;
        s.log_->debug("{} GOAWAY received last_stream_id={} error={}", s.options_.log_prefix,
                      frame->goaway.last_stream_id, nghttp2_http2_strerror(frame->goaway.error_code));
        break;
      case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0 && s.ping_outstanding_) {
          s.ping_outstanding_ = false;
          ++s.pings_acked_;
        }
        break;
      case NGHTTP2_RST_STREAM:
        s.log_->debug("{}[S{}] RST_STREAM {}", s.options_.log_prefix, frame->hd.stream_id,
                      nghttp2_http2_strerror(frame->rst_stream.error_code));
        break;
      default:
        break;
    }
    return 0;
  }

  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    Session& s = self(user_data);
    if (frame->hd.type == NGHTTP2_HEADERS) {
      if (Stream* st = find(s, frame->hd.stream_id)) st->headers_sent = true;
    } else if (frame->hd.type == NGHTTP2_GOAWAY) {
      s.log_->debug("{} GOAWAY sent error={}", s.options_.log_prefix,
                    nghttp2_http2_strerror(frame->goaway.error_code));
    }
    return 0;
  }

  static int on_frame_not_send(nghttp2_session* session, const nghttp2_frame* frame, int lib_error_code,
                               void* user_data) {
    Session& s = self(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    std::int32_t id = frame->hd.stream_id;
    if (Stream* st = find(s, id); st != nullptr && !st->completed) {
      s.complete(id, H2Result{H2Failure::refused,
                              {},
                              std::string("request not sent: ") + nghttp2_strerror(lib_error_code)});
    }
    // nghttp2 closes the stream right after this callback if it knows it; otherwise forget it now.
    if (nghttp2_session_find_stream(session, id) == nullptr) {
      if (auto it = s.streams_.find(id); it != s.streams_.end()) s.recycle(s.streams_.extract(it));
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code,
                             void* user_data) {
    Session& s = self(user_data);
    auto it = s.streams_.find(stream_id);
    if (it == s.streams_.end()) return 0;
    StreamMap::node_type node = s.streams_.extract(it);
    Stream* st = node.mapped().get();
    if (st->completed) {
      s.recycle(std::move(node));
      return 0;
    }
    H2Result r;
    if (s.goaway_received_ && stream_id > s.goaway_last_stream_id_) {
      r.failure = H2Failure::refused;
      r.detail = "GOAWAY last_stream_id=" + std::to_string(s.goaway_last_stream_id_);
    } else if (st->body_too_large) {
      r.failure = H2Failure::reset;
      r.detail = "response body too large";
    } else if (st->response_complete) {
      r.response = std::move(st->response);  // complete, whatever code closed the stream afterwards
    } else if (error_code == NGHTTP2_REFUSED_STREAM) {
      r.failure = H2Failure::refused;
      r.detail = "RST_STREAM REFUSED_STREAM";
    } else if (error_code == NGHTTP2_NO_ERROR) {
      r.failure = H2Failure::reset;
      r.detail = "stream closed before a complete response";
    } else {
      r.failure = H2Failure::reset;
      r.detail = std::string("RST_STREAM ") + nghttp2_http2_strerror(error_code);
    }
    st->completed = true;
    s.done_.emplace_back(std::move(st->on_complete), std::make_pair(stream_id, std::move(r)));
    s.recycle(std::move(node));
    return 0;
  }
};

Session::Session(SessionOptions options) : options_(std::move(options)), log_(module_logger("http2")) {
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) throw std::bad_alloc();
  nghttp2_session_callbacks_set_on_header_callback(cbs, &Callbacks::on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &Callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &Callbacks::on_frame_send);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, &Callbacks::on_frame_not_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &Callbacks::on_stream_close);
  int rv = nghttp2_session_client_new3(&session_, cbs, this, nullptr, memory_.mem());
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) throw std::bad_alloc();
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.local_window},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<std::int32_t>(options_.local_window));
}

Session::~Session() { nghttp2_session_del(session_); }

std::uint32_t Session::remote_max_concurrent_streams() const {
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

bool Session::can_submit() const {
  return !failed_ && !shutting_down_ && nghttp2_session_check_request_allowed(session_) != 0 &&
         streams_.size() < remote_max_concurrent_streams();
}

SubmitResult Session::submit(H2Request request, Completion on_complete) {
  return submit(std::make_shared<const H2Request>(std::move(request)), std::move(on_complete));
}

SubmitResult Session::submit(std::shared_ptr<const H2Request> request, Completion on_complete) {
  SubmitResult out;
  if (failed_ || shutting_down_ || nghttp2_session_check_request_allowed(session_) == 0) {
    out.failure = H2Failure::refused;
    out.detail = goaway_received_ ? "GOAWAY received" : "session closing";
    return out;
  }
  if (streams_.size() >= remote_max_concurrent_streams()) {
    out.failure = H2Failure::refused;
    out.detail = "peer's MAX_CONCURRENT_STREAMS reached";
    return out;
  }
  StreamMap::node_type node;  // a recycled one when there is one; else a fresh Stream, emplaced below
  if (!spare_streams_.empty()) {
    node = std::move(spare_streams_.back());
    spare_streams_.pop_back();
  }
  std::unique_ptr<Stream> fresh;
  Stream* st = node ? node.mapped().get() : (fresh = std::make_unique<Stream>()).get();
  st->request = std::move(request);
  st->on_complete = std::move(on_complete);

  static const std::string kMethod = ":method", kScheme = ":scheme", kAuthority = ":authority",
                           kPath = ":path";
  const H2Request& req = *st->request;
  // nghttp2 copies the array (not the strings) inside nghttp2_submit_request: a stack array serves the
  // usual request (APNs: 4 pseudo-headers and up to 8 headers), a vector only a larger one.
  constexpr std::size_t kStackNv = 16;
  std::array<nghttp2_nv, kStackNv> stack_nv;
  std::vector<nghttp2_nv> heap_nv;
  nghttp2_nv* nv = stack_nv.data();
  const std::size_t nvlen = 4 + (req.shared_headers ? req.shared_headers->size() : 0) + req.headers.size();
  if (nvlen > kStackNv) {
    heap_nv.resize(nvlen);
    nv = heap_nv.data();
  }
  nv[0] = make_nv(kMethod, req.method);
  nv[1] = make_nv(kScheme, options_.scheme);
  nv[2] = make_nv(kAuthority, options_.authority);
  nv[3] = make_nv(kPath, req.path);
  std::size_t i = 4;
  auto add = [&](const HeaderList& list) {
    for (const auto& [name, value] : list) {
      // Credentials stay out of the HPACK dynamic table (and out of any log line); so does a value that is
      // new on every request (APNs' apns-id): indexing it would only evict useful entries, and the encoder
      // searches a table full of such values on every request (the largest HPACK cost at fan-out rates).
      // The first apns-id of a session is indexed all the same: the later ones then name it by its index
      // (the encoder looks up the name of an unindexed field too) instead of a Huffman-coded literal name.
      std::string_view n(name);
      std::uint8_t flags = NGHTTP2_NV_FLAG_NONE;
      if (n == "authorization") {
        flags = NGHTTP2_NV_FLAG_NO_INDEX;
      } else if (n == "apns-id") {
        flags = std::exchange(apns_id_name_indexed_, true) ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE;
      }
      nv[i++] = make_nv(name, value, flags);
    }
  };
  if (req.shared_headers) add(*req.shared_headers);
  add(req.headers);
  nghttp2_data_provider provider{};
  provider.source.ptr = st;
  provider.read_callback = &Callbacks::read_body;
  std::int32_t id =
      nghttp2_submit_request(session_, nullptr, nv, nvlen, req.body.empty() ? nullptr : &provider, st);
  if (id < 0) {
    out.failure = id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? H2Failure::refused : H2Failure::reset;
    out.detail = nghttp2_strerror(id);
    if (node) recycle(std::move(node));
    return out;
  }
  st->id = id;
  if (log_->should_log(spdlog::level::debug)) {  // redact_path allocates: only when it is logged
    log_->debug("{}[S{}] {} {} ({} body bytes)", options_.log_prefix, id, req.method, redact_path(req.path),
                req.body.size());
  }
  if (node) {
    node.key() = id;
    streams_.insert(std::move(node));
  } else {
    streams_.emplace(id, std::move(fresh));
  }
  out.stream_id = id;
  return out;
}

void Session::recycle(StreamMap::node_type node) {
  constexpr std::size_t kMaxSpare = 256;
  if (spare_streams_.size() >= kMaxSpare) return;
  *node.mapped() = Stream{};  // drops the request and the completion now
  spare_streams_.push_back(std::move(node));
}

bool Session::cancel(std::int32_t stream_id, H2Failure failure, std::string detail) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end() || it->second->completed) return false;
  if (!failed_) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
  complete(stream_id, H2Result{failure, {}, std::move(detail)});
  flush_completions();
  return true;
}

void Session::complete(std::int32_t stream_id, H2Result result) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end() || it->second->completed) return;
  it->second->completed = true;
  done_.emplace_back(std::move(it->second->on_complete), std::make_pair(stream_id, std::move(result)));
}

void Session::flush_completions() {
  if (flushing_) return;  // the outermost call flushes
  flushing_ = true;
  while (!done_.empty()) {
    running_.swap(done_);  // both keep their capacity: no allocation per flush
    for (auto& [fn, arg] : running_) {
      log_->debug("{}[S{}] done: {} status={} {}", options_.log_prefix, arg.first,
                  to_string(arg.second.failure), arg.second.response.status, arg.second.detail);
      if (fn) fn(arg.first, std::move(arg.second));  // by reference: moved from once, by its owner
    }
    running_.clear();
  }
  flushing_ = false;
}

bool Session::receive(std::span<const std::uint8_t> bytes) {
  if (failed_) return false;
  auto rv = nghttp2_session_mem_recv(session_, bytes.data(), bytes.size());
  if (rv < 0) {
    log_->debug("{} protocol error: {}", options_.log_prefix, nghttp2_strerror(static_cast<int>(rv)));
    fail_all(H2Failure::connection_lost,
             std::string("HTTP/2 error: ") + nghttp2_strerror(static_cast<int>(rv)));
    return false;
  }
  flush_completions();
  return true;
}

std::size_t Session::take_output(std::string& out, std::size_t limit) {
  std::size_t added = 0;
  while (added < limit) {
    const std::uint8_t* data = nullptr;
    auto n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      fail_all(H2Failure::connection_lost,
               std::string("HTTP/2 error: ") + nghttp2_strerror(static_cast<int>(n)));
      break;
    }
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    added += static_cast<std::size_t>(n);
  }
  // A connection error detected by nghttp2 (bad frame, flow-control violation...) queues GOAWAY and ends the
  // session without closing its streams: once that GOAWAY is out, the open streams are lost.
  if (!failed_ && nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0 &&
      std::any_of(streams_.begin(), streams_.end(), [](const auto& e) { return !e.second->completed; })) {
    fail_all(H2Failure::connection_lost, "HTTP/2 session terminated (connection error)");
  }
  flush_completions();
  return added;
}

bool Session::want_write() const { return nghttp2_session_want_write(session_) != 0; }

bool Session::alive() const {
  return !failed_ && (nghttp2_session_want_read(session_) != 0 || nghttp2_session_want_write(session_) != 0);
}

void Session::ping(std::chrono::steady_clock::time_point now) {
  if (ping_outstanding_ || failed_) return;
  std::uint8_t opaque[8];
  ++ping_counter_;
  std::memcpy(opaque, &ping_counter_, sizeof opaque);
  if (nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, opaque) != 0) return;
  ping_outstanding_ = true;
  ping_sent_at_ = now;
}

void Session::shutdown() {
  if (shutting_down_ || failed_) return;
  shutting_down_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
}

void Session::fail_all(H2Failure failure, std::string detail) {
  failed_ = true;
  for (auto& [id, st] : streams_) {
    if (st->completed) continue;
    // A request whose HEADERS never left was not processed: the pool may send it elsewhere at once.
    complete(id, st->headers_sent
                     ? H2Result{failure, {}, detail}
                     : H2Result{H2Failure::refused, {}, detail + " (before the request was sent)"});
  }
  flush_completions();
}

std::int32_t Session::remote_window() const { return nghttp2_session_get_remote_window_size(session_); }

std::int32_t Session::stream_remote_window(std::int32_t stream_id) const {
  return nghttp2_session_get_stream_remote_window_size(session_, stream_id);
}

bool Session::flow_blocked() const {
  if (remote_window() > 0) return false;  // the common case, without scanning the streams
  bool pending_body = std::any_of(streams_.begin(), streams_.end(), [](const auto& e) {
    return !e.second->completed && e.second->body_offset < e.second->request->body.size();
  });
  return pending_body;
}

}  // namespace notifyd::http2
