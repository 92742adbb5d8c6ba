#include "daemon/fanout/payload.hpp"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <utility>

namespace notifyd::fanout {
namespace {

namespace json = boost::json;

constexpr int kApnsPriorityHigh = 10;
constexpr int kApnsPriorityLow = 5;  // also the only priority Apple allows for background pushes

// JSON text of a value, like json::serialize() except that doubles are written as the shortest text that
// reads back to the same double ("0.5", "1e+21"), the way JavaScript and most app-side parsers print them,
// where Boost.JSON writes "5E-1". Apps read these strings (FCM data values, MaxPrice), so the form matters.
void write_json(const json::value& v, std::string& out) {
  switch (v.kind()) {
    case json::kind::double_: {
      char buf[32];
      auto r = std::to_chars(buf, buf + sizeof buf, v.get_double());
      out.append(buf, r.ptr);
      break;
    }
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write_json(item, out);
      }
      out += ']';
      break;
    }
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += json::serialize(json::string_view(kv.key()));
        out += ':';
        write_json(kv.value(), out);
      }
      out += '}';
      break;
    }
    default:  // strings, integers, booleans, null: Boost.JSON's text is already the usual one
      out += json::serialize(v);
  }
}

std::string to_json_text(const json::value& v) {
  std::string out;
  write_json(v, out);
  return out;
}

// The version this binding's payload is built with: its own, else the Service's default for its type.
std::string_view effective_version(const PayloadTarget& t, const ServiceRecord& service) {
  if (!t.protocol_version.empty()) return t.protocol_version;
  if (t.binding_type == "apn") return service.default_apn_notification_protocol_version;
  if (t.binding_type == "fcm") return service.default_fcm_notification_protocol_version;
  if (t.binding_type == "gcm") return service.default_gcm_notification_protocol_version;
  return "3";
}

std::string unsupported_version(const PayloadTarget& t, std::string_view version) {
  return "unsupported notification protocol version \"" + std::string(version) + "\" for " + t.binding_type;
}

// Apple treats a null the same as a missing key, and so do we when deciding what kind of push it is.
bool has_value(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && !v->is_null();
}

std::optional<std::string> build_apns(const NotificationRequest& n, std::string_view version,
                                      std::int64_t expires_at, transport::Delivery& out) {
  int priority = 0;
  if (n.priority == "high") {
    priority = kApnsPriorityHigh;
  } else if (n.priority == "low") {
    priority = kApnsPriorityLow;
  } else {
    return "unsupported priority \"" + n.priority + "\"";
  }

  json::object payload;
  // Data keys are custom keys beside `aps`; an `aps` in Data would clobber Apple's dictionary, and the
  // spec routes changes to `aps` through Apn, so it is left out rather than merged.
  if (n.data) {
    for (const auto& [key, value] : *n.data) {
      if (key != "aps") payload[key] = value;
    }
  }
  json::object aps;
  if (version == "3") {
    // Twilio's legacy format: the alert is the bare body string; a title has nowhere to go.
    if (n.body) aps["alert"] = *n.body;
  } else {
    json::object alert;
    if (n.title) alert["title"] = *n.title;
    if (n.body) alert["body"] = *n.body;
    if (!alert.empty()) aps["alert"] = std::move(alert);
  }
  if (n.sound) aps["sound"] = *n.sound;
  if (n.action) aps["category"] = *n.action;
  payload["aps"] = std::move(aps);

  if (n.apn) deep_merge(payload, *n.apn);
  json::value& final_aps = payload["aps"];
  if (!final_aps.is_object()) return std::string("Apn.aps must be a JSON object");
  json::object& aps_out = final_aps.as_object();

  // Nothing for the user to see or hear: Apple requires push type background, priority 5 and
  // content-available for that, and throttles or rejects a background push sent any other way.
  const bool visible =
      has_value(aps_out, "alert") || has_value(aps_out, "sound") || has_value(aps_out, "badge");
  if (visible) {
    out.apns_push_type = "alert";
  } else {
    out.apns_push_type = "background";
    priority = kApnsPriorityLow;
    if (!has_value(aps_out, "content-available")) aps_out["content-available"] = 1;
  }
  out.apns_priority = priority;
  // Ttl 0 is Twilio's "attempt once, do not store", which is exactly what apns-expiration 0 means.
  out.apns_expiration = n.ttl == 0 ? 0 : expires_at;
  out.body = json::serialize(payload);
  return std::nullopt;
}

