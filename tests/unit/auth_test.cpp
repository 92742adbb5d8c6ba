// Unit tests for daemon/api/auth: HTTP Basic against configured accounts and their API keys.
#include "daemon/api/auth.hpp"

#include <gtest/gtest.h>

#include <string>

namespace notifyd::api {
namespace {

constexpr const char* kAccount1 = "AC11111111111111111111111111111111";
constexpr const char* kToken1 = "token-one-0123456789abcdef";
constexpr const char* kAccount2 = "AC22222222222222222222222222222222";
constexpr const char* kToken2 = "token-two-fedcba9876543210";
constexpr const char* kKey2 = "SK22222222222222222222222222222222";
constexpr const char* kKeySecret2 = "key-secret-of-account-two";
constexpr const char* kKey2b = "SK2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b";
constexpr const char* kKeySecret2b = "another:secret:with:colons";

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (in.size() - i == 1) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (in.size() - i == 2) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string basic(std::string_view user, std::string_view password) {
  return "Basic " + base64(std::string(user) + ":" + std::string(password));
}

class AuthTest : public ::testing::Test {
 protected:
  AuthTest() {
    config_.accounts.push_back(AccountConfig{kAccount1, kToken1, {}});
    config_.accounts.push_back(AccountConfig{
        kAccount2, kToken2, {ApiKeyConfig{kKey2, kKeySecret2}, ApiKeyConfig{kKey2b, kKeySecret2b}}});
  }
  Config config_;
};

TEST(Base64Helper, KnownVectors) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
}

TEST_F(AuthTest, AccountTokenOk) {
  EXPECT_EQ(authenticate(config_, basic(kAccount1, kToken1)), kAccount1);
  EXPECT_EQ(authenticate(config_, basic(kAccount2, kToken2)), kAccount2);
}

TEST_F(AuthTest, PasswordLengthsNeedingEachPadding) {
  // user:password lengths of 3n, 3n+1 and 3n+2 bytes: no padding, "==" and "=".
  for (std::string token : {"a", "ab", "abc", "abcd"}) {
    Config c;
    c.accounts.push_back(AccountConfig{kAccount1, token, {}});
    EXPECT_EQ(authenticate(c, basic(kAccount1, token)), kAccount1) << token;
    EXPECT_FALSE(authenticate(c, basic(kAccount1, token + "x")).has_value()) << token;
    EXPECT_FALSE(authenticate(c, basic(kAccount1, token.substr(0, token.size() - 1))).has_value()) << token;
  }
}

TEST_F(AuthTest, WrongToken) {
  EXPECT_FALSE(authenticate(config_, basic(kAccount1, "wrong")).has_value());
  EXPECT_FALSE(authenticate(config_, basic(kAccount1, "")).has_value());
  EXPECT_FALSE(authenticate(config_, basic(kAccount1, std::string(kToken1) + "x")).has_value());
  // Another account's token does not open this one.
  EXPECT_FALSE(authenticate(config_, basic(kAccount1, kToken2)).has_value());
}

TEST_F(AuthTest, UnknownUser) {
  EXPECT_FALSE(authenticate(config_, basic("AC33333333333333333333333333333333", kToken1)).has_value());
  EXPECT_FALSE(authenticate(config_, basic("", kToken1)).has_value());
  // SIDs are matched exactly.
  std::string upper = kAccount1;
  upper[2] = 'X';
  EXPECT_FALSE(authenticate(config_, basic(upper, kToken1)).has_value());
}

TEST_F(AuthTest, ApiKeyMapsToItsAccount) {
  EXPECT_EQ(authenticate(config_, basic(kKey2, kKeySecret2)), kAccount2);
  // A secret may itself contain colons: only the first one separates user and password.
  EXPECT_EQ(authenticate(config_, basic(kKey2b, kKeySecret2b)), kAccount2);
}

TEST_F(AuthTest, ApiKeyWithWrongSecret) {
  EXPECT_FALSE(authenticate(config_, basic(kKey2, "wrong")).has_value());
  EXPECT_FALSE(
      authenticate(config_, basic(kKey2, kToken2)).has_value());  // the account's token is not the key's
  EXPECT_FALSE(authenticate(config_, basic(kKey2, kKeySecret2b)).has_value());  // nor another key's secret
  EXPECT_FALSE(
      authenticate(config_, basic(kAccount2, kKeySecret2)).has_value());  // nor the key's the account's
}

TEST_F(AuthTest, MalformedHeaders) {
  EXPECT_FALSE(authenticate(config_, "").has_value());
  EXPECT_FALSE(authenticate(config_, "Basic").has_value());
  EXPECT_FALSE(authenticate(config_, "Basic ").has_value());
  EXPECT_FALSE(authenticate(config_, "Basic !!!notbase64!!!").has_value());
  EXPECT_FALSE(authenticate(config_, "Basic " + base64(kAccount1)).has_value());  // no colon
  EXPECT_FALSE(authenticate(config_, "Basic " + base64(std::string(kAccount1) + kToken1)).has_value());
  EXPECT_FALSE(authenticate(config_, "Bearer x").has_value());
  EXPECT_FALSE(authenticate(config_, "Bearer " + base64(std::string(kAccount1) + ":" + kToken1)).has_value());
  EXPECT_FALSE(authenticate(config_, "Digest " + base64(std::string(kAccount1) + ":" + kToken1)).has_value());
  // The scheme without its separating space.
  EXPECT_FALSE(authenticate(config_, "Basic" + base64(std::string(kAccount1) + ":" + kToken1)).has_value());
  // Valid credentials with the padding cut off are not valid base64.
  std::string unpadded = base64(std::string(kAccount1) + ":ab");  // 37 bytes: one '=' of padding
  ASSERT_EQ(unpadded.back(), '=');
  unpadded.pop_back();
  Config c;
  c.accounts.push_back(AccountConfig{kAccount1, "ab", {}});
  EXPECT_EQ(authenticate(c, "Basic " + unpadded + "="), kAccount1);
  EXPECT_FALSE(authenticate(c, "Basic " + unpadded).has_value());
}

TEST_F(AuthTest, SchemeIsCaseInsensitive) {
  std::string cred = base64(std::string(kAccount1) + ":" + kToken1);
  EXPECT_EQ(authenticate(config_, "basic " + cred), kAccount1);
  EXPECT_EQ(authenticate(config_, "BASIC " + cred), kAccount1);
  EXPECT_EQ(authenticate(config_, "bAsIc " + cred), kAccount1);
}

TEST_F(AuthTest, NoAccountsConfigured) {
  Config empty;
  EXPECT_FALSE(authenticate(empty, basic(kAccount1, kToken1)).has_value());
}

}  // namespace
}  // namespace notifyd::api
