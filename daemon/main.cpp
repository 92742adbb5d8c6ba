// notifyd: a thin main over notifyd_core (see daemon/app/daemon.hpp).
#include <CLI/CLI.hpp>
#include <iostream>

#include "daemon/app/daemon.hpp"
#include "notifyd/version.hpp"

int main(int argc, char** argv) {
  CLI::App app{"notifyd: Twilio Notify-compatible notification fan-out daemon"};
  std::string config_path = "/etc/notifyd/notifyd.toml";
  bool check = false;
  bool version = false;
  app.add_option("-c,--config", config_path, "configuration file (TOML)");
  app.add_flag("--check-config", check, "validate the configuration, print problems, and exit");
  app.add_flag("--version", version, "print the version and exit");
  CLI11_PARSE(app, argc, argv);
  if (version) {
    std::cout << "notifyd " << notifyd::kVersion << "\n";
    return 0;
  }
  if (check) return notifyd::check_config(config_path);
  return notifyd::run_daemon(config_path);
}