std::optional<std::string> build_fcm(const NotificationRequest& n, const PayloadTarget& t, std::int64_t now,
                                     std::int64_t expires_at, transport::Delivery& out) {
  const char* android_priority = nullptr;
  if (n.priority == "high") {
    android_priority = "high";
  } else if (n.priority == "low") {
    android_priority = "normal";  // FCM's name for a deferrable, battery-friendly message
  } else {
    return "unsupported priority \"" + n.priority + "\"";
  }

  // A data message, so the app's own handler (Twilio's client SDK convention: twi_* keys) decides what
  // to show; a `notification` block only appears if the Fcm/Gcm object adds one.
  json::object data;
  if (n.body) data["twi_body"] = *n.body;
  if (n.title) data["twi_title"] = *n.title;
  if (n.sound) data["twi_sound"] = *n.sound;
  if (n.action) data["twi_action"] = *n.action;
  if (n.data) {
    for (const auto& [key, value] : *n.data) data[key] = value;
  }
  // android.ttl is relative to FCM's receipt, so a retry sends what is left; past the end it is "0s"
  // (now or never), and whether to attempt at all then is the dispatcher's call.
  const std::int64_t remaining = n.ttl == 0 ? 0 : std::clamp<std::int64_t>(expires_at - now, 0, n.ttl);
  json::object message;
  message["data"] = std::move(data);
  message["android"] = json::object{{"priority", android_priority}, {"ttl", std::to_string(remaining) + "s"}};

  const std::optional<json::object>& overlay = t.binding_type == "fcm" ? n.fcm : n.gcm;
  const char* overlay_name = t.binding_type == "fcm" ? "Fcm" : "Gcm";
  if (overlay) deep_merge(message, *overlay);

  // The transport addresses the message to the binding's token; another target would make FCM refuse
  // the whole message (exactly one of token, topic, condition).
  for (const char* target : {"token", "topic", "condition"}) {
    if (message.contains(target))
      return std::string(overlay_name) + " must not set the target \"" + target + "\"";
  }
  if (json::value* merged = message.if_contains("data")) {
    if (merged->is_null()) {
      message.erase("data");
    } else if (!merged->is_object()) {
      return std::string(overlay_name) + ".data must be a JSON object";
    } else {
      // FCM's data is map<string, string>: anything else (also from the overlay) is sent as its JSON text.
      for (auto& [key, value] : merged->as_object()) {
        if (!value.is_string()) value = to_json_text(value);
      }
    }
  }
  if (const json::value* android = message.if_contains("android"); android && !android->is_object()) {
    return std::string(overlay_name) + ".android must be a JSON object";
  }
  out.body = json::serialize(message);
  return std::nullopt;
}

std::optional<std::string> build_sms(const NotificationRequest& n, const ServiceRecord& service,
                                     transport::Delivery& out) {
  // Checked first: without a sender no SMS of this Service can go out, whatever the content.
  if (!service.messaging_service_sid || service.messaging_service_sid->empty()) return std::string("52182");

  std::optional<std::string> body = n.body;
  out.sms_media_urls.clear();
  out.sms_status_callback.reset();
  out.sms_max_price.reset();
  if (n.sms) {
    const json::object& sms = *n.sms;
    if (const json::value* v = sms.if_contains("body"); v && !v->is_null()) {
      if (!v->is_string()) return std::string("Sms.body must be a string");
      body = std::string(v->as_string());
    }
    if (const json::value* v = sms.if_contains("media_urls"); v && !v->is_null()) {
      if (!v->is_array()) return std::string("Sms.media_urls must be an array of strings");
      for (const auto& url : v->as_array()) {
        if (!url.is_string()) return std::string("Sms.media_urls must be an array of strings");
        out.sms_media_urls.emplace_back(url.as_string());
      }
    }
    if (const json::value* v = sms.if_contains("status_callback"); v && !v->is_null()) {
      if (!v->is_string()) return std::string("Sms.status_callback must be a string");
      out.sms_status_callback = std::string(v->as_string());
    }
    if (const json::value* v = sms.if_contains("max_price"); v && !v->is_null()) {
      // Twilio's MaxPrice is a decimal; accept it as a JSON number or string and pass its text on.
      if (v->is_string()) {
        out.sms_max_price = std::string(v->as_string());
      } else if (v->is_number()) {
        out.sms_max_price = to_json_text(*v);
      } else {
        return std::string("Sms.max_price must be a number or a string");
      }
    }
  }
  // The Messages API's own rule: a message needs a body or media (error 21619 there too).
  if ((!body || body->empty()) && out.sms_media_urls.empty()) return std::string("21619");
  out.sms_body = body.value_or("");
  out.messaging_service_sid = *service.messaging_service_sid;
  return std::nullopt;
}

}  // namespace

bool is_supported_protocol_version(std::string_view version) { return version == "3" || version == "4"; }

void deep_merge(json::object& base, const json::object& overlay) {
  for (const auto& [key, value] : overlay) {
    json::value* existing = base.if_contains(key);
    if (existing && existing->is_object() && value.is_object()) {
      deep_merge(existing->as_object(), value.as_object());
    } else {
      base[key] = value;
    }
  }
}

std::optional<std::string> build_delivery(const NotificationRequest& n, const PayloadTarget& t,
                                          const ServiceRecord& service, std::int64_t now_epoch_seconds,
                                          transport::Delivery& out,
                                          std::optional<std::int64_t> expires_at_epoch_seconds) {
  const std::string& type = t.binding_type;
  if (type == "facebook-messenger" || type == "alexa") return std::nullopt;
  if (type == "sms") return build_sms(n, service, out);  // SMS has no protocol versions to speak of
  if (type != "apn" && type != "fcm" && type != "gcm") return "unknown binding type \"" + type + "\"";

  std::string_view version = effective_version(t, service);
  if (!is_supported_protocol_version(version)) return unsupported_version(t, version);
  const std::int64_t expires_at = expires_at_epoch_seconds.value_or(now_epoch_seconds + n.ttl);
  if (type == "apn") return build_apns(n, version, expires_at, out);
  return build_fcm(n, t, now_epoch_seconds, expires_at, out);
}

}  // namespace notifyd::fanout
