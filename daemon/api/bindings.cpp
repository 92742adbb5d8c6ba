// /v1/Services/{IS}/Bindings[/{BS}]: the devices and phones of a service. No update: a binding with the
// same Address replaces the old one under a new SID; an Identity keeps at most 20 (the oldest goes).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/api/bindings_common.hpp"
#include "daemon/api/paging.hpp"
#include "daemon/api/render.hpp"
#include "daemon/api/resource.hpp"
#include "daemon/model/log.hpp"
#include "daemon/model/sid.hpp"
#include "daemon/model/time.hpp"

namespace notifyd::api {
namespace {

constexpr std::size_t kMaxTags = 20;
constexpr std::size_t kMaxTagLength = 64;
constexpr std::size_t kMaxIdentityLength = 256;
constexpr std::size_t kMaxAddressLength = 4096;
constexpr std::size_t kMaxListTags = 5;

auto api_log() { return module_logger("api"); }

}  // namespace

bool is_binding_type(std::string_view t) {
  for (auto known : {"apn", "gcm", "sms", "fcm", "facebook-messenger", "alexa"}) {
    if (t == known) return true;
  }
  return false;
}

bool has_control_chars(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

Status validate_address(std::string_view type, std::string_view address) {
  if (address.size() > kMaxAddressLength || has_control_chars(address)) {
    return invalid_parameter("Address is not a valid " + std::string(type) + " address");
  }
  if (type == "apn") {
    // APNs device tokens are hex strings (64 digits today; Apple reserves the right to lengthen them).
    bool hex = address.size() >= 64 && address.size() <= 200 && address.size() % 2 == 0 &&
               std::all_of(address.begin(), address.end(),
                           [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
    if (!hex)
      return invalid_parameter("Address must be an APNs device token (hexadecimal, at least 64 digits)");
  } else if (type == "sms") {
    bool e164 = address.size() >= 3 && address.size() <= 16 && address[0] == '+' && address[1] >= '1' &&
                address[1] <= '9' &&
                std::all_of(address.begin() + 1, address.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!e164)
      return invalid_parameter("Address must be a phone number in E.164 format, such as +14155551234");
  } else if (address.find(' ') != std::string_view::npos) {
    return invalid_parameter("Address must not contain spaces");
  }
  return {};
}

// The service default for a binding type, where the Service has one.
std::string default_protocol_version(const ServiceRecord& s, std::string_view type) {
  if (type == "apn") return s.default_apn_notification_protocol_version;
  if (type == "gcm") return s.default_gcm_notification_protocol_version;
  if (type == "fcm") return s.default_fcm_notification_protocol_version;
  if (type == "alexa") return s.default_alexa_notification_protocol_version;
  return "3";
}

Result<ResourceResponse> create_binding(Store& store, const ResourceRequest& request) {
  const auto& form = request.form;
  if (auto st = form.check_known({"Identity", "BindingType", "Address", "Tag", "NotificationProtocolVersion",
                                  "CredentialSid", "Endpoint"});
      !st) {
    return st.error();
  }
  const std::string& service_sid = request.params.at(0);
  auto service = store.find_service(request.account_sid, service_sid);
  if (!service) return service.error();

  BindingRecord b;
  auto identity = required_param(form, "Identity");
  if (!identity) return identity.error();
  if (identity->size() > kMaxIdentityLength || has_control_chars(*identity)) {
    return invalid_parameter("Identity must be at most 256 printable characters");
  }
  auto type = required_param(form, "BindingType");
  if (!type) return type.error();
  if (!is_binding_type(*type)) {
    return invalid_parameter("BindingType must be one of apn, gcm, sms, fcm, facebook-messenger, alexa");
  }
  auto address = required_param(form, "Address");
  if (!address) return address.error();
  if (auto st = validate_address(*type, *address); !st) return st.error();

  b.tags = form.get_all("Tag");
  if (b.tags.size() > kMaxTags) return invalid_parameter("Tag can be given at most 20 times");
  for (const auto& t : b.tags) {
    if (t.empty() || t.size() > kMaxTagLength || has_control_chars(t)) {
      return invalid_parameter("Each Tag must be 1 to 64 printable characters");
    }
  }
  std::sort(b.tags.begin(), b.tags.end());
  b.tags.erase(std::unique(b.tags.begin(), b.tags.end()), b.tags.end());

  if (auto v = form.get("NotificationProtocolVersion")) {
    if (*v != "3" && *v != "4") return invalid_parameter("NotificationProtocolVersion must be 3 or 4");
    b.notification_protocol_version = *v;
  } else {
    b.notification_protocol_version = default_protocol_version(*service, *type);
  }

  if (auto v = form.get("CredentialSid"); v && !v->empty()) {
    if (!is_sid(*v, "CR")) return invalid_parameter("CredentialSid must match ^CR[0-9a-fA-F]{32}$");
    if (*type != "apn" && *type != "gcm" && *type != "fcm") {
      return invalid_parameter("CredentialSid does not apply to " + *type + " bindings");
    }
    auto credential = store.find_credential(request.account_sid, *v);
    if (!credential) {
      if (credential.error().status != 404) return credential.error();
      return ApiError{400, codes::kCredentialNotFound, "Credential " + *v + " not found"};
    }
    if (credential->type != *type) {
      return ApiError{400, codes::kCredentialWrongType,
                      "Credential " + *v + " has type " + credential->type + ", not " + *type};
    }
    b.credential_sid = *v;
  }
  if (auto v = form.get("Endpoint"); v && !v->empty()) {
    if (v->size() > 256) return invalid_parameter("Endpoint is longer than 256 characters");
    b.endpoint = *v;
  }

  b.sid = make_sid("BS");
  b.account_sid = request.account_sid;
  b.service_sid = service_sid;
  b.identity = *identity;
  b.binding_type = *type;
  b.address = *address;
  b.date_created = b.date_updated = now_seconds();

  auto inserted = store.insert_binding(std::move(b));
  if (!inserted) return inserted.error();
  const auto& created = inserted->binding;
  if (inserted->replaced_sid) {
    api_log()->info("[{}][{}] binding replaces {} (same address)", service_sid, created.sid,
                    *inserted->replaced_sid);
  }
  for (const auto& evicted : inserted->evicted_sids) {
    api_log()->info("[{}][{}] binding {} removed: identity has more than 20 bindings", service_sid,
                    created.sid, evicted);
  }
  return json_response(201, render_binding(created, request.public_url));
}

Result<ResourceResponse> list_bindings(Store& store, const ResourceRequest& request) {
  const auto& query = request.query;
  auto q = parse_list_query(query, 1000);
  if (!q) return q.error();
  BindingFilter filter;
  ListLinks links{request.public_url + request.path, {}, "bindings"};
  filter.identities = query.get_all("Identity");
  filter.tags = query.get_all("Tag");
  if (filter.tags.size() > kMaxListTags) return invalid_parameter("Tag can be given at most 5 times");
  for (const auto& v : filter.identities) links.filters.emplace_back("Identity", v);
  for (const auto& v : filter.tags) links.filters.emplace_back("Tag", v);
  if (auto v = query.get("StartDate")) {
    auto d = parse_date(*v);
    if (!d) return invalid_parameter("StartDate must be a date in YYYY-MM-DD format");
    filter.created_from = *d;
    links.filters.emplace_back("StartDate", *v);
  }
  if (auto v = query.get("EndDate")) {
    auto d = parse_date(*v);
    if (!d) return invalid_parameter("EndDate must be a date in YYYY-MM-DD format");
    filter.created_before = *d + 86400;  // inclusive of the whole end day
    links.filters.emplace_back("EndDate", *v);
  }
  return list_service_bindings(store, request, filter, *q, links, render_binding);
}

Result<ResourceResponse> fetch_binding(Store& store, const ResourceRequest& request) {
  auto r = store.find_binding(request.account_sid, request.params.at(0), request.params.at(1));
  if (!r) return r.error();
  return json_response(200, render_binding(*r, request.public_url));
}

Result<ResourceResponse> delete_binding(Store& store, const ResourceRequest& request) {
  if (auto st = store.delete_binding(request.account_sid, request.params.at(0), request.params.at(1)); !st) {
    return st.error();
  }
  api_log()->info("[{}][{}] binding deleted", request.params.at(0), request.params.at(1));
  return no_content();
}

}  // namespace notifyd::api
