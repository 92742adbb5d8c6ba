#pragma once
// ApiError: a Twilio-format failure (HTTP status, Twilio error code, message) carried as a value
// from validation and store calls up to api/, which alone turns it into JSON. Plain data, any thread.
#include <boost/system/result.hpp>
#include <source_location>
#include <string>

namespace notifyd {

struct ApiError {
  // Constructors (not an aggregate): a bare number or bool must never convert to an error in Result<T>.
  ApiError() = default;
  ApiError(int status_, int code_, std::string message_)
      : status(status_), code(code_), message(std::move(message_)) {}

  int status = 500;
  int code = 20500;
  std::string message;
};

// Twilio's codes used across the API.
namespace codes {
inline constexpr int kInvalidParameter = 20001;
inline constexpr int kAuthenticationFailed = 20003;
inline constexpr int kMethodNotAllowed = 20004;
inline constexpr int kNotFound = 20404;
inline constexpr int kTooLarge = 20413;
inline constexpr int kInternal = 20500;
inline constexpr int kCredentialNotFound = 52002;
inline constexpr int kCredentialWrongType = 52003;
}  // namespace codes

inline ApiError invalid_parameter(std::string message) {
  return {400, codes::kInvalidParameter, std::move(message)};
}
inline ApiError not_found(std::string_view path) {
  return {404, codes::kNotFound, "The requested resource " + std::string(path) + " was not found"};
}
inline ApiError internal_error(std::string message) { return {500, codes::kInternal, std::move(message)}; }

// Reached only when .value() is called on a failed Result: a bug, so it throws.
[[noreturn]] void throw_exception_from_error(const ApiError& e, const boost::source_location& loc);

template <class T>
using Result = boost::system::result<T, ApiError>;
using Status = boost::system::result<void, ApiError>;

}  // namespace notifyd
