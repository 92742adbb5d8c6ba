#pragma once
// CallbackSender: delivers delivery-status callbacks, one signed form POST per binding outcome, to the
// DeliveryCallbackUrl. Owned by the app; a fixed set of sender coroutines runs on one strand of the executor
// given; enqueue() and stats() are thread-safe. Receivers' failures are retried, then logged and counted,
// never thrown; a slow or dead receiver costs queue slots and sender time, never the caller's time.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/fanout/twilio_signature.hpp"

namespace notifyd::fanout {

enum class CallbackStatus { delivered, failed, expired };

const char* to_string(CallbackStatus status);  // "delivered", "failed", "expired"

// The outcome of one delivery, in the names Twilio's webhooks use.
struct CallbackParams {
  std::string notification_sid;  // NT…
  std::string binding_sid;       // BS…
  std::string identity;
  std::string binding_type;  // apn, fcm, gcm, sms, ...
  CallbackStatus status = CallbackStatus::delivered;
  std::string error_code;       // Twilio error code ("52134"); "" when delivered
  std::string provider_status;  // the provider's answer ("410", "BadDeviceToken"); "" when none
};

struct Callback {
  std::string url;          // absolute http(s) URL, query allowed; signed exactly as given
  std::string auth_token;   // the account's auth token: signs the request; never logged, not kept queued
  std::string account_sid;  // sent as AccountSid, as Twilio's own webhooks do
  CallbackParams params;
};

// The form fields of a callback, in a fixed order: AccountSid, NotificationSid, BindingSid, Identity,
// BindingType, Status, ErrorCode, ProviderStatus. Empty values are left out (Twilio's status callbacks omit
// ErrorCode on success too), because a receiver whose form parser drops blank values, as Python's parse_qs
// does by default, would otherwise compute the signature over different fields and reject the request.
FormParams callback_form(const Callback& callback);

// Retry-After as delta-seconds or an HTTP-date (relative to `now`); nullopt when absent or unparsable.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

struct CallbackOptions {
  std::size_t senders = 8;  // concurrent POSTs across all receivers
  // Callbacks waiting to be sent (first attempts and scheduled retries, not those in flight). Beyond it the
  // oldest waiting one is dropped, with an error line: about 1 KB each, so 10,000 is ~10 MB at worst.
  std::size_t queue_capacity = 10000;
  std::size_t max_attempts = 5;
  std::chrono::milliseconds initial_backoff{1000};  // before attempt 2; doubles, with jitter in [b/2, b]
  std::chrono::milliseconds max_backoff{30000};
  // A Retry-After longer than this gives up rather than retrying sooner than the receiver asked.
  std::chrono::milliseconds max_retry_after{300000};
  std::size_t max_origins = 64;  // cached connection pools, least recently used closed beyond it
  // Per receiver origin: both the pool's connections and the senders one origin may occupy, so that a slow
  // receiver cannot hold every sender.
  std::size_t connections_per_origin = 4;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{10000};  // a receiver slower than this counts as failed (retried)
  std::string ca_file;                               // extra trusted CAs for https receivers
};

struct CallbackStats {
  std::uint64_t queued = 0;   // accepted by enqueue()
  std::uint64_t sent = 0;     // answered 2xx
  std::uint64_t failed = 0;   // gave up: 4xx, attempts exhausted, invalid URL
  std::uint64_t retried = 0;  // attempts scheduled again after a connection failure, 5xx or 429
  std::uint64_t dropped = 0;  // pushed out of a full queue, or left over at drain()/shutdown
  std::size_t pending = 0;    // waiting now (first attempts and scheduled retries)
  std::size_t in_flight = 0;
  std::size_t origins = 0;  // cached pools
};

class CallbackSender {
 public:
  CallbackSender(boost::asio::any_io_executor executor, CallbackOptions options = {});
  // Stops the senders without waiting; call drain() first to deliver what is queued.
  ~CallbackSender();
  CallbackSender(const CallbackSender&) = delete;
  CallbackSender& operator=(const CallbackSender&) = delete;

  // Queues one callback and returns at once, never waiting for any receiver. False (logged, counted as
  // failed or dropped) when the URL is not an absolute http(s) URL without user info, or after drain().
  bool enqueue(Callback callback);

  // Waits up to `timeout` for the queue and the requests in flight to empty (enqueue() still works meanwhile,
  // so it may run alongside the transports' own drain), then stops: what is left is dropped (logged,
  // counted), later enqueue() calls are refused and every connection is closed. A request still in flight
  // at the deadline is waited for at most request_timeout more. True when nothing was dropped.
  boost::asio::awaitable<bool> drain(std::chrono::milliseconds timeout);

  CallbackStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace notifyd::fanout
