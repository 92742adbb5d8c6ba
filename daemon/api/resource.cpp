#include "daemon/api/resource.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <cctype>

namespace notifyd::api {

ResourceResponse json_response(unsigned status, const boost::json::object& body) {
  return {status, boost::json::serialize(body)};
}

Result<bool> parse_bool_param(std::string_view name, std::string_view value) {
  std::string lower(value);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "true") return Result<bool>(boost::system::in_place_value, true);
  if (lower == "false") return Result<bool>(boost::system::in_place_value, false);
  return invalid_parameter(std::string(name) + " must be true or false");
}

bool is_http_url(std::string_view s) {
  auto u = boost::urls::parse_absolute_uri(s);
  if (!u) return false;
  return (u->scheme() == "http" || u->scheme() == "https") && u->has_authority() && !u->host().empty();
}

Result<std::string> required_param(const FormParams& form, std::string_view name) {
  auto v = form.get(name);
  if (!v || v->empty())
    return invalid_parameter("Missing required parameter " + std::string(name) + " in the post body");
  return *v;
}

}  // namespace notifyd::api
