#pragma once
// Validation of push credentials' secret material with OpenSSL 3. Pure functions; any thread.
// Fails with an ApiError (400, code 20001) whose message says what is wrong and never echoes the secret.
#include <string>
#include <string_view>

#include "daemon/model/api_error.hpp"

namespace notifyd {

// APNs certificate auth: `certificate_pem` holds an X.509 certificate (first PEM block used) and
// `private_key_pem` its private key (PKCS#1 or PKCS#8, RSA or EC). The key must match the certificate.
// Returns the APNs topic: the certificate subject's UID (OID 0.9.2342.19200300.100.1.1); a certificate
// without UID is refused. Also refused: unparsable PEM, an encrypted key (no passphrase can be given), a key
// that is neither RSA (>= 2048 bits) nor EC. An expired certificate is accepted (logged later).
Result<std::string> validate_apn_certificate_pair(std::string_view certificate_pem,
                                                  std::string_view private_key_pem);

// APNs token auth (notifyd extension): `p8_pem` is Apple's .p8 key (PKCS#8 EC P-256),
// key_id and team_id are 10 characters of [A-Z0-9], topic is a bundle id (non-empty, no spaces).
// The SEC1 encoding ("EC PRIVATE KEY") of a P-256 key is accepted too: it is the same key.
Status validate_apn_token_key(std::string_view p8_pem, std::string_view key_id, std::string_view team_id,
                              std::string_view topic);

struct ServiceAccount {
  std::string project_id;
  std::string client_email;
  std::string private_key;  // PEM, RSA
  std::string token_uri;
};

// FCM HTTP v1: a Firebase service-account JSON object with non-empty string fields project_id, client_email
// (x@y), private_key (a parsable, unencrypted RSA private key of >= 2048 bits) and token_uri (an absolute
// http(s) URL with a host).
// `type`, when present, must be "service_account". Other fields are ignored.
// `field_name` is the API parameter that carried the JSON ("Secret" for fcm, "ApiKey" for gcm); it prefixes
// the error messages so the client is told which of its parameters is wrong.
Result<ServiceAccount> validate_service_account_json(std::string_view json,
                                                     std::string_view field_name = "Secret");

}  // namespace notifyd
