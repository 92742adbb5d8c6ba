#pragma once
// What the Notify and Conversations views of bindings share: listing a service's bindings (404 when the
// service is not the account's) with a given renderer. Runs on the store worker pool.
#include "daemon/api/paging.hpp"
#include "daemon/api/resource.hpp"

namespace notifyd::api {

bool is_binding_type(std::string_view type);
bool has_control_chars(std::string_view s);
// Per type: APNs tokens are hex, SMS numbers E.164, others printable without spaces.
Status validate_address(std::string_view type, std::string_view address);
// The Service's default protocol version for a binding type ("3" where it has none).
std::string default_protocol_version(const ServiceRecord& service, std::string_view type);

using BindingRenderer = boost::json::object (*)(const BindingRecord&, std::string_view public_url);

Result<ResourceResponse> list_service_bindings(Store& store, const ResourceRequest& request,
                                               const BindingFilter& filter, const ListQuery& query,
                                               const ListLinks& links, BindingRenderer render);

}  // namespace notifyd::api
