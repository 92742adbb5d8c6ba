#include "transports/fcm/fcm_protocol.hpp"

#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <charconv>

namespace notifyd::transport::fcm {
namespace {

using Outcome = DeliveryResult::Outcome;

struct GoogleError {
  std::string status;      // "NOT_FOUND", "INVALID_ARGUMENT", ...
  std::string error_code;  // FcmError detail: "UNREGISTERED", "SENDER_ID_MISMATCH", ...
  std::string message;
  bool about_token = false;  // a field violation on message.token, or a message naming the token
};

GoogleError parse_error(const std::string& body) {
  GoogleError e;
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return e;
  auto* err = v.as_object().if_contains("error");
  if (!err || !err->is_object()) return e;
  const auto& o = err->as_object();
  if (auto* s = o.if_contains("status"); s && s->is_string()) e.status = std::string(s->as_string());
  if (auto* m = o.if_contains("message"); m && m->is_string()) e.message = std::string(m->as_string());
  if (auto* details = o.if_contains("details"); details && details->is_array()) {
    for (const auto& d : details->as_array()) {
      if (!d.is_object()) continue;
      const auto& dobj = d.as_object();
      if (auto* code = dobj.if_contains("errorCode"); code && code->is_string()) {
        e.error_code = std::string(code->as_string());
      }
      if (auto* violations = dobj.if_contains("fieldViolations"); violations && violations->is_array()) {
        for (const auto& fv : violations->as_array()) {
          if (!fv.is_object()) continue;
          if (auto* field = fv.as_object().if_contains("field"); field && field->is_string()) {
            if (field->as_string() == "message.token") e.about_token = true;
          }
        }
      }
    }
  }
  if (e.message.find("registration token") != std::string::npos) e.about_token = true;
  return e;
}

}  // namespace

std::optional<http2::H2Request> build_request(const Delivery& d, const std::string& project_id,
                                              const std::string& access_token) {
  boost::system::error_code ec;
  auto parsed = boost::json::parse(d.body.empty() ? std::string_view("{}") : std::string_view(d.body), ec);
  if (ec || !parsed.is_object()) return std::nullopt;
  boost::json::object message = std::move(parsed.as_object());
  message["token"] = d.address;
  std::string body = boost::json::serialize(boost::json::object{{"message", std::move(message)}});
  if (body.size() > kMaxPayloadBytes) return std::nullopt;
  http2::H2Request r;
  r.method = "POST";
  r.path = "/v1/projects/" + project_id + "/messages:send";
  r.headers = {{"authorization", "Bearer " + access_token},
               {"content-type", "application/json; charset=UTF-8"}};
  r.body = std::move(body);
  return r;
}

Interpretation interpret(const http2::H2Result& answer) {
  Interpretation out;
  DeliveryResult& res = out.result;
  if (answer.failure != http2::H2Failure::none) {
    res.outcome = Outcome::retry_later;
    res.reason = std::string("connection: ") + http2::to_string(answer.failure);
    return out;
  }
  const auto& resp = answer.response;
  res.provider_status = resp.status;
  if (resp.status == 200) {
    res.outcome = Outcome::delivered;
    return out;
  }
  GoogleError e = parse_error(resp.body);
  res.reason = !e.error_code.empty() ? e.error_code
               : !e.status.empty()   ? e.status
                                     : "HTTP " + std::to_string(resp.status);
  if (auto v = resp.header("retry-after"); !v.empty()) res.retry_after = parse_retry_after(v);

  if (e.error_code == "UNREGISTERED" || resp.status == 404) {
    res.outcome = Outcome::invalid_address;
  } else if (resp.status == 400 && (e.error_code == "INVALID_ARGUMENT" || e.status == "INVALID_ARGUMENT") &&
             e.about_token) {
    res.outcome = Outcome::invalid_address;
  } else if (resp.status == 401) {
    res.outcome = Outcome::credential_rejected;  // unless the retry with a fresh access token succeeds
    out.access_token_rejected = true;
  } else if (e.error_code == "SENDER_ID_MISMATCH" || resp.status == 403) {
    res.outcome = Outcome::credential_rejected;
  } else if (resp.status == 429 || resp.status >= 500) {
    res.outcome = Outcome::retry_later;
  } else {
    res.outcome = Outcome::payload_rejected;
  }
  return out;
}

std::string token_request_body(const std::string& assertion) {
  return "grant_type=" +
         boost::urls::encode("urn:ietf:params:oauth:grant-type:jwt-bearer", boost::urls::unreserved_chars) +
         "&assertion=" + boost::urls::encode(assertion, boost::urls::unreserved_chars);
}

std::optional<AccessToken> parse_token_response(const std::string& body, std::int64_t now) {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  auto* token = o.if_contains("access_token");
  auto* expires = o.if_contains("expires_in");
  if (!token || !token->is_string() || token->as_string().empty()) return std::nullopt;
  std::int64_t expires_in = 3600;
  if (expires && expires->is_number()) {
    expires_in = expires->to_number<std::int64_t>(ec);
    if (ec || expires_in <= 0) return std::nullopt;
  }
  return AccessToken{std::string(token->as_string()), now + expires_in};
}

}  // namespace notifyd::transport::fcm
