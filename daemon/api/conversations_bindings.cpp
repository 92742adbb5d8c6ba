// /conversations/v1/Services/{IS}/Bindings[/{BS}]: the Conversations view of the same bindings, limited
// to the push types Conversations knows (apn, gcm, fcm). Deleting here deletes for both views.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/api/bindings_common.hpp"
#include "daemon/api/render.hpp"
#include "daemon/model/log.hpp"

namespace notifyd::api {
namespace {

constexpr std::array<std::string_view, 3> kViewTypes = {"apn", "gcm", "fcm"};

bool in_view(std::string_view type) {
  return std::find(kViewTypes.begin(), kViewTypes.end(), type) != kViewTypes.end();
}

// A binding of this service and account that the view shows, else 404.
Result<BindingRecord> find_in_view(Store& store, const ResourceRequest& request) {
  auto r = store.find_binding(request.account_sid, request.params.at(0), request.params.at(1));
  if (!r) return r.error();
  if (!in_view(r->binding_type)) return store_not_found();
  return r;
}

}  // namespace

Result<ResourceResponse> list_service_bindings(Store& store, const ResourceRequest& request,
                                               const BindingFilter& filter, const ListQuery& query,
                                               const ListLinks& links, BindingRenderer render) {
  if (auto service = store.find_service(request.account_sid, request.params.at(0)); !service) {
    return service.error();
  }
  auto page = store.list_bindings(request.account_sid, request.params.at(0), filter, query.page);
  if (!page) return page.error();
  return json_response(200, list_body(links, query, *page,
                                      [&](const BindingRecord& r) { return render(r, request.public_url); }));
}

Result<ResourceResponse> list_conversations_bindings(Store& store, const ResourceRequest& request) {
  auto q = parse_list_query(request.query, 100);
  if (!q) return q.error();
  BindingFilter filter;
  ListLinks links{request.public_url + request.path, {}, "bindings"};
  auto types = request.query.get_all("BindingType");
  for (const auto& t : types) {
    if (!in_view(t) && t != "twilsock")
      return invalid_parameter("BindingType must be one of apn, gcm, fcm, twilsock");
    links.filters.emplace_back("BindingType", t);
    if (in_view(t)) filter.binding_types.push_back(t);
  }
  if (types.empty()) {
    filter.binding_types.assign(kViewTypes.begin(), kViewTypes.end());
  } else if (filter.binding_types.empty()) {
    filter.binding_types.push_back("twilsock");  // notifyd stores no twilsock bindings: an empty list
  }
  filter.identities = request.query.get_all("Identity");
  for (const auto& v : filter.identities) links.filters.emplace_back("Identity", v);
  return list_service_bindings(store, request, filter, *q, links, render_conversations_binding);
}

Result<ResourceResponse> fetch_conversations_binding(Store& store, const ResourceRequest& request) {
  auto r = find_in_view(store, request);
  if (!r) return r.error();
  return json_response(200, render_conversations_binding(*r, request.public_url));
}

Result<ResourceResponse> delete_conversations_binding(Store& store, const ResourceRequest& request) {
  if (auto r = find_in_view(store, request); !r) return r.error();
  if (auto st = store.delete_binding(request.account_sid, request.params.at(0), request.params.at(1)); !st) {
    return st.error();
  }
  module_logger("api")->info("[{}][{}] binding deleted (conversations view)", request.params.at(0),
                             request.params.at(1));
  return no_content();
}

}  // namespace notifyd::api
