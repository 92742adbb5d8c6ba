#pragma once
// Process-wide logging: one stderr sink shared by every module logger. Under systemd, stderr is the
// journal (JOURNAL_STREAM names it): lines then carry no timestamp of their own (the journal stamps
// them) and start with a syslog priority prefix ("<3>" for errors, see sd-daemon(3)) so that
// `journalctl -p err` works. Elsewhere: an ISO-8601 timestamp and the level name.
#include <string>
#include <string_view>

namespace notifyd::service {

// True when stderr is the journal stream systemd set up (JOURNAL_STREAM matches stderr's device and
// inode), not merely inherited from a parent that ran under systemd.
bool stderr_is_journal();

// Installs the default logger ("notifyd") and its sink, with the level named by `level`
// (trace, debug, info, warn, error, critical, off).
void setup_logging(std::string_view level);

// Changes the level of every logger (for a reload).
void set_log_level(std::string_view level);

}  // namespace notifyd::service
