#pragma once
// Freshly generated push credentials for tests: real keys and certificates made with OpenSSL in memory (no
// files), so tests exercise the same parsing the daemon does. Throw std::runtime_error if OpenSSL fails.
// Each call generates a new key (an RSA-2048 key takes tens of milliseconds); cache in a fixture if many
// tests need one. Thread-safe.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "daemon/model/records.hpp"

namespace notifyd::test {

struct ApnCertPair {
  std::string certificate_pem;  // "-----BEGIN CERTIFICATE-----"
  std::string private_key_pem;  // PKCS#8 "-----BEGIN PRIVATE KEY-----"
};

enum class KeyType { kRsa2048, kEcP256 };

// A self-signed certificate shaped like Apple's APNs certificates: subject
// CN="Apple Push Services: <topic_uid>", UID=<topic_uid>. `expired`: valid from 2 days ago to 1 day ago;
// otherwise from 1 hour ago for a year.
ApnCertPair make_apn_cert_pair(std::string topic_uid, bool expired = false,
                               KeyType key_type = KeyType::kRsa2048);

// A self-signed certificate with an arbitrary subject, given as (short name, value) pairs in order, e.g.
// {{"CN", "x"}}: for certificates that lack the UID or carry odd values.
ApnCertPair make_cert_pair(const std::vector<std::pair<std::string, std::string>>& subject,
                           bool expired = false, KeyType key_type = KeyType::kRsa2048);

// An APNs token-auth key as Apple ships it in a .p8 file: EC P-256, PKCS#8 PEM.
std::string make_p8_key();

// An RSA-2048 private key, PKCS#8 PEM (the encoding Google uses in service-account files).
std::string make_rsa_key_pem();

// The same key in OpenSSL's "traditional" encoding: PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY").
std::string to_traditional_pem(const std::string& private_key_pem);

// A Firebase service-account key file (JSON object) with every field Google writes, a fresh RSA key, and
// client_email "notifyd-test@<project_id>.iam.gserviceaccount.com".
std::string make_service_account_json(std::string project_id,
                                      std::string token_uri = "https://oauth2.googleapis.com/token");

// An apn CredentialRecord with token auth: a fresh .p8 key, ApnKeyId "KEYID12345", ApnTeamId "TEAMID1234",
// ApnTopic "com.example.token", a fresh CR sid, date_updated 1.
std::shared_ptr<CredentialRecord> make_apn_token_credential();

}  // namespace notifyd::test
