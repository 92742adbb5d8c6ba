#include "daemon/model/api_error.hpp"

#include <stdexcept>

namespace notifyd {

void throw_exception_from_error(const ApiError& e, const boost::source_location&) {
  throw std::logic_error("unchecked ApiError " + std::to_string(e.code) + ": " + e.message);
}

}  // namespace notifyd
