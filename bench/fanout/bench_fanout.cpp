// bench_fanout: end-to-end fan-out of the real notifyd binary against h2load, in one run. See
// bench/README.md.
//
// This process hosts the fake APNs (FakeH2Server: TLS, ALPN h2, SETTINGS_MAX_CONCURRENT_STREAMS 1000 as APNs,
// no request log) and drives `notifyd --config FILE` as a child process:
//  0. Setup. notifyd is started on a fresh SQLite file; over HTTP an apn Credential (client certificate of
//     the test CA for com.example.bench), Service A and Service B (ApnCredentialSid = it), and one template
//     apn binding in each (A: Tag=bench; B: no tag) are created; notifyd is stopped (SIGTERM). Then N-1
//     more bindings are inserted into A straight into SQLite, one transaction, copying the template row's
//     columns (same schema as daemon/store/sqlite/migrations.cpp; `bindings` + `binding_tags` rows; valid
//     time-ordered BS SIDs, distinct 64-hex tokens, distinct identities).
//  1. Fan-out. notifyd is started again. t0 = just before POST /v1/Services/A/Notifications Tag=bench&Body=hi
//     (keep-alive connection opened beforehand); t1 = the fake has answered N requests. Rate = N/(t1-t0).
//     The daemon's VmRSS is sampled every 20 ms and VmHWM read at t1; its CPU (total and by thread name)
//     from /proc. One second after t1 the fake must still count exactly N (nothing sent twice). notifyd is
//     stopped; the outbox's delivery states are counted in SQLite.
//  2. Baseline. h2load -n N -c C -m M -t 1 against the same fake with the method, path, headers and body
//     of the first request the daemon sent (as the fake saw it; h2load adds user-agent/content-length);
//     C defaults to the number of connections the daemon opened, M to 1000 (the daemon's per-credential
//     in-flight limit and the fake's stream limit). Its "finished in" line gives req/s. Ratio = 1 / 2.
//  3. `all`. ALL_N-1 bindings are inserted into B the same way; notifyd is started again; POST
//     /v1/Services/B/Notifications Tag=all&Body=hi; the daemon's VmHWM when the fake has answered ALL_N
//     (or at the time limit: then the run says how far it got).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/fake_h2_server.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/tls_test_certs.hpp"

extern char** environ;

namespace {

using namespace notifyd;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

const std::string kAccount = "AC" + std::string(32, 'b');
const std::string kToken = "bench-auth-token-0123456789abcdef";
const std::string kTopic = "com.example.bench";

struct Args {
  std::uint64_t n = 100000;
  std::uint64_t all_n = 1000000;
  bool skip_all = false;
  bool skip_h2load = false;
  std::size_t h2load_c = 0;  // 0: the number of connections the daemon opened
  std::size_t h2load_m = 1000;
  std::size_t fake_threads = 1;
  unsigned daemon_threads = 0;    // [server] threads; 0: the daemon's default (one per core)
  unsigned delivery_threads = 0;  // [server] delivery_threads; 0: the daemon's default (1)
  int timeout_s = 600;
  int all_timeout_s = 1800;
  std::string notifyd = NOTIFYD_BENCH_DAEMON;
  std::string h2load = "/usr/bin/h2load";
  std::string dir;
  bool keep = false;
  bool progress = false;
  int rounds = 1;  // phases 1 and 2, alternately, this many times
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: bench_fanout [--n N (100000)] [--all-n N (1000000)] [--skip-all] [--skip-h2load]\n"
               "       [--h2load-c C (daemon's connections)] [--h2load-m M (1000)] [--fake-threads F (1)]\n"
               "       [--daemon-threads T (daemon default)] [--delivery-threads D (daemon default)]\n"
               "       [--timeout-s S (600)] [--all-timeout-s S (1800)] [--rounds R (1)]\n"
               "       [--notifyd PATH] [--h2load PATH] [--dir DIR] [--keep] [--progress]\n");
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (f == "--n")
      a.n = std::stoull(next());
    else if (f == "--all-n")
      a.all_n = std::stoull(next());
    else if (f == "--skip-all")
      a.skip_all = true;
    else if (f == "--skip-h2load")
      a.skip_h2load = true;
    else if (f == "--h2load-c")
      a.h2load_c = std::stoul(next());
    else if (f == "--h2load-m")
      a.h2load_m = std::stoul(next());
    else if (f == "--fake-threads")
      a.fake_threads = std::stoul(next());
    else if (f == "--daemon-threads")
      a.daemon_threads = static_cast<unsigned>(std::stoul(next()));
    else if (f == "--delivery-threads")
      a.delivery_threads = static_cast<unsigned>(std::stoul(next()));
    else if (f == "--timeout-s")
      a.timeout_s = std::stoi(next());
    else if (f == "--all-timeout-s")
      a.all_timeout_s = std::stoi(next());
    else if (f == "--notifyd")
      a.notifyd = next();
    else if (f == "--h2load")
      a.h2load = next();
    else if (f == "--dir")
      a.dir = next();
    else if (f == "--keep")
      a.keep = true;
    else if (f == "--progress")
      a.progress = true;
    else if (f == "--rounds")
      a.rounds = std::stoi(next());
    else
      usage();
  }
  if (a.n < 1 || a.all_n < 1 || a.rounds < 1) usage();
  return a;
}

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

