#include "daemon/model/log.hpp"

#include <spdlog/spdlog.h>

#include <mutex>

namespace notifyd {

std::shared_ptr<spdlog::logger> module_logger(const char* name) {
  static std::mutex mu;  // spdlog::get + register must not race between modules
  std::lock_guard lk(mu);
  if (auto existing = spdlog::get(name)) return existing;
  auto log = spdlog::default_logger()->clone(name);
  spdlog::register_logger(log);
  return log;
}

}  // namespace notifyd
