#include "transports/ca_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace notifyd::transport {

std::string read_ca_file(const std::string& ca_file) {
  if (ca_file.empty()) return {};
  std::ifstream in(ca_file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read ca_file " + ca_file + ": " + std::strerror(errno));
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read ca_file " + ca_file);
  return std::move(content).str();
}

}  // namespace notifyd::transport
