#pragma once
// A notification as accepted by POST /v1/Services/{IS}/Notifications: who it is for and what it says.
// Plain values; any thread. Stored as JSON in the outbox (to_json/from_json) so it survives restarts.
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace notifyd::fanout {

struct DirectTarget {  // one ToBinding item
  std::string binding_type;
  std::string address;
};

struct NotificationRequest {
  // Targets: a query (identities any-of AND tags all-of) or direct ToBinding items, never both.
  std::vector<std::string> identities;    // ≤ 20
  std::vector<std::string> tags;          // ≤ 5
  std::vector<std::string> segments;      // accepted and echoed; notifyd has no segments
  std::vector<DirectTarget> to_bindings;  // ≤ 10,000

  // Content.
  std::optional<std::string> body;
  std::optional<std::string> title;
  std::optional<std::string> sound;
  std::optional<std::string> action;
  std::string priority = "high";            // high | low
  std::int64_t ttl = 2419200;               // seconds, 0..2419200
  std::optional<boost::json::object> data;  // any JSON values (stringified for FCM); no `twi_` keys
  std::optional<boost::json::object> apn;   // merged over the APNs payload
  std::optional<boost::json::object> fcm;   // merged over the FCM `message`
  std::optional<boost::json::object> gcm;   // merged over the FCM `message` for gcm bindings
  std::optional<boost::json::object> sms;   // {"body": ..., "media_urls": [...]}
  std::optional<boost::json::object> facebook_messenger;
  std::optional<boost::json::object> alexa;
  std::optional<std::string> delivery_callback_url;
};

// The outbox form: every field, absent optionals omitted. notification_from_json() takes missing keys as
// their defaults (so rows written before a field existed still load) and throws std::invalid_argument,
// naming the key, when a present key has the wrong JSON type (a corrupt row is a bug, not input).
boost::json::object to_json(const NotificationRequest& n);
NotificationRequest notification_from_json(const boost::json::object& o);

// The 201 body of POST /v1/Services/{IS}/Notifications, field for field the spec's
// notify.v1.service.notification: arrays are [] when empty, absent values null. Deliberately without
// to_binding and delivery_callback_url (DESIGN.md: the response does not echo them).
boost::json::object render_notification(const NotificationRequest& n, std::string_view sid,
                                        std::string_view account_sid, std::string_view service_sid,
                                        std::int64_t date_created);

}  // namespace notifyd::fanout
