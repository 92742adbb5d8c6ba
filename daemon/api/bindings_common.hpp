#pragma once
// What the Notify and Conversations views of bindings share: listing a service's bindings (404 when the
// service is not the account's) with a given renderer. Runs on the store worker pool.
#include "daemon/api/paging.hpp"
#include "daemon/api/resource.hpp"

namespace notifyd::api {

using BindingRenderer = boost::json::object (*)(const BindingRecord&, std::string_view public_url);

Result<ResourceResponse> list_service_bindings(Store& store, const ResourceRequest& request,
                                               const BindingFilter& filter, const ListQuery& query,
                                               const ListLinks& links, BindingRenderer render);

}  // namespace notifyd::api