constexpr auto kPoll = std::chrono::milliseconds(5);  // the fake's count, during a fan-out (see notify())

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string fs_name(const fs::path& p) {
  struct statfs s {};
  if (statfs(p.c_str(), &s) != 0) return "?";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x01021994:
      return "tmpfs (fsync is free: durable figures mean little)";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x794C7630:
      return "overlayfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(s.f_type));
      return buf;
    }
  }
}

// ---- /proc of the daemon ----

long status_kb(pid_t pid, const char* key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  std::size_t klen = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, klen, key) == 0) return std::strtol(line.c_str() + klen, nullptr, 10);
  }
  return -1;
}

// utime+stime in seconds of a /proc stat file; comm into *comm, the kernel's part (stime) into *sys.
double stat_cpu(const std::string& path, std::string* comm = nullptr, double* sys = nullptr) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto l = s.find('('), r = s.rfind(')');
  if (l == std::string::npos || r == std::string::npos) return 0;
  if (comm) *comm = s.substr(l + 1, r - l - 1);
  std::istringstream rest(s.substr(r + 2));
  std::string field;
  unsigned long long ut = 0, st = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) ut = std::stoull(field);
    if (i == 15) st = std::stoull(field);
  }
  const auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  if (sys) *sys = static_cast<double>(st) / ticks;
  return static_cast<double>(ut + st) / ticks;
}

double process_cpu(pid_t pid) { return stat_cpu("/proc/" + std::to_string(pid) + "/stat"); }

// Seconds of CPU, and seconds runnable but waiting for a core (the second field of schedstat: the cost of
// sharing two cores between the daemon's threads, the fake and the host).
struct ThreadTimes {
  double cpu = 0;
  double sys = 0;  // the kernel's part of cpu
  double core_wait = 0;
};

// The threads of a task directory ("/proc/<pid>/task"), summed by thread name.
std::map<std::string, ThreadTimes> times_by_thread_name(const std::string& task_dir) {
  std::map<std::string, ThreadTimes> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(task_dir, ec)) {
    std::string comm;
    double sys = 0;
    const double cpu = stat_cpu(e.path() / "stat", &comm, &sys);
    unsigned long long run_ns = 0, wait_ns = 0;
    std::ifstream(e.path() / "schedstat") >> run_ns >> wait_ns;
    auto& t = out[comm];
    t.cpu += cpu;
    t.sys += sys;
    t.core_wait += static_cast<double>(wait_ns) / 1e9;
  }
  return out;
}

// The host's CPU seconds, every core, process and kernel thread (/proc/stat): busy, and idle (with iowait).
// Beside the daemon's and this process's own CPU it shows whether the cores were saturated, and what else
// (other tenants, kernel threads such as the journal's) took them.
struct HostCpu {
  double busy = 0, idle = 0;
};

HostCpu host_cpu() {
  std::ifstream in("/proc/stat");
  std::string label;
  unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> label >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  const auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {static_cast<double>(user + nice + system + irq + softirq + steal) / ticks,
          static_cast<double>(idle + iowait) / ticks};
}

void print_host_cpu(const HostCpu& from, const HostCpu& to, double measured, const char* measured_what) {
  const double busy = to.busy - from.busy, idle = to.idle - from.idle;
  std::printf(
      "  host CPU (all cores, /proc/stat, 10 ms ticks): busy %.2f s, idle %.2f s; %s %.2f s, the rest %.2f "
      "s\n",
      busy, idle, measured_what, measured, busy - measured);
}

double self_cpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// ---- children ----

pid_t spawn(const std::vector<std::string>& args, const std::string& output_path) {
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0].c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot run " + args[0] + ": " + std::strerror(rc));
  return pid;
}

std::uint16_t free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind");
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

std::string tail_file(const fs::path& p, std::size_t bytes = 3000) {
  std::ifstream in(p);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

class Daemon {
 public:
  Daemon(const Args& a, fs::path config, fs::path log, std::uint16_t port)
      : args_(a), config_(std::move(config)), log_(std::move(log)), port_(port) {}
  ~Daemon() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  void start() {
    { std::ofstream(log_, std::ios::app) << "==== bench_fanout: starting notifyd\n"; }
    pid_ = spawn({args_.notifyd, "--config", config_.string()}, log_.string());
    auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("notifyd exited before it was ready:\n" + tail_file(log_));
      }
      try {
        test::HttpClient c("127.0.0.1", port_, std::chrono::milliseconds(1000));
        if (c.get("/healthz").status == 200) return;
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error("notifyd not ready in 60 s:\n" + tail_file(log_));
  }

  // SIGTERM and wait (bounded; SIGKILL after 120 s). Returns the seconds it took.
  double stop() {
    if (pid_ <= 0) return 0;
    auto t = Clock::now();
    kill(pid_, SIGTERM);
    while (secs(Clock::now() - t) < 120) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return secs(Clock::now() - t);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::cerr << "  notifyd did not stop within 120 s of SIGTERM: SIGKILL\n";
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return secs(Clock::now() - t);
  }

  pid_t pid() const { return pid_; }

 private:
  const Args& args_;
  fs::path config_, log_;
  std::uint16_t port_;
  pid_t pid_ = -1;
};

// ---- SQLite pre-population ----

void check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(db));
  }
}

