// JWS signing: base64url vectors, and ES256/RS256 tokens verified with the public half of the key.
#include "transports/jwt.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/json.hpp>
#include <memory>

#include "tests/support/test_credentials.hpp"

namespace notifyd::transport {
namespace {

std::string base64url_decode(std::string_view in) {
  std::string b64(in);
  for (auto& c : b64) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (b64.size() % 4) b64 += '=';
  std::string out(b64.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  EXPECT_GE(n, 0);
  out.resize(static_cast<std::size_t>(n) - (b64.size() - in.size()));  // drop the bytes of the '=' padding
  return out;
}

struct Parts {
  std::string header, claims, signature, signing_input;
};

Parts split(const std::string& jwt) {
  auto a = jwt.find('.');
  auto b = jwt.find('.', a + 1);
  EXPECT_NE(a, std::string::npos);
  EXPECT_NE(b, std::string::npos);
  return {base64url_decode(jwt.substr(0, a)), base64url_decode(jwt.substr(a + 1, b - a - 1)),
          base64url_decode(jwt.substr(b + 1)), jwt.substr(0, b)};
}

std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> load_key(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                BIO_free);
  return {PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free};
}

bool verify(EVP_PKEY* key, const std::string& input, const std::string& der_or_raw_sig) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(der_or_raw_sig.data()),
                          der_or_raw_sig.size(), reinterpret_cast<const unsigned char*>(input.data()),
                          input.size()) == 1;
}

// JWS r||s back to DER for OpenSSL's verifier.
std::string raw_to_der(const std::string& raw) {
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  ECDSA_SIG_set0(sig, r, s);
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig, &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  return out;
}

TEST(Base64Url, Rfc4648Vectors) {
  EXPECT_EQ(base64url(""), "");
  EXPECT_EQ(base64url("f"), "Zg");
  EXPECT_EQ(base64url("fo"), "Zm8");
  EXPECT_EQ(base64url("foo"), "Zm9v");
  EXPECT_EQ(base64url("foob"), "Zm9vYg");
  EXPECT_EQ(base64url("\xfb\xff"), "-_8");
}

TEST(Jwt, ApnsProviderTokenVerifiesWithTheKeyAndCarriesKidIssIat) {
  std::string p8 = test::make_p8_key();
  auto token = make_apns_provider_token(p8, "ABC123DEFG", "TEAM123456", 1700000000);
  ASSERT_TRUE(token) << token.error().message;
  Parts parts = split(*token);
  auto header = boost::json::parse(parts.header).as_object();
  EXPECT_EQ(header.at("alg"), "ES256");
  EXPECT_EQ(header.at("kid"), "ABC123DEFG");
  auto claims = boost::json::parse(parts.claims).as_object();
  EXPECT_EQ(claims.at("iss"), "TEAM123456");
  EXPECT_EQ(claims.at("iat").as_int64(), 1700000000);
  ASSERT_EQ(parts.signature.size(), 64u);  // raw r||s, not DER
  auto key = load_key(p8);
  EXPECT_TRUE(verify(key.get(), parts.signing_input, raw_to_der(parts.signature)));
  EXPECT_FALSE(verify(key.get(), parts.signing_input + "x", raw_to_der(parts.signature)));
}

TEST(Jwt, GoogleAssertionVerifiesAndHasScopeAudienceAndExpiry) {
  std::string rsa = test::make_rsa_key_pem();
  auto token =
      make_google_assertion(rsa, "svc@proj.iam.gserviceaccount.com", "https://oauth2.example/token", 1000);
  ASSERT_TRUE(token) << token.error().message;
  Parts parts = split(*token);
  auto claims = boost::json::parse(parts.claims).as_object();
  EXPECT_EQ(claims.at("iss"), "svc@proj.iam.gserviceaccount.com");
  EXPECT_EQ(claims.at("aud"), "https://oauth2.example/token");
  EXPECT_EQ(claims.at("scope"), "https://www.googleapis.com/auth/firebase.messaging");
  EXPECT_EQ(claims.at("exp").as_int64(), 4600);
  auto key = load_key(rsa);
  EXPECT_TRUE(verify(key.get(), parts.signing_input, parts.signature));
}

TEST(Jwt, WrongKeyTypesAndGarbageAreRefusedWithoutEchoingTheKey) {
  std::string rsa = test::make_rsa_key_pem();
  auto es = sign_es256("{}", "{}", rsa);
  ASSERT_FALSE(es);
  EXPECT_EQ(es.error().message.find("PRIVATE KEY"), std::string::npos);
  EXPECT_FALSE(sign_rs256("{}", "{}", test::make_p8_key()));
  EXPECT_FALSE(sign_es256("{}", "{}", "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"));
}

}  // namespace
}  // namespace notifyd::transport
