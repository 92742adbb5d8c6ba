#include "daemon/fanout/notification.hpp"

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <stdexcept>
#include <utility>

#include "daemon/model/time.hpp"

namespace notifyd::fanout {
namespace {

namespace json = boost::json;

json::array to_array(const std::vector<std::string>& items) {
  json::array a;
  a.reserve(items.size());
  for (const auto& s : items) a.emplace_back(s);
  return a;
}

json::value or_null(const std::optional<std::string>& v) {
  if (v) return json::value(*v);
  return nullptr;
}

json::value or_null(const std::optional<json::object>& v) {
  if (v) return json::value(*v);
  return nullptr;
}

[[noreturn]] void wrong_type(std::string_view key, std::string_view expected) {
  throw std::invalid_argument("notification JSON: \"" + std::string(key) + "\" is not " +
                              std::string(expected));
}

// Absent and null are the same to the reader: both mean "the default".
const json::value* find(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return (v && !v->is_null()) ? v : nullptr;
}

std::vector<std::string> read_strings(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  const json::value* v = find(o, key);
  if (!v) return out;
  if (!v->is_array()) wrong_type(key, "an array of strings");
  out.reserve(v->as_array().size());
  for (const auto& item : v->as_array()) {
    if (!item.is_string()) wrong_type(key, "an array of strings");
    out.emplace_back(item.as_string());
  }
  return out;
}

std::optional<std::string> read_string(const json::object& o, std::string_view key) {
  const json::value* v = find(o, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) wrong_type(key, "a string");
  return std::string(v->as_string());
}

std::optional<json::object> read_object(const json::object& o, std::string_view key) {
  const json::value* v = find(o, key);
  if (!v) return std::nullopt;
  if (!v->is_object()) wrong_type(key, "an object");
  return v->as_object();
}

}  // namespace

json::object to_json(const NotificationRequest& n) {
  json::object o;
  o["identities"] = to_array(n.identities);
  o["tags"] = to_array(n.tags);
  o["segments"] = to_array(n.segments);
  json::array to_bindings;
  to_bindings.reserve(n.to_bindings.size());
  for (const auto& t : n.to_bindings) {
    to_bindings.emplace_back(json::object{{"binding_type", t.binding_type}, {"address", t.address}});
  }
  o["to_bindings"] = std::move(to_bindings);
  o["priority"] = n.priority;
  o["ttl"] = n.ttl;
  const std::pair<const char*, const std::optional<std::string>*> strings[] = {
      {"body", &n.body},
      {"title", &n.title},
      {"sound", &n.sound},
      {"action", &n.action},
      {"delivery_callback_url", &n.delivery_callback_url}};
  for (const auto& [key, value] : strings) {
    if (*value) o[key] = **value;
  }
  const std::pair<const char*, const std::optional<json::object>*> objects[] = {
      {"data", &n.data},  {"apn", &n.apn}, {"fcm", &n.fcm},
      {"gcm", &n.gcm},    {"sms", &n.sms}, {"facebook_messenger", &n.facebook_messenger},
      {"alexa", &n.alexa}};
  for (const auto& [key, value] : objects) {
    if (*value) o[key] = **value;
  }
  return o;
}

NotificationRequest notification_from_json(const json::object& o) {
  NotificationRequest n;
  n.identities = read_strings(o, "identities");
  n.tags = read_strings(o, "tags");
  n.segments = read_strings(o, "segments");
  if (const json::value* v = find(o, "to_bindings")) {
    if (!v->is_array()) wrong_type("to_bindings", "an array");
    n.to_bindings.reserve(v->as_array().size());
    for (const auto& item : v->as_array()) {
      if (!item.is_object()) wrong_type("to_bindings", "an array of objects");
      DirectTarget t;
      t.binding_type = read_string(item.as_object(), "binding_type").value_or("");
      t.address = read_string(item.as_object(), "address").value_or("");
      n.to_bindings.push_back(std::move(t));
    }
  }
  if (auto p = read_string(o, "priority")) n.priority = std::move(*p);
  if (const json::value* v = find(o, "ttl")) {
    if (!v->is_int64() && !v->is_uint64()) wrong_type("ttl", "an integer");
    n.ttl = v->to_number<std::int64_t>();
  }
  n.body = read_string(o, "body");
  n.title = read_string(o, "title");
  n.sound = read_string(o, "sound");
  n.action = read_string(o, "action");
  n.delivery_callback_url = read_string(o, "delivery_callback_url");
  n.data = read_object(o, "data");
  n.apn = read_object(o, "apn");
  n.fcm = read_object(o, "fcm");
  n.gcm = read_object(o, "gcm");
  n.sms = read_object(o, "sms");
  n.facebook_messenger = read_object(o, "facebook_messenger");
  n.alexa = read_object(o, "alexa");
  return n;
}

json::object render_notification(const NotificationRequest& n, std::string_view sid,
                                 std::string_view account_sid, std::string_view service_sid,
                                 std::int64_t date_created) {
  // Insertion order follows the spec's schema so the body reads like Twilio's example.
  json::object o;
  o["sid"] = sid;
  o["account_sid"] = account_sid;
  o["service_sid"] = service_sid;
  o["date_created"] = format_iso8601(date_created);
  o["identities"] = to_array(n.identities);
  o["tags"] = to_array(n.tags);
  o["segments"] = to_array(n.segments);
  o["priority"] = n.priority;
  o["ttl"] = n.ttl;
  o["title"] = or_null(n.title);
  o["body"] = or_null(n.body);
  o["sound"] = or_null(n.sound);
  o["action"] = or_null(n.action);
  o["data"] = or_null(n.data);
  o["apn"] = or_null(n.apn);
  o["gcm"] = or_null(n.gcm);
  o["fcm"] = or_null(n.fcm);
  o["sms"] = or_null(n.sms);
  o["facebook_messenger"] = or_null(n.facebook_messenger);
  o["alexa"] = or_null(n.alexa);
  return o;
}

}  // namespace notifyd::fanout
