#pragma once
// JSON renderings of the resources (field for field the spec's response schemas) and of Twilio errors.
// Secrets are never rendered. Pure; any thread.
#include <boost/json/object.hpp>
#include <string>
#include <string_view>

#include "daemon/model/api_error.hpp"
#include "daemon/model/records.hpp"

namespace notifyd::api {

boost::json::object render_error(const ApiError& error);
boost::json::object render_credential(const CredentialRecord& r, std::string_view public_url);
boost::json::object render_service(const ServiceRecord& r, std::string_view public_url);
boost::json::object render_binding(const BindingRecord& r, std::string_view public_url);
// The Conversations view (chat_service_sid, message_types, url under /conversations/v1).
boost::json::object render_conversations_binding(const BindingRecord& r, std::string_view public_url);

}  // namespace notifyd::api
