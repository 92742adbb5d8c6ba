#pragma once
// The daemon process: wires Config, Store, Router and http::Server, runs the I/O threads, and handles
// SIGTERM/SIGINT (graceful stop) and SIGHUP (reload). Fails by returning a non-zero exit code after
// logging why; never throws out.
#include <string>

namespace notifyd {

// Runs until stopped. Returns the process exit code.
int run_daemon(const std::string& config_path);

// --check-config: loads and validates, prints problems (or the redacted effective config). Exit code.
int check_config(const std::string& config_path);

}  // namespace notifyd
