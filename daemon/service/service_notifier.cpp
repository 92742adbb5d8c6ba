#include "daemon/service/service_notifier.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "daemon/model/log.hpp"

namespace notifyd::service {
namespace {

// STATUS= is refreshed this often when there is no watchdog to piggyback on.
constexpr std::chrono::milliseconds kStatusInterval{2000};

std::uint64_t monotonic_usec() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace

struct ServiceNotifier::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::any_io_executor executor, std::function<std::string()> status_source)
      : timer(executor), status(std::move(status_source)) {}

  boost::asio::steady_timer timer;
  std::function<std::string()> status;
  bool enabled = false;
  std::chrono::microseconds watchdog{0};
  std::mutex mu;  // timer, `ticking`, `last_status` (calls come from signal handlers and the ticks)
  bool ticking = false;
  std::string last_status;
  std::shared_ptr<spdlog::logger> log = module_logger("systemd");

  void notify(const std::string& state) {
    if (!enabled) return;
    int r = sd_notify(0, state.c_str());
    if (r < 0) log->warn("sd_notify failed: {}", std::strerror(-r));
  }

  std::chrono::milliseconds tick_interval() const {
    if (watchdog.count() == 0) return kStatusInterval;
    auto half = std::chrono::duration_cast<std::chrono::milliseconds>(watchdog / 2);
    return std::max(std::chrono::milliseconds(1), std::min(half, kStatusInterval));
  }

  // Runs on the io_context: a loop that is stuck never gets here, and the pings stop.
  void arm() {
    timer.expires_after(tick_interval());
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      std::string state;
      if (self->watchdog.count() != 0) state += "WATCHDOG=1\n";
      std::string current = self->status();
      std::lock_guard lk(self->mu);
      if (current != self->last_status) {
        state += "STATUS=" + current + "\n";
        self->last_status = std::move(current);
      }
      if (!state.empty()) self->notify(state);
      if (self->ticking) self->arm();
    });
  }
};

ServiceNotifier::ServiceNotifier(boost::asio::any_io_executor executor, std::function<std::string()> status)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(status))) {
  impl_->enabled = std::getenv("NOTIFY_SOCKET") != nullptr;
  std::uint64_t usec = 0;
  if (impl_->enabled && sd_watchdog_enabled(0, &usec) > 0) impl_->watchdog = std::chrono::microseconds(usec);
  if (impl_->enabled) {
    impl_->log->info(
        "systemd notification socket set; watchdog {}",
        impl_->watchdog.count() ? std::to_string(impl_->watchdog.count() / 1000) + " ms" : "off");
  }
}

ServiceNotifier::~ServiceNotifier() { stop_ticks(); }

bool ServiceNotifier::enabled() const { return impl_->enabled; }

std::chrono::microseconds ServiceNotifier::watchdog_interval() const { return impl_->watchdog; }

void ServiceNotifier::ready() {
  if (!impl_->enabled) return;
  std::string current = impl_->status();
  std::lock_guard lk(impl_->mu);
  impl_->last_status = std::move(current);
  impl_->notify("READY=1\nSTATUS=" + impl_->last_status);
  if (!impl_->ticking) {
    impl_->ticking = true;
    impl_->arm();
  }
}

void ServiceNotifier::reloading() {
  impl_->notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()) +
                "\nSTATUS=reloading the configuration");
}

void ServiceNotifier::stopping(const std::string& why) { impl_->notify("STOPPING=1\nSTATUS=" + why); }

void ServiceNotifier::stop_ticks() {
  std::lock_guard lk(impl_->mu);
  impl_->ticking = false;
  impl_->timer.cancel();
}

}  // namespace notifyd::service
