// bench_transport: APNs pushes/s through ApnsTransport against h2load sending the same requests to the same
// in-process fake APNs, in one run; then the memory per 1,000 in-flight streams. See bench/README.md.
//
//  1. Throughput. A FakeH2Server (TLS, ALPN h2, SETTINGS_MAX_CONCURRENT_STREAMS = M, its own thread(s)).
//     (a) h2load -n N -c C -m M -t 1 with the APNs method, path, headers and payload, as a child process;
//         its "finished in" line gives req/s; the fake must count N more requests.
//     (b) N deliveries through ApnsTransport (max_connections = C) from C*M coroutines, each looping over
//         its share; wall time gives pushes/s. Every delivery must be `delivered`, the fake must count N.
//     (a) and (b) run --rounds times (3), alternating which goes first; each round's ratio is printed and the
//     figure is their median.
//     Ratio (b)/(a). CPU: h2load's is RUSAGE_CHILDREN, the fake's is this process's during (a); during (b)
//     the transport's is its "bench-io" threads' (/proc/self/task/*/stat), the fake's the rest. (c) split:
//     the same N requests straight through one Http2Pool::send (no APNs layer).
//  2. Memory. A second fake answers after --mem-delay-ms. (a) h2load holds K streams open against it: the
//     growth of this process (= the fake alone) is measured; (b) K deliveries through a fresh ApnsTransport
//     hold K streams open: growth = fake + transport. Both as VmRSS (after malloc_trim) and malloc'd bytes in
//     use (mallinfo2), sampled once the fake has received all K requests, before any answer.
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/fake_h2_server.hpp"
#include "tests/support/tls_test_certs.hpp"
#include "transports/apns/apns_protocol.hpp"
#include "transports/apns/apns_transport.hpp"
#include "transports/http2/pool.hpp"
#include "transports/http2/tls_context.hpp"

extern char** environ;

namespace {

namespace asio = boost::asio;
using namespace notifyd;
using Clock = std::chrono::steady_clock;
using Outcome = transport::DeliveryResult::Outcome;

struct Args {
  std::uint64_t n = 100000;
  std::size_t connections = 2;
  std::size_t streams = 100;
  std::size_t fake_threads = 1;
  std::size_t io_threads = 1;
  std::string h2load = "/usr/bin/h2load";
  std::uint64_t mem_k = 10000;
  std::uint32_t mem_max_streams = 1000;
  int mem_delay_ms = 5000;
  bool skip_throughput = false;
  bool skip_memory = false;
  bool skip_h2load = false;
  bool unique_apns_id = false;
  bool progress = false;
  bool skip_pool_split = false;
  std::size_t rounds = 3;
};

const std::string kTopic = "com.example.bench";
const std::string kDeviceToken =
    "5f3b9c2e7a1d4e6f8b0c2d4e6f8a0b1c3d5e7f9a1b3c5d7e9f0a2b4c6d8e0f1a";  // 64 hex
const std::string kApnsId = "7c0e6f2a-4b1d-4e8a-9c3f-1a2b3c4d5e6f";
const std::string kPayload =
    R"({"aps":{"alert":{"title":"Order shipped","body":"Your order #48213 is on its way and should arrive on Thursday."},"badge":1,"sound":"default"},"order_id":"48213"})";

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "bench_transport: %s\n"
               "flags: --n N (100000) --connections C (2) --streams M (100) --fake-threads F (1)\n"
               "       --io-threads T (1) --h2load PATH (/usr/bin/h2load) --unique-apns-id\n"
               "       --mem-k K (10000) --mem-max-streams S (1000) --mem-delay-ms D (5000)\n"
               "       --skip-throughput --skip-memory --skip-h2load --skip-pool-split --progress\n"
               "       --rounds R (3: h2load and the transport alternate, median ratio)\n",
               why);
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + f).c_str());
      return argv[++i];
    };
    if (f == "--n")
      a.n = std::stoull(next());
    else if (f == "--connections" || f == "-c")
      a.connections = std::stoul(next());
    else if (f == "--streams" || f == "-m")
      a.streams = std::stoul(next());
    else if (f == "--fake-threads")
      a.fake_threads = std::stoul(next());
    else if (f == "--io-threads")
      a.io_threads = std::stoul(next());
    else if (f == "--h2load")
      a.h2load = next();
    else if (f == "--mem-k")
      a.mem_k = std::stoull(next());
    else if (f == "--mem-max-streams")
      a.mem_max_streams = static_cast<std::uint32_t>(std::stoul(next()));
    else if (f == "--mem-delay-ms")
      a.mem_delay_ms = std::stoi(next());
    else if (f == "--skip-throughput")
      a.skip_throughput = true;
    else if (f == "--skip-memory")
      a.skip_memory = true;
    else if (f == "--skip-h2load")
      a.skip_h2load = true;
    else if (f == "--unique-apns-id")
      a.unique_apns_id = true;
    else if (f == "--progress")
      a.progress = true;
    else if (f == "--skip-pool-split")
      a.skip_pool_split = true;
    else if (f == "--rounds")
      a.rounds = std::stoul(next());
    else
      usage(("unknown flag " + f).c_str());
  }
  if (a.n == 0 || a.connections == 0 || a.streams == 0 || a.fake_threads == 0 || a.io_threads == 0 ||
      a.rounds == 0 || a.mem_k == 0 || a.mem_max_streams == 0)
    usage("counts must be positive");
  return a;
}

