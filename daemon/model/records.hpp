#pragma once
// The stored resources: what the Store keeps and api/ renders. Plain values; any thread.
// Times are UTC seconds since the epoch. `seq` is the store's insertion order, the keyset paging key.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace notifyd {

using Seconds = std::int64_t;

struct CredentialRecord {
  std::int64_t seq = 0;
  std::string sid;
  std::string account_sid;
  std::optional<std::string> friendly_name;
  std::string type;  // apn | fcm | gcm (immutable)
  bool sandbox = false;
  // Secrets: never rendered, never logged.
  std::string certificate;  // apn certificate auth: PEM certificate
  std::string private_key;  // apn: PEM key matching the certificate, or the .p8 key for token auth
  std::string secret;       // fcm Secret / gcm ApiKey: the Firebase service-account JSON
  // Derived at validation time (not secret).
  std::string apn_topic;    // certificate subject UID, or ApnTopic for token auth
  std::string apn_key_id;   // token auth only
  std::string apn_team_id;  // token auth only
  std::string fcm_project_id;
  Seconds date_created = 0;
  Seconds date_updated = 0;
};

struct ServiceRecord {
  std::int64_t seq = 0;
  std::string sid;
  std::string account_sid;
  std::optional<std::string> friendly_name;
  std::optional<std::string> apn_credential_sid;
  std::optional<std::string> gcm_credential_sid;
  std::optional<std::string> fcm_credential_sid;
  std::optional<std::string> messaging_service_sid;
  std::optional<std::string> facebook_messenger_page_id;
  std::string default_apn_notification_protocol_version = "3";
  std::string default_gcm_notification_protocol_version = "3";
  std::string default_fcm_notification_protocol_version = "3";
  std::string default_alexa_notification_protocol_version = "3";
  bool log_enabled = true;
  std::optional<std::string> alexa_skill_id;
  std::optional<std::string> delivery_callback_url;
  bool delivery_callback_enabled = false;
  Seconds date_created = 0;
  Seconds date_updated = 0;
};

struct BindingRecord {
  std::int64_t seq = 0;
  std::string sid;
  std::string account_sid;
  std::string service_sid;
  std::optional<std::string> credential_sid;
  std::string identity;
  std::string binding_type;  // apn gcm sms fcm facebook-messenger alexa
  std::string address;
  std::vector<std::string> tags;
  std::string notification_protocol_version;
  std::optional<std::string> endpoint;
  Seconds date_created = 0;
  Seconds date_updated = 0;
};

}  // namespace notifyd
