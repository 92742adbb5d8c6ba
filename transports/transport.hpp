#pragma once
// Transport: the seam between fan-out and the providers. One per channel; it owns its connection pools.
// deliver() runs on the transport's executor and never throws for a provider or network failure: every
// outcome is a DeliveryResult value. Exceptions only for bugs.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/model/records.hpp"

namespace notifyd::transport {

struct DeliveryResult {
  enum class Outcome {
    delivered,            // the provider accepted it
    invalid_address,      // permanent: the token/number is not (or no longer) valid; the binding should go
    retry_later,          // transient: 429, 5xx, GOAWAY, connection loss, timeouts
    credential_rejected,  // the credential is bad (certificate revoked, wrong sender, ...): park its queue
    payload_rejected,     // this payload can never be delivered (too large, malformed): do not retry
    unsupported_channel,  // notifyd has no transport for this binding type
  };
  Outcome outcome = Outcome::retry_later;
  int provider_status = 0;  // HTTP status, 0 when no answer
  std::string reason;       // provider's reason ("BadDeviceToken", "UNREGISTERED", ...) or ours
  std::optional<std::chrono::seconds> retry_after;
  std::optional<std::int64_t> invalid_since;  // APNs 410 `timestamp` (ms since epoch), when given
};

const char* to_string(DeliveryResult::Outcome outcome);

// One message to one binding, ready to send. Built by fan-out; the transport adds only transport matters
// (auth, connection, headers it owns).
struct Delivery {
  // Ids for logs. Empty when deliver_async()'s completion lends them (DeliveryCompletion::ids()).
  std::string notification_sid;
  std::string binding_sid;
  std::string binding_type;  // apn gcm fcm sms facebook-messenger alexa
  std::string address;       // device token, registration token or phone number (logged truncated only)

  std::shared_ptr<const CredentialRecord> credential;  // apn, fcm, gcm; null for sms

  // APNs: `body` is the JSON payload (aps + custom keys).
  // FCM/GCM: `body` is the JSON `message` object without `token` (the transport adds it).
  std::string body;
  std::string apns_push_type = "alert";  // alert | background
  int apns_priority = 10;                // 10 (high) or 5 (low)
  std::int64_t apns_expiration = 0;      // epoch seconds; 0 = deliver once, do not store
  std::optional<std::string> apns_collapse_id;
  std::string apns_id;  // UUID, the same on every retry of this delivery

  // SMS
  std::string sms_body;
  std::vector<std::string> sms_media_urls;
  std::string messaging_service_sid;
  std::optional<std::string> sms_status_callback;
  std::optional<std::string> sms_max_price;
};

// A delivery's ids, for log lines.
struct DeliveryIds {
  std::string_view notification_sid;
  std::string_view binding_sid;
};

// Where deliver_async() reports: complete() is called once, on the executor given with it. The result is
// the completion's to move from (a reference: not moved once more on its way in).
class DeliveryCompletion {
 public:
  virtual ~DeliveryCompletion() = default;
  virtual void complete(DeliveryResult&& result) = 0;
  // The delivery's ids, valid until complete() returns, for a caller that lends them rather than copy them
  // into the Delivery (fan-out: two strings per delivery, for log lines only). Empty by default.
  virtual DeliveryIds ids() const { return {}; }
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual boost::asio::awaitable<DeliveryResult> deliver(Delivery delivery) = 0;  // by value across co_await
  // The same delivery, without a coroutine of the caller's: returns at once, and `done` completes on
  // `executor` (never inside this call). Fan-out sends this way, as a coroutine frame and its resumption per
  // delivery were a measurable part of a delivery's cost. The default runs deliver() in a coroutine on
  // `executor`; a transport whose exchange is callback-driven (APNs) overrides it.
  // By reference: the delivery is the transport's to move from (not moved once more on its way in).
  virtual void deliver_async(Delivery&& delivery, const boost::asio::any_io_executor& executor,
                             std::unique_ptr<DeliveryCompletion> done);
  // Readies what deliveries with `credential` will need (APNs: its pool and a first connection) ahead of the
  // first of them, so that a fan-out's handshakes overlap the resolution of its first recipients. Returns at
  // once and never throws for a provider or network failure: the deliveries meet it. The default does
  // nothing.
  virtual void prepare(const CredentialRecord& credential);
  virtual boost::asio::awaitable<void> drain() = 0;  // GOAWAY, finish in flight, close
};

// deliver() for a transport that implements deliver_async(): awaits it on the calling coroutine's executor.
boost::asio::awaitable<DeliveryResult> await_delivery(Transport& transport, Delivery delivery);

// Retry-After as delay-seconds or an IMF-fixdate HTTP-date relative to `now` (a date in the past is zero);
// nullopt when empty or malformed. Absurdly long delays are capped at 30 years rather than overflowing.
std::optional<std::chrono::seconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// Device tokens in logs: the first 8 characters and an ellipsis.
std::string truncate_token(std::string_view token);

}  // namespace notifyd::transport
