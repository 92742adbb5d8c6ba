#include "daemon/api/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>

namespace notifyd::api {
namespace {

std::optional<std::string> decode_base64(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0 || in.size() > 4096) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts padding as zero bytes: drop them.
  std::size_t pad = (in.back() == '=') + (in.size() > 1 && in[in.size() - 2] == '=');
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

}  // namespace

bool equal_constant_time(std::string_view a, std::string_view b) {
  // Compare digests, so the time depends on neither the secret's content nor its length.
  std::array<unsigned char, EVP_MAX_MD_SIZE> da{}, db{};
  unsigned int la = 0, lb = 0;
  if (EVP_Digest(a.data(), a.size(), da.data(), &la, EVP_sha256(), nullptr) != 1) return false;
  if (EVP_Digest(b.data(), b.size(), db.data(), &lb, EVP_sha256(), nullptr) != 1) return false;
  return la == lb && CRYPTO_memcmp(da.data(), db.data(), la) == 0;
}

std::optional<std::string> authenticate(const Config& config, std::string_view header) {
  constexpr std::string_view kBasic = "Basic ";
  if (header.size() <= kBasic.size() ||
      !std::equal(kBasic.begin(), kBasic.end(), header.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
      })) {
    return std::nullopt;
  }
  auto decoded = decode_base64(header.substr(kBasic.size()));
  if (!decoded) return std::nullopt;
  auto colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string_view user(decoded->data(), colon);
  std::string_view password(decoded->data() + colon + 1, decoded->size() - colon - 1);
  for (const auto& account : config.accounts) {
    if (account.sid == user) {
      if (equal_constant_time(password, account.auth_token)) return account.sid;
      return std::nullopt;
    }
    for (const auto& key : account.api_keys) {
      if (key.sid == user) {
        if (equal_constant_time(password, key.secret)) return account.sid;
        return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

}  // namespace notifyd::api
