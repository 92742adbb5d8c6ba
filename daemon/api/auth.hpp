#pragma once
// Authentication of API requests: HTTP Basic with an account SID and its auth token, or an API key SID
// (SK...) and its secret. Secrets are compared in constant time. Thread-safe (reads an immutable Config).
#include <optional>
#include <string>
#include <string_view>

#include "daemon/config/config.hpp"

namespace notifyd::api {

// Compares two secrets in time that depends on neither their content nor their length.
bool equal_constant_time(std::string_view a, std::string_view b);

// The SID of the account the Authorization header proves, or nullopt.
std::optional<std::string> authenticate(const Config& config, std::string_view authorization_header);

}  // namespace notifyd::api
