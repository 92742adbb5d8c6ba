#pragma once
// Dispatcher: drains the durable outbox. It resolves accepted notifications into deliveries page by page,
// claims due deliveries (leased in the store, so a crash hands them out again), sends each through the
// Transport of its binding type with bounded concurrency overall and per credential, and records every
// outcome: delivered; retried with exponential backoff and jitter, never sooner than Retry-After and never
// after the notification's Ttl; invalid addresses delete their binding (unless it registered again since);
// a rejected credential parks that credential's deliveries until it is updated; a Retry-After or 429 paces
// the credential's whole queue. Final outcomes go to the delivery callback.
// Runs on the io_context it is given; store calls run on its own small thread pool. Never throws out.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "daemon/store/store.hpp"
#include "transports/transport.hpp"

namespace notifyd::fanout {

class CallbackSender;

struct DispatcherOptions {
  std::size_t max_in_flight = 2000;  // deliveries being sent at once, all transports
  // Equal to max_in_flight by default: a claim never takes more than a credential may send, so nothing
  // claimed is written back unsent. Lower it only beside a matching claim policy.
  std::size_t max_in_flight_per_credential = 2000;
  // Bindings resolved per transaction (the first page of a notification: an eighth of it, the next ones
  // twice the one before until this size). Each page is a commit the senders may wait for: 2,500 made them
  // wait about a tenth as often as 1,000 (bench/README).
  std::size_t resolve_page_size = 2500;
  std::size_t claim_batch = 500;                 // deliveries claimed per transaction
  std::chrono::milliseconds lease{120000};       // a claimed delivery comes back after this if never finished
  std::chrono::milliseconds idle_poll{200};      // how often an idle dispatcher looks at the outbox
  std::chrono::milliseconds flush_interval{10};  // outcome writes are grouped this long at most
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{300000};
  std::chrono::milliseconds park_retry{
      60000};  // a parked credential's deliveries are looked at again after it
  // Threads for store writes (each waits there for the store's writer thread), and for store reads, which
  // never wait behind those writes.
  unsigned store_threads = 4;
  unsigned store_read_threads = 2;
};

// Counts of one channel (binding type), for metrics.
struct ChannelStats {
  std::uint64_t delivered = 0;  // final outcomes, as in DispatcherStats
  std::uint64_t failed = 0;
  std::uint64_t expired = 0;
  std::uint64_t bindings_removed = 0;
  std::map<std::string, std::uint64_t> attempts;  // transport results, by transport::to_string(outcome)
};

struct DispatcherStats {
  std::uint64_t accepted = 0;  // notifications resolved (query) or taken (direct)
  std::uint64_t delivered = 0;
  std::uint64_t failed = 0;
  std::uint64_t expired = 0;
  std::uint64_t retried = 0;
  std::uint64_t bindings_removed = 0;
  std::uint64_t in_flight = 0;
  std::int64_t queue_depth = 0;                           // pending deliveries in the store, as last counted
  std::map<std::string, std::uint64_t> failed_by_reason;  // key: failure_reason_key(), at most 64 + "other"
  std::map<std::string, ChannelStats> by_channel;         // binding type -> its counts
};

struct DispatcherDeps {
  Store& store;
  std::function<transport::Transport&(std::string_view binding_type)> transport_for;
  CallbackSender* callbacks = nullptr;  // may be null: no callbacks
  // The auth token that signs an account's callbacks; nullopt when the account is no longer configured.
  std::function<std::optional<std::string>(std::string_view account_sid)> auth_token_for;
};

class Dispatcher {
 public:
  Dispatcher(boost::asio::any_io_executor executor, DispatcherDeps deps, DispatcherOptions options = {});
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Releases leases left by a previous process and starts the loops.
  void start();
  // Something new is in the outbox: look now rather than at the next poll. Thread-safe.
  void wake();
  // Stops claiming and starting deliveries; what is in flight goes on. Before the transports drain: an answer
  // a draining transport gives an unsent delivery must find the dispatcher stopping (not an attempt).
  boost::asio::awaitable<void> begin_stop();
  // begin_stop, then waits (bounded) for deliveries in flight and writes every outcome. Pending work stays
  // in the store for the next start.
  boost::asio::awaitable<void> stop(std::chrono::milliseconds timeout);
  DispatcherStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace notifyd::fanout
