// bench_api: binding creates/s over keep-alive HTTP against raw SQLite inserts with the same durability,
// and the time to list a 1,000-binding page against a /healthz round trip; every figure from ONE run, so
// the ratios compare like with like on a shared, noisy machine. See bench/README.md.
// Single process: SqliteStore + api::Router + http::Server on 127.0.0.1:0 (io_context on --io-threads),
// synchronous Beast clients on their own threads, one keep-alive connection each. Every loop is bounded
// by a count; sockets carry SO_RCVTIMEO/SO_SNDTIMEO so a stuck server fails the run instead of hanging it.
#include <openssl/evp.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "daemon/api/resource.hpp"
#include "daemon/api/router.hpp"
#include "daemon/config/config.hpp"
#include "daemon/http/server.hpp"
#include "daemon/model/sid.hpp"
#include "daemon/model/time.hpp"
#include "daemon/store/sqlite/sqlite_store.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr const char* kAccountSid = "AC00000000000000000000000000000001";
constexpr const char* kAuthToken = "bench-token-0123456789abcdef";
constexpr int kSocketTimeoutSeconds = 30;

struct Options {
  std::size_t n = 20000;         // HTTP creates (and raw rows unless --raw-n)
  std::size_t raw_n = 0;         // 0: same as n
  std::size_t clients = 32;      // client threads, one keep-alive connection each
  std::size_t list_reps = 30;    // GET ?PageSize=1000 repetitions (and /healthz repetitions)
  std::size_t list_size = 1000;  // bindings in the listed service
  unsigned io_threads = 2;       // threads running the server's io_context
  unsigned workers = 64;         // Router worker pool (config.store.workers)
  std::size_t max_batch = 512;   // SqliteOptions::max_batch (writes per group commit at most)
  std::string type = "sms";      // sms | apn
  std::string dir;               // empty: a fresh temp dir, removed afterwards
  bool keep = false;             // keep --dir contents
  bool skip_store_direct = false;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "bench_api: %s\n"
               "usage: bench_api [--n N] [--raw-n N] [--clients C] [--list-reps R] [--list-size S]\n"
               "                 [--io-threads T] [--workers W] [--max-batch B] [--type sms|apn]\n"
               "                 [--dir DIR] [--keep] [--skip-store-direct]\n",
               why);
  std::exit(2);
}

std::size_t parse_count(const char* flag, const char* v, std::size_t lo, std::size_t hi) {
  char* end = nullptr;
  unsigned long long x = std::strtoull(v, &end, 10);
  if (!end || *end || x < lo || x > hi) {
    usage((std::string(flag) + " must be in " + std::to_string(lo) + ".." + std::to_string(hi)).c_str());
  }
  return static_cast<std::size_t>(x);
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--n")
      o.n = parse_count("--n", value(), 1, 9'000'000);
    else if (a == "--raw-n")
      o.raw_n = parse_count("--raw-n", value(), 1, 9'000'000);
    else if (a == "--clients")
      o.clients = parse_count("--clients", value(), 1, 1024);
    else if (a == "--list-reps")
      o.list_reps = parse_count("--list-reps", value(), 1, 100000);
    else if (a == "--list-size")
      o.list_size = parse_count("--list-size", value(), 1, 1000);
    else if (a == "--io-threads")
      o.io_threads = static_cast<unsigned>(parse_count("--io-threads", value(), 1, 64));
    else if (a == "--workers")
      o.workers = static_cast<unsigned>(parse_count("--workers", value(), 1, 1024));
    else if (a == "--max-batch")
      o.max_batch = parse_count("--max-batch", value(), 1, 100000);
    else if (a == "--type")
      o.type = value();
    else if (a == "--dir")
      o.dir = value();
    else if (a == "--keep")
      o.keep = true;
    else if (a == "--skip-store-direct")
      o.skip_store_direct = true;
    else if (a == "--help" || a == "-h")
      usage("help");
    else
      usage(("unknown flag " + a).c_str());
  }
  if (o.type != "sms" && o.type != "apn") usage("--type must be sms or apn");
  if (o.raw_n == 0) o.raw_n = o.n;
  return o;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// Distinct, valid addresses: k-th sms number (+1555 and 7 digits) or a 64-hex APNs token.
