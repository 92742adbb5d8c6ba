#include "daemon/service/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

namespace notifyd::service {
namespace {

// "<N>" with N the syslog priority of the message's level, as sd-daemon(3) describes; journald
// strips it and files the line under that priority.
class SyslogPriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const char* prefix = priority_prefix(msg.level);
    dest.append(prefix, prefix + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SyslogPriorityFlag>();
  }

 private:
  static const char* priority_prefix(spdlog::level::level_enum level) {
    switch (level) {
      case spdlog::level::critical:
        return "<2>";  // LOG_CRIT
      case spdlog::level::err:
        return "<3>";  // LOG_ERR
      case spdlog::level::warn:
        return "<4>";  // LOG_WARNING
      case spdlog::level::info:
        return "<6>";  // LOG_INFO
      default:
        return "<7>";  // LOG_DEBUG (trace, debug)
    }
  }
};

}  // namespace

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (!stream) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

void setup_logging(std::string_view level) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  std::shared_ptr<spdlog::logger> logger;
  if (stderr_is_journal()) {
    logger = std::make_shared<spdlog::logger>("notifyd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    formatter->add_flag<SyslogPriorityFlag>('*').set_pattern("%*[%n] %v");
  } else {
    logger =
        std::make_shared<spdlog::logger>("notifyd", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  }
  spdlog::set_default_logger(logger);
  spdlog::set_formatter(std::move(formatter));
  set_log_level(level);
}

void set_log_level(std::string_view level) { spdlog::set_level(spdlog::level::from_str(std::string(level))); }

}  // namespace notifyd::service
