#pragma once
// Per-channel payloads: turns one accepted notification into what one binding's transport sends
// (DESIGN.md "Payloads"). Pure functions of their arguments; any thread.
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/fanout/notification.hpp"
#include "daemon/model/records.hpp"
#include "transports/transport.hpp"

namespace notifyd::fanout {

// The binding as far as the payload depends on it.
struct PayloadTarget {
  std::string binding_type;      // apn gcm fcm sms facebook-messenger alexa
  std::string address;           // not used for the payload; carried for the caller's convenience
  std::string protocol_version;  // the binding's NotificationProtocolVersion; empty = the Service default
};

// The notification protocol versions notifyd can build payloads for ("3" and "4"). The API should refuse
// others at create (DESIGN.md: 400), so build_delivery() failing on them means an old or corrupt row.
bool is_supported_protocol_version(std::string_view version);

// Fills the channel part of `out` (APNs: body and apns_* headers except apns_id and apns_collapse_id;
// FCM/GCM: body = the HTTP v1 `message` without `token`; SMS: sms_*, messaging_service_sid) and returns
// nullopt, or returns why this notification cannot go to this channel, leaving `out` unspecified.
// A reason is a Twilio error code where Twilio has one ("52182": the Service has no MessagingServiceSid;
// "21619": an SMS with neither body nor media), otherwise a short English sentence. facebook-messenger
// and alexa build nothing and succeed: their transport reports the channel as unsupported.
//
// Ttl counts from acceptance, not from this attempt: pass the notification's `expires_at` (date_created +
// Ttl) so that a retry keeps the original apns-expiration and sends FCM only the remaining android.ttl.
// Without it, the notification is taken as accepted `now_epoch_seconds` (first attempt, tests).
std::optional<std::string> build_delivery(
    const NotificationRequest& n, const PayloadTarget& t, const ServiceRecord& service,
    std::int64_t now_epoch_seconds, transport::Delivery& out,
    std::optional<std::int64_t> expires_at_epoch_seconds = std::nullopt);

// Merges `overlay` into `base`: where both hold an object under a key the objects merge recursively; any
// other value of `overlay` replaces (or adds) the key in `base`. Arrays are replaced, not concatenated.
void deep_merge(boost::json::object& base, const boost::json::object& overlay);

}  // namespace notifyd::fanout
