#include "transports/jwt.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/json.hpp>
#include <memory>
#include <stdexcept>

namespace notifyd::transport {
namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using SigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;

void bio_free(BIO* b) { BIO_free(b); }
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, bio_free>>;

PkeyPtr read_private_key(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  // An empty passphrase callback: an encrypted key fails instead of prompting on a terminal.
  PkeyPtr key(PEM_read_bio_PrivateKey(
      bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  ERR_clear_error();
  return key;
}

JwtResult<std::string> digest_sign(EVP_PKEY* key, std::string_view signing_input) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    ERR_clear_error();
    return JwtError{"signing failed"};
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    ERR_clear_error();
    return JwtError{"signing failed"};
  }
  sig.resize(len);
  return jwt_ok(std::move(sig));
}

// JWS ES256 wants r||s, each left-padded to 32 bytes; OpenSSL produces DER.
JwtResult<std::string> der_to_raw_p256(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  SigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) return JwtError{"malformed ECDSA signature"};
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(64, '\0');
  if (BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), 32) != 32 ||
      BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + 32, 32) != 32) {
    return JwtError{"ECDSA signature does not fit P-256"};
  }
  return jwt_ok(std::move(raw));
}

std::string signing_input(std::string_view header_json, std::string_view claims_json) {
  return base64url(header_json) + "." + base64url(claims_json);
}

}  // namespace

void throw_exception_from_error(const JwtError& e, const boost::source_location&) {
  throw std::logic_error("unchecked JwtError: " + e.message);
}

std::string base64url(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    auto n = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
             static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == bytes.size()) {
    auto n = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
  } else if (i + 2 == bytes.size()) {
    auto n = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
  }
  return out;
}

JwtResult<std::string> sign_es256(std::string_view header_json, std::string_view claims_json,
                                  std::string_view private_key_pem) {
  auto key = read_private_key(private_key_pem);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC || EVP_PKEY_get_bits(key.get()) != 256) {
    return JwtError{"ES256 needs an EC P-256 private key"};
  }
  std::string input = signing_input(header_json, claims_json);
  auto der = digest_sign(key.get(), input);
  if (!der) return der.error();
  auto raw = der_to_raw_p256(*der);
  if (!raw) return raw.error();
  return jwt_ok(input + "." + base64url(*raw));
}

JwtResult<std::string> sign_rs256(std::string_view header_json, std::string_view claims_json,
                                  std::string_view private_key_pem) {
  auto key = read_private_key(private_key_pem);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA)
    return JwtError{"RS256 needs an RSA private key"};
  std::string input = signing_input(header_json, claims_json);
  auto sig = digest_sign(key.get(), input);
  if (!sig) return sig.error();
  return jwt_ok(input + "." + base64url(*sig));
}

JwtResult<std::string> make_apns_provider_token(std::string_view p8_pem, std::string_view key_id,
                                                std::string_view team_id, long long issued_at) {
  boost::json::object header{{"alg", "ES256"}, {"kid", key_id}};
  boost::json::object claims{{"iss", team_id}, {"iat", issued_at}};
  return sign_es256(boost::json::serialize(header), boost::json::serialize(claims), p8_pem);
}

JwtResult<std::string> make_google_assertion(std::string_view private_key_pem, std::string_view client_email,
                                             std::string_view token_uri, long long issued_at) {
  boost::json::object header{{"alg", "RS256"}, {"typ", "JWT"}};
  boost::json::object claims{{"iss", client_email},
                             {"scope", "https://www.googleapis.com/auth/firebase.messaging"},
                             {"aud", token_uri},
                             {"iat", issued_at},
                             {"exp", issued_at + 3600}};
  return sign_rs256(boost::json::serialize(header), boost::json::serialize(claims), private_key_pem);
}

}  // namespace notifyd::transport
