// /v1/Credentials and /v1/Credentials/{Sid}: push credentials of the account. Secret material is
// validated on every create and update and never rendered.
#include <spdlog/spdlog.h>

#include "daemon/api/paging.hpp"
#include "daemon/api/render.hpp"
#include "daemon/api/resource.hpp"
#include "daemon/model/credential_validation.hpp"
#include "daemon/model/log.hpp"
#include "daemon/model/sid.hpp"
#include "daemon/model/time.hpp"

namespace notifyd::api {
namespace {

constexpr std::size_t kMaxFriendlyName = 256;

// Fields a create or update may carry, applied over `r` (whose type is fixed), then validated as a whole.
Status apply_credential_fields(CredentialRecord& r, const FormParams& form) {
  if (auto name = form.get("FriendlyName")) {
    if (name->size() > kMaxFriendlyName)
      return invalid_parameter("FriendlyName is longer than 256 characters");
    r.friendly_name = *name;
  }
  if (auto sandbox = form.get("Sandbox")) {
    auto b = parse_bool_param("Sandbox", *sandbox);
    if (!b) return b.error();
    r.sandbox = *b;
  }
  auto refuse_for_type = [&](std::string_view field) -> Status {
    if (form.has(field))
      return invalid_parameter(std::string(field) + " does not apply to " + r.type + " credentials");
    return {};
  };

  if (r.type == "apn") {
    for (auto f : {"ApiKey", "Secret"}) {
      if (auto st = refuse_for_type(f); !st) return st;
    }
    if (auto v = form.get("Certificate")) r.certificate = *v;
    if (auto v = form.get("PrivateKey")) r.private_key = *v;
    if (auto v = form.get("ApnKeyId")) r.apn_key_id = *v;
    if (auto v = form.get("ApnTeamId")) r.apn_team_id = *v;
    bool token_auth = !r.apn_key_id.empty() || form.has("ApnTeamId") || form.has("ApnTopic");
    if (token_auth) {
      // Token auth (notifyd extension): the .p8 key, its key id, the team and the topic.
      if (form.has("Certificate") && !form.get("Certificate")->empty()) {
        return invalid_parameter(
            "Certificate and ApnKeyId exclude each other: token auth uses PrivateKey alone");
      }
      r.certificate.clear();
      if (auto v = form.get("ApnTopic")) r.apn_topic = *v;
      for (auto [field, value] :
           {std::pair<std::string_view, const std::string*>{"PrivateKey", &r.private_key},
            {"ApnKeyId", &r.apn_key_id},
            {"ApnTeamId", &r.apn_team_id},
            {"ApnTopic", &r.apn_topic}}) {
        if (value->empty()) return invalid_parameter(std::string(field) + " is required for APNs token auth");
      }
      return validate_apn_token_key(r.private_key, r.apn_key_id, r.apn_team_id, r.apn_topic);
    }
    if (r.certificate.empty()) return invalid_parameter("Certificate is required for apn credentials");
    if (r.private_key.empty()) return invalid_parameter("PrivateKey is required for apn credentials");
    auto topic = validate_apn_certificate_pair(r.certificate, r.private_key);
    if (!topic) return topic.error();
    r.apn_topic = *topic;
    return {};
  }

  // fcm takes the service account in Secret, gcm in ApiKey (both delivered through FCM HTTP v1).
  std::string_view field = r.type == "fcm" ? "Secret" : "ApiKey";
  for (auto f : {"Certificate", "PrivateKey", "ApnKeyId", "ApnTeamId", "ApnTopic",
                 r.type == "fcm" ? "ApiKey" : "Secret"}) {
    if (auto st = refuse_for_type(f); !st) return st;
  }
  if (auto v = form.get(field)) r.secret = *v;
  if (r.secret.empty())
    return invalid_parameter(std::string(field) + " is required for " + r.type + " credentials");
  auto account = validate_service_account_json(r.secret, field);
  if (!account) return account.error();
  r.fcm_project_id = account->project_id;
  return {};
}

auto api_log() { return module_logger("api"); }

}  // namespace

Result<ResourceResponse> create_credential(Store& store, const ResourceRequest& request) {
  const auto& form = request.form;
  if (auto st = form.check_known({"Type", "FriendlyName", "Certificate", "PrivateKey", "Sandbox", "ApiKey",
                                  "Secret", "ApnKeyId", "ApnTeamId", "ApnTopic"});
      !st) {
    return st.error();
  }
  auto type = required_param(form, "Type");
  if (!type) return type.error();
  if (*type != "apn" && *type != "fcm" && *type != "gcm")
    return invalid_parameter("Type must be one of apn, fcm, gcm");

  CredentialRecord r;
  r.sid = make_sid("CR");
  r.account_sid = request.account_sid;
  r.type = *type;
  if (auto st = apply_credential_fields(r, form); !st) return st.error();
  r.date_created = r.date_updated = now_seconds();
  auto stored = store.insert_credential(std::move(r));
  if (!stored) return stored.error();
  api_log()->info("[{}] credential created ({})", stored->sid, stored->type);
  return json_response(201, render_credential(*stored, request.public_url));
}

Result<ResourceResponse> list_credentials(Store& store, const ResourceRequest& request) {
  auto q = parse_list_query(request.query, 1000);
  if (!q) return q.error();
  auto page = store.list_credentials(request.account_sid, q->page);
  if (!page) return page.error();
  ListLinks links{request.public_url + request.path, {}, "credentials"};
  return json_response(200, list_body(links, *q, *page, [&](const CredentialRecord& r) {
                         return render_credential(r, request.public_url);
                       }));
}

Result<ResourceResponse> fetch_credential(Store& store, const ResourceRequest& request) {
  auto r = store.find_credential(request.account_sid, request.params.at(0));
  if (!r) return r.error();
  return json_response(200, render_credential(*r, request.public_url));
}

Result<ResourceResponse> update_credential(Store& store, const ResourceRequest& request) {
  if (auto st = request.form.check_known({"FriendlyName", "Certificate", "PrivateKey", "Sandbox", "ApiKey",
                                          "Secret", "ApnKeyId", "ApnTeamId", "ApnTopic"});
      !st) {
    return st.error();
  }
  auto updated =
      store.update_credential(request.account_sid, request.params.at(0), [&](CredentialRecord& r) -> Status {
        if (auto st = apply_credential_fields(r, request.form); !st) return st;
        r.date_updated = now_seconds();
        return {};
      });
  if (!updated) return updated.error();
  api_log()->info("[{}] credential updated", updated->sid);
  return json_response(200, render_credential(*updated, request.public_url));
}

Result<ResourceResponse> delete_credential(Store& store, const ResourceRequest& request) {
  if (auto st = store.delete_credential(request.account_sid, request.params.at(0)); !st) return st.error();
  api_log()->info("[{}] credential deleted", request.params.at(0));
  return no_content();
}

}  // namespace notifyd::api
