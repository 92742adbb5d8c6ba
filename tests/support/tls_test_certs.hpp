#pragma once
// A throwaway PKI for tests, made at run time with OpenSSL (no files in the tree): a self-signed test CA, a
// server certificate for 127.0.0.1 (IP SAN) and localhost (DNS SAN), and client certificates signed by the CA
// (APNs-shaped: subject UID = topic). Plain functions, thread-safe; OpenSSL failures throw
// std::runtime_error.
#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace notifyd::test {

struct PemCertKey {
  std::string certificate_pem{};  // "-----BEGIN CERTIFICATE-----"
  std::string private_key_pem{};  // PKCS#8 "-----BEGIN PRIVATE KEY-----"
};

enum class TestKeyType { kEcP256, kRsa2048 };

struct TestPki {
  PemCertKey ca{};      // self-signed, CA:TRUE; trust ca.certificate_pem (ca_file) to verify the server
  PemCertKey server{};  // CN=localhost, SAN IP:127.0.0.1 + DNS:localhost, serverAuth, signed by `ca`
};

// A fresh CA and server certificate (EC P-256 keys: a few milliseconds).
TestPki make_test_pki();

// One process-wide PKI, made on first use (thread-safe). The fakes use it unless told otherwise.
const TestPki& shared_test_pki();

struct ClientCertOptions {
  std::string topic_uid{};    // subject UID (APNs topic, e.g. "com.example.app"); omitted when empty
  std::string common_name{};  // subject CN; "Apple Push Services: <topic_uid>" when empty
  std::vector<std::pair<std::string, std::string>>
      extra_subject{};  // more (short name, value) pairs, e.g. {"OU", "T"}
  TestKeyType key_type = TestKeyType::kEcP256;
  bool expired = false;  // valid from 2 days ago to 1 day ago (else from 1 hour ago for a year)
};

// A client certificate (clientAuth) signed by `issuer` (normally pki.ca).
PemCertKey make_client_cert(const PemCertKey& issuer, const ClientCertOptions& options);
// Shorthand: an APNs-shaped client certificate for `topic_uid` signed by shared_test_pki().ca.
PemCertKey make_client_cert(std::string_view topic_uid);

// A temporary file that is removed when the object dies. Move-only.
class TempFile {
 public:
  TempFile() = default;
  explicit TempFile(std::string_view contents, std::string_view suffix = ".pem");
  ~TempFile();
  TempFile(TempFile&& other) noexcept;
  TempFile& operator=(TempFile&& other) noexcept;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string string() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// The CA certificate PEM of `pki` in a temp file: the value for ca_file options.
TempFile write_ca_file(const TestPki& pki = shared_test_pki());

}  // namespace notifyd::test
