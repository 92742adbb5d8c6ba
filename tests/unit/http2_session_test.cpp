// Session back to back against an in-memory nghttp2 *server* session: bytes are pumped both ways in a
// bounded loop, no sockets, no executor.
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "transports/http2/session.hpp"

namespace notifyd::http2 {
namespace {

// A minimal HTTP/2 server over nghttp2: collects requests, answers them when told (or at once).
class FakeServer {
 public:
  struct Request {
    std::string method, path, body;
    std::vector<std::pair<std::string, std::string>> headers;
    std::map<std::string, std::uint8_t> header_flags;  // NGHTTP2_NV_FLAG_NO_INDEX: sent "never indexed"
    bool complete = false;
    std::string response_body;
    std::size_t response_offset = 0;
  };

  FakeServer(std::uint32_t max_streams, bool auto_respond) : auto_respond_(auto_respond) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &on_frame_recv);
    nghttp2_session_server_new(&session_, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry s[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, s, 1);
  }
  ~FakeServer() { nghttp2_session_del(session_); }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  // :status, apns-id and `extra` (name, value) headers.
  void respond(std::int32_t id, int status, std::string body,
               const std::vector<std::pair<std::string, std::string>>& extra = {}) {
    auto& r = requests_[id];
    r.response_body = std::move(body);
    std::string st = std::to_string(status);
    std::string id_value = "id-" + std::to_string(id);
    std::vector<nghttp2_nv> nv = {
        {(std::uint8_t*)":status", (std::uint8_t*)st.data(), 7, st.size(), NGHTTP2_NV_FLAG_NONE},
        {(std::uint8_t*)"apns-id", (std::uint8_t*)id_value.data(), 7, id_value.size(), NGHTTP2_NV_FLAG_NONE},
    };
    for (const auto& [name, value] : extra) {
      nv.push_back({(std::uint8_t*)name.data(), (std::uint8_t*)value.data(), name.size(), value.size(),
                    NGHTTP2_NV_FLAG_NONE});
    }
    nghttp2_data_provider prd{};
    prd.source.ptr = &r;
    prd.read_callback = &read_body;
    nghttp2_submit_response(session_, id, nv.data(), nv.size(), &prd);
  }
  void rst(std::int32_t id, std::uint32_t code) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, code);
  }
  void goaway(std::int32_t last_stream_id) {
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last_stream_id, NGHTTP2_NO_ERROR, nullptr, 0);
  }
  bool receive(const std::string& bytes) {
    return nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                    bytes.size()) == static_cast<ssize_t>(bytes.size());
  }
  std::string output() {
    std::string out;
    for (;;) {
      const std::uint8_t* data = nullptr;
      auto n = nghttp2_session_mem_send(session_, &data);
      if (n <= 0) break;
      out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    return out;
  }

  // The size of the HPACK dynamic table the server decodes with (the client's encoder mirrors it).
  std::size_t dynamic_table_size() const {
    return nghttp2_session_get_hd_inflate_dynamic_table_size(session_);
  }

  std::map<std::int32_t, Request> requests_;
  std::size_t pings_ = 0;

 private:
  static FakeServer& self(void* p) { return *static_cast<FakeServer*>(p); }
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t nl,
                       const std::uint8_t* value, std::size_t vl, std::uint8_t flags, void* user) {
    auto& r = self(user).requests_[frame->hd.stream_id];
    std::string n(reinterpret_cast<const char*>(name), nl), v(reinterpret_cast<const char*>(value), vl);
    if (n == ":method")
      r.method = v;
    else if (n == ":path")
      r.path = v;
    else if (n[0] != ':')
      r.headers.emplace_back(n, v);
    r.header_flags[n] = flags;
    return 0;
  }
  static int on_data(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                     std::size_t len, void* user) {
    self(user).requests_[id].body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& s = self(user);
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) ++s.pings_;
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
      auto& r = s.requests_[frame->hd.stream_id];
      r.complete = true;
      if (s.auto_respond_) s.respond(frame->hd.stream_id, 200, "echo:" + std::to_string(r.body.size()));
    }
    return 0;
  }
  static ssize_t read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                           std::uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* r = static_cast<Request*>(source->ptr);
    std::size_t n = std::min(length, r->response_body.size() - r->response_offset);
    std::memcpy(buf, r->response_body.data() + r->response_offset, n);
    r->response_offset += n;
    if (r->response_offset == r->response_body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  nghttp2_session* session_ = nullptr;
  bool auto_respond_;
};

