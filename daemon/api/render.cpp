#include "daemon/api/render.hpp"

#include <boost/json.hpp>

#include "daemon/api/paging.hpp"
#include "daemon/model/time.hpp"

namespace notifyd::api {
namespace {

boost::json::value optional_string(const std::optional<std::string>& s) {
  if (s) return boost::json::value(*s);
  return nullptr;
}

}  // namespace

boost::json::object render_error(const ApiError& error) {
  boost::json::object o;
  o["code"] = error.code;
  o["message"] = error.message;
  o["more_info"] = "https://www.twilio.com/docs/errors/" + std::to_string(error.code);
  o["status"] = error.status;
  return o;
}

boost::json::object render_credential(const CredentialRecord& r, std::string_view public_url) {
  boost::json::object o;
  o["sid"] = r.sid;
  o["account_sid"] = r.account_sid;
  o["friendly_name"] = optional_string(r.friendly_name);
  o["type"] = r.type;
  o["sandbox"] = r.sandbox ? "true" : "false";
  o["date_created"] = format_iso8601(r.date_created);
  o["date_updated"] = format_iso8601(r.date_updated);
  o["url"] = std::string(public_url) + "/v1/Credentials/" + r.sid;
  return o;
}

boost::json::object render_service(const ServiceRecord& r, std::string_view public_url) {
  std::string url = std::string(public_url) + "/v1/Services/" + r.sid;
  boost::json::object o;
  o["sid"] = r.sid;
  o["account_sid"] = r.account_sid;
  o["friendly_name"] = optional_string(r.friendly_name);
  o["date_created"] = format_iso8601(r.date_created);
  o["date_updated"] = format_iso8601(r.date_updated);
  o["apn_credential_sid"] = optional_string(r.apn_credential_sid);
  o["gcm_credential_sid"] = optional_string(r.gcm_credential_sid);
  o["fcm_credential_sid"] = optional_string(r.fcm_credential_sid);
  o["messaging_service_sid"] = optional_string(r.messaging_service_sid);
  o["facebook_messenger_page_id"] = optional_string(r.facebook_messenger_page_id);
  o["default_apn_notification_protocol_version"] = r.default_apn_notification_protocol_version;
  o["default_gcm_notification_protocol_version"] = r.default_gcm_notification_protocol_version;
  o["default_fcm_notification_protocol_version"] = r.default_fcm_notification_protocol_version;
  o["log_enabled"] = r.log_enabled;
  o["url"] = url;
  o["links"] = boost::json::object{{"bindings", url + "/Bindings"},
                                   {"notifications", url + "/Notifications"},
                                   {"segments", url + "/Segments"},
                                   {"users", url + "/Users"}};
  o["alexa_skill_id"] = optional_string(r.alexa_skill_id);
  o["default_alexa_notification_protocol_version"] = r.default_alexa_notification_protocol_version;
  o["delivery_callback_url"] = optional_string(r.delivery_callback_url);
  o["delivery_callback_enabled"] = r.delivery_callback_enabled;
  return o;
}

boost::json::object render_binding(const BindingRecord& r, std::string_view public_url) {
  std::string service_url = std::string(public_url) + "/v1/Services/" + r.service_sid;
  boost::json::object o;
  o["sid"] = r.sid;
  o["account_sid"] = r.account_sid;
  o["service_sid"] = r.service_sid;
  o["credential_sid"] = optional_string(r.credential_sid);
  o["date_created"] = format_iso8601(r.date_created);
  o["date_updated"] = format_iso8601(r.date_updated);
  o["notification_protocol_version"] = r.notification_protocol_version;
  o["endpoint"] = optional_string(r.endpoint);
  o["identity"] = r.identity;
  o["binding_type"] = r.binding_type;
  o["address"] = r.address;
  boost::json::array tags;
  for (const auto& t : r.tags) tags.emplace_back(t);
  o["tags"] = std::move(tags);
  o["url"] = service_url + "/Bindings/" + r.sid;
  o["links"] = boost::json::object{{"user", service_url + "/Users/" + encode_query_component(r.identity)}};
  return o;
}

boost::json::object render_conversations_binding(const BindingRecord& r, std::string_view public_url) {
  boost::json::object o;
  o["sid"] = r.sid;
  o["account_sid"] = r.account_sid;
  o["chat_service_sid"] = r.service_sid;
  o["credential_sid"] = optional_string(r.credential_sid);
  o["date_created"] = format_iso8601(r.date_created);
  o["date_updated"] = format_iso8601(r.date_updated);
  o["endpoint"] = optional_string(r.endpoint);
  o["identity"] = r.identity;
  o["binding_type"] = r.binding_type;
  // Decision (DESIGN.md): every binding receives all three Conversations message types.
  o["message_types"] =
      boost::json::array{"new_message", "added_to_conversation", "removed_from_conversation"};
  o["url"] = std::string(public_url) + "/conversations/v1/Services/" + r.service_sid + "/Bindings/" + r.sid;
  return o;
}

}  // namespace notifyd::api
