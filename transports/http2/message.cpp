#include "transports/http2/message.hpp"

namespace notifyd::http2 {

std::string H2Response::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return {};
}

const char* to_string(H2Failure failure) {
  switch (failure) {
    case H2Failure::none:
      return "none";
    case H2Failure::connect_failed:
      return "connect_failed";
    case H2Failure::connection_lost:
      return "connection_lost";
    case H2Failure::refused:
      return "refused";
    case H2Failure::reset:
      return "reset";
    case H2Failure::timeout:
      return "timeout";
    case H2Failure::shutting_down:
      return "shutting_down";
  }
  return "unknown";
}

std::string redact_path(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  while (!path.empty()) {
    auto slash = path.find('/');
    auto segment = path.substr(0, slash);
    if (segment.size() > 16) {
      out.append(segment.substr(0, 8));
      out.append("…");
    } else {
      out.append(segment);
    }
    if (slash == std::string_view::npos) break;
    out.push_back('/');
    path.remove_prefix(slash + 1);
  }
  return out;
}

}  // namespace notifyd::http2
