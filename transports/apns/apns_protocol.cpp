#include "transports/apns/apns_protocol.hpp"

#include <boost/json.hpp>
#include <charconv>

namespace notifyd::transport::apns {
namespace {

using Outcome = DeliveryResult::Outcome;

}  // namespace

std::optional<http2::H2Request> build_request(const Delivery& d, const std::string& topic,
                                              const std::string& bearer) {
  if (d.body.size() > kMaxPayloadBytes) return std::nullopt;
  http2::H2Request r;
  r.method = "POST";
  r.path = "/3/device/" + d.address;
  r.headers.reserve(8);
  r.headers.emplace_back("apns-topic", topic);
  r.headers.emplace_back("apns-push-type", d.apns_push_type);
  r.headers.emplace_back("apns-priority", std::to_string(d.apns_priority));
  r.headers.emplace_back("apns-expiration", std::to_string(d.apns_expiration));
  if (!d.apns_id.empty()) r.headers.emplace_back("apns-id", d.apns_id);
  if (d.apns_collapse_id) r.headers.emplace_back("apns-collapse-id", *d.apns_collapse_id);
  if (!bearer.empty()) r.headers.emplace_back("authorization", "bearer " + bearer);
  r.headers.emplace_back("content-type", "application/json");
  r.body = d.body;
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
  std::string reason;
  std::optional<std::int64_t> timestamp;
  if (!resp.body.empty()) {
    boost::system::error_code ec;
    auto v = boost::json::parse(resp.body, ec);
    if (!ec && v.is_object()) {
      const auto& o = v.as_object();
      if (auto* r = o.if_contains("reason"); r && r->is_string()) reason = std::string(r->as_string());
      if (auto* t = o.if_contains("timestamp"); t && t->is_number()) timestamp = t->to_number<std::int64_t>();
    }
  }
  res.reason = reason;
  if (resp.status == 200) {
    res.outcome = Outcome::delivered;
    return out;
  }
  if (resp.status == 410 ||
      (resp.status == 400 && (reason == "BadDeviceToken" || reason == "DeviceTokenNotForTopic"))) {
    res.outcome = Outcome::invalid_address;
    res.invalid_since = timestamp;  // a 410 says since when; the binding stays if it registered again after
    return out;
  }
  if (resp.status == 403 && (reason == "ExpiredProviderToken" || reason == "InvalidProviderToken")) {
    res.outcome = Outcome::credential_rejected;  // unless the retry with a fresh token succeeds
    out.provider_token_rejected = true;
    return out;
  }
  if (resp.status == 429 || resp.status == 500 || resp.status == 503) {
    res.outcome = Outcome::retry_later;
    if (auto v = resp.header("retry-after"); !v.empty()) res.retry_after = parse_retry_after(v);
    return out;
  }
  if (resp.status == 403) {
    res.outcome = Outcome::credential_rejected;  // BadCertificate, BadCertificateEnvironment, Forbidden, ...
    return out;
  }
  if (resp.status == 400 &&
      (reason == "TopicDisallowed" || reason == "BadTopic" || reason == "MissingTopic")) {
    res.outcome = Outcome::credential_rejected;  // the credential's topic is wrong for every device
    return out;
  }
  if (resp.status >= 500) {
    res.outcome = Outcome::retry_later;
    return out;
  }
  res.outcome = Outcome::payload_rejected;  // other 4xx: Apple's reason says what is wrong with this push
  if (res.reason.empty()) res.reason = "HTTP " + std::to_string(resp.status);
  return out;
}

}  // namespace notifyd::transport::apns
