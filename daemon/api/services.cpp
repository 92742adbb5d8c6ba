// /v1/Services and /v1/Services/{Sid}: Notify services. Credential SIDs given must name a credential
// of the account (52002) of the matching type (52003).
#include <spdlog/spdlog.h>

#include <array>

#include "daemon/api/paging.hpp"
#include "daemon/api/render.hpp"
#include "daemon/api/resource.hpp"
#include "daemon/model/log.hpp"
#include "daemon/model/sid.hpp"
#include "daemon/model/time.hpp"

namespace notifyd::api {
namespace {

constexpr std::array<std::string_view, 14> kServiceParams = {"FriendlyName",
                                                             "ApnCredentialSid",
                                                             "GcmCredentialSid",
                                                             "MessagingServiceSid",
                                                             "FacebookMessengerPageId",
                                                             "DefaultApnNotificationProtocolVersion",
                                                             "DefaultGcmNotificationProtocolVersion",
                                                             "FcmCredentialSid",
                                                             "DefaultFcmNotificationProtocolVersion",
                                                             "LogEnabled",
                                                             "AlexaSkillId",
                                                             "DefaultAlexaNotificationProtocolVersion",
                                                             "DeliveryCallbackUrl",
                                                             "DeliveryCallbackEnabled"};

// Checks a credential SID parameter; an empty value clears the field.
Status apply_credential_sid(Store& store, const ResourceRequest& request, std::string_view param,
                            std::string_view type, std::optional<std::string>& field) {
  auto v = request.form.get(param);
  if (!v) return {};
  if (v->empty()) {
    field.reset();
    return {};
  }
  if (!is_sid(*v, "CR")) return invalid_parameter(std::string(param) + " must match ^CR[0-9a-fA-F]{32}$");
  auto credential = store.find_credential(request.account_sid, *v);
  if (!credential) {
    if (credential.error().status != 404) return credential.error();
    return ApiError{400, codes::kCredentialNotFound, "Credential " + *v + " not found"};
  }
  if (credential->type != type) {
    return ApiError{400, codes::kCredentialWrongType,
                    "Credential " + *v + " has type " + credential->type + ", " + std::string(param) +
                        " needs a " + std::string(type) + " credential"};
  }
  field = *v;
  return {};
}

Status apply_protocol_version(const FormParams& form, std::string_view param, std::string& field) {
  auto v = form.get(param);
  if (!v) return {};
  if (*v != "3" && *v != "4") return invalid_parameter(std::string(param) + " must be 3 or 4");
  field = *v;
  return {};
}

Status apply_optional_text(const FormParams& form, std::string_view param,
                           std::optional<std::string>& field) {
  auto v = form.get(param);
  if (!v) return {};
  if (v->size() > 256) return invalid_parameter(std::string(param) + " is longer than 256 characters");
  if (v->empty()) {
    field.reset();
  } else {
    field = *v;
  }
  return {};
}

Status apply_bool(const FormParams& form, std::string_view param, bool& field) {
  auto v = form.get(param);
  if (!v) return {};
  auto b = parse_bool_param(param, *v);
  if (!b) return b.error();
  field = *b;
  return {};
}

// Everything but the credential SIDs (which need the store): pure, so it can run inside an update.
Status apply_plain_fields(const FormParams& form, ServiceRecord& r) {
  Status st;
  if (!(st = apply_optional_text(form, "FriendlyName", r.friendly_name))) return st;
  if (auto v = form.get("MessagingServiceSid"); v && !v->empty() && !is_sid(*v, "MG")) {
    return invalid_parameter("MessagingServiceSid must match ^MG[0-9a-fA-F]{32}$");
  }
  if (!(st = apply_optional_text(form, "MessagingServiceSid", r.messaging_service_sid))) return st;
  if (!(st = apply_optional_text(form, "FacebookMessengerPageId", r.facebook_messenger_page_id))) return st;
  if (!(st = apply_optional_text(form, "AlexaSkillId", r.alexa_skill_id))) return st;
  if (!(st = apply_protocol_version(form, "DefaultApnNotificationProtocolVersion",
                                    r.default_apn_notification_protocol_version))) {
    return st;
  }
  if (!(st = apply_protocol_version(form, "DefaultGcmNotificationProtocolVersion",
                                    r.default_gcm_notification_protocol_version))) {
    return st;
  }
  if (!(st = apply_protocol_version(form, "DefaultFcmNotificationProtocolVersion",
                                    r.default_fcm_notification_protocol_version))) {
    return st;
  }
  if (!(st = apply_protocol_version(form, "DefaultAlexaNotificationProtocolVersion",
                                    r.default_alexa_notification_protocol_version))) {
    return st;
  }
  if (!(st = apply_bool(form, "LogEnabled", r.log_enabled))) return st;
  if (!(st = apply_bool(form, "DeliveryCallbackEnabled", r.delivery_callback_enabled))) return st;
  if (auto v = form.get("DeliveryCallbackUrl")) {
    if (!v->empty() && !is_http_url(*v))
      return invalid_parameter("DeliveryCallbackUrl must be an absolute http(s) URL");
    if (v->empty()) {
      r.delivery_callback_url.reset();
    } else {
      r.delivery_callback_url = *v;
    }
  }
  return {};
}

// The credential SIDs, checked against the store before the write.
struct CredentialSids {
  std::optional<std::string> apn, gcm, fcm;
};

Status check_credential_sids(Store& store, const ResourceRequest& request, CredentialSids& sids) {
  Status st;
  if (!(st = apply_credential_sid(store, request, "ApnCredentialSid", "apn", sids.apn))) return st;
  if (!(st = apply_credential_sid(store, request, "GcmCredentialSid", "gcm", sids.gcm))) return st;
  if (!(st = apply_credential_sid(store, request, "FcmCredentialSid", "fcm", sids.fcm))) return st;
  return {};
}

auto api_log() { return module_logger("api"); }

}  // namespace

Result<ResourceResponse> create_service(Store& store, const ResourceRequest& request) {
  if (auto st = request.form.check_known(kServiceParams); !st) return st.error();
  ServiceRecord r;
  r.sid = make_sid("IS");
  r.account_sid = request.account_sid;
  if (auto st = apply_plain_fields(request.form, r); !st) return st.error();
  CredentialSids sids;
  if (auto st = check_credential_sids(store, request, sids); !st) return st.error();
  r.apn_credential_sid = sids.apn;
  r.gcm_credential_sid = sids.gcm;
  r.fcm_credential_sid = sids.fcm;
  r.date_created = r.date_updated = now_seconds();
  auto stored = store.insert_service(std::move(r));
  if (!stored) return stored.error();
  api_log()->info("[{}] service created", stored->sid);
  return json_response(201, render_service(*stored, request.public_url));
}

Result<ResourceResponse> list_services(Store& store, const ResourceRequest& request) {
  auto q = parse_list_query(request.query, 1000);
  if (!q) return q.error();
  auto friendly_name = request.query.get("FriendlyName");
  auto page = store.list_services(request.account_sid, friendly_name, q->page);
  if (!page) return page.error();
  ListLinks links{request.public_url + request.path, {}, "services"};
  if (friendly_name) links.filters.emplace_back("FriendlyName", *friendly_name);
  return json_response(200, list_body(links, *q, *page, [&](const ServiceRecord& r) {
                         return render_service(r, request.public_url);
                       }));
}

Result<ResourceResponse> fetch_service(Store& store, const ResourceRequest& request) {
  auto r = store.find_service(request.account_sid, request.params.at(0));
  if (!r) return r.error();
  return json_response(200, render_service(*r, request.public_url));
}

Result<ResourceResponse> update_service(Store& store, const ResourceRequest& request) {
  if (auto st = request.form.check_known(kServiceParams); !st) return st.error();
  // A missing service is a 404 before any parameter complaint about credentials.
  if (auto existing = store.find_service(request.account_sid, request.params.at(0)); !existing) {
    return existing.error();
  }
  CredentialSids sids;
  if (auto st = check_credential_sids(store, request, sids); !st) return st.error();
  auto updated =
      store.update_service(request.account_sid, request.params.at(0), [&](ServiceRecord& r) -> Status {
        if (auto st = apply_plain_fields(request.form, r); !st) return st;
        if (request.form.has("ApnCredentialSid")) r.apn_credential_sid = sids.apn;
        if (request.form.has("GcmCredentialSid")) r.gcm_credential_sid = sids.gcm;
        if (request.form.has("FcmCredentialSid")) r.fcm_credential_sid = sids.fcm;
        r.date_updated = now_seconds();
        return {};
      });
  if (!updated) return updated.error();
  api_log()->info("[{}] service updated", updated->sid);
  return json_response(200, render_service(*updated, request.public_url));
}

Result<ResourceResponse> delete_service(Store& store, const ResourceRequest& request) {
  if (auto st = store.delete_service(request.account_sid, request.params.at(0)); !st) return st.error();
  api_log()->info("[{}] service deleted with its bindings", request.params.at(0));
  return no_content();
}

}  // namespace notifyd::api
