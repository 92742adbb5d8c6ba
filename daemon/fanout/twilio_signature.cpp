// The algorithm is Twilio's (twilio/request_validator.py compute_signature): concatenate the URL and the
// sorted name/value pairs, HMAC-SHA1 with the auth token as the key, base64 (standard alphabet, padded).
#include "daemon/fanout/twilio_signature.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <stdexcept>

namespace notifyd::fanout {

std::string twilio_signature(std::string_view auth_token, std::string_view url, const FormParams& params) {
  // Sort pointers, not copies: params are small but the callers sign one request per binding outcome.
  std::vector<const std::pair<std::string, std::string>*> sorted;
  sorted.reserve(params.size());
  for (const auto& p : params) sorted.push_back(&p);
  // std::string's operator< compares as unsigned char, i.e. UTF-8 byte order = code point order, which is
  // what Python's sorted() over str gives the validator.
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return *a < *b; });

  std::string data(url);
  for (const auto* p : sorted) {
    data += p->first;
    data += p->second;
  }

  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha1(), auth_token.data(), static_cast<int>(auth_token.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &mac_len) == nullptr) {
    throw std::runtime_error("HMAC-SHA1 failed");
  }

  std::string out(4 * ((mac_len + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), mac, static_cast<int>(mac_len));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string form_urlencode(const FormParams& params) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  auto encode = [&out](std::string_view s) {
    for (const char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '.' || c == '_' || c == '*') {
        out += ch;
      } else if (c == ' ') {
        out += '+';
      } else {
        out += '%';
        out += kHex[c >> 4];
        out += kHex[c & 0x0F];
      }
    }
  };
  bool first = true;
  for (const auto& [key, value] : params) {
    if (!first) out += '&';
    first = false;
    encode(key);
    out += '=';
    encode(value);
  }
  return out;
}

}  // namespace notifyd::fanout
