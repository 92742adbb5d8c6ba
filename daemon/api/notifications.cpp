// POST /v1/Services/{IS}/Notifications: validates the request, stores the notification (and, for direct
// ToBinding targets, its deliveries) durably, then answers 201. Delivery is asynchronous (fanout/).
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <charconv>

#include "daemon/api/bindings_common.hpp"
#include "daemon/api/resource.hpp"
#include "daemon/fanout/notification.hpp"
#include "daemon/model/log.hpp"
#include "daemon/model/sid.hpp"
#include "daemon/model/time.hpp"

namespace notifyd::api {
namespace {

constexpr std::size_t kMaxIdentities = 20;
constexpr std::size_t kMaxTags = 5;
constexpr std::size_t kMaxToBindings = 10000;
constexpr std::int64_t kMaxTtl = 2419200;

Result<std::optional<boost::json::object>> json_object_param(const FormParams& form, std::string_view name) {
  auto v = form.get(name);
  if (!v) return std::optional<boost::json::object>();
  boost::system::error_code ec;
  auto parsed = boost::json::parse(*v, ec);
  if (ec || !parsed.is_object()) return invalid_parameter(std::string(name) + " must be a JSON object");
  return std::optional<boost::json::object>(std::move(parsed.as_object()));
}

Result<std::vector<fanout::DirectTarget>> parse_to_bindings(const std::vector<std::string>& items) {
  std::vector<fanout::DirectTarget> out;
  out.reserve(items.size());
  for (const auto& item : items) {
    boost::system::error_code ec;
    auto v = boost::json::parse(item, ec);
    if (ec || !v.is_object()) {
      return invalid_parameter(
          R"(Each ToBinding must be a JSON object {"binding_type": ..., "address": ...})");
    }
    const auto& o = v.as_object();
    auto* type = o.if_contains("binding_type");
    auto* address = o.if_contains("address");
    if (!type || !type->is_string() || !address || !address->is_string()) {
      return invalid_parameter("Each ToBinding needs string binding_type and address");
    }
    fanout::DirectTarget t{std::string(type->as_string()), std::string(address->as_string())};
    if (!is_binding_type(t.binding_type))
      return invalid_parameter("ToBinding binding_type " + t.binding_type + " is not valid");
    if (auto st = validate_address(t.binding_type, t.address); !st) {
      return invalid_parameter("ToBinding: " + st.error().message);
    }
    out.push_back(std::move(t));
  }
  return out;
}

Result<fanout::NotificationRequest> parse_notification(const FormParams& form) {
  if (auto st = form.check_known({"Body", "Priority", "Ttl", "Title", "Sound", "Action", "Data", "Apn", "Gcm",
                                  "Sms", "FacebookMessenger", "Fcm", "Segment", "Alexa", "ToBinding",
                                  "DeliveryCallbackUrl", "Identity", "Tag"});
      !st) {
    return st.error();
  }
  fanout::NotificationRequest n;
  n.identities = form.get_all("Identity");
  if (n.identities.size() > kMaxIdentities)
    return invalid_parameter("Identity can be given at most 20 times");
  n.tags = form.get_all("Tag");
  if (n.tags.size() > kMaxTags) return invalid_parameter("Tag can be given at most 5 times");
  for (const auto& v : n.identities) {
    if (v.empty()) return invalid_parameter("Identity must not be empty");
  }
  for (const auto& v : n.tags) {
    if (v.empty()) return invalid_parameter("Tag must not be empty");
  }
  if (form.has("Segment"))
    return invalid_parameter("Segment is not supported: target Identity, Tag or ToBinding");
  auto to_bindings = form.get_all("ToBinding");
  if (to_bindings.size() > kMaxToBindings)
    return invalid_parameter("ToBinding can be given at most 10000 times");
  auto direct = parse_to_bindings(to_bindings);
  if (!direct) return direct.error();
  n.to_bindings = std::move(*direct);
  bool query = !n.identities.empty() || !n.tags.empty();
  if (query && !n.to_bindings.empty()) {
    return invalid_parameter("ToBinding cannot be combined with Identity or Tag");
  }
  if (!query && n.to_bindings.empty()) {
    return invalid_parameter("No recipients: give Identity, Tag or ToBinding");
  }

  n.body = form.get("Body");
  n.title = form.get("Title");
  n.sound = form.get("Sound");
  n.action = form.get("Action");
  if (auto p = form.get("Priority")) {
    if (*p != "high" && *p != "low") return invalid_parameter("Priority must be high or low");
    n.priority = *p;
  }
  if (auto t = form.get("Ttl")) {
    std::int64_t ttl = -1;
    auto [ptr, ec] = std::from_chars(t->data(), t->data() + t->size(), ttl);
    if (ec != std::errc() || ptr != t->data() + t->size() || ttl < 0 || ttl > kMaxTtl) {
      return invalid_parameter("Ttl must be an integer from 0 to 2419200");
    }
    n.ttl = ttl;
  }
  struct ObjectParam {
    std::string_view name;
    std::optional<boost::json::object>* field;
  };
  for (auto [name, field] :
       {ObjectParam{"Data", &n.data}, ObjectParam{"Apn", &n.apn}, ObjectParam{"Fcm", &n.fcm},
        ObjectParam{"Gcm", &n.gcm}, ObjectParam{"Sms", &n.sms},
        ObjectParam{"FacebookMessenger", &n.facebook_messenger}, ObjectParam{"Alexa", &n.alexa}}) {
    auto parsed = json_object_param(form, name);
    if (!parsed) return parsed.error();
    *field = std::move(*parsed);
  }
  if (n.data) {
    for (const auto& kv : *n.data) {
      if (kv.key().starts_with("twi_")) return invalid_parameter("Data keys must not start with twi_");
    }
  }
  if (auto url = form.get("DeliveryCallbackUrl")) {
    if (!is_http_url(*url)) return invalid_parameter("DeliveryCallbackUrl must be an absolute http(s) URL");
    n.delivery_callback_url = *url;
  }
  return n;
}

}  // namespace

Result<ResourceResponse> create_notification(Store& store, const ResourceRequest& request) {
  auto parsed = parse_notification(request.form);
  if (!parsed) return parsed.error();
  fanout::NotificationRequest& n = *parsed;
  auto service = store.find_service(request.account_sid, request.params.at(0));
  if (!service) return service.error();

  NotificationRecord record;
  record.sid = make_sid("NT");
  record.account_sid = request.account_sid;
  record.service_sid = service->sid;
  record.date_created = now_seconds();
  record.expires_at = record.date_created + n.ttl;
  if (n.delivery_callback_url) {
    record.callback_url = n.delivery_callback_url;
  } else if (service->delivery_callback_enabled && service->delivery_callback_url) {
    record.callback_url = service->delivery_callback_url;
  }
  record.request = boost::json::serialize(fanout::to_json(n));
  std::vector<DeliveryRecord> direct;
  direct.reserve(n.to_bindings.size());
  for (const auto& t : n.to_bindings) {
    DeliveryRecord d;
    d.target_key = t.binding_type + ":" + t.address;
    d.binding_type = t.binding_type;
    d.address = t.address;
    d.protocol_version = default_protocol_version(*service, t.binding_type);
    d.apns_id = make_uuid();
    direct.push_back(std::move(d));
  }
  record.resolved = !direct.empty();  // direct targets need no resolution
  auto stored = store.insert_notification(std::move(record), std::move(direct));
  if (!stored) return stored.error();
  module_logger("api")->info("[{}][{}] notification accepted ({} direct, {} identities, {} tags, ttl {})",
                             stored->service_sid, stored->sid, n.to_bindings.size(), n.identities.size(),
                             n.tags.size(), n.ttl);
  if (request.on_outbox_change) request.on_outbox_change();
  return json_response(201, fanout::render_notification(n, stored->sid, stored->account_sid,
                                                        stored->service_sid, stored->date_created));
}

}  // namespace notifyd::api
