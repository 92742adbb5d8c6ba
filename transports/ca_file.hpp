#pragma once
// read_ca_file: the content of a configured ca_file, for the transports' reloads. A reload compares it with
// the running one, so a CA file rewritten in place counts as a change even though its name stayed.
// Plain function, thread-safe; a file that cannot be read is a configuration error and throws.
#include <string>

namespace notifyd::transport {

// The whole content of `ca_file` ("" for an empty name). Throws std::runtime_error naming the file when it
// cannot be read.
std::string read_ca_file(const std::string& ca_file);

}  // namespace notifyd::transport
