#include "tests/support/tls_test_certs.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace notifyd::test {
namespace {

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter>;
using X509Ptr = std::unique_ptr<X509, Deleter>;
using BioPtr = std::unique_ptr<BIO, Deleter>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter>;

[[noreturn]] void fail(std::string_view what) {
  std::string message = "tls_test_certs: ";
  message += what;
  if (unsigned long e = ERR_get_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    message += ": ";
    message += buf;
  }
  ERR_clear_error();
  throw std::runtime_error(message);
}

void check(bool ok, std::string_view what) {
  if (!ok) fail(what);
}

PkeyPtr make_key(TestKeyType type) {
  EVP_PKEY* key = type == TestKeyType::kEcP256 ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
  check(key != nullptr, "key generation");
  return PkeyPtr(key);
}

std::string bio_string(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string key_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(bio && PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  return bio_string(bio.get());
}

std::string cert_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(bio && PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  return bio_string(bio.get());
}

X509Ptr parse_cert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509* cert = bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  check(cert != nullptr, "PEM_read_bio_X509");
  return X509Ptr(cert);
}

PkeyPtr parse_key(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  check(key != nullptr, "PEM_read_bio_PrivateKey");
  return PkeyPtr(key);
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  check(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

struct CertSpec {
  std::vector<std::pair<std::string, std::string>> subject;
  bool ca = false;
  bool expired = false;
  const char* extended_key_usage = nullptr;  // "serverAuth", "clientAuth"
  const char* subject_alt_name = nullptr;
};

// Signs with issuer_key; issuer_cert == nullptr makes the certificate self-signed.
X509Ptr make_cert(EVP_PKEY* key, const CertSpec& spec, X509* issuer_cert, EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new());
  check(cert != nullptr, "X509_new");
  check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");

  unsigned char serial[16];
  check(RAND_bytes(serial, sizeof serial) == 1, "RAND_bytes");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  check(bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) != nullptr, "serial");
  BN_free(bn);

  const long hour = 3600, day = 24 * hour;
  check(X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.expired ? -2 * day : -hour) != nullptr,
        "notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.expired ? -day : 365 * day) != nullptr,
        "notAfter");

  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const auto& [field, value] : spec.subject) {
    check(X509_NAME_add_entry_by_txt(name, field.c_str(), MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(value.c_str()),
                                     static_cast<int>(value.size()), -1, 0) == 1,
          "X509_NAME_add_entry_by_txt");
  }
  X509* issuer = issuer_cert ? issuer_cert : cert.get();
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer)) == 1, "X509_set_issuer_name");
  check(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");

  add_ext(cert.get(), issuer, NID_basic_constraints, spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_ext(cert.get(), issuer, NID_key_usage,
          spec.ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
  add_ext(cert.get(), issuer, NID_subject_key_identifier, "hash");
  if (issuer_cert) add_ext(cert.get(), issuer, NID_authority_key_identifier, "keyid:always");
  if (spec.extended_key_usage) add_ext(cert.get(), issuer, NID_ext_key_usage, spec.extended_key_usage);
  if (spec.subject_alt_name) add_ext(cert.get(), issuer, NID_subject_alt_name, spec.subject_alt_name);

  check(X509_sign(cert.get(), issuer_key, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

}  // namespace

TestPki make_test_pki() {
  TestPki pki;
  PkeyPtr ca_key = make_key(TestKeyType::kEcP256);
  CertSpec ca_spec;
  ca_spec.subject = {{"O", "notifyd tests"}, {"CN", "notifyd test CA"}};
  ca_spec.ca = true;
  X509Ptr ca_cert = make_cert(ca_key.get(), ca_spec, nullptr, ca_key.get());
  pki.ca = {cert_pem(ca_cert.get()), key_pem(ca_key.get())};

  PkeyPtr server_key = make_key(TestKeyType::kEcP256);
  CertSpec server_spec;
  server_spec.subject = {{"O", "notifyd tests"}, {"CN", "localhost"}};
  server_spec.extended_key_usage = "serverAuth";
  server_spec.subject_alt_name = "IP:127.0.0.1,DNS:localhost";
  X509Ptr server_cert = make_cert(server_key.get(), server_spec, ca_cert.get(), ca_key.get());
  pki.server = {cert_pem(server_cert.get()), key_pem(server_key.get())};
  return pki;
}

const TestPki& shared_test_pki() {
  static const TestPki pki = make_test_pki();  // thread-safe static initialisation
  return pki;
}

PemCertKey make_client_cert(const PemCertKey& issuer, const ClientCertOptions& options) {
  X509Ptr issuer_cert = parse_cert(issuer.certificate_pem);
  PkeyPtr issuer_key = parse_key(issuer.private_key_pem);
  PkeyPtr key = make_key(options.key_type);
  CertSpec spec;
  if (!options.topic_uid.empty()) spec.subject.emplace_back("UID", options.topic_uid);
  std::string cn = options.common_name;
  if (cn.empty()) cn = "Apple Push Services: " + options.topic_uid;
  spec.subject.emplace_back("CN", cn);
  for (const auto& pair : options.extra_subject) spec.subject.push_back(pair);
  spec.expired = options.expired;
  spec.extended_key_usage = "clientAuth";
  X509Ptr cert = make_cert(key.get(), spec, issuer_cert.get(), issuer_key.get());
  return {cert_pem(cert.get()), key_pem(key.get())};
}

PemCertKey make_client_cert(std::string_view topic_uid) {
  ClientCertOptions options;
  options.topic_uid = std::string(topic_uid);
  return make_client_cert(shared_test_pki().ca, options);
}

TempFile::TempFile(std::string_view contents, std::string_view suffix) {
  static std::atomic<unsigned> counter{0};
  path_ = std::filesystem::temp_directory_path() / ("notifyd-test-" + std::to_string(::getpid()) + "-" +
                                                    std::to_string(counter++) + std::string(suffix));
  std::ofstream out(path_, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  if (!out) throw std::runtime_error("tls_test_certs: cannot write " + path_.string());
}

TempFile::~TempFile() {
  if (!path_.empty()) {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
}

TempFile::TempFile(TempFile&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }

TempFile& TempFile::operator=(TempFile&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove(path_, ec);
    }
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

TempFile write_ca_file(const TestPki& pki) { return TempFile(pki.ca.certificate_pem, ".pem"); }

}  // namespace notifyd::test
