#pragma once
// Twilio's webhook signature (X-Twilio-Signature), computed the way Twilio signs its own requests so that the
// Twilio helper libraries' RequestValidator accepts a notifyd delivery callback. Pure functions: any thread;
// they do not fail (OpenSSL's HMAC cannot fail for SHA-1 with in-memory input; a failure there is a bug and
// throws std::runtime_error).
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace notifyd::fanout {

using FormParams = std::vector<std::pair<std::string, std::string>>;

// base64(HMAC-SHA1(auth_token, url + k1 + v1 + k2 + v2 ...)) with the POST parameters sorted by name
// (byte-wise, which is Python's code-point order for UTF-8) and, for a repeated name, by value; `url` is
// the full URL the request is sent to (scheme, host, optional port, path and query), exactly as the receiver
// will reconstruct it. Values are the decoded ones, not the form-encoded bytes.
std::string twilio_signature(std::string_view auth_token, std::string_view url, const FormParams& params);

// application/x-www-form-urlencoded, in the given order: unreserved bytes (A-Z a-z 0-9 - . _ *) as is,
// space as '+', everything else %XX. Every form parser (Python's parse_qs included) decodes it back to the
// same values the signature was computed over.
std::string form_urlencode(const FormParams& params);

}  // namespace notifyd::fanout
