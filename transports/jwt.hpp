#pragma once
// Compact JWS signing for the two provider tokens notifyd mints: ES256 (APNs provider tokens) and RS256
// (Google OAuth2 service-account assertions). Pure functions over OpenSSL 3; any thread.
// Failures (unparsable key, wrong key type) are values; the key text never appears in a message.
#include <boost/system/result.hpp>
#include <string>
#include <string_view>

namespace notifyd::transport {

std::string base64url(std::string_view bytes);

struct JwtError {
  JwtError() = default;
  explicit JwtError(std::string m) : message(std::move(m)) {}
  std::string message;
};
template <class T>
using JwtResult = boost::system::result<T, JwtError>;
// A string converts to both sides of JwtResult<std::string>: successes say which they are.
inline JwtResult<std::string> jwt_ok(std::string s) { return {boost::system::in_place_value, std::move(s)}; }
[[noreturn]] void throw_exception_from_error(const JwtError& e, const boost::source_location& loc);

// header and claims are JSON texts; returns "b64(header).b64(claims).b64(signature)".
// ES256 needs an EC P-256 private key (PEM, PKCS#8 or SEC1); the signature is the raw 64-byte r||s.
JwtResult<std::string> sign_es256(std::string_view header_json, std::string_view claims_json,
                                  std::string_view private_key_pem);
// RS256 needs an RSA private key (PEM).
JwtResult<std::string> sign_rs256(std::string_view header_json, std::string_view claims_json,
                                  std::string_view private_key_pem);

// The APNs provider token: {"alg":"ES256","kid":key_id} . {"iss":team_id,"iat":issued_at}.
JwtResult<std::string> make_apns_provider_token(std::string_view p8_pem, std::string_view key_id,
                                                std::string_view team_id, long long issued_at);
// The Google OAuth2 assertion: {"alg":"RS256","typ":"JWT"} . {"iss":client_email,
// "scope":"https://www.googleapis.com/auth/firebase.messaging","aud":token_uri,"iat":now,"exp":now+3600}.
JwtResult<std::string> make_google_assertion(std::string_view private_key_pem, std::string_view client_email,
                                             std::string_view token_uri, long long issued_at);

}  // namespace notifyd::transport