// Moves bytes both ways until neither side has anything to say (bounded).
void pump(Session& client, FakeServer& server) {
  for (int i = 0; i < 200; ++i) {
    std::string c;
    client.take_output(c, 1 << 20);
    if (!c.empty()) {
      ASSERT_TRUE(server.receive(c));
    }
    std::string s = server.output();
    if (!s.empty()) {
      client.receive({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
    }
    if (c.empty() && s.empty()) return;
  }
  FAIL() << "pump did not settle";
}

struct Outcome {
  std::optional<H2Result> result;
  Session::Completion callback() {
    return [this](std::int32_t, H2Result r) { result = std::move(r); };
  }
};

H2Request post(std::string path, std::string body = "{}") {
  H2Request r;
  r.path = std::move(path);
  r.headers = {{"content-type", "application/json"}, {"authorization", "bearer secret"}};
  r.body = std::move(body);
  return r;
}

SessionOptions options() {
  SessionOptions o;
  o.authority = "api.example.test";
  o.log_prefix = "[C0]";
  return o;
}

TEST(Http2Session, SettingsThenRoundTripWithBody) {
  Session client(options());
  FakeServer server(100, true);
  pump(client, server);
  EXPECT_TRUE(client.settings_received());
  EXPECT_EQ(client.remote_max_concurrent_streams(), 100u);

  Outcome out;
  auto sub = client.submit(post("/3/device/abc", "{\"aps\":{}}"), out.callback());
  ASSERT_TRUE(sub);
  EXPECT_FALSE(out.result) << "never completes from inside submit()";
  pump(client, server);
  ASSERT_TRUE(out.result);
  EXPECT_EQ(out.result->failure, H2Failure::none);
  EXPECT_EQ(out.result->response.status, 200);
  EXPECT_EQ(out.result->response.body, "echo:10");
  EXPECT_EQ(out.result->response.header("apns-id"), "id-" + std::to_string(sub.stream_id));
  const auto& req = server.requests_.at(sub.stream_id);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path, "/3/device/abc");
  EXPECT_EQ(req.body, "{\"aps\":{}}");
  EXPECT_EQ(client.open_streams(), 0u);
}

// A provider client names the response headers it reads; the session copies only those.
TEST(Http2Session, KeepsOnlyTheResponseHeadersAsked) {
  SessionOptions o = options();
  o.kept_response_headers = {"retry-after"};
  Session client(o);
  FakeServer server(100, false);
  pump(client, server);
  Outcome out;
  auto sub = client.submit(post("/3/device/abc"), out.callback());
  ASSERT_TRUE(sub);
  pump(client, server);
  server.respond(sub.stream_id, 429, "{}", {{"retry-after", "7"}, {"x-other", "1"}});
  pump(client, server);
  ASSERT_TRUE(out.result);
  EXPECT_EQ(out.result->response.status, 429);
  ASSERT_EQ(out.result->response.headers.size(), 1u);
  EXPECT_EQ(out.result->response.header("retry-after"), "7");
  EXPECT_EQ(out.result->response.header("apns-id"), "");
  EXPECT_EQ(out.result->response.body, "{}");
}

// apns-id is new on every request: kept out of the dynamic table, but for the first of a session, whose entry
// lets the later ones name the header by index. Credentials are never indexed.
TEST(Http2Session, ApnsIdIsIndexedOnceThenSentNeverIndexed) {
  Session client(options());
  FakeServer server(100, true);
  pump(client, server);
  std::vector<std::string> ids;
  std::vector<std::size_t> table_after;
  std::vector<std::int32_t> streams;
  for (int i = 0; i < 3; ++i) {
    ids.push_back("9f2a5c1e-0000-4000-8000-00000000000" + std::to_string(i));
    H2Request r = post("/3/device/abc");
    r.headers.emplace_back("apns-id", ids.back());
    Outcome out;
    auto sub = client.submit(std::move(r), out.callback());
    ASSERT_TRUE(sub);
    streams.push_back(sub.stream_id);
    pump(client, server);
    ASSERT_TRUE(out.result);
    table_after.push_back(server.dynamic_table_size());
  }
  for (int i = 0; i < 3; ++i) {
    const auto& req = server.requests_.at(streams[static_cast<std::size_t>(i)]);
    auto it = std::find_if(req.headers.begin(), req.headers.end(),
                           [](const auto& h) { return h.first == "apns-id"; });
    ASSERT_NE(it, req.headers.end());
    EXPECT_EQ(it->second, ids[static_cast<std::size_t>(i)]);
    EXPECT_EQ(req.header_flags.at("apns-id") & NGHTTP2_NV_FLAG_NO_INDEX,
              i == 0 ? 0 : NGHTTP2_NV_FLAG_NO_INDEX)
        << "request " << i;
    EXPECT_EQ(req.header_flags.at("authorization") & NGHTTP2_NV_FLAG_NO_INDEX, NGHTTP2_NV_FLAG_NO_INDEX);
  }
  // The later requests add nothing to the table: their headers are all indexed but apns-id, never indexed.
  EXPECT_EQ(table_after[1], table_after[0]);
  EXPECT_EQ(table_after[2], table_after[0]);
}

TEST(Http2Session, StreamLimitFromPeerSettings) {
  Session client(options());
  FakeServer server(1, false);
  pump(client, server);
  ASSERT_EQ(client.remote_max_concurrent_streams(), 1u);

  Outcome first, second;
  auto a = client.submit(post("/a"), first.callback());
  ASSERT_TRUE(a);
  EXPECT_FALSE(client.can_submit());
  auto refused = client.submit(post("/b"), second.callback());
  EXPECT_FALSE(refused);
  EXPECT_EQ(refused.failure, H2Failure::refused);
  pump(client, server);
  EXPECT_FALSE(first.result);
  EXPECT_FALSE(client.can_submit());

  server.respond(a.stream_id, 200, "");
  pump(client, server);
  ASSERT_TRUE(first.result);
  EXPECT_EQ(first.result->failure, H2Failure::none);
  EXPECT_TRUE(client.can_submit());
  auto b = client.submit(post("/b"), second.callback());
  ASSERT_TRUE(b);
  pump(client, server);
  server.respond(b.stream_id, 200, "");
  pump(client, server);
  ASSERT_TRUE(second.result);
  EXPECT_EQ(second.result->failure, H2Failure::none);
}

TEST(Http2Session, RefusedStreamIsRefused) {
  Session client(options());
  FakeServer server(100, false);
  pump(client, server);
  Outcome out;
  auto a = client.submit(post("/a"), out.callback());
  pump(client, server);
  server.rst(a.stream_id, NGHTTP2_REFUSED_STREAM);
  pump(client, server);
  ASSERT_TRUE(out.result);
  EXPECT_EQ(out.result->failure, H2Failure::refused);
  EXPECT_TRUE(client.can_submit()) << "a refused stream does not end the session";
}

TEST(Http2Session, OtherResetCodeIsReset) {
  Session client(options());
  FakeServer server(100, false);
  pump(client, server);
  Outcome out;
  auto a = client.submit(post("/a"), out.callback());
  pump(client, server);
  server.rst(a.stream_id, NGHTTP2_INTERNAL_ERROR);
  pump(client, server);
  ASSERT_TRUE(out.result);
  EXPECT_EQ(out.result->failure, H2Failure::reset);
  EXPECT_NE(out.result->detail.find("INTERNAL_ERROR"), std::string::npos) << out.result->detail;
}

TEST(Http2Session, GoawayRefusesStreamsAboveLastStreamId) {
  Session client(options());
  FakeServer server(100, false);
  pump(client, server);
  Outcome o1, o3, o5, late;
  auto s1 = client.submit(post("/1"), o1.callback());
  auto s3 = client.submit(post("/3"), o3.callback());
  auto s5 = client.submit(post("/5"), o5.callback());
  ASSERT_TRUE(s1 && s3 && s5);
  pump(client, server);
  server.goaway(s3.stream_id);
  pump(client, server);
  EXPECT_TRUE(client.goaway_received());
  EXPECT_EQ(client.goaway_last_stream_id(), s3.stream_id);
  ASSERT_TRUE(o5.result);
  EXPECT_EQ(o5.result->failure, H2Failure::refused);
  EXPECT_FALSE(o1.result);
  EXPECT_FALSE(o3.result);
  EXPECT_FALSE(client.can_submit());
  auto refused = client.submit(post("/7"), late.callback());
  EXPECT_FALSE(refused);
  EXPECT_EQ(refused.failure, H2Failure::refused);

  server.respond(s1.stream_id, 200, "one");
  server.respond(s3.stream_id, 410, "three");
  pump(client, server);
  ASSERT_TRUE(o1.result && o3.result);
  EXPECT_EQ(o1.result->failure, H2Failure::none);
  EXPECT_EQ(o1.result->response.body, "one");
  EXPECT_EQ(o3.result->failure, H2Failure::none);
  EXPECT_EQ(o3.result->response.status, 410);
  EXPECT_FALSE(client.alive()) << "GOAWAY received and no stream left: the connection is done";
}

TEST(Http2Session, PingAckIsTracked) {
  Session client(options());
  FakeServer server(100, true);
  pump(client, server);
  auto now = std::chrono::steady_clock::now();
  client.ping(now);
  EXPECT_TRUE(client.ping_outstanding());
  EXPECT_EQ(client.ping_sent_at(), now);
  pump(client, server);
  EXPECT_EQ(server.pings_, 1u);
  EXPECT_FALSE(client.ping_outstanding());
  EXPECT_EQ(client.pings_acked(), 1u);
}

TEST(Http2Session, ConnectionFailureCompletesOpenStreams) {
  Session client(options());
  FakeServer server(100, false);
  pump(client, server);
  Outcome sent, unsent;
  ASSERT_TRUE(client.submit(post("/sent"), sent.callback()));
  pump(client, server);
  ASSERT_TRUE(client.submit(post("/unsent"), unsent.callback()));  // HEADERS never leave
  client.fail_all(H2Failure::connection_lost, "peer closed");
  ASSERT_TRUE(sent.result && unsent.result);
  EXPECT_EQ(sent.result->failure, H2Failure::connection_lost);
  EXPECT_EQ(unsent.result->failure, H2Failure::refused) << "never sent, so safe to send elsewhere";
  EXPECT_FALSE(client.alive());
  EXPECT_FALSE(client.can_submit());
}

TEST(Http2Session, GarbageFromPeerFailsTheSession) {
  Session client(options());
  FakeServer server(100, false);
  pump(client, server);
  Outcome out;
  ASSERT_TRUE(client.submit(post("/a"), out.callback()));
  pump(client, server);
  std::string garbage(64, '\xff');
  client.receive({reinterpret_cast<const std::uint8_t*>(garbage.data()), garbage.size()});
  std::string goaway;
  client.take_output(goaway);  // nghttp2 answers a connection error with GOAWAY and ends the session
  EXPECT_FALSE(goaway.empty());
  ASSERT_TRUE(out.result);
  EXPECT_EQ(out.result->failure, H2Failure::connection_lost);
  EXPECT_FALSE(client.alive());
  EXPECT_FALSE(client.can_submit());
}

TEST(Http2Session, LargeBodyRespectsFlowControl) {
  Session client(options());
  FakeServer server(100, true);
  pump(client, server);
  std::string body(200 * 1024, 'x');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  Outcome out;
  auto a = client.submit(post("/big", body), out.callback());
  ASSERT_TRUE(a);
  // Without WINDOW_UPDATEs the client may send at most the initial 65,535-byte window.
  std::string first;
  client.take_output(first, 1 << 20);
  EXPECT_LT(first.size(), 65535u + 1024u);
  EXPECT_LE(client.remote_window(), 0);
  EXPECT_TRUE(client.flow_blocked());
  ASSERT_TRUE(server.receive(first));
  pump(client, server);
  ASSERT_TRUE(out.result);
  EXPECT_EQ(out.result->failure, H2Failure::none);
  EXPECT_EQ(out.result->response.body, "echo:" + std::to_string(body.size()));
  EXPECT_EQ(server.requests_.at(a.stream_id).body, body);
  EXPECT_FALSE(client.flow_blocked());
}

TEST(Http2Session, CancelResetsTheStream) {
  Session client(options());
  FakeServer server(1, false);
  pump(client, server);
  Outcome out;
  auto a = client.submit(post("/slow"), out.callback());
  pump(client, server);
  EXPECT_TRUE(client.cancel(a.stream_id, H2Failure::timeout, "request timeout"));
  ASSERT_TRUE(out.result);
  EXPECT_EQ(out.result->failure, H2Failure::timeout);
  pump(client, server);
  EXPECT_TRUE(client.can_submit()) << "the slot is free once RST_STREAM is out";
}

TEST(Http2Path, RedactsLongSegments) {
  EXPECT_EQ(redact_path("/3/device/0123456789abcdef0123456789abcdef"), "/3/device/01234567…");
  EXPECT_EQ(redact_path("/v1/projects/p/messages:send"), "/v1/projects/p/messages:send");
}

}  // namespace
}  // namespace notifyd::http2
