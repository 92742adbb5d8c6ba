#include "daemon/model/credential_validation.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/json.hpp>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/test_credentials.hpp"

namespace notifyd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Key generation dominates this suite's run time, so each kind of material is made once and shared.
struct Material {
  test::ApnCertPair rsa_pair = test::make_apn_cert_pair("com.example.app");
  test::ApnCertPair ec_pair = test::make_apn_cert_pair("com.example.ec", false, test::KeyType::kEcP256);
  test::ApnCertPair expired_pair = test::make_apn_cert_pair("com.example.old", true);
  test::ApnCertPair no_uid_pair = test::make_cert_pair({{"CN", "Apple Push Services: com.example.app"}});
  std::string other_rsa_key = test::make_rsa_key_pem();
  std::string p8 = test::make_p8_key();
  std::string service_account = test::make_service_account_json("notifyd-test");
};

const Material& material() {
  static const Material m;
  return m;
}

// The body lines of a PEM block: a message quoting any of them would leak key or certificate bytes.
std::vector<std::string> pem_body_lines(const std::string& pem) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < pem.size()) {
    std::size_t end = pem.find('\n', start);
    if (end == std::string::npos) end = pem.size();
    std::string line = pem.substr(start, end - start);
    if (!line.empty() && line.rfind("-----", 0) != 0) lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

template <class R>
ApiError error_of(const R& r) {
  EXPECT_FALSE(r.has_value());
  if (r.has_value()) return {};
  return r.error();
}

// Every refusal is a Twilio 400 / 20001 and leaves no OpenSSL error behind for the next caller.
template <class R>
void expect_invalid(const R& r, const std::string& message_part) {
  const ApiError e = error_of(r);
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, codes::kInvalidParameter);
  EXPECT_THAT(e.message, HasSubstr(message_part));
  EXPECT_EQ(ERR_peek_error(), 0UL) << "stale OpenSSL error left on the queue";
}

boost::json::object service_account_object() {
  return boost::json::parse(material().service_account).as_object();
}

std::string with_member(boost::json::object obj, std::string_view key, boost::json::value v) {
  obj[key] = std::move(v);
  return boost::json::serialize(obj);
}

std::string without_member(boost::json::object obj, std::string_view key) {
  obj.erase(key);
  return boost::json::serialize(obj);
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioDeleter {
  void operator()(BIO* p) const { BIO_free(p); }
};

std::string pem_of(EVP_PKEY* key, const EVP_CIPHER* cipher = nullptr, const char* passphrase = nullptr) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  const int ok = cipher == nullptr
                     ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
                     : PEM_write_bio_PKCS8PrivateKey(bio.get(), key, cipher, nullptr, 0, nullptr,
                                                     const_cast<char*>(passphrase));
  EXPECT_EQ(ok, 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::string encrypted_pem(const std::string& plain_pem) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(plain_pem.data(), static_cast<int>(plain_pem.size())));
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  return pem_of(key.get(), EVP_aes_256_cbc(), "correct horse");
}

std::string generated_pem(const char* algorithm, const char* param = nullptr) {
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(param == nullptr
                                                 ? EVP_PKEY_Q_keygen(nullptr, nullptr, algorithm)
                                                 : EVP_PKEY_Q_keygen(nullptr, nullptr, algorithm, param));
  EXPECT_NE(key, nullptr);
  return pem_of(key.get());
}

std::string rsa_pem(std::size_t bits) {
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits));
  EXPECT_NE(key, nullptr);
  return pem_of(key.get());
}

// --- APNs certificate auth ---

TEST(ApnCertificatePair, GoodRsaPairReturnsSubjectUidAsTopic) {
  const auto& m = material();
  auto topic = validate_apn_certificate_pair(m.rsa_pair.certificate_pem, m.rsa_pair.private_key_pem);
  ASSERT_TRUE(topic.has_value()) << topic.error().message;
  EXPECT_EQ(*topic, "com.example.app");
  EXPECT_EQ(ERR_peek_error(), 0UL);
}

TEST(ApnCertificatePair, GoodEcPairReturnsTopic) {
  const auto& m = material();
  auto topic = validate_apn_certificate_pair(m.ec_pair.certificate_pem, m.ec_pair.private_key_pem);
  ASSERT_TRUE(topic.has_value()) << topic.error().message;
  EXPECT_EQ(*topic, "com.example.ec");
}

