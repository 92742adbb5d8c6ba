#include "daemon/model/credential_validation.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <climits>
#include <exception>
#include <memory>
#include <string>

namespace notifyd {
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
struct OpensslStringDeleter {
  void operator()(unsigned char* p) const { OPENSSL_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using OpensslString = std::unique_ptr<unsigned char, OpensslStringDeleter>;

// OpenSSL's error queue is per thread and outlives the call that filled it. A failed parse (and sometimes a
// successful one: the PEM reader records the "no start line" it hit while scanning) leaves entries behind
// that a later, unrelated TLS call on the same thread would pick up and misreport. Cleared on every exit.
class ErrorQueueGuard {
 public:
  ErrorQueueGuard() = default;
  ErrorQueueGuard(const ErrorQueueGuard&) = delete;
  ErrorQueueGuard& operator=(const ErrorQueueGuard&) = delete;
  ~ErrorQueueGuard() { ERR_clear_error(); }
};

// A read-only BIO over the caller's bytes (no copy). Null for empty or oversized input: BIO_new_mem_buf
// takes an int length and treats a null buffer as an error.
BioPtr memory_bio(std::string_view text) {
  if (text.empty() || text.size() > static_cast<std::size_t>(INT_MAX)) return nullptr;
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Without a callback OpenSSL would prompt on the controlling terminal for an encrypted key, blocking the
// daemon. This one refuses, and records that a passphrase was asked for so the message can say so.
int refuse_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* userdata) {
  *static_cast<bool*>(userdata) = true;
  return -1;
}

struct KeyReadResult {
  PkeyPtr key;
  bool encrypted = false;
};

KeyReadResult read_private_key(std::string_view pem) {
  KeyReadResult out;
  BioPtr bio = memory_bio(pem);
  if (!bio) return out;
  // Decodes PKCS#8 ("PRIVATE KEY") and the traditional PKCS#1 / SEC1 encodings alike.
  out.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, &out.encrypted));
  return out;
}

bool is_p256(const EVP_PKEY* key) {
  char group[64] = {};
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1) {
    return false;
  }
  return std::string_view(group, len) == SN_X9_62_prime256v1;
}

// 2048 bits is what Apple issues and Google generates, and Debian's default OpenSSL security level refuses
// smaller RSA keys in TLS client authentication, so a shorter key would only fail later, at delivery.
constexpr int kMinRsaBits = 2048;

// Why the certificate key is unusable for APNs, or empty when it is fine.
std::string apn_key_problem(const EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bits(key) < kMinRsaBits) return "PrivateKey is an RSA key shorter than 2048 bits";
      return {};
    case EVP_PKEY_EC:
      return {};
    default:
      return "PrivateKey must be an RSA or EC key";
  }
}

