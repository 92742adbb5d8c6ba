#include "tests/support/test_credentials.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <boost/json.hpp>
#include <memory>
#include <stdexcept>

#include "daemon/model/sid.hpp"

namespace notifyd::test {
namespace {

struct BioDeleter {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct X509Deleter {
  void operator()(X509* p) const { X509_free(p); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BnDeleter {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;

// Clears the error queue so a failure here does not leak into the code under test.
[[noreturn]] void fail(const char* what) {
  ERR_clear_error();
  throw std::runtime_error(std::string("test_credentials: ") + what);
}

void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

std::string drain(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  check(len >= 0 && data != nullptr, "BIO_get_mem_data");
  return std::string(data, static_cast<std::size_t>(len));
}

PkeyPtr generate_key(KeyType type) {
  PkeyPtr key(type == KeyType::kRsa2048 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256"));
  check(key != nullptr, "key generation");
  return key;
}

std::string private_key_to_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(bio != nullptr, "BIO_new");
  // PEM_write_bio_PrivateKey writes unencrypted PKCS#8.
  check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  return drain(bio.get());
}

PkeyPtr pem_to_private_key(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  check(bio != nullptr, "BIO_new_mem_buf");
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  check(key != nullptr, "PEM_read_bio_PrivateKey");
  return key;
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  check(RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) == 1, "RAND_bytes");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

}  // namespace

ApnCertPair make_cert_pair(const std::vector<std::pair<std::string, std::string>>& subject, bool expired,
                           KeyType key_type) {
  PkeyPtr key = generate_key(key_type);
  X509Ptr cert(X509_new());
  check(cert != nullptr, "X509_new");
  check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");

  // A random positive serial, as a CA would issue (RFC 5280: at most 20 octets).
  BnPtr serial(BN_new());
  check(serial != nullptr && BN_rand(serial.get(), 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1, "BN_rand");
  check(BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr, "serial");

  constexpr long kDay = 24L * 60 * 60;
  const long not_before = expired ? -2 * kDay : -60L * 60;
  const long not_after = expired ? -kDay : 365 * kDay;
  check(X509_gmtime_adj(X509_getm_notBefore(cert.get()), not_before) != nullptr, "notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(cert.get()), not_after) != nullptr, "notAfter");

  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const auto& [field, value] : subject) {
    check(X509_NAME_add_entry_by_txt(name, field.c_str(), MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(value.data()),
                                     static_cast<int>(value.size()), -1, 0) == 1,
          "X509_NAME_add_entry_by_txt");
  }
  check(X509_set_issuer_name(cert.get(), name) == 1, "X509_set_issuer_name");
  check(X509_set_pubkey(cert.get(), key.get()) == 1, "X509_set_pubkey");
  check(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "X509_sign");

  BioPtr bio(BIO_new(BIO_s_mem()));
  check(bio != nullptr, "BIO_new");
  check(PEM_write_bio_X509(bio.get(), cert.get()) == 1, "PEM_write_bio_X509");
  return {drain(bio.get()), private_key_to_pem(key.get())};
}

ApnCertPair make_apn_cert_pair(std::string topic_uid, bool expired, KeyType key_type) {
  // Apple's certificates list UID before CN; the order does not matter to the validator.
  return make_cert_pair({{"UID", topic_uid}, {"CN", "Apple Push Services: " + topic_uid}}, expired, key_type);
}

std::string make_p8_key() {
  PkeyPtr key = generate_key(KeyType::kEcP256);
  return private_key_to_pem(key.get());
}

std::string make_rsa_key_pem() {
  PkeyPtr key = generate_key(KeyType::kRsa2048);
  return private_key_to_pem(key.get());
}

std::string to_traditional_pem(const std::string& private_key_pem) {
  PkeyPtr key = pem_to_private_key(private_key_pem);
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(bio != nullptr, "BIO_new");
  check(
      PEM_write_bio_PrivateKey_traditional(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1,
      "PEM_write_bio_PrivateKey_traditional");
  return drain(bio.get());
}

std::string make_service_account_json(std::string project_id, std::string token_uri) {
  const std::string email = "notifyd-test@" + project_id + ".iam.gserviceaccount.com";
  boost::json::object obj;
  obj["type"] = "service_account";
  obj["project_id"] = project_id;
  obj["private_key_id"] = random_hex(20);
  obj["private_key"] = make_rsa_key_pem();
  obj["client_email"] = email;
  obj["client_id"] = "100000000000000000001";
  obj["auth_uri"] = "https://accounts.google.com/o/oauth2/auth";
  obj["token_uri"] = token_uri;
  obj["auth_provider_x509_cert_url"] = "https://www.googleapis.com/oauth2/v1/certs";
  // Google percent-encodes the '@' of the address in this URL.
  obj["client_x509_cert_url"] = "https://www.googleapis.com/robot/v1/metadata/x509/notifyd-test%40" +
                                project_id + ".iam.gserviceaccount.com";
  obj["universe_domain"] = "googleapis.com";
  return boost::json::serialize(obj);
}

std::shared_ptr<CredentialRecord> make_apn_token_credential() {
  auto c = std::make_shared<CredentialRecord>();
  c->sid = make_sid("CR");
  c->type = "apn";
  c->private_key = make_p8_key();
  c->apn_key_id = "KEYID12345";
  c->apn_team_id = "TEAMID1234";
  c->apn_topic = "com.example.token";
  c->date_updated = 1;
  return c;
}

}  // namespace notifyd::test