TEST(ApnCertificatePair, TraditionalPkcs1KeyIsAccepted) {
  const auto& m = material();
  const std::string pkcs1 = test::to_traditional_pem(m.rsa_pair.private_key_pem);
  ASSERT_THAT(pkcs1, HasSubstr("BEGIN RSA PRIVATE KEY"));
  auto topic = validate_apn_certificate_pair(m.rsa_pair.certificate_pem, pkcs1);
  ASSERT_TRUE(topic.has_value()) << topic.error().message;
  EXPECT_EQ(*topic, "com.example.app");
}

TEST(ApnCertificatePair, ExpiredCertificateIsAccepted) {
  const auto& m = material();
  auto topic = validate_apn_certificate_pair(m.expired_pair.certificate_pem, m.expired_pair.private_key_pem);
  ASSERT_TRUE(topic.has_value()) << topic.error().message;
  EXPECT_EQ(*topic, "com.example.old");
}

TEST(ApnCertificatePair, FirstCertificateOfAChainIsUsed) {
  const auto& m = material();
  const std::string chain = m.rsa_pair.certificate_pem + m.ec_pair.certificate_pem;
  auto topic = validate_apn_certificate_pair(chain, m.rsa_pair.private_key_pem);
  ASSERT_TRUE(topic.has_value()) << topic.error().message;
  EXPECT_EQ(*topic, "com.example.app");
}

TEST(ApnCertificatePair, KeyAndCertificateInOneFieldAreFound) {
  // Tools export "cert + key" bundles; each reader picks the PEM block it needs.
  const auto& m = material();
  const std::string bundle = m.rsa_pair.certificate_pem + m.rsa_pair.private_key_pem;
  EXPECT_TRUE(validate_apn_certificate_pair(bundle, bundle).has_value());
}

TEST(ApnCertificatePair, MismatchedKeyIsRefused) {
  const auto& m = material();
  expect_invalid(validate_apn_certificate_pair(m.rsa_pair.certificate_pem, m.other_rsa_key),
                 "PrivateKey does not match Certificate");
}

TEST(ApnCertificatePair, KeyOfAnotherTypeIsRefusedAsMismatch) {
  const auto& m = material();
  expect_invalid(validate_apn_certificate_pair(m.rsa_pair.certificate_pem, m.ec_pair.private_key_pem),
                 "PrivateKey does not match Certificate");
}