// Bundle ids and APNs topics are printable ASCII-ish text sent in an HTTP/2 header; whitespace and control
// characters could never match an app and could corrupt the header.
bool is_valid_topic(std::string_view topic) {
  if (topic.empty()) return false;
  for (unsigned char c : topic) {
    if (c <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

bool is_apple_id(std::string_view id) {
  if (id.size() != 10) return false;
  for (char c : id) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

// The UID attribute of the certificate subject, as UTF-8; empty when absent or unreadable.
std::string subject_uid(const X509* cert) {
  const X509_NAME* subject = X509_get_subject_name(cert);
  if (subject == nullptr) return {};
  const int index = X509_NAME_get_index_by_NID(subject, NID_userId, -1);
  if (index < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  if (data == nullptr) return {};
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return {};
  OpensslString owned(utf8);
  return std::string(reinterpret_cast<const char*>(owned.get()), static_cast<std::size_t>(len));
}

// Validates one string member of the service-account object into `out`. Messages name the member, never its
// value: private_key is secret, and the others are not worth the risk of a log line quoting a pasted secret.
Status take_string(const boost::json::object& obj, std::string_view member, std::string_view field_name,
                   std::string& out) {
  const boost::json::value* v = obj.if_contains(member);
  const std::string prefix = std::string(field_name) + ": " + std::string(member);
  if (v == nullptr || v->is_null()) return invalid_parameter(prefix + " is missing");
  const boost::json::string* s = v->if_string();
  if (s == nullptr) return invalid_parameter(prefix + " must be a string");
  if (s->empty()) return invalid_parameter(prefix + " is empty");
  out.assign(s->data(), s->size());
  return {};
}

bool is_http_url(std::string_view text) {
  auto url = boost::urls::parse_absolute_uri(text);
  if (!url) return false;
  const auto scheme = url->scheme_id();
  if (scheme != boost::urls::scheme::http && scheme != boost::urls::scheme::https) return false;
  return url->has_authority() && !url->encoded_host().empty();
}

// A plausible address: something@something, no whitespace. Google's are
// <name>@<project>.iam.gserviceaccount.com, but the token endpoint is the judge; this only catches a field
// pasted into the wrong place.
bool is_email_like(std::string_view text) {
  const auto at = text.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == text.size()) return false;
  for (unsigned char c : text) {
    if (c <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

Result<ServiceAccount> parse_service_account(std::string_view json, std::string_view field_name) {
  const std::string field(field_name);
  boost::system::error_code ec;
  // Boost.JSON's defaults are strict JSON (no comments, no trailing commas) and reject invalid UTF-8.
  const boost::json::value root = boost::json::parse(json, ec);
  if (ec) return invalid_parameter(field + " is not valid JSON");
  const boost::json::object* obj = root.if_object();
  if (obj == nullptr) return invalid_parameter(field + " must be a JSON object (a service-account key file)");

  if (const boost::json::value* type = obj->if_contains("type"); type != nullptr && !type->is_null()) {
    const boost::json::string* s = type->if_string();
    if (s == nullptr || *s != "service_account") {
      return invalid_parameter(field + ": type must be \"service_account\"");
    }
  }

  ServiceAccount account;
  if (auto st = take_string(*obj, "project_id", field_name, account.project_id); !st) return st.error();
  if (auto st = take_string(*obj, "client_email", field_name, account.client_email); !st) return st.error();
  if (auto st = take_string(*obj, "private_key", field_name, account.private_key); !st) return st.error();
  if (auto st = take_string(*obj, "token_uri", field_name, account.token_uri); !st) return st.error();

  if (!is_email_like(account.client_email)) {
    return invalid_parameter(field + ": client_email is not an email address");
  }
  if (!is_http_url(account.token_uri)) {
    return invalid_parameter(field + ": token_uri must be an absolute http or https URL");
  }

  const ErrorQueueGuard clear_errors;
  KeyReadResult key = read_private_key(account.private_key);
  if (key.encrypted)
    return invalid_parameter(field + ": private_key is encrypted; it must not have a passphrase");
  if (!key.key) return invalid_parameter(field + ": private_key is not a valid PEM private key");
  if (EVP_PKEY_get_base_id(key.key.get()) != EVP_PKEY_RSA) {
    return invalid_parameter(field + ": private_key must be an RSA key (FCM signs with RS256)");
  }
  if (EVP_PKEY_get_bits(key.key.get()) < kMinRsaBits) {
    return invalid_parameter(field + ": private_key is an RSA key shorter than 2048 bits");
  }
  return account;
}

}  // namespace

Result<std::string> validate_apn_certificate_pair(std::string_view certificate_pem,
                                                  std::string_view private_key_pem) {
  const ErrorQueueGuard clear_errors;
  if (certificate_pem.empty()) return invalid_parameter("Certificate is empty");
  if (private_key_pem.empty()) return invalid_parameter("PrivateKey is empty");

  BioPtr cert_bio = memory_bio(certificate_pem);
  if (!cert_bio) return invalid_parameter("Certificate is not a valid PEM X.509 certificate");
  // The first CERTIFICATE block is the leaf; anything after it (a chain) is not needed by APNs.
  X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return invalid_parameter("Certificate is not a valid PEM X.509 certificate");

  KeyReadResult key = read_private_key(private_key_pem);
  if (key.encrypted) return invalid_parameter("PrivateKey is encrypted; it must not have a passphrase");
  if (!key.key) return invalid_parameter("PrivateKey is not a valid PEM private key");
  if (std::string problem = apn_key_problem(key.key.get()); !problem.empty()) {
    return invalid_parameter(std::move(problem));
  }
  if (X509_check_private_key(cert.get(), key.key.get()) != 1) {
    return invalid_parameter("PrivateKey does not match Certificate");
  }

  std::string topic = subject_uid(cert.get());
  if (topic.empty()) return invalid_parameter("Certificate has no UID in its subject (the APNs topic)");
  if (!is_valid_topic(topic)) {
    return invalid_parameter("Certificate subject UID is not a valid APNs topic (it contains whitespace)");
  }
  return topic;
}

Status validate_apn_token_key(std::string_view p8_pem, std::string_view key_id, std::string_view team_id,
                              std::string_view topic) {
  // The cheap checks first: they need no OpenSSL and their messages are the likelier fix.
  if (!is_apple_id(key_id)) return invalid_parameter("ApnKeyId must be 10 characters of A-Z and 0-9");
  if (!is_apple_id(team_id)) return invalid_parameter("ApnTeamId must be 10 characters of A-Z and 0-9");
  if (!is_valid_topic(topic)) {
    return invalid_parameter("ApnTopic must be a non-empty bundle id without spaces or control characters");
  }

  const ErrorQueueGuard clear_errors;
  if (p8_pem.empty()) return invalid_parameter("PrivateKey is empty");
  KeyReadResult key = read_private_key(p8_pem);
  if (key.encrypted) return invalid_parameter("PrivateKey is encrypted; it must not have a passphrase");
  if (!key.key) return invalid_parameter("PrivateKey is not a valid PEM private key (an APNs .p8 key)");
  // APNs provider tokens are ES256: only a P-256 key can sign them.
  if (EVP_PKEY_get_base_id(key.key.get()) != EVP_PKEY_EC || !is_p256(key.key.get())) {
    return invalid_parameter("PrivateKey must be an EC P-256 key (an APNs .p8 key)");
  }
  return {};
}

Result<ServiceAccount> validate_service_account_json(std::string_view json, std::string_view field_name) {
  // With the error_code overloads only allocation can throw here (bad_alloc, or Boost.JSON's length_error
  // past its size limits); callers get a value, never an exception, and that is not the client's fault.
  try {
    return parse_service_account(json, field_name);
  } catch (const std::exception&) {
    return internal_error("Could not validate " + std::string(field_name) + " (out of memory)");
  }
}

}  // namespace notifyd
