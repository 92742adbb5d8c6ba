#pragma once
// ServiceNotifier: tells systemd where the daemon is, through sd_notify(3): READY=1 once serving,
// RELOADING=1 then READY=1 around a reload, STOPPING=1 when a stop begins, STATUS= with the queue depth,
// and WATCHDOG=1 at half the interval systemd asked for (WATCHDOG_USEC). The pings and the status come
// from a timer on the daemon's own io_context, so an event loop that stops running stops the pings too
// and systemd's watchdog restarts the service. Without NOTIFY_SOCKET (not under systemd) every call is
// a no-op. Thread-safe.
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace notifyd::service {

class ServiceNotifier {
 public:
  // `status` is asked for the STATUS= text at every tick (on the io_context); it must not block.
  ServiceNotifier(boost::asio::any_io_executor executor, std::function<std::string()> status);
  ~ServiceNotifier();
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  // True when NOTIFY_SOCKET is set.
  bool enabled() const;
  // The watchdog interval systemd asked for, or zero when it asked for none.
  std::chrono::microseconds watchdog_interval() const;

  // READY=1 with the current status, and starts the ticks (watchdog pings and status refreshes).
  void ready();
  // RELOADING=1 (with MONOTONIC_USEC, which Type=notify-reload wants).
  void reloading();
  // STOPPING=1 with a status saying why. The watchdog keeps pinging until stop_ticks(): a drain is
  // progress, and TimeoutStopSec bounds it.
  void stopping(const std::string& why);
  // Cancels the timer so the io_context can run out of work.
  void stop_ticks();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace notifyd::service