// ---- process measurements ----

long vm_rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

std::size_t malloc_in_use() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

double cpu_seconds(int who) {
  rusage ru{};
  getrusage(who, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU seconds of this process's threads, summed by thread name (/proc/self/task/*/stat). The transport's
// I/O threads are named "bench-io"; the fake's threads keep the process name.
std::map<std::string, double> thread_cpu() {
  std::map<std::string, double> out;
  static const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::string name = stat.substr(open + 1, close - open - 1);
    std::istringstream rest(stat.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {  // fields 14 and 15: utime, stime (clock ticks)
      if (i == 14) utime = std::stod(field);
      if (i == 15) stime = std::stod(field);
    }
    out[name] += (utime + stime) / tick;
  }
  return out;
}

double cpu_of(const std::map<std::string, double>& m, const std::string& name) {
  auto it = m.find(name);
  return it == m.end() ? 0.0 : it->second;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
  return buf;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---- h2load as a child process ----

struct Child {
  pid_t pid = -1;
  std::string output_path;
};

Child spawn_h2load(const Args& a, const std::string& url, const std::string& payload_file, std::uint64_t n,
                   std::size_t c, std::size_t m, const std::string& output_path) {
  std::vector<std::string> args = {a.h2load,
                                   "-n",
                                   std::to_string(n),
                                   "-c",
                                   std::to_string(c),
                                   "-m",
                                   std::to_string(m),
                                   "-t",
                                   "1",
                                   "-d",
                                   payload_file,
                                   "-H",
                                   "apns-topic: " + kTopic,
                                   "-H",
                                   "apns-push-type: alert",
                                   "-H",
                                   "apns-priority: 10",
                                   "-H",
                                   "apns-expiration: 0",
                                   "-H",
                                   "apns-id: " + kApnsId,
                                   "-H",
                                   "content-type: application/json",
                                   url + "/3/device/" + kDeviceToken};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  Child child;
  child.output_path = output_path;
  int rc = posix_spawn(&child.pid, a.h2load.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot run " + a.h2load + ": " + std::strerror(rc));
  return child;
}

std::string h2load_command_line(const std::string& url, std::uint64_t n, std::size_t c, std::size_t m) {
  return "h2load -n " + std::to_string(n) + " -c " + std::to_string(c) + " -m " + std::to_string(m) +
         " -t 1 -d <payload.json> -H 'apns-topic: " + kTopic +
         "' -H 'apns-push-type: alert' -H 'apns-priority: 10' -H 'apns-expiration: 0' -H 'apns-id: " +
         kApnsId + "' -H 'content-type: application/json' " + url + "/3/device/" + kDeviceToken;
}

struct H2loadResult {
  bool ok = false;
  double seconds = 0;
  double req_per_s = 0;
  std::uint64_t succeeded = 0;
  std::uint64_t status_2xx = 0;
  std::string output;
};

H2loadResult wait_h2load(const Child& child) {
  int status = 0;
  waitpid(child.pid, &status, 0);
  H2loadResult r;
  std::ifstream in(child.output_path);
  std::stringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  std::smatch m;
  static const std::regex finished(R"(finished in ([0-9.]+)(ms|s|us), ([0-9.]+) req/s)");
  static const std::regex requests(R"(requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded)");
  static const std::regex codes(R"(status codes: (\d+) 2xx)");
  if (std::regex_search(r.output, m, finished)) {
    r.seconds = std::stod(m[1]) / (m[2] == "ms" ? 1e3 : m[2] == "us" ? 1e6 : 1.0);
    r.req_per_s = std::stod(m[3]);
  }
  if (std::regex_search(r.output, m, requests)) r.succeeded = std::stoull(m[1]);
  if (std::regex_search(r.output, m, codes)) r.status_2xx = std::stoull(m[1]);
  r.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && r.req_per_s > 0;
  return r;
}

// ---- the transport side ----

class IoPool {
 public:
  explicit IoPool(std::size_t threads) : work_(asio::make_work_guard(io_)) {
    for (std::size_t i = 0; i < threads; ++i) {
      threads_.emplace_back([this] {
        pthread_setname_np(pthread_self(), "bench-io");
        io_.run();
      });
    }
  }
  ~IoPool() {
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
  }
  asio::any_io_executor executor() { return io_.get_executor(); }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

std::shared_ptr<CredentialRecord> make_credential(const std::string& sid) {
  auto pair = test::make_client_cert(kTopic);
  auto c = std::make_shared<CredentialRecord>();
  c->sid = sid;
  c->account_sid = "ACbench00000000000000000000000000";
  c->type = "apn";
  c->certificate = pair.certificate_pem;
  c->private_key = pair.private_key_pem;
  c->apn_topic = kTopic;
  c->date_updated = 1;
  return c;
}

transport::Delivery make_delivery(std::shared_ptr<const CredentialRecord> credential) {
  transport::Delivery d;
  d.notification_sid = "NTbench00000000000000000000000000";
  d.binding_sid = "BSbench00000000000000000000000000";
  d.binding_type = "apn";
  d.address = kDeviceToken;
  d.credential = std::move(credential);
  d.body = kPayload;
  d.apns_push_type = "alert";
  d.apns_priority = 10;
  d.apns_expiration = 0;
  d.apns_id = kApnsId;
  return d;
}

std::string uuid_for(std::uint64_t i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "7c0e6f2a-4b1d-4e8a-9c3f-%012llx", static_cast<unsigned long long>(i));
  return buf;
}

struct Tally {
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> other{0};
  std::mutex mu;
  std::map<std::string, std::uint64_t> failures;  // outcome + reason → count
  void add(const transport::DeliveryResult& r) {
    if (r.outcome == Outcome::delivered) {
      delivered.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    other.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lk(mu);
    ++failures[std::string(transport::to_string(r.outcome)) + " " + std::to_string(r.provider_status) + " " +
               r.reason];
  }
  void print(std::ostream& os) {
    std::lock_guard lk(mu);
    for (auto& [what, count] : failures) os << "    not delivered: " << count << " x " << what << "\n";
  }
};

// `workers` coroutines share `n` deliveries; returns when all are done (or throws after `timeout`).
void run_deliveries(IoPool& io, transport::ApnsTransport& t, const transport::Delivery& tmpl, std::uint64_t n,
                    std::size_t workers, bool unique_ids, Tally& tally, std::chrono::seconds timeout) {
  auto next = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto remaining = std::make_shared<std::atomic<std::size_t>>(workers);
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  for (std::size_t w = 0; w < workers; ++w) {
    asio::co_spawn(
        io.executor(),
        [&t, &tmpl, &tally, n, unique_ids, next]() -> asio::awaitable<void> {
          for (std::uint64_t i = next->fetch_add(1); i < n; i = next->fetch_add(1)) {
            transport::Delivery d = tmpl;  // what fan-out hands over: one Delivery per binding
            if (unique_ids) d.apns_id = uuid_for(i);
            tally.add(co_await t.deliver(std::move(d)));
          }
        },
        [remaining, done](std::exception_ptr e) {
          if (e) {
            try {
              std::rethrow_exception(e);
            } catch (const std::exception& ex) {
              std::cerr << "worker failed: " << ex.what() << "\n";
            }
          }
          if (remaining->fetch_sub(1) == 1) done->set_value();
        });
  }
  if (fut.wait_for(timeout) != std::future_status::ready) {
    // Coroutines still reference the transport and the tally: no unwinding past them.
    std::cerr << "bench_transport: deliveries did not finish within " << timeout.count() << " s\n";
    std::_Exit(1);
  }
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

void print_request(const char* who, const std::optional<test::FakeRequest>& r) {
  if (!r) return;
  std::cout << "  last request from " << who << ": " << r->method << " " << r->path.substr(0, 18) << "…"
            << " body " << r->body.size() << " B, headers:";
  for (auto& [k, v] : r->headers) std::cout << " " << k << "=" << (k == "apns-id" ? v.substr(0, 8) + "…" : v);
  std::cout << "\n";
}

struct Mem {
  long rss_kib = 0;
  std::size_t heap = 0;
};
Mem snapshot(bool trim) {
  if (trim) malloc_trim(0);
  return Mem{vm_rss_kib(), malloc_in_use()};
}

// --progress: the requests the fake counted in each 100 ms, printed at the end (to see stalls and trends).
class Progress {
 public:
  Progress(test::FakeH2Server& fake, bool on, std::function<std::string()> probe = {})
      : fake_(fake), on_(on), probe_(std::move(probe)) {
    if (on_) thread_ = std::thread([this] { loop(); });
  }
  ~Progress() { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
    std::cout << "  progress (requests per 100 ms):" << line_ << "\n";
  }

 private:
  void loop() {
    auto last = fake_.request_count();
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      auto now = fake_.request_count();
      line_.append(" ").append(
          std::to_string(now - last));  // append(): GCC 12 -Wrestrict false positive on +
      if (probe_) line_.append("(").append(probe_()).append(")");
      last = now;
    }
  }
  test::FakeH2Server& fake_;
  bool on_;
  std::function<std::string()> probe_;
  std::atomic<bool> stop_{false};
  std::string line_;
  std::thread thread_;
};

int run(const Args& a) {
  std::cout << "bench_transport " << utc_now() << ", load average " << load_average() << ", "
            << std::thread::hardware_concurrency() << " CPUs\n";
  const auto& pki = test::shared_test_pki();
  test::TempFile ca_file = test::write_ca_file(pki);
  test::TempFile payload_file(kPayload, ".json");
  bool all_ok = true;

  if (!a.skip_throughput) {
    const std::size_t c = a.connections, m = a.streams;
    std::cout << "\n== throughput: n=" << a.n << " c=" << c << " m=" << m
              << " fake threads=" << a.fake_threads << " transport io threads=" << a.io_threads
              << ", payload " << kPayload.size() << " B\n";
    test::FakeH2Options fo;
    fo.threads = a.fake_threads;
    fo.max_concurrent_streams =
        static_cast<std::uint32_t>(m);  // so the pool, like h2load, opens C connections
    fo.log_capacity = 4;
    fo.client_cert = test::ClientCertPolicy::kAcceptAny;
    test::FakeH2Server fake(fo);

    // Rounds alternate the order (h2load first in odd rounds, the transport first in even ones), so a change
    // in the machine's load during the run weighs on both sides alike; each round's ratio is printed, and the
    // median of them is the figure. The transport, its pool and connections persist across rounds (h2load
    // opens its C connections anew each time: a few ms, included in its rate).
    {
      IoPool io(a.io_threads);
      transport::ApnsTransport t(io.executor(),
                                 transport::ApnsOptions{fake.url(), fake.url(), ca_file.string(), c,
                                                        std::chrono::milliseconds(30000)});
      auto credential = make_credential("CRbench00000000000000000000000001");
      auto tmpl = make_delivery(credential);
      // Warm-up: one push builds the pool (TLS context, certificate) and opens the first connection.
      Tally warm;
      run_deliveries(io, t, tmpl, 1, 1, false, warm, std::chrono::seconds(30));
      if (warm.delivered != 1) {
        std::cout << "  FAIL: warm-up push not delivered\n";
        warm.print(std::cout);
        return 1;
      }
      std::vector<double> ratios;
      for (std::size_t round = 1; round <= a.rounds; ++round) {
        if (a.rounds > 1)
          std::cout << "  -- round " << round << " of " << a.rounds << ", load average " << load_average()
                    << "\n";
        H2loadResult h;
        double fake_cpu_per_req = 0, h2load_cpu_per_req = 0;
        auto run_h2load = [&] {
          if (!a.skip_h2load) {
            std::cout << "  " << h2load_command_line(fake.url(), a.n, c, m) << "\n";
            auto before = fake.request_count();
            double self0 = cpu_seconds(RUSAGE_SELF), kids0 = cpu_seconds(RUSAGE_CHILDREN);
            auto t0 = Clock::now();
            auto child = spawn_h2load(a, fake.url(), payload_file.string(), a.n, c, m,
                                      "/tmp/bench_transport_h2load." + std::to_string(getpid()));
            {
              Progress progress(fake, a.progress);
              h = wait_h2load(child);
            }
            double wall = seconds_since(t0);
            double self_cpu = cpu_seconds(RUSAGE_SELF) - self0,
                   kids_cpu = cpu_seconds(RUSAGE_CHILDREN) - kids0;
            std::remove(child.output_path.c_str());
            auto counted = fake.request_count() - before;
            print_request("h2load", fake.last_request());
            fake_cpu_per_req = self_cpu / static_cast<double>(a.n);
            h2load_cpu_per_req = kids_cpu / static_cast<double>(a.n);
            std::printf(
                "  h2load: finished in %.3f s, %.0f req/s; %llu succeeded, %llu 2xx; fake counted %llu\n",
                h.seconds, h.req_per_s, static_cast<unsigned long long>(h.succeeded),
                static_cast<unsigned long long>(h.status_2xx), static_cast<unsigned long long>(counted));
            std::printf(
                "  h2load CPU %.2f s (%.1f us/req); fake CPU %.2f s (%.1f us/req); wall incl. exec %.3f s\n",
                kids_cpu, kids_cpu * 1e6 / static_cast<double>(a.n), self_cpu, fake_cpu_per_req * 1e6, wall);
            if (!h.ok || h.succeeded != a.n || counted != a.n) {
              std::cout << "  FAIL: h2load did not complete " << a.n << " requests. Its output:\n"
                        << h.output << "\n";
              all_ok = false;
            }
          }
        };
        double rate = 0, io_cpu_per_push = 0;
        auto run_transport = [&] {
          auto before = fake.request_count();
          Tally tally;
          Mem mem0 = snapshot(true);
          auto threads0 = thread_cpu();
          double self0 = cpu_seconds(RUSAGE_SELF);
          auto t0 = Clock::now();
          Progress progress(fake, a.progress, [&t] {  // (streams in flight/sends waiting for a slot)
            auto st = t.stats();
            std::string out = std::to_string(st.streams_in_flight);
            return out.append("/").append(std::to_string(st.waiting));
          });
          run_deliveries(io, t, tmpl, a.n, c * m, a.unique_apns_id, tally,
                         std::chrono::seconds(60 + a.n / 500));
          double secs = seconds_since(t0);
          progress.stop();
          double self_cpu = cpu_seconds(RUSAGE_SELF) - self0;
          auto threads1 = thread_cpu();
          double io_cpu = cpu_of(threads1, "bench-io") - cpu_of(threads0, "bench-io");
          auto counted = fake.request_count() - before;
          auto st = t.stats();
          Mem mem1 = snapshot(true);
          print_request("transport", fake.last_request());
          std::printf(
              "  heap in use before/after the pushes %.1f / %.1f MiB (RSS %ld / %ld KiB): %.0f bytes per "
              "push "
              "left behind\n",
              static_cast<double>(mem0.heap) / 1048576.0, static_cast<double>(mem1.heap) / 1048576.0,
              mem0.rss_kib, mem1.rss_kib,
              (static_cast<double>(mem1.heap) - static_cast<double>(mem0.heap)) / static_cast<double>(a.n));
          rate = static_cast<double>(a.n) / secs;
          std::printf(
              "  transport: %llu pushes in %.3f s, %.0f pushes/s; %llu delivered; fake counted %llu; "
              "connections %zu (opened %llu), peak streams/connection %u, fake RST_STREAMs %llu\n",
              static_cast<unsigned long long>(a.n), secs, rate,
              static_cast<unsigned long long>(tally.delivered.load()),
              static_cast<unsigned long long>(counted), st.connections,
              static_cast<unsigned long long>(st.connections_opened), fake.peak_concurrent_streams(),
              static_cast<unsigned long long>(fake.rst_streams_sent()));
          const double dn = static_cast<double>(a.n);
          std::printf(
              "  transport CPU (bench-io threads) %.2f s (%.1f us/push); fake CPU (the other threads) %.2f s "
              "(%.1f us/req); process %.2f s\n",
              io_cpu, io_cpu * 1e6 / dn, self_cpu - io_cpu, (self_cpu - io_cpu) * 1e6 / dn, self_cpu);
          io_cpu_per_push = io_cpu / dn;
          tally.print(std::cout);
          if (tally.delivered != a.n || counted != a.n) {
            std::cout << "  FAIL: not every push was delivered and counted once\n";
            all_ok = false;
          }
        };
        if (round % 2 == 1) {
          run_h2load();
          run_transport();
        } else {
          run_transport();
          run_h2load();
        }
        if (!a.skip_h2load && h.req_per_s > 0 && rate > 0) {
          if (h.ok && h2load_cpu_per_req > 0 && io_cpu_per_push > 0) {
            std::printf("  CPU per request, client: transport / h2load = %.1f / %.1f us = %.1fx\n",
                        io_cpu_per_push * 1e6, h2load_cpu_per_req * 1e6,
                        io_cpu_per_push / h2load_cpu_per_req);
          }
          ratios.push_back(rate / h.req_per_s);
          std::printf(
              "  RATIO transport / h2load = %.0f / %.0f = %.2f (target >= 0.80)%s\n", rate, h.req_per_s,
              rate / h.req_per_s,
              a.rounds > 1 ? (round % 2 == 1 ? " [h2load ran first]" : " [transport ran first]") : "");
        }
      }
      if (ratios.size() > 1) {
        auto sorted = ratios;
        std::sort(sorted.begin(), sorted.end());
        double median = sorted.size() % 2 == 1
                            ? sorted[sorted.size() / 2]
                            : (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]) / 2;
        std::printf("  RATIO median of %zu rounds = %.2f (min %.2f, max %.2f; target >= 0.80)\n",
                    sorted.size(), median, sorted.front(), sorted.back());
      }
    }

    // (c) split, not an acceptance figure: the same N requests straight through one Http2Pool (no
    // ApnsTransport::deliver, no Delivery, no build_request), to tell the pool/connection cost from the APNs
    // layer's.
    if (!a.skip_pool_split) {
      IoPool io(a.io_threads);
      auto credential = make_credential("CRbench00000000000000000000000003");
      http2::PoolOptions po;
      po.host = fake.host();
      po.port = fake.port();
      po.max_connections = c;
      po.tls =
          http2::make_client_tls_context(ca_file.string(), credential->certificate, credential->private_key);
      http2::Http2Pool pool(io.executor(), std::move(po));
      const http2::H2Request request = *transport::apns::build_request(make_delivery(credential), kTopic, "");
      auto run_pool = [&](std::uint64_t n, std::size_t workers) {
        auto next = std::make_shared<std::atomic<std::uint64_t>>(0);
        auto ok = std::make_shared<std::atomic<std::uint64_t>>(0);
        auto remaining = std::make_shared<std::atomic<std::size_t>>(workers);
        auto done = std::make_shared<std::promise<void>>();
        auto fut = done->get_future();
        for (std::size_t w = 0; w < workers; ++w) {
          asio::co_spawn(
              io.executor(),
              [&pool, &request, n, next, ok]() -> asio::awaitable<void> {
                for (std::uint64_t i = next->fetch_add(1); i < n; i = next->fetch_add(1)) {
                  auto r = co_await pool.send(request);
                  if (r.failure == http2::H2Failure::none && r.response.status == 200) ok->fetch_add(1);
                }
              },
              [remaining, done](std::exception_ptr) {
                if (remaining->fetch_sub(1) == 1) done->set_value();
              });
        }
        if (fut.wait_for(std::chrono::seconds(60 + n / 500)) != std::future_status::ready) {
          std::cerr << "bench_transport: pool sends did not finish in time\n";
          std::_Exit(1);
        }
        return ok->load();
      };
      run_pool(1, 1);  // warm-up: first connection
      auto before = fake.request_count();
      auto threads0 = thread_cpu();
      auto t0 = Clock::now();
      auto ok = run_pool(a.n, c * m);
      double secs = seconds_since(t0);
      auto threads1 = thread_cpu();
      double io_cpu = cpu_of(threads1, "bench-io") - cpu_of(threads0, "bench-io");
      auto counted = fake.request_count() - before;
      std::printf(
          "  split, Http2Pool::send direct: %.0f req/s (%.3f s), %llu answered 200, fake counted %llu; "
          "bench-io CPU %.1f us/req\n",
          static_cast<double>(a.n) / secs, secs, static_cast<unsigned long long>(ok),
          static_cast<unsigned long long>(counted), io_cpu * 1e6 / static_cast<double>(a.n));
      if (ok != a.n || counted != a.n) {
        std::cout << "  FAIL: pool split did not complete every request\n";
        all_ok = false;
      }
    }
  }

  if (!a.skip_memory) {
    const std::uint64_t k = a.mem_k;
    const std::size_t conns = static_cast<std::size_t>((k + a.mem_max_streams - 1) / a.mem_max_streams);
    std::cout << "\n== memory: K=" << k << " in flight, fake max_concurrent_streams=" << a.mem_max_streams
              << " -> " << conns << " connection(s), responses delayed " << a.mem_delay_ms << " ms\n";
    test::FakeH2Options fo;
    fo.threads = a.fake_threads;
    fo.max_concurrent_streams = a.mem_max_streams;
    fo.log_capacity = 4;
    test::FakeH2Server fake(fo);
    fake.set_response_delay(std::chrono::milliseconds(a.mem_delay_ms));
    const auto plateau_timeout = std::chrono::milliseconds(std::max(1000, a.mem_delay_ms - 200));
    const double per = static_cast<double>(k) / 1000.0;

    // (a) the fake alone: h2load holds K streams open.
    double fake_rss_per = 0, fake_heap_per = 0;
    bool have_fake = false;
    if (!a.skip_h2load) {
      std::cout << "  " << h2load_command_line(fake.url(), k, conns, a.mem_max_streams) << "\n";
      Mem m0 = snapshot(true);
      auto before = fake.request_count();
      auto child = spawn_h2load(a, fake.url(), payload_file.string(), k, conns, a.mem_max_streams,
                                "/tmp/bench_transport_h2load_mem." + std::to_string(getpid()));
      bool reached = wait_until([&] { return fake.request_count() - before >= k; }, plateau_timeout);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      Mem m1 = snapshot(false);
      auto h = wait_h2load(child);
      std::remove(child.output_path.c_str());
      if (!reached || !h.ok || h.succeeded != k) {
        std::cout << "  FAIL: h2load did not hold " << k << " streams open (reached=" << reached
                  << ", succeeded=" << h.succeeded << "); raise --mem-delay-ms. Output:\n"
                  << h.output << "\n";
        all_ok = false;
      } else {
        have_fake = true;
        fake_rss_per = static_cast<double>(m1.rss_kib - m0.rss_kib) / per;
        fake_heap_per = static_cast<double>(m1.heap) - static_cast<double>(m0.heap);
        fake_heap_per = fake_heap_per / 1024.0 / per;
        std::printf(
            "  fake alone (h2load client): RSS %ld -> %ld KiB, heap in use %.1f -> %.1f MiB: "
            "%.0f KiB RSS, %.0f KiB heap per 1,000 in flight\n",
            m0.rss_kib, m1.rss_kib, static_cast<double>(m0.heap) / 1048576.0,
            static_cast<double>(m1.heap) / 1048576.0, fake_rss_per, fake_heap_per);
      }
    }

    // (b) fake + transport: K deliveries in flight.
    {
      IoPool io(a.io_threads);
      transport::ApnsTransport t(io.executor(),
                                 transport::ApnsOptions{fake.url(), fake.url(), ca_file.string(), conns,
                                                        std::chrono::milliseconds(60000)});
      auto credential = make_credential("CRbench00000000000000000000000002");
      auto tmpl = make_delivery(credential);
      // Warm-up without the delay, so the pool, TLS context and the first connection exist before the
      // baseline.
      fake.set_response_delay(std::chrono::milliseconds(0));
      Tally warm;
      run_deliveries(io, t, tmpl, 1, 1, false, warm, std::chrono::seconds(30));
      fake.set_response_delay(std::chrono::milliseconds(a.mem_delay_ms));
      Mem m0 = snapshot(true);
      auto before = fake.request_count();
      Tally tally;
      auto fut = std::async(std::launch::async, [&] {
        run_deliveries(io, t, tmpl, k, k, a.unique_apns_id, tally,
                       std::chrono::seconds(60 + a.mem_delay_ms / 1000));
      });
      bool reached =
          wait_until([&] { return fake.request_count() - before >= k && t.stats().streams_in_flight >= k; },
                     plateau_timeout);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      Mem m1 = snapshot(false);
      auto st = t.stats();
      auto answered_early = tally.delivered.load() + tally.other.load();
      fut.get();
      std::printf(
          "  transport: %llu delivered of %llu; connections %zu; in flight at the sample %zu, answered "
          "before it %llu\n",
          static_cast<unsigned long long>(tally.delivered.load()), static_cast<unsigned long long>(k),
          st.connections, st.streams_in_flight, static_cast<unsigned long long>(answered_early));
      tally.print(std::cout);
      if (!reached || tally.delivered != k || answered_early != 0) {
        std::cout << "  FAIL: the transport did not hold " << k
                  << " streams open at once; raise --mem-delay-ms\n";
        all_ok = false;
      } else {
        double rss_per = static_cast<double>(m1.rss_kib - m0.rss_kib) / per;
        double heap_per = (static_cast<double>(m1.heap) - static_cast<double>(m0.heap)) / 1024.0 / per;
        std::printf(
            "  fake + transport: RSS %ld -> %ld KiB, heap in use %.1f -> %.1f MiB: %.0f KiB RSS, "
            "%.0f KiB heap per 1,000 in flight\n",
            m0.rss_kib, m1.rss_kib, static_cast<double>(m0.heap) / 1048576.0,
            static_cast<double>(m1.heap) / 1048576.0, rss_per, heap_per);
        if (have_fake) {
          std::printf(
              "  MEMORY transport alone per 1,000 in-flight streams: %.0f KiB RSS, %.0f KiB heap "
              "(fake + transport minus fake alone; %.2f KiB heap per stream)\n",
              rss_per - fake_rss_per, heap_per - fake_heap_per, (heap_per - fake_heap_per) / 1000.0);
        }
      }
    }
  }
  std::cout << "\n" << (all_ok ? "OK" : "FAILED") << "\n";
  return all_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse_args(argc, argv);
  alarm(static_cast<unsigned>(900 + a.n / 200));  // watchdog: a stuck child or fake ends the run (SIGALRM)
  try {
    return run(a);
  } catch (const std::exception& e) {
    std::cerr << "bench_transport: " << e.what() << "\n";
    return 1;
  }
}
