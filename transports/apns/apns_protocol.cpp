#include "transports/apns/apns_protocol.hpp"

#include <boost/json.hpp>
#include <charconv>

namespace notifyd::transport::apns {
namespace {

using Outcome = DeliveryResult::Outcome;

}  // namespace

std::shared_ptr<const http2::HeaderList> shared_headers(const std::string& topic, const std::string& bearer) {
  auto h = std::make_shared<http2::HeaderList>();
  h->reserve(3);
  h->emplace_back("apns-topic", topic);
  h->emplace_back("content-type", "application/json");
  if (!bearer.empty()) h->emplace_back("authorization", "bearer " + bearer);
  return h;
}

namespace {

std::string decimal(std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);  // fits the string's inline buffer: no allocation
}

// A request to `d`'s device carrying its payload (taken from `d`); nullopt, taking nothing, when the payload
// is over the limit.
std::optional<http2::H2Request> device_request(Delivery& d) {
  if (d.body.size() > kMaxPayloadBytes) return std::nullopt;
  static constexpr std::string_view kPathPrefix = "/3/device/";
  std::optional<http2::H2Request> out(std::in_place);
  out->path.reserve(kPathPrefix.size() + d.address.size());
  out->path.append(kPathPrefix).append(d.address);
  out->body = std::move(d.body);
  return out;
}

// The headers a notification's requests carry alike (see NotificationHeaders).
void add_notification_headers(http2::HeaderList& out, std::string push_type, int priority,
                              std::int64_t expiration, std::optional<std::string> collapse_id) {
  out.emplace_back("apns-push-type", std::move(push_type));
  out.emplace_back("apns-priority", decimal(priority));
  out.emplace_back("apns-expiration", decimal(expiration));
  if (collapse_id) out.emplace_back("apns-collapse-id", std::move(*collapse_id));
}

}  // namespace

std::optional<http2::H2Request> build_request(Delivery&& d, std::shared_ptr<const http2::HeaderList> shared) {
  auto out = device_request(d);
  if (!out) return out;
  out->shared_headers = std::move(shared);
  out->headers.reserve(5);
  add_notification_headers(out->headers, std::move(d.apns_push_type), d.apns_priority, d.apns_expiration,
                           std::move(d.apns_collapse_id));
  if (!d.apns_id.empty()) out->headers.emplace_back("apns-id", std::move(d.apns_id));
  return out;
}

bool NotificationHeaders::fits(const http2::HeaderList* credential_headers, const Delivery& d) const {
  return credential.get() == credential_headers && priority == d.apns_priority &&
         expiration == d.apns_expiration && push_type == d.apns_push_type &&
         collapse_id == d.apns_collapse_id;
}

namespace {

std::shared_ptr<const NotificationHeaders> make_notification_headers(NotificationHeaders h) {
  h.all.reserve((h.credential ? h.credential->size() : 0) + 4);
  if (h.credential) h.all.insert(h.all.end(), h.credential->begin(), h.credential->end());
  add_notification_headers(h.all, h.push_type, h.priority, h.expiration, h.collapse_id);
  return std::make_shared<const NotificationHeaders>(std::move(h));
}

}  // namespace

std::shared_ptr<const NotificationHeaders> notification_headers(
    std::shared_ptr<const http2::HeaderList> credential_headers, const Delivery& d) {
  NotificationHeaders h;
  h.credential = std::move(credential_headers);
  h.push_type = d.apns_push_type;
  h.priority = d.apns_priority;
  h.expiration = d.apns_expiration;
  h.collapse_id = d.apns_collapse_id;
  return make_notification_headers(std::move(h));
}

std::shared_ptr<const NotificationHeaders> rebase(
    const NotificationHeaders& headers, std::shared_ptr<const http2::HeaderList> credential_headers) {
  NotificationHeaders h = headers;
  h.credential = std::move(credential_headers);
  h.all.clear();
  return make_notification_headers(std::move(h));
}

std::shared_ptr<const http2::HeaderList> as_shared_headers(
    std::shared_ptr<const NotificationHeaders> headers) {
  const http2::HeaderList* all = &headers->all;
  return {std::move(headers), all};
}

std::optional<http2::H2Request> build_binding_request(Delivery&& d,
                                                      std::shared_ptr<const NotificationHeaders> shared) {
  auto out = device_request(d);
  if (!out) return out;
  out->shared_headers = as_shared_headers(std::move(shared));
  if (!d.apns_id.empty()) {
    out->headers.reserve(1);
    out->headers.emplace_back("apns-id", std::move(d.apns_id));
  }
  return out;
}

std::optional<http2::H2Request> build_request(const Delivery& d, const std::string& topic,
                                              const std::string& bearer) {
  if (d.body.size() > kMaxPayloadBytes) return std::nullopt;
  Delivery copy = d;
  return build_request(std::move(copy), shared_headers(topic, bearer));
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
      if (auto* t = o.if_contains("timestamp"); t && t->is_number()) {
        // Not the throwing to_number: a fraction or an out-of-range value from a proxy is no timestamp,
        // and this runs inside a transport completion, where a throw would end the process.
        boost::system::error_code number_ec;
        auto ms = t->to_number<std::int64_t>(number_ec);
        if (!number_ec) timestamp = ms;
      }
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