TEST(ApnCertificatePair, GarbageCertificateIsRefused) {
  const auto& m = material();
  expect_invalid(validate_apn_certificate_pair("not a certificate", m.rsa_pair.private_key_pem),
                 "Certificate is not a valid PEM X.509 certificate");
  expect_invalid(
      validate_apn_certificate_pair("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                                    m.rsa_pair.private_key_pem),
      "Certificate is not a valid PEM X.509 certificate");
  expect_invalid(validate_apn_certificate_pair(m.rsa_pair.private_key_pem, m.rsa_pair.private_key_pem),
                 "Certificate is not a valid PEM X.509 certificate");
}

TEST(ApnCertificatePair, GarbageKeyIsRefused) {
  const auto& m = material();
  expect_invalid(validate_apn_certificate_pair(m.rsa_pair.certificate_pem, "not a key"),
                 "PrivateKey is not a valid PEM private key");
  expect_invalid(validate_apn_certificate_pair(m.rsa_pair.certificate_pem, m.rsa_pair.certificate_pem),
                 "PrivateKey is not a valid PEM private key");
}

TEST(ApnCertificatePair, EmptyInputsAreRefused) {
  const auto& m = material();
  expect_invalid(validate_apn_certificate_pair("", m.rsa_pair.private_key_pem), "Certificate is empty");
  expect_invalid(validate_apn_certificate_pair(m.rsa_pair.certificate_pem, ""), "PrivateKey is empty");
}

TEST(ApnCertificatePair, EncryptedKeyIsRefusedWithoutPrompting) {
  const auto& m = material();
  expect_invalid(
      validate_apn_certificate_pair(m.rsa_pair.certificate_pem, encrypted_pem(m.rsa_pair.private_key_pem)),
      "PrivateKey is encrypted");
}

TEST(ApnCertificatePair, UnsupportedKeyAlgorithmIsRefused) {
  const auto& m = material();
  expect_invalid(validate_apn_certificate_pair(m.rsa_pair.certificate_pem, generated_pem("ED25519")),
                 "PrivateKey must be an RSA or EC key");
}

TEST(ApnCertificatePair, CertificateWithoutUidIsRefused) {
  const auto& m = material();
  expect_invalid(validate_apn_certificate_pair(m.no_uid_pair.certificate_pem, m.no_uid_pair.private_key_pem),
                 "Certificate has no UID in its subject (the APNs topic)");
}

TEST(ApnCertificatePair, UidWithSpacesIsRefused) {
  const auto pair = test::make_cert_pair({{"UID", "com.example app"}}, false, test::KeyType::kEcP256);
  expect_invalid(validate_apn_certificate_pair(pair.certificate_pem, pair.private_key_pem),
                 "not a valid APNs topic");
}

// --- APNs token auth ---

TEST(ApnTokenKey, GoodP8IsAccepted) {
  auto st = validate_apn_token_key(material().p8, "ABC123DEFG", "TEAM123456", "com.example.app");
  EXPECT_TRUE(st.has_value()) << st.error().message;
  EXPECT_EQ(ERR_peek_error(), 0UL);
}

TEST(ApnTokenKey, Sec1EncodedP256KeyIsAccepted) {
  const std::string sec1 = test::to_traditional_pem(material().p8);
  ASSERT_THAT(sec1, HasSubstr("BEGIN EC PRIVATE KEY"));
  auto st = validate_apn_token_key(sec1, "ABC123DEFG", "TEAM123456", "com.example.app");
  EXPECT_TRUE(st.has_value()) << st.error().message;
}

TEST(ApnTokenKey, RsaKeyIsRefused) {
  expect_invalid(
      validate_apn_token_key(material().other_rsa_key, "ABC123DEFG", "TEAM123456", "com.example.app"),
      "PrivateKey must be an EC P-256 key");
}

TEST(ApnTokenKey, OtherCurveIsRefused) {
  expect_invalid(
      validate_apn_token_key(generated_pem("EC", "P-384"), "ABC123DEFG", "TEAM123456", "com.example.app"),
      "PrivateKey must be an EC P-256 key");
}

TEST(ApnTokenKey, GarbageEmptyAndEncryptedKeysAreRefused) {
  expect_invalid(validate_apn_token_key("garbage", "ABC123DEFG", "TEAM123456", "com.example.app"),
                 "PrivateKey is not a valid PEM private key");
  expect_invalid(validate_apn_token_key("", "ABC123DEFG", "TEAM123456", "com.example.app"),
                 "PrivateKey is empty");
  expect_invalid(
      validate_apn_token_key(encrypted_pem(material().p8), "ABC123DEFG", "TEAM123456", "com.example.app"),
      "PrivateKey is encrypted");
}

TEST(ApnTokenKey, BadKeyIdIsRefused) {
  for (const char* id : {"", "ABC123DEF", "ABC123DEFGH", "abc123defg", "ABC123DEF-", "ABC 23DEFG"}) {
    SCOPED_TRACE(id);
    expect_invalid(validate_apn_token_key(material().p8, id, "TEAM123456", "com.example.app"), "ApnKeyId");
  }
}

TEST(ApnTokenKey, BadTeamIdIsRefused) {
  for (const char* id : {"", "TEAM12345", "TEAM1234567", "team123456", "TEAM12345\n"}) {
    SCOPED_TRACE(id);
    expect_invalid(validate_apn_token_key(material().p8, "ABC123DEFG", id, "com.example.app"), "ApnTeamId");
  }
}

TEST(ApnTokenKey, BadTopicIsRefused) {
  for (const char* topic :
       {"", "com.example app", " com.example.app", "com.example.app\r\n", "com.\texample"}) {
    SCOPED_TRACE(topic);
    expect_invalid(validate_apn_token_key(material().p8, "ABC123DEFG", "TEAM123456", topic), "ApnTopic");
  }
}

TEST(ApnTokenKey, TopicSuffixesAreAccepted) {
  for (const char* topic : {"com.example.app.voip", "com.example.app.push-type.liveactivity"}) {
    EXPECT_TRUE(validate_apn_token_key(material().p8, "ABC123DEFG", "TEAM123456", topic).has_value())
        << topic;
  }
}

// --- FCM service account ---

TEST(ServiceAccountJson, GoodJsonIsParsed) {
  auto sa = validate_service_account_json(material().service_account);
  ASSERT_TRUE(sa.has_value()) << sa.error().message;
  EXPECT_EQ(sa->project_id, "notifyd-test");
  EXPECT_EQ(sa->client_email, "notifyd-test@notifyd-test.iam.gserviceaccount.com");
  EXPECT_EQ(sa->token_uri, "https://oauth2.googleapis.com/token");
  EXPECT_EQ(sa->private_key, service_account_object().at("private_key").as_string());
  EXPECT_THAT(sa->private_key, HasSubstr("-----BEGIN PRIVATE KEY-----\n"));
  EXPECT_EQ(ERR_peek_error(), 0UL);
}

TEST(ServiceAccountJson, MinimalObjectWithoutTypeIsAccepted) {
  boost::json::object obj = service_account_object();
  boost::json::object minimal{{"project_id", obj["project_id"]},
                              {"client_email", obj["client_email"]},
                              {"private_key", obj["private_key"]},
                              {"token_uri", "http://127.0.0.1:8443/token"}};
  auto sa = validate_service_account_json(boost::json::serialize(minimal));
  ASSERT_TRUE(sa.has_value()) << sa.error().message;
  EXPECT_EQ(sa->token_uri, "http://127.0.0.1:8443/token");
}

TEST(ServiceAccountJson, Pkcs1RsaKeyIsAccepted) {
  const std::string pkcs1 = test::to_traditional_pem(material().other_rsa_key);
  EXPECT_TRUE(
      validate_service_account_json(with_member(service_account_object(), "private_key", pkcs1.c_str()))
          .has_value());
}

TEST(ServiceAccountJson, EachMissingFieldIsNamed) {
  for (const char* field : {"project_id", "client_email", "private_key", "token_uri"}) {
    SCOPED_TRACE(field);
    expect_invalid(validate_service_account_json(without_member(service_account_object(), field)),
                   std::string("Secret: ") + field + " is missing");
    expect_invalid(validate_service_account_json(with_member(service_account_object(), field, nullptr)),
                   std::string("Secret: ") + field + " is missing");
  }
}

TEST(ServiceAccountJson, EachWrongTypedFieldIsNamed) {
  const std::vector<boost::json::value> wrong = {42, true, boost::json::array{"x"},
                                                 boost::json::object{{"a", 1}}};
  for (const char* field : {"project_id", "client_email", "private_key", "token_uri"}) {
    for (const auto& v : wrong) {
      SCOPED_TRACE(std::string(field) + " = " + boost::json::serialize(v));
      expect_invalid(validate_service_account_json(with_member(service_account_object(), field, v)),
                     std::string("Secret: ") + field + " must be a string");
    }
  }
}

TEST(ServiceAccountJson, EachEmptyFieldIsNamed) {
  for (const char* field : {"project_id", "client_email", "private_key", "token_uri"}) {
    SCOPED_TRACE(field);
    expect_invalid(validate_service_account_json(with_member(service_account_object(), field, "")),
                   std::string("Secret: ") + field + " is empty");
  }
}

TEST(ServiceAccountJson, WrongTypeMemberIsRefused) {
  expect_invalid(
      validate_service_account_json(with_member(service_account_object(), "type", "authorized_user")),
      "Secret: type must be \"service_account\"");
  expect_invalid(validate_service_account_json(with_member(service_account_object(), "type", 1)),
                 "Secret: type must be \"service_account\"");
}

TEST(ServiceAccountJson, InvalidJsonIsRefused) {
  for (const char* text : {"", "{", "{\"project_id\": \"x\",}", "not json", "{'a': 1}", "{\"a\": 1} trailing",
                           "{\"a\": \"\xff\"}"}) {
    SCOPED_TRACE(text);
    expect_invalid(validate_service_account_json(text), "Secret is not valid JSON");
  }
}

TEST(ServiceAccountJson, NonObjectJsonIsRefused) {
  for (const char* text : {"[]", "\"service_account\"", "42", "null", "true"}) {
    SCOPED_TRACE(text);
    expect_invalid(validate_service_account_json(text), "Secret must be a JSON object");
  }
}

TEST(ServiceAccountJson, BadTokenUriIsRefused) {
  for (const char* uri :
       {"oauth2.googleapis.com/token", "/token", "ftp://oauth2.googleapis.com/token", "https://",
        "https:///token", "mailto:someone@example.com", "https://exa mple.com/", "file:///etc/passwd"}) {
    SCOPED_TRACE(uri);
    expect_invalid(validate_service_account_json(with_member(service_account_object(), "token_uri", uri)),
                   "Secret: token_uri must be an absolute http or https URL");
  }
}

TEST(ServiceAccountJson, BadClientEmailIsRefused) {
  for (const char* email : {"nobody", "@example.com", "someone@", "a b@example.com"}) {
    SCOPED_TRACE(email);
    expect_invalid(
        validate_service_account_json(with_member(service_account_object(), "client_email", email)),
        "Secret: client_email is not an email address");
  }
}

TEST(ServiceAccountJson, PrivateKeyThatIsNotAKeyIsRefused) {
  expect_invalid(
      validate_service_account_json(with_member(service_account_object(), "private_key", "not a key")),
      "Secret: private_key is not a valid PEM private key");
  expect_invalid(validate_service_account_json(with_member(service_account_object(), "private_key",
                                                           material().rsa_pair.certificate_pem.c_str())),
                 "Secret: private_key is not a valid PEM private key");
  // A key with its newlines lost (a common copy-paste accident) does not decode.
  std::string flattened = material().other_rsa_key;
  std::erase(flattened, '\n');
  expect_invalid(
      validate_service_account_json(with_member(service_account_object(), "private_key", flattened.c_str())),
      "Secret: private_key is not a valid PEM private key");
}

TEST(ServiceAccountJson, NonRsaOrShortOrEncryptedPrivateKeyIsRefused) {
  expect_invalid(validate_service_account_json(
                     with_member(service_account_object(), "private_key", material().p8.c_str())),
                 "Secret: private_key must be an RSA key");
  expect_invalid(validate_service_account_json(
                     with_member(service_account_object(), "private_key", rsa_pem(1024).c_str())),
                 "Secret: private_key is an RSA key shorter than 2048 bits");
  expect_invalid(validate_service_account_json(with_member(service_account_object(), "private_key",
                                                           encrypted_pem(material().other_rsa_key).c_str())),
                 "Secret: private_key is encrypted");
}

TEST(ServiceAccountJson, FieldNamePrefixesMessages) {
  expect_invalid(validate_service_account_json("nope", "ApiKey"), "ApiKey is not valid JSON");
  expect_invalid(
      validate_service_account_json(without_member(service_account_object(), "project_id"), "ApiKey"),
      "ApiKey: project_id is missing");
  const ApiError e = error_of(validate_service_account_json("[]", "ApiKey"));
  EXPECT_THAT(e.message, Not(HasSubstr("Secret")));
}

// --- Secrets never appear in messages ---

TEST(CredentialValidationSecrecy, MessagesNeverQuoteTheSecret) {
  const auto& m = material();
  std::vector<std::string> messages;
  auto collect = [&messages](const auto& r) {
    ASSERT_FALSE(r.has_value());
    messages.push_back(r.error().message);
  };
  collect(validate_apn_certificate_pair(m.rsa_pair.certificate_pem, m.other_rsa_key));
  collect(validate_apn_certificate_pair(m.no_uid_pair.certificate_pem, m.no_uid_pair.private_key_pem));
  collect(validate_apn_certificate_pair("SECRET-MARKER-1", m.rsa_pair.private_key_pem));
  collect(validate_apn_certificate_pair(m.rsa_pair.certificate_pem, "SECRET-MARKER-2"));
  collect(validate_apn_token_key(m.other_rsa_key, "ABC123DEFG", "TEAM123456", "com.example.app"));
  collect(validate_apn_token_key("SECRET-MARKER-3", "ABC123DEFG", "TEAM123456", "com.example.app"));
  collect(validate_service_account_json("{\"private_key\": \"SECRET-MARKER-4\""));
  collect(
      validate_service_account_json(with_member(service_account_object(), "private_key", "SECRET-MARKER-5")));
  collect(
      validate_service_account_json(with_member(service_account_object(), "token_uri", "SECRET-MARKER-6")));
  collect(validate_service_account_json(
      with_member(service_account_object(), "client_email", "SECRET-MARKER-7")));
  collect(validate_service_account_json(with_member(service_account_object(), "private_key", m.p8.c_str())));
  collect(validate_service_account_json(with_member(service_account_object(), "type", "SECRET-MARKER-8")));

  std::vector<std::string> secrets = {"SECRET-MARKER", "BEGIN", "PRIVATE KEY"};
  for (const std::string* pem : {&m.other_rsa_key, &m.rsa_pair.private_key_pem, &m.rsa_pair.certificate_pem,
                                 &m.no_uid_pair.private_key_pem, &m.p8}) {
    for (std::string& line : pem_body_lines(*pem)) secrets.push_back(std::move(line));
  }
  for (const std::string& message : messages) {
    for (const std::string& secret : secrets) EXPECT_THAT(message, Not(HasSubstr(secret)));
  }
}

}  // namespace
}  // namespace notifyd
