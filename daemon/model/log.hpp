#pragma once
// One spdlog logger per module ("api", "store", "http", ...), cloned from the default logger so it
// shares its sinks and level. Thread-safe.
#include <spdlog/logger.h>

#include <memory>

namespace notifyd {

std::shared_ptr<spdlog::logger> module_logger(const char* name);

}  // namespace notifyd