struct Sqlite {
  sqlite3* db = nullptr;
  explicit Sqlite(const fs::path& p) {
    check(sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), db, "open");
    sqlite3_busy_timeout(db, 10000);
    exec("PRAGMA foreign_keys=ON");
  }
  ~Sqlite() { sqlite3_close(db); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string e = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(sql + ": " + e);
    }
  }
  std::vector<std::vector<std::string>> query(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    check(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), db, "prepare");
    std::vector<std::vector<std::string>> rows;
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::string> r;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        auto t = sqlite3_column_text(st, i);
        r.emplace_back(t ? reinterpret_cast<const char*>(t) : "NULL");
      }
      rows.push_back(std::move(r));
    }
    sqlite3_finalize(st);
    return rows;
  }
};

// Inserts `count` more bindings into `service_sid`, each a copy of that service's one existing (template)
// binding, made over HTTP, with its own SID, identity and address. Returns the seconds it took.
double insert_bindings(const fs::path& db_path, const std::string& service_sid, std::uint64_t count,
                       const std::vector<std::string>& tags, const std::string& tag_prefix) {
  auto t0 = Clock::now();
  Sqlite s(db_path);
  sqlite3_stmt* tpl = nullptr;
  check(sqlite3_prepare_v2(
            s.db,
            "SELECT account_sid, credential_sid, binding_type, tags, notification_protocol_version,"
            " endpoint, date_created, date_updated FROM bindings WHERE service_sid = ?",
            -1, &tpl, nullptr),
        s.db, "prepare template");
  sqlite3_bind_text(tpl, 1, service_sid.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(tpl) != SQLITE_ROW) throw std::runtime_error("no template binding in " + service_sid);
  auto text = [&](int i) -> std::optional<std::string> {
    auto t = sqlite3_column_text(tpl, i);
    if (!t) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(t));
  };
  auto account = *text(0), type = *text(2), tags_json = *text(3), proto = *text(4);
  auto credential = text(1), endpoint = text(5);
  auto created = sqlite3_column_int64(tpl, 6), updated = sqlite3_column_int64(tpl, 7);
  sqlite3_finalize(tpl);

  s.exec("PRAGMA synchronous=OFF");  // pre-population only; one checkpoint at the end
  s.exec("BEGIN IMMEDIATE");
  sqlite3_stmt* ins = nullptr;
  sqlite3_stmt* tag = nullptr;
  check(sqlite3_prepare_v2(
            s.db,
            "INSERT INTO bindings (sid, account_sid, service_sid, credential_sid, identity,"
            " binding_type, address, tags, notification_protocol_version, endpoint, date_created,"
            " date_updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            -1, &ins, nullptr),
        s.db, "prepare insert");
  check(sqlite3_prepare_v2(s.db, "INSERT INTO binding_tags (service_sid, tag, binding_seq) VALUES (?,?,?)",
                           -1, &tag, nullptr),
        s.db, "prepare tag insert");
  std::mt19937_64 rng(std::random_device{}());
  const auto r1 = rng(), r2 = rng(), r3 = rng();
  const auto r16 = static_cast<unsigned>(rng() & 0xffff);
  const auto ms = static_cast<unsigned long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                      std::chrono::system_clock::now().time_since_epoch())
                                                      .count());
  char sid[40], address[72], identity[48];
  for (std::uint64_t i = 0; i < count; ++i) {
    // SIDs as daemon/model/sid.cpp makes them: 48 bits of milliseconds, then 80 bits (here: 16 random + a
    // counter, so they are unique and ascend).
    std::snprintf(sid, sizeof sid, "BS%012llx%04x%016llx", ms & 0xffffffffffffULL, r16,
                  static_cast<unsigned long long>(i));
    std::snprintf(address, sizeof address, "%016llx%016llx%016llx%016llx",
                  static_cast<unsigned long long>(r1), static_cast<unsigned long long>(r2),
                  static_cast<unsigned long long>(r3), static_cast<unsigned long long>(i));
    std::snprintf(identity, sizeof identity, "%s%llu", tag_prefix.c_str(),
                  static_cast<unsigned long long>(i));
    sqlite3_reset(ins);
    sqlite3_bind_text(ins, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 2, account.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 3, service_sid.c_str(), -1, SQLITE_STATIC);
    if (credential)
      sqlite3_bind_text(ins, 4, credential->c_str(), -1, SQLITE_STATIC);
    else
      sqlite3_bind_null(ins, 4);
    sqlite3_bind_text(ins, 5, identity, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 6, type.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 7, address, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 8, tags_json.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 9, proto.c_str(), -1, SQLITE_STATIC);
    if (endpoint)
      sqlite3_bind_text(ins, 10, endpoint->c_str(), -1, SQLITE_STATIC);
    else
      sqlite3_bind_null(ins, 10);
    sqlite3_bind_int64(ins, 11, created);
    sqlite3_bind_int64(ins, 12, updated);
    check(sqlite3_step(ins), s.db, "insert binding");
    auto seq = sqlite3_last_insert_rowid(s.db);
    for (const auto& t : tags) {
      sqlite3_reset(tag);
      sqlite3_bind_text(tag, 1, service_sid.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_text(tag, 2, t.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_int64(tag, 3, seq);
      check(sqlite3_step(tag), s.db, "insert binding_tags");
    }
  }
  sqlite3_finalize(ins);
  sqlite3_finalize(tag);
  s.exec("COMMIT");
  s.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  // synchronous=OFF left the inserted pages dirty in the page cache: the daemon's first fsync of the database
  // (its first WAL checkpoint, as the fan-out starts) would write them all back inside the measurement, and
  // its commits would wait behind that (a 48 ms commit and a 55 ms checkpoint were seen). Written here.
  ::sync();
  return secs(Clock::now() - t0);
}

// ---- the fake ----

struct Capture {
  std::mutex mu;
  std::atomic<bool> have{false};
  std::optional<test::FakeRequest> first;
  void reset() {
    std::lock_guard l(mu);
    first.reset();
    have = false;
  }
  std::optional<test::FakeRequest> get() {
    std::lock_guard l(mu);
    return first;
  }
};

void print_request(const char* who, const std::optional<test::FakeRequest>& r) {
  if (!r) {
    std::printf("  %s: no request captured\n", who);
    return;
  }
  std::printf("  first request from %s, as the fake saw it: %s %s (authority %s), %zu-byte body\n", who,
              r->method.c_str(), r->path.c_str(), r->authority.c_str(), r->body.size());
  for (auto& [k, v] : r->headers) std::printf("    %s: %s\n", k.c_str(), v.c_str());
  std::printf("    body: %s\n", r->body.c_str());
}

// Samples the daemon's VmRSS every 20 ms (max kept) and prints progress each second when asked.
class Sampler {
 public:
  Sampler(pid_t pid, test::FakeH2Server& fake, std::uint64_t base, bool progress)
      : pid_(pid), fake_(fake), base_(base), progress_(progress), thread_([this] { run(); }) {}
  ~Sampler() {
    stop_ = true;
    thread_.join();
  }
  long max_rss_kb() const { return max_rss_.load(); }

 private:
  void run() {
    auto t0 = Clock::now();
    auto next_print = t0 + std::chrono::seconds(1);
    while (!stop_) {
      long rss = status_kb(pid_, "VmRSS:");
      if (rss > max_rss_) max_rss_ = rss;
      if (progress_ && Clock::now() >= next_print) {
        next_print += std::chrono::seconds(1);
        std::printf("    [%5.1f s] fake answered %llu, daemon VmRSS %ld KiB, cpu %.1f s\n",
                    secs(Clock::now() - t0), static_cast<unsigned long long>(fake_.request_count() - base_),
                    rss, process_cpu(pid_));
        std::fflush(stdout);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  pid_t pid_;
  test::FakeH2Server& fake_;
  std::uint64_t base_;
  bool progress_;
  std::atomic<bool> stop_{false};
  std::atomic<long> max_rss_{0};
  std::thread thread_;
};

struct FanoutResult {
  bool complete = false;
  std::uint64_t answered = 0;
  double seconds = 0, post_ms = 0, first_request_ms = 0;
  long hwm_kb = 0, max_rss_kb = 0, idle_rss_kb = 0, idle_hwm_kb = 0;
  double daemon_cpu = 0, fake_cpu = 0;
  HostCpu host0, host1;  // at the POST and at the last answer
  std::map<std::string, double> cpu_by_thread;
  std::map<std::string, double> sys_by_thread;        // the kernel's part of cpu_by_thread
  std::map<std::string, double> core_wait_by_thread;  // the daemon's threads, the fake's, the bench's
  std::uint64_t connections = 0;
  std::uint64_t base = 0;                              // the fake's count before the POST
  std::vector<std::pair<double, double>> progress_ms;  // (fraction of N answered, ms since the POST)
};

FanoutResult notify(const Args& a, Daemon& d, test::FakeH2Server& fake, Capture& cap, std::uint16_t port,
                    const std::string& service, const std::string& tag, std::uint64_t n, int timeout_s) {
  FanoutResult r;
  test::HttpClient client("127.0.0.1", port, std::chrono::milliseconds(600000));
  client.set_basic_auth(kAccount, kToken);
  if (client.get("/healthz").status != 200) throw std::runtime_error("healthz");  // connection open before t0
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let start-up settle (lease release, polls)
  r.idle_rss_kb = status_kb(d.pid(), "VmRSS:");
  r.idle_hwm_kb = status_kb(d.pid(), "VmHWM:");
  const std::string daemon_tasks = "/proc/" + std::to_string(d.pid()) + "/task";
  auto daemon_threads0 = times_by_thread_name(daemon_tasks);
  auto self_threads0 = times_by_thread_name("/proc/self/task");
  const double dcpu0 = process_cpu(d.pid()), scpu0 = self_cpu();
  const auto base = fake.request_count();
  const auto conns0 = fake.connections_accepted();
  cap.reset();
  std::optional<Sampler> sampler(std::in_place, d.pid(), fake, base, a.progress);

  r.host0 = host_cpu();
  const auto t0 = Clock::now();
  auto resp = client.post_form("/v1/Services/" + service + "/Notifications", {{"Tag", tag}, {"Body", "hi"}});
  const auto t_post = Clock::now();
  if (resp.status != 201)
    throw std::runtime_error("POST Notifications: " + std::to_string(resp.status) + " " + resp.body);
  // Polled, not fake.wait_until(): a waiter on the fake's condition variable is woken by every request, tens
  // of thousands of futex calls and wake-ups on this machine's two cores during the fan-out, which the h2load
  // run (this thread in wait4) does not pay. t1 is the fake's own time of the last request, so the poll's
  // period bounds only the progress marks' resolution: every 5 ms, not 0.5, as each wake-up of this thread
  // takes a core from the daemon or the fake (it waited for one about 0.1 s per 100,000 at 0.5 ms).
  const auto deadline = t_post + std::chrono::seconds(timeout_s);
  // When the fake's count first reached each tenth of N (and 1% and 99%): start-up, steady rate and tail.
  const std::vector<double> marks = {0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99};
  std::size_t next_mark = 0;
  for (;;) {
    const auto count = fake.request_count() - base;
    const auto now = Clock::now();
    while (next_mark < marks.size() &&
           static_cast<double>(count) >= marks[next_mark] * static_cast<double>(n)) {
      r.progress_ms.emplace_back(marks[next_mark], secs(now - t0) * 1e3);
      ++next_mark;
    }
    if (count >= n || now >= deadline) break;
    std::this_thread::sleep_for(kPoll);
  }
  r.host1 = host_cpu();
  r.complete = fake.request_count() - base >= n;
  const auto t1 = r.complete ? fake.last_request_at() : Clock::now();
  r.hwm_kb = status_kb(d.pid(), "VmHWM:");
  r.daemon_cpu = process_cpu(d.pid()) - dcpu0;
  r.fake_cpu = self_cpu() - scpu0;
  for (auto& [k, v] : times_by_thread_name(daemon_tasks)) {
    r.cpu_by_thread[k] = v.cpu - daemon_threads0[k].cpu;
    r.sys_by_thread[k] = v.sys - daemon_threads0[k].sys;
    r.core_wait_by_thread[k] = v.core_wait - daemon_threads0[k].core_wait;
  }
  for (auto& [k, v] : times_by_thread_name("/proc/self/task")) {
    r.core_wait_by_thread[k == "fake-h2" ? "the fake" : "(bench's own threads)"] +=
        v.core_wait - self_threads0[k].core_wait;
  }
  r.max_rss_kb = sampler->max_rss_kb();
  sampler.reset();
  r.hwm_kb = std::max(r.hwm_kb, status_kb(d.pid(), "VmHWM:"));  // VmHWM only grows: the later reading
  // VmHWM is updated lazily (per-thread RSS counters are folded in late), so a 20 ms VmRSS sample can top it.
  r.hwm_kb = std::max(r.hwm_kb, r.max_rss_kb);
  r.base = base;
  r.answered = fake.request_count() - base;
  r.seconds = secs(t1 - t0);
  r.post_ms = secs(t_post - t0) * 1e3;
  if (auto first = cap.get()) r.first_request_ms = secs(first->received_at - t0) * 1e3;
  r.connections = fake.connections_accepted() - conns0;
  return r;
}

void report_fanout(const FanoutResult& r, std::uint64_t n) {
  std::printf("  POST -> 201: %.1f ms; POST -> first request at the fake: %.1f ms\n", r.post_ms,
              r.first_request_ms);
  std::printf("  answered by (ms after the POST, polled every %lld ms):",
              static_cast<long long>(kPoll.count()));
  for (const auto& [fraction, ms] : r.progress_ms) std::printf(" %g%% %.0f", fraction * 100, ms);
  std::printf("\n");
  std::printf("  fake answered %llu of %llu in %.3f s%s\n", static_cast<unsigned long long>(r.answered),
              static_cast<unsigned long long>(n), r.seconds, r.complete ? "" : "  ** TIME LIMIT REACHED **");
  std::printf("  daemon rate: %.0f deliveries/s (POST to last answer)\n",
              static_cast<double>(r.answered) / r.seconds);
  std::printf(
      "  daemon memory: idle before the POST VmRSS %ld KiB (VmHWM %ld KiB); peak (max of VmHWM and the "
      "VmRSS samples) %ld KiB = %.1f MiB (largest VmRSS sample %ld KiB)\n",
      r.idle_rss_kb, r.idle_hwm_kb, r.hwm_kb, static_cast<double>(r.hwm_kb) / 1024.0, r.max_rss_kb);
  std::printf(
      "  daemon CPU %.2f s (%.1f us/delivery, %.0f%% of one core); fake (this process) CPU %.2f s (%.1f "
      "us/req)\n",
      r.daemon_cpu, r.daemon_cpu * 1e6 / static_cast<double>(std::max<std::uint64_t>(r.answered, 1)),
      100.0 * r.daemon_cpu / r.seconds, r.fake_cpu,
      r.fake_cpu * 1e6 / static_cast<double>(std::max<std::uint64_t>(r.answered, 1)));
  std::printf("  daemon CPU by thread name (of which in the kernel):");
  for (auto& [k, v] : r.cpu_by_thread) {
    if (v >= 0.005) std::printf(" %s %.2f s (%.2f);", k.c_str(), v, r.sys_by_thread.at(k));
  }
  std::printf("\n  waiting for a core (runnable, not running):");
  for (auto& [k, v] : r.core_wait_by_thread) {
    if (v >= 0.005) std::printf(" %s %.2f s;", k.c_str(), v);
  }
  std::printf("\n");
  print_host_cpu(r.host0, r.host1, r.daemon_cpu + r.fake_cpu, "the daemon's and this process's");
  std::printf("  connections the daemon opened to the fake: %llu\n",
              static_cast<unsigned long long>(r.connections));
}

std::string delivery_states(const fs::path& db, const std::string& service) {
  Sqlite s(db);
  auto rows = s.query(
      "SELECT d.state, count(*) FROM deliveries d JOIN notifications n ON n.seq = d.notification_seq "
      "WHERE n.service_sid = '" +
      service + "' GROUP BY d.state ORDER BY d.state");
  static const char* names[] = {"pending", "delivered", "failed", "expired"};
  std::string out;
  long long with_rows = 0;
  for (auto& r : rows) {
    int st = std::stoi(r[0]);
    with_rows += std::stoll(r[1]);
    out += std::string(st >= 0 && st < 4 ? names[st] : r[0].c_str()) + " " + r[1] + "; ";
  }
  // Page deliveries settled as delivered keep no row: recipients minus rows minus unsettled page entries.
  auto totals = s.query(
      "SELECT COALESCE(SUM(n.recipients), 0), (SELECT COALESCE(SUM(p.remaining), 0) FROM delivery_pages p "
      "JOIN "
      "notifications n2 ON n2.seq = p.notification_seq WHERE n2.service_sid = '" +
      service +
      "') FROM "
      "notifications n WHERE n.service_sid = '" +
      service + "'");
  if (!totals.empty()) {
    long long recipients = std::stoll(totals[0][0]), unsettled = std::stoll(totals[0][1]);
    out += "recipients " + totals[0][0] + ": rows " + std::to_string(with_rows) +
           ", page entries delivered " + std::to_string(recipients - with_rows - unsettled) + ", unsettled " +
           totals[0][1] + "; ";
  }
  return out.empty() ? "none" : out;
}

// ---- h2load ----

struct H2loadResult {
  bool ok = false;
  double seconds = 0, req_per_s = 0, cpu = 0;
  std::uint64_t succeeded = 0, status_2xx = 0;
  std::string output, command;
};

H2loadResult run_h2load(const Args& a, const test::FakeRequest& like, const std::string& url,
                        const fs::path& dir, std::uint64_t n, std::size_t c, std::size_t m) {
  fs::path payload = dir / "payload.json";
  { std::ofstream(payload, std::ios::binary) << like.body; }
  std::vector<std::string> args = {
      a.h2load, "-n", std::to_string(n), "-c", std::to_string(c), "-m", std::to_string(m), "-t",
      "1",      "-d", payload.string()};
  H2loadResult r;
  r.command = "h2load -n " + std::to_string(n) + " -c " + std::to_string(c) + " -m " + std::to_string(m) +
              " -t 1 -d payload.json";
  for (auto& [k, v] : like.headers) {
    if (k == "content-length" || k == "user-agent") continue;  // h2load sets these itself
    args.push_back("-H");
    args.push_back(k + ": " + v);
    r.command += " -H '" + k + ": " + v + "'";
  }
  args.push_back(url + like.path);
  r.command += " " + url + like.path;
  fs::path out = dir / "h2load.out";
  fs::remove(out);
  pid_t pid = spawn(args, out.string());
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  r.cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
          static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  std::ifstream in(out);
  r.output.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  std::smatch mt;
  static const std::regex finished(R"(finished in ([0-9.]+)(ms|s|us), ([0-9.]+) req/s)");
  static const std::regex requests(R"(requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded)");
  static const std::regex codes(R"(status codes: (\d+) 2xx)");
  if (std::regex_search(r.output, mt, finished)) {
    r.seconds = std::stod(mt[1]) / (mt[2] == "ms" ? 1e3 : mt[2] == "us" ? 1e6 : 1.0);
    r.req_per_s = std::stod(mt[3]);
  }
  if (std::regex_search(r.output, mt, requests)) r.succeeded = std::stoull(mt[1]);
  if (std::regex_search(r.output, mt, codes)) r.status_2xx = std::stoull(mt[1]);
  r.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && r.req_per_s > 0;
  return r;
}

std::string json_sid(const test::HttpResponse& r, const char* what) {
  if ((r.status != 201 && r.status != 200) || !r.json_ok || !r.json.is_object() ||
      !r.json.as_object().contains("sid")) {
    throw std::runtime_error(std::string(what) + ": HTTP " + std::to_string(r.status) + " " + r.body);
  }
  return std::string(r.json.as_object().at("sid").as_string());
}

std::string hex_token() {
  std::mt19937_64 rng(std::random_device{}());
  char b[72];
  std::snprintf(b, sizeof b, "%016llx%016llx%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()), static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return b;
}

int run(const Args& a) {
  bool ok = true;
  fs::path dir;
  bool made_dir = false;
  if (a.dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/bench_fanout.XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp");
    dir = tmpl;
    made_dir = true;
  } else {
    dir = a.dir;
    fs::create_directories(dir);
  }
  const fs::path db = dir / "notifyd.db", config = dir / "notifyd.toml", log = dir / "notifyd.log";
  for (auto p : {db, fs::path(db.string() + "-wal"), fs::path(db.string() + "-shm"), log}) fs::remove(p);

  std::printf("bench_fanout: N=%llu, all-N=%llu; %s; dir %s (%s); load average %s\n",
              static_cast<unsigned long long>(a.n), static_cast<unsigned long long>(a.all_n),
              a.notifyd.c_str(), dir.c_str(), fs_name(dir).c_str(), loadavg().c_str());

  // The fake APNs: no log (counts stay exact), APNs' 1,000 streams per connection; the first request of each
  // phase is captured by the handler.
  test::FakeH2Options fo;
  fo.log_capacity = 0;
  fo.threads = a.fake_threads;
  fo.max_concurrent_streams = 1000;
  test::FakeH2Server fake(fo);
  Capture cap;
  fake.set_handler([&cap](const test::FakeRequest& r) {
    if (!cap.have.load(std::memory_order_relaxed)) {
      std::lock_guard l(cap.mu);
      if (!cap.first) {
        cap.first = r;
        cap.have = true;
      }
    }
    return test::FakeResponse{};
  });
  const fs::path ca = dir / "ca.pem";
  { std::ofstream(ca) << test::shared_test_pki().ca.certificate_pem; }

  const std::uint16_t port = free_port();
  {
    std::ofstream c(config);
    c << "[server]\nlisten = \"127.0.0.1:" << port << "\"\npublic_url = \"http://127.0.0.1:" << port
      << "\"\n";
    if (a.daemon_threads) c << "threads = " << a.daemon_threads << "\n";
    if (a.delivery_threads) c << "delivery_threads = " << a.delivery_threads << "\n";
    c << "[store]\npath = \"" << db.string() << "\"\n"
      << "[log]\nlevel = \"" << (std::getenv("BENCH_LOG_LEVEL") ? std::getenv("BENCH_LOG_LEVEL") : "info")
      << "\"\n"
      << "[[accounts]]\nsid = \"" << kAccount << "\"\nauth_token = \"" << kToken << "\"\n"
      << "[apns]\nproduction_url = \"" << fake.url() << "\"\nsandbox_url = \"" << fake.url()
      << "\"\nca_file = \"" << ca.string() << "\"\n";
  }
  Daemon daemon(a, config, log, port);

  // ---- 0. setup over HTTP, then bulk insert ----
  std::string service_a, service_b;
  {
    daemon.start();
    test::HttpClient http("127.0.0.1", port);
    http.set_basic_auth(kAccount, kToken);
    auto cert = test::make_client_cert(kTopic);
    auto cred = json_sid(http.post_form("/v1/Credentials", {{"Type", "apn"},
                                                            {"FriendlyName", "bench"},
                                                            {"Certificate", cert.certificate_pem},
                                                            {"PrivateKey", cert.private_key_pem}}),
                         "create credential");
    service_a =
        json_sid(http.post_form("/v1/Services", {{"FriendlyName", "fanout"}, {"ApnCredentialSid", cred}}),
                 "create service A");
    service_b =
        json_sid(http.post_form("/v1/Services", {{"FriendlyName", "all"}, {"ApnCredentialSid", cred}}),
                 "create service B");
    json_sid(
        http.post_form(
            "/v1/Services/" + service_a + "/Bindings",
            {{"Identity", "template"}, {"BindingType", "apn"}, {"Address", hex_token()}, {"Tag", "bench"}}),
        "create template binding A");
    json_sid(http.post_form("/v1/Services/" + service_b + "/Bindings",
                            {{"Identity", "template"}, {"BindingType", "apn"}, {"Address", hex_token()}}),
             "create template binding B");
    daemon.stop();
  }
  std::printf("\n0. setup: credential + services %s (tag bench) and %s (all) over HTTP; daemon stopped\n",
              service_a.c_str(), service_b.c_str());
  double ins = insert_bindings(db, service_a, a.n - 1, {"bench"}, "user");
  std::printf(
      "  inserted %llu bindings (+1 over HTTP) into %s in %.2f s (one transaction, then a checkpoint)\n",
      static_cast<unsigned long long>(a.n - 1), service_a.c_str(), ins);

  // ---- 1 and 2, `rounds` times: the fan-out (a new notification to the same bindings, notifyd started
  // afresh each time), then h2load. This host's speed drifts within seconds; the rounds alternate so that
  // each ratio compares neighbours, and their median is the run's figure. ----
  std::vector<double> daemon_rates, h2_rates, ratios;
  long peak_kb = 0;
  for (int round = 1; round <= a.rounds; ++round) {
    if (a.rounds > 1) std::printf("\n==== round %d of %d ====\n", round, a.rounds);
    // ---- 1. the fan-out ----
    std::printf(
        "\n1. notifyd: POST /v1/Services/%s/Notifications Tag=bench&Body=hi to %llu apn bindings (load %s)\n",
        service_a.c_str(), static_cast<unsigned long long>(a.n), loadavg().c_str());
    daemon.start();
    auto f = notify(a, daemon, fake, cap, port, service_a, "bench", a.n, a.timeout_s);
    report_fanout(f, a.n);
    auto daemon_request = cap.get();
    print_request("notifyd", daemon_request);
    std::this_thread::sleep_for(std::chrono::seconds(1));  // count again a second later: nothing sent twice
    if (auto again = fake.request_count() - f.base; again != a.n) {
      std::printf("  FAIL: the fake counted %llu requests one second after t1, not %llu\n",
                  static_cast<unsigned long long>(again), static_cast<unsigned long long>(a.n));
      ok = false;
    }
    const double stop_s = daemon.stop();
    std::printf("  notifyd stopped in %.2f s; outbox of %s: %s\n", stop_s, service_a.c_str(),
                delivery_states(db, service_a).c_str());
    const double daemon_rate = static_cast<double>(f.answered) / f.seconds;
    if (!f.complete) ok = false;

    // ---- 2. h2load baseline ----
    double h2_rate = 0;
    if (!a.skip_h2load && daemon_request) {
      std::size_t c = a.h2load_c ? a.h2load_c : std::max<std::uint64_t>(f.connections, 1);
      std::printf("\n2. h2load: the same %llu requests to the same fake (load %s)\n",
                  static_cast<unsigned long long>(a.n), loadavg().c_str());
      auto base = fake.request_count();
      cap.reset();
      const double scpu0 = self_cpu();
      const HostCpu host0 = host_cpu();
      auto h = run_h2load(a, *daemon_request, fake.url(), dir, a.n, c, a.h2load_m);
      const HostCpu host1 = host_cpu();
      const double fake_cpu = self_cpu() - scpu0;  // this process waits in wait4 meanwhile: the fake's
      std::printf("  %s\n", h.command.c_str());
      auto counted = fake.request_count() - base;
      std::printf(
          "  h2load: finished in %.3f s, %.0f req/s; %llu succeeded, %llu 2xx; fake counted %llu; h2load CPU "
          "%.2f s (%.1f us/req)\n",
          h.seconds, h.req_per_s, static_cast<unsigned long long>(h.succeeded),
          static_cast<unsigned long long>(h.status_2xx), static_cast<unsigned long long>(counted), h.cpu,
          h.cpu * 1e6 / static_cast<double>(a.n));
      std::printf(
          "  fake (this process) CPU %.2f s (%.1f us/req): its cost for h2load's identical requests\n",
          fake_cpu, fake_cpu * 1e6 / static_cast<double>(a.n));
      print_host_cpu(host0, host1, h.cpu + fake_cpu, "h2load's and this process's");
      print_request("h2load", cap.get());
      if (!h.ok || h.succeeded != a.n || counted != a.n) {
        std::printf("  FAIL: h2load did not complete %llu requests. Its output:\n%s\n",
                    static_cast<unsigned long long>(a.n), h.output.c_str());
        ok = false;
      }
      h2_rate = h.req_per_s;
    }
    std::printf(
        "\nRESULT fan-out of %llu: notifyd %.0f/s, h2load %.0f/s, ratio %.2f (target >= 0.70: %s); peak RSS "
        "%.1f MiB (target < 128: %s)\n",
        static_cast<unsigned long long>(a.n), daemon_rate, h2_rate, h2_rate > 0 ? daemon_rate / h2_rate : 0.0,
        h2_rate > 0 && daemon_rate / h2_rate >= 0.7 ? "met" : "NOT met",
        static_cast<double>(f.hwm_kb) / 1024.0, f.hwm_kb < 128 * 1024 ? "met" : "NOT met");
    std::fflush(stdout);
    daemon_rates.push_back(daemon_rate);
    peak_kb = std::max(peak_kb, f.hwm_kb);
    if (h2_rate > 0) {
      h2_rates.push_back(h2_rate);
      ratios.push_back(daemon_rate / h2_rate);
    }
  }
  if (a.rounds > 1) {
    std::printf("\nrounds: notifyd/s, h2load/s, ratio:");
    for (std::size_t i = 0; i < daemon_rates.size(); ++i) {
      std::printf(" (%.0f, %.0f, %.2f)", daemon_rates[i], i < h2_rates.size() ? h2_rates[i] : 0.0,
                  i < ratios.size() ? ratios[i] : 0.0);
    }
    std::printf("\n");
    const double r = median(ratios);
    std::printf(
        "\nRESULT fan-out of %llu, median of %d rounds: notifyd %.0f/s, h2load %.0f/s, ratio %.2f (the "
        "median "
        "of the rounds' ratios; target >= 0.70: %s); peak RSS %.1f MiB (target < 128: %s)\n",
        static_cast<unsigned long long>(a.n), a.rounds, median(daemon_rates), median(h2_rates), r,
        !ratios.empty() && r >= 0.7 ? "met" : "NOT met", static_cast<double>(peak_kb) / 1024.0,
        peak_kb < 128 * 1024 ? "met" : "NOT met");
    std::fflush(stdout);
  }

  // ---- 3. `all` over ALL_N bindings ----
  if (!a.skip_all) {
    std::printf("\n3. `all`: %llu apn bindings in %s\n", static_cast<unsigned long long>(a.all_n),
                service_b.c_str());
    double ins2 = insert_bindings(db, service_b, a.all_n - 1, {}, "all");
    std::printf("  inserted %llu bindings (+1 over HTTP) in %.2f s; load %s\n",
                static_cast<unsigned long long>(a.all_n - 1), ins2, loadavg().c_str());
    daemon.start();
    auto g = notify(a, daemon, fake, cap, port, service_b, "all", a.all_n, a.all_timeout_s);
    report_fanout(g, a.all_n);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    if (auto again = fake.request_count() - g.base; g.complete && again != a.all_n) {
      std::printf("  FAIL: the fake counted %llu requests one second after t1, not %llu\n",
                  static_cast<unsigned long long>(again), static_cast<unsigned long long>(a.all_n));
      ok = false;
    }
    const double stop2 = daemon.stop();
    std::printf("  notifyd stopped in %.2f s; outbox of %s: %s\n", stop2, service_b.c_str(),
                delivery_states(db, service_b).c_str());
    std::printf(
        "\nRESULT `all` over %llu: %s %llu in %.1f s (%.0f/s); peak RSS (VmHWM) %.1f MiB; idle before "
        "the POST %.1f MiB\n",
        static_cast<unsigned long long>(a.all_n), g.complete ? "all answered:" : "INCOMPLETE, answered",
        static_cast<unsigned long long>(g.answered), g.seconds, static_cast<double>(g.answered) / g.seconds,
        static_cast<double>(g.hwm_kb) / 1024.0, static_cast<double>(g.idle_rss_kb) / 1024.0);
    if (!g.complete) ok = false;
  }
  std::printf("\nload average at the end: %s; daemon log: %s\n", loadavg().c_str(),
              a.keep || !made_dir ? log.c_str() : "(removed)");
  if (made_dir && !a.keep) fs::remove_all(dir);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_fanout: %s\n", e.what());
    return 1;
  }
}
