#pragma once
// What a resource handler sees and returns. Handlers are plain synchronous functions: the router runs
// them on the store worker pool (never an I/O thread), so they may call the blocking Store directly.
// Failures are ApiErrors; a 404 without a message gets "The requested resource <path> was not found".
#include <boost/json/object.hpp>
#include <functional>
#include <string>
#include <vector>

#include "daemon/api/form.hpp"
#include "daemon/store/store.hpp"

namespace notifyd::api {

struct ResourceRequest {
  std::string account_sid;          // the authenticated account: every lookup is scoped to it
  std::string method;               // GET POST DELETE
  std::string path;                 // as received, without the query
  std::vector<std::string> params;  // the path's {placeholders}, in order
  FormParams query;
  FormParams form;
  std::string public_url;
  std::function<void()> on_outbox_change;  // wakes the dispatcher after a notification is stored
};

struct ResourceResponse {
  unsigned status = 200;
  std::string body;  // JSON, empty for 204
};

using ResourceHandler = Result<ResourceResponse> (*)(Store& store, const ResourceRequest& request);

ResourceResponse json_response(unsigned status, const boost::json::object& body);
inline ResourceResponse no_content() { return {204, {}}; }

// Parses Twilio's booleans ("true"/"false", any case) for parameter `name`.
Result<bool> parse_bool_param(std::string_view name, std::string_view value);
// An absolute http(s) URL.
bool is_http_url(std::string_view s);
// 400/20001 "<name> is required" when absent or empty.
Result<std::string> required_param(const FormParams& form, std::string_view name);

// The handlers, one file each.
Result<ResourceResponse> create_credential(Store& store, const ResourceRequest& request);
Result<ResourceResponse> list_credentials(Store& store, const ResourceRequest& request);
Result<ResourceResponse> fetch_credential(Store& store, const ResourceRequest& request);
Result<ResourceResponse> update_credential(Store& store, const ResourceRequest& request);
Result<ResourceResponse> delete_credential(Store& store, const ResourceRequest& request);

Result<ResourceResponse> create_service(Store& store, const ResourceRequest& request);
Result<ResourceResponse> list_services(Store& store, const ResourceRequest& request);
Result<ResourceResponse> fetch_service(Store& store, const ResourceRequest& request);
Result<ResourceResponse> update_service(Store& store, const ResourceRequest& request);
Result<ResourceResponse> delete_service(Store& store, const ResourceRequest& request);

Result<ResourceResponse> create_binding(Store& store, const ResourceRequest& request);
Result<ResourceResponse> list_bindings(Store& store, const ResourceRequest& request);
Result<ResourceResponse> fetch_binding(Store& store, const ResourceRequest& request);
Result<ResourceResponse> delete_binding(Store& store, const ResourceRequest& request);

Result<ResourceResponse> create_notification(Store& store, const ResourceRequest& request);

Result<ResourceResponse> list_conversations_bindings(Store& store, const ResourceRequest& request);
Result<ResourceResponse> fetch_conversations_binding(Store& store, const ResourceRequest& request);
Result<ResourceResponse> delete_conversations_binding(Store& store, const ResourceRequest& request);

}  // namespace notifyd::api