std::string address_for(const std::string& type, std::size_t k, std::size_t salt) {
  char buf[80];
  if (type == "sms") {
    std::snprintf(buf, sizeof buf, "+1555%07zu", k % 10'000'000);
  } else {
    std::snprintf(buf, sizeof buf, "%016zx%016zx%016zx%016zx", salt, k, k * 2654435761u, ~k);
  }
  return buf;
}

std::string form_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", static_cast<unsigned char>(c));
      out += b;
    }
  }
  return out;
}

std::string filesystem_name(const std::string& path) {
  struct statfs s {};
  if (statfs(path.c_str(), &s) != 0) return "unknown";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x01021994:
      return "tmpfs (fsync is free: durability figures are meaningless)";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x794c7630:
      return "overlayfs";
    default: {
      char b[32];
      std::snprintf(b, sizeof b, "0x%lx", static_cast<unsigned long>(s.f_type));
      return b;
    }
  }
}

// ---------------------------------------------------------------- raw SQLite baseline

struct RawResult {
  double per_row_rows_s = 0;
  double batched_rows_s = 0;
};

void check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(db));
  }
}

// A fresh database migrated by SqliteStore (same tables and indexes), then written directly through
// sqlite3 with the store's pragmas: each row is what a binding create writes (a bindings row and its
// one explicit tag), committed alone (`batch` = 1) or `batch` rows per transaction.
double raw_inserts(const std::string& path, const std::string& type, std::size_t rows, std::size_t batch) {
  { notifyd::sqlite::SqliteStore migrate_only({path}); }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    throw std::runtime_error("open " + path);
  }
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> guard(db, sqlite3_close);
  for (const char* p : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    check(sqlite3_exec(db, p, nullptr, nullptr, nullptr), db, p);
  }
  auto prepare = [&](const char* sql) {
    sqlite3_stmt* s = nullptr;
    check(sqlite3_prepare_v2(db, sql, -1, &s, nullptr), db, sql);
    return std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)>(s, sqlite3_finalize);
  };
  auto begin = prepare("BEGIN IMMEDIATE");
  auto commit = prepare("COMMIT");
  auto ins = prepare(
      "INSERT INTO bindings (seq, sid, account_sid, service_sid, credential_sid, identity, binding_type, "
      "address, "
      "tags, notification_protocol_version, endpoint, date_created, date_updated) "
      "VALUES (NULL,?,?,?,NULL,?,?,?,'[\"bench\"]','3',NULL,?,?)");
  auto tag = prepare("INSERT INTO binding_tags (service_sid, tag, binding_seq) VALUES (?,'bench',?)");
  const std::string service_sid = notifyd::make_sid("IS");
  auto step = [&](sqlite3_stmt* s, const char* what) {
    check(sqlite3_step(s), db, what);
    sqlite3_reset(s);
  };

  auto t0 = Clock::now();
  for (std::size_t i = 0; i < rows;) {
    step(begin.get(), "BEGIN");
    for (std::size_t j = 0; j < batch && i < rows; ++j, ++i) {
      std::string sid = notifyd::make_sid("BS");
      std::string identity = "user" + std::to_string(i);
      std::string address = address_for(type, i, 7);
      auto now = notifyd::now_seconds();
      sqlite3_bind_text(ins.get(), 1, sid.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(ins.get(), 2, kAccountSid, -1, SQLITE_STATIC);
      sqlite3_bind_text(ins.get(), 3, service_sid.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(ins.get(), 4, identity.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(ins.get(), 5, type.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(ins.get(), 6, address.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(ins.get(), 7, now);
      sqlite3_bind_int64(ins.get(), 8, now);
      step(ins.get(), "INSERT bindings");
      sqlite3_bind_text(tag.get(), 1, service_sid.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(tag.get(), 2, sqlite3_last_insert_rowid(db));
      step(tag.get(), "INSERT binding_tags");
    }
    step(commit.get(), "COMMIT");
  }
  return static_cast<double>(rows) / seconds_since(t0);
}

// ---------------------------------------------------------------- HTTP client

// One keep-alive connection, synchronous Beast; socket timeouts bound every call.
class Client {
 public:
  Client(std::uint16_t port, std::string authorization)
      : socket_(io_), authorization_(std::move(authorization)) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    socket_.set_option(tcp::no_delay(true));
    timeval tv{kSocketTimeoutSeconds, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  // Returns the status (0 on a transport error, with `body` holding the error).
  unsigned request(bhttp::verb method, const std::string& target, std::string body,
                   std::string* response_body) {
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    req.keep_alive(true);
    if (!authorization_.empty()) req.set(bhttp::field::authorization, authorization_);
    if (method == bhttp::verb::post) {
      req.set(bhttp::field::content_type, "application/x-www-form-urlencoded");
      req.body() = std::move(body);
    }
    req.prepare_payload();
    boost::system::error_code ec;
    bhttp::write(socket_, req, ec);
    if (ec) return fail(ec, response_body);
    bhttp::response<bhttp::string_body> res;
    bhttp::read(socket_, buffer_, res, ec);
    if (ec) return fail(ec, response_body);
    if (response_body) *response_body = std::move(res.body());
    return res.result_int();
  }

 private:
  static unsigned fail(const boost::system::error_code& ec, std::string* out) {
    if (out) *out = "transport error: " + ec.message();
    return 0;
  }

  asio::io_context io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::string authorization_;
};

struct CreateRun {
  double seconds = 0;
  std::size_t ok = 0;
  std::size_t failed = 0;
  std::string first_error;
  std::vector<double> latencies_ms;
};

// `total` creates into `service_sid` from `clients` threads; request k gets Identity user<k> and the
// k-th address (offset by `first`), so every create inserts a new binding (no replace, no eviction).
CreateRun http_creates(std::uint16_t port, const std::string& authorization, const std::string& service_sid,
                       const std::string& type, std::size_t first, std::size_t total, std::size_t clients) {
  clients = std::min(clients, total);
  std::vector<std::unique_ptr<Client>> conns;
  for (std::size_t c = 0; c < clients; ++c) conns.push_back(std::make_unique<Client>(port, authorization));
  const std::string target = "/v1/Services/" + service_sid + "/Bindings";
  std::atomic<std::size_t> next{0}, ok{0}, failed{0};
  std::mutex err_mu;
  CreateRun run;
  std::vector<std::vector<double>> lat(clients);
  std::latch start(static_cast<std::ptrdiff_t>(clients) + 1);
  std::vector<std::thread> threads;
  for (std::size_t c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      ::pthread_setname_np(::pthread_self(), "bench-client");  // perf --sort comm splits by this
      lat[c].reserve(total / clients + 1);
      start.arrive_and_wait();
      for (std::size_t guard = 0; guard < total; ++guard) {  // bounded: each pass claims one request
        std::size_t k = next.fetch_add(1);
        if (k >= total) break;
        std::size_t idx = first + k;
        std::string body = "Identity=user" + std::to_string(idx) + "&BindingType=" + type +
                           "&Address=" + form_escape(address_for(type, idx, 1)) + "&Tag=bench";
        std::string resp;
        auto t0 = Clock::now();
        unsigned status = conns[c]->request(bhttp::verb::post, target, std::move(body), &resp);
        lat[c].push_back(seconds_since(t0) * 1e3);
        if (status == 201) {
          ok.fetch_add(1);
        } else {
          failed.fetch_add(1);
          std::lock_guard lk(err_mu);
          if (run.first_error.empty()) run.first_error = std::to_string(status) + " " + resp;
          if (status == 0) break;  // the connection is gone
        }
      }
    });
  }
  start.arrive_and_wait();
  auto t0 = Clock::now();
  for (auto& t : threads) t.join();
  run.seconds = seconds_since(t0);
  run.ok = ok;
  run.failed = failed + (total - std::min(total, ok + failed));  // requests never sent count as failed
  for (auto& l : lat) run.latencies_ms.insert(run.latencies_ms.end(), l.begin(), l.end());
  return run;
}

// The store alone (no HTTP, no router): the same inserts from `threads` threads, to split the time.
double store_direct_creates(notifyd::Store& store, const std::string& service_sid, const std::string& type,
                            std::size_t total, std::size_t threads_n) {
  std::atomic<std::size_t> next{0}, failed{0};
  std::latch start(static_cast<std::ptrdiff_t>(threads_n) + 1);
  std::vector<std::thread> threads;
  for (std::size_t c = 0; c < threads_n; ++c) {
    threads.emplace_back([&] {
      ::pthread_setname_np(::pthread_self(), "bench-direct");
      start.arrive_and_wait();
      for (std::size_t guard = 0; guard < total; ++guard) {
        std::size_t k = next.fetch_add(1);
        if (k >= total) break;
        notifyd::BindingRecord b;
        b.sid = notifyd::make_sid("BS");
        b.account_sid = kAccountSid;
        b.service_sid = service_sid;
        b.identity = "user" + std::to_string(k);
        b.binding_type = type;
        b.address = address_for(type, k, 3);
        b.tags = {"bench"};
        b.notification_protocol_version = "3";
        b.date_created = b.date_updated = notifyd::now_seconds();
        if (!store.insert_binding(std::move(b))) failed.fetch_add(1);
      }
    });
  }
  start.arrive_and_wait();
  auto t0 = Clock::now();
  for (auto& t : threads) t.join();
  double s = seconds_since(t0);
  if (failed) throw std::runtime_error("store direct: " + std::to_string(failed.load()) + " inserts failed");
  return static_cast<double>(total) / s;
}

std::size_t count_bindings(notifyd::Store& store, const std::string& service_sid, std::size_t expected) {
  std::size_t count = 0;
  notifyd::PageRequest page{1000, std::nullopt};
  for (std::size_t guard = 0; guard <= expected / 1000 + 2; ++guard) {
    auto r = store.list_bindings(kAccountSid, service_sid, {}, page);
    if (!r) throw std::runtime_error("list_bindings failed: " + r.error().message);
    count += r->items.size();
    if (!r->more || r->items.empty()) break;
    page.cursor = notifyd::PageCursor{r->items.back().seq, false};
  }
  return count;
}

std::string create_service(Client& client, const std::string& name) {
  std::string body;
  unsigned st = client.request(bhttp::verb::post, "/v1/Services", "FriendlyName=" + name, &body);
  if (st != 201) throw std::runtime_error("POST /v1/Services: " + std::to_string(st) + " " + body);
  return std::string(boost::json::parse(body).as_object().at("sid").as_string());
}

// Threads inherit their creator's name on Linux: naming the main thread around the constructors that
// start threads (SqliteStore's writer, the Router's workers) lets `perf report --sort comm` split by role.
template <class T>
T named(const char* name, T value) {
  ::pthread_setname_np(::pthread_self(), name);
  return value;
}

// The in-process daemon: store, router, server, io threads; torn down in reverse.
struct Daemon {
  notifyd::sqlite::SqliteStore store;
  std::unique_ptr<notifyd::api::Router> router;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::unique_ptr<notifyd::http::Server> server;
  std::vector<std::thread> threads;
  std::uint16_t port = 0;

  Daemon(const std::string& path, const Options& o)
      : store(named("bench-writer", notifyd::sqlite::SqliteOptions{path, o.max_batch})),
        io(static_cast<int>(o.io_threads)) {
    ::pthread_setname_np(::pthread_self(), "bench-worker");
    notifyd::Config cfg;
    cfg.server.listen_port = 0;
    cfg.store.path = path;
    cfg.store.workers = o.workers;
    cfg.accounts.push_back({kAccountSid, kAuthToken, {}});
    auto config = std::make_shared<notifyd::Config>(cfg);
    router = std::make_unique<notifyd::api::Router>(config, store, o.workers);
    ::pthread_setname_np(::pthread_self(), "bench_api");
    notifyd::http::ServerOptions so;
    so.host = "127.0.0.1";
    so.port = 0;
    server = std::make_unique<notifyd::http::Server>(io, so, *router);
    port = server->listen();
    config = std::make_shared<notifyd::Config>(cfg);
    config->server.listen_port = port;
    config->server.public_url = "http://127.0.0.1:" + std::to_string(port);
    router->set_config(config);
    router->set_ready(true);
    work.emplace(io.get_executor());
    for (unsigned i = 0; i < o.io_threads; ++i)
      threads.emplace_back([this] {
        ::pthread_setname_np(::pthread_self(), "bench-io");
        io.run();
      });
  }

  ~Daemon() {
    std::promise<void> stopped;
    auto done = stopped.get_future();
    asio::post(io, [this, &stopped] {
      server->stop(std::chrono::milliseconds(2000), [&stopped] { stopped.set_value(); });
    });
    if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      std::fprintf(stderr, "warning: server did not stop within 10 s\n");
    }
    work.reset();
    io.stop();
    for (auto& t : threads) t.join();
    server.reset();
  }
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  spdlog::set_level(spdlog::level::warn);

  std::filesystem::path dir;
  bool remove_dir = false;
  if (o.dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "bench_api.XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = tmpl;
    remove_dir = !o.keep;
  } else {
    dir = o.dir;
    std::filesystem::create_directories(dir);
  }
  // Only our own files in a given --dir: fresh at the start, gone at the end (unless --keep).
  auto remove_db_files = [&dir] {
    std::error_code ec;
    for (const char* f : {"raw1.db", "raw64.db", "http.db", "store.db"}) {
      for (const char* suffix : {"", "-wal", "-shm"})
        std::filesystem::remove(dir / (std::string(f) + suffix), ec);
    }
  };
  if (!o.dir.empty()) remove_db_files();

  int rc = 0;
  try {
    std::printf("bench_api: n=%zu raw_n=%zu clients=%zu io_threads=%u workers=%u max_batch=%zu type=%s\n",
                o.n, o.raw_n, o.clients, o.io_threads, o.workers, o.max_batch, o.type.c_str());
    std::printf("dir=%s (%s), cores=%u, sqlite %s\n", dir.c_str(), filesystem_name(dir.string()).c_str(),
                std::thread::hardware_concurrency(), sqlite3_libversion());
    std::fflush(stdout);

    // 1. Raw SQLite, same durability (WAL, synchronous=FULL), same schema, one thread.
    RawResult raw;
    raw.per_row_rows_s = raw_inserts((dir / "raw1.db").string(), o.type, o.raw_n, 1);
    std::printf("raw sqlite, 1 row/commit:   %10.0f rows/s\n", raw.per_row_rows_s);
    std::fflush(stdout);
    raw.batched_rows_s = raw_inserts((dir / "raw64.db").string(), o.type, o.raw_n, 64);
    std::printf("raw sqlite, 64 rows/commit: %10.0f rows/s\n", raw.batched_rows_s);
    std::fflush(stdout);

    // 1b. The store alone from as many threads as there are clients (splits HTTP+router from store).
    double store_direct = 0;
    std::uint64_t store_direct_commits = 0;
    if (!o.skip_store_direct) {
      notifyd::sqlite::SqliteStore store(
          named("bench-dwriter", notifyd::sqlite::SqliteOptions{(dir / "store.db").string(), o.max_batch}));
      ::pthread_setname_np(::pthread_self(), "bench_api");
      notifyd::ServiceRecord svc;
      svc.sid = notifyd::make_sid("IS");
      svc.account_sid = kAccountSid;
      svc.default_apn_notification_protocol_version = svc.default_gcm_notification_protocol_version =
          svc.default_fcm_notification_protocol_version = svc.default_alexa_notification_protocol_version =
              "3";
      svc.date_created = svc.date_updated = notifyd::now_seconds();
      if (!store.insert_service(svc)) throw std::runtime_error("insert_service failed");
      auto c0 = store.commit_count();
      store_direct = store_direct_creates(store, svc.sid, o.type, o.n, o.clients);
      store_direct_commits = store.commit_count() - c0;
      std::printf("store.insert_binding, %zu threads: %10.0f creates/s (%llu commits)\n", o.clients,
                  store_direct, static_cast<unsigned long long>(store_direct_commits));
      std::fflush(stdout);
    }

    // 2. HTTP creates over keep-alive.
    Daemon d((dir / "http.db").string(), o);
    std::string auth = "Basic " + base64(std::string(kAccountSid) + ":" + kAuthToken);
    Client admin(d.port, auth);
    std::string service = create_service(admin, "bench");
    auto commits0 = d.store.commit_count();
    CreateRun run = http_creates(d.port, auth, service, o.type, 0, o.n, o.clients);
    auto http_commits = d.store.commit_count() - commits0;
    double http_rate = static_cast<double>(run.ok) / run.seconds;
    std::size_t stored = count_bindings(d.store, service, o.n);
    std::printf(
        "http POST Bindings:         %10.0f creates/s (%zu x 201 in %.2f s, %llu commits, p50 %.2f ms, "
        "p99 %.2f ms)\n",
        http_rate, run.ok, run.seconds, static_cast<unsigned long long>(http_commits),
        percentile(run.latencies_ms, 0.5), percentile(run.latencies_ms, 0.99));
    if (run.failed) {
      std::printf("FAIL: %zu creates not 201; first: %s\n", run.failed, run.first_error.c_str());
      rc = 1;
    }
    if (stored != o.n) {
      std::printf("FAIL: the store holds %zu bindings in the service, expected %zu\n", stored, o.n);
      rc = 1;
    }
    std::fflush(stdout);

    // 3. List a page of exactly list_size bindings, against /healthz, same connection, same run.
    std::string list_service = create_service(admin, "bench-list");
    CreateRun fill = http_creates(d.port, auth, list_service, o.type, o.n, o.list_size, o.clients);
    if (fill.failed) throw std::runtime_error("filling the list service: " + fill.first_error);
    const std::string list_target = "/v1/Services/" + list_service + "/Bindings?PageSize=1000";
    std::vector<double> list_ms, health_ms;
    std::string body;
    std::size_t listed = 0, list_bytes = 0;
    for (std::size_t i = 0; i < 3; ++i) {  // warm-up: reader connection, page cache, statement cache
      admin.request(bhttp::verb::get, list_target, {}, &body);
      admin.request(bhttp::verb::get, "/healthz", {}, nullptr);
    }
    for (std::size_t i = 0; i < o.list_reps; ++i) {
      auto t0 = Clock::now();
      unsigned st = admin.request(bhttp::verb::get, "/healthz", {}, nullptr);
      health_ms.push_back(seconds_since(t0) * 1e3);
      if (st != 200) throw std::runtime_error("GET /healthz: " + std::to_string(st));
      t0 = Clock::now();
      st = admin.request(bhttp::verb::get, list_target, {}, &body);
      list_ms.push_back(seconds_since(t0) * 1e3);
      if (st != 200) throw std::runtime_error("GET list: " + std::to_string(st) + " " + body);
      if (i == 0) {
        listed = boost::json::parse(body).as_object().at("bindings").as_array().size();
        list_bytes = body.size();
      }
    }
    if (listed != o.list_size) {
      std::printf("FAIL: the list page holds %zu bindings, expected %zu\n", listed, o.list_size);
      rc = 1;
    }
    // The handler alone (store read + JSON render, no HTTP), to split the list time.
    std::vector<double> handler_ms, store_ms;
    {
      notifyd::api::ResourceRequest req;
      req.account_sid = kAccountSid;
      req.method = "GET";
      req.path = "/v1/Services/" + list_service + "/Bindings";
      req.params = {list_service};
      req.query = *notifyd::api::FormParams::parse("PageSize=1000");
      req.public_url = "http://127.0.0.1:" + std::to_string(d.port);
      for (std::size_t i = 0; i < o.list_reps; ++i) {
        auto t0 = Clock::now();
        auto r = notifyd::api::list_bindings(d.store, req);
        handler_ms.push_back(seconds_since(t0) * 1e3);
        if (!r) throw std::runtime_error("list_bindings handler failed");
        t0 = Clock::now();
        auto p =
            d.store.list_bindings(kAccountSid, list_service, {}, notifyd::PageRequest{1000, std::nullopt});
        store_ms.push_back(seconds_since(t0) * 1e3);
        if (!p) throw std::runtime_error("store list_bindings failed");
      }
    }
    double list_p50 = percentile(list_ms, 0.5), list_p95 = percentile(list_ms, 0.95);
    double health_p50 = percentile(health_ms, 0.5);
    std::printf("GET list PageSize=1000:     %zu bindings, %zu bytes, p50 %.2f ms, p95 %.2f ms (%zu reps)\n",
                listed, list_bytes, list_p50, list_p95, o.list_reps);
    std::printf("  handler only (store+JSON): p50 %.2f ms; store.list_bindings only: p50 %.2f ms\n",
                percentile(handler_ms, 0.5), percentile(store_ms, 0.5));
    std::printf("GET /healthz:               p50 %.3f ms, p95 %.3f ms\n", health_p50,
                percentile(health_ms, 0.95));

    auto fmt = [](const char* f, double v) {
      char b[64];
      std::snprintf(b, sizeof b, f, v);
      return std::string(b);
    };
    auto row = [](const std::string& figure, const std::string& value, const std::string& ratio) {
      std::printf("| %-44s | %-12s | %-34s |\n", figure.c_str(), value.c_str(), ratio.c_str());
    };
    std::printf("\n");
    row("figure (one run)", "value", "ratio");
    std::printf("|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(14, '-').c_str(),
                std::string(36, '-').c_str());
    const double per_row = raw.per_row_rows_s, b64 = raw.batched_rows_s;
    auto vs_raw = [&](double x) {
      return fmt("%.2f", x / per_row) + " x per-row, " + fmt("%.2f", x / b64) + " x b64";
    };
    row("raw SQLite, 1 row per commit, 1 thread", fmt("%.0f /s", per_row), "1.00 (baseline)");
    row("raw SQLite, 64 rows per commit, 1 thread", fmt("%.0f /s", b64), vs_raw(b64));
    if (!o.skip_store_direct) {
      row("store.insert_binding, " + std::to_string(o.clients) + " threads (no HTTP)",
          fmt("%.0f /s", store_direct), vs_raw(store_direct));
    }
    row("HTTP POST Bindings, " + std::to_string(o.clients) + " keep-alive conns", fmt("%.0f /s", http_rate),
        vs_raw(http_rate));
    row("HTTP creates per group commit (mean)",
        fmt("%.1f", http_commits ? static_cast<double>(run.ok) / static_cast<double>(http_commits) : 0.0),
        "");
    row("GET 1000-binding page, p50", fmt("%.2f ms", list_p50),
        fmt("%.1f", list_p50 / health_p50) + " x /healthz p50");
    row("GET 1000-binding page, p95", fmt("%.2f ms", list_p95),
        fmt("%.1f", list_p95 / health_p50) + " x /healthz p50");
    row("GET /healthz round trip, p50", fmt("%.3f ms", health_p50), "1.0");
    std::printf("\nHTTP creates/s / raw 1-row-commit rows/s = %.2f; HTTP / raw 64-row-commit = %.2f\n",
                http_rate / raw.per_row_rows_s, http_rate / raw.batched_rows_s);
    std::printf("targets: >= 5000 durable creates/s: %s; 1000-binding page p50 < 20 ms: %s\n",
                http_rate >= 5000 ? "met" : "NOT met", list_p50 < 20 ? "met" : "NOT met");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_api: %s\n", e.what());
    rc = 1;
  }
  if (remove_dir) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  } else if (!o.dir.empty() && !o.keep) {
    remove_db_files();
  }
  return rc;
}
