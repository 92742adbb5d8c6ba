#pragma once
// Store: the durable home of credentials, services and bindings; the seam a PostgreSQL backend follows.
// Every call is synchronous, thread-safe and may block (disk, network): api/ runs them on the store
// worker pool, never on an I/O thread. A write returns only after its transaction is durable.
// Failures are values: not found is ApiError{404, 20404} (api/ adds the path), anything else 500.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/model/api_error.hpp"
#include "daemon/model/records.hpp"

namespace notifyd {

// Keyset paging: continue after (forward) or before (backward) the row with this `seq`. Never OFFSET.
struct PageCursor {
  std::int64_t seq = 0;
  bool backward = false;
};

struct PageRequest {
  std::size_t size = 50;
  std::optional<PageCursor> cursor;
};

template <class T>
struct Page {
  std::vector<T> items;  // always in ascending `seq` order
  bool more = false;     // more rows exist beyond this page in the direction of travel
};

struct BindingFilter {
  std::vector<std::string> identities;     // any of (empty: no constraint)
  std::vector<std::string> tags;           // all of; `all` and binding-type names are implicit tags
  std::vector<std::string> binding_types;  // any of (empty: no constraint)
  std::optional<Seconds> created_from;     // inclusive
  std::optional<Seconds> created_before;   // exclusive
};

// Bindings carry these implicit tags without storing them.
bool is_implicit_tag(std::string_view tag);
inline constexpr std::size_t kMaxBindingsPerIdentity = 20;

struct BindingInsert {
  BindingRecord binding;
  std::optional<std::string> replaced_sid;  // same Address, same type, same Service
  std::vector<std::string> evicted_sids;    // oldest bindings of the Identity beyond the limit
};

inline ApiError store_not_found() { return {404, codes::kNotFound, {}}; }

// ---- the outbox (notifications and their deliveries)

struct NotificationRecord {
  std::int64_t seq = 0;
  std::string sid;
  std::string account_sid;
  std::string service_sid;
  std::string request;  // the accepted request as JSON (fanout::to_json)
  std::optional<std::string> callback_url;
  Seconds date_created = 0;
  Seconds expires_at = 0;           // date_created + Ttl: no attempt after it
  std::int64_t resolve_cursor = 0;  // binding seq the audience is resolved up to
  bool resolved = false;
  std::int64_t recipients = 0;  // deliveries created so far
};

enum class DeliveryState : int { pending = 0, delivered = 1, failed = 2, expired = 3 };

struct DeliveryRecord {
  std::int64_t seq = 0;
  std::int64_t notification_seq = 0;
  // The binding sid, or "type:address" for a ToBinding item. Empty in a resolved page's deliveries: there it
  // is the binding sid, which the store takes when it writes the delivery's row.
  std::string target_key;
  std::optional<std::string> binding_sid;
  std::string binding_type;
  std::string address;
  std::optional<std::string> identity;
  std::optional<std::string> credential_sid;  // the binding's own; else the Service's for its type
  std::string protocol_version;
  Seconds binding_updated = 0;
  DeliveryState state = DeliveryState::pending;
  int attempts = 0;
  std::int64_t next_attempt_ms = 0;
  std::string last_reason;
  int provider_status = 0;
  std::string apns_id;  // the same on every attempt
  // A delivery of a resolved page (see resolve_page) has no row of its own (`seq` 0) until it needs one: it
  // is entry `page_index` of page `page_seq`, whose durable bit records that its outcome is settled.
  std::int64_t page_seq = 0;
  std::uint32_t page_index = 0;
};

struct ResolvedPage {
  std::size_t added = 0;  // deliveries in this page
  bool done = false;      // the whole audience is resolved
  // The page's deliveries, for the caller to send at once (they are never claimed: no row of their own).
  std::vector<DeliveryRecord> deliveries;
};

struct DeliveryUpdate {
  std::int64_t seq = 0;
  DeliveryState state = DeliveryState::pending;
  int attempts = 0;
  std::int64_t next_attempt_ms = 0;
  std::string last_reason;
  int provider_status = 0;
};

// One page entry settled: its outcome is final and needs no row (delivered), or its row is in `new_rows`.
struct PageEntryDone {
  std::int64_t page_seq = 0;
  std::uint32_t page_index = 0;
};

// Outcomes recorded in one transaction (see record_outcomes).
struct DeliveryOutcomes {
  std::vector<DeliveryUpdate> updates;   // deliveries that have a row
  std::vector<DeliveryRecord> new_rows;  // page deliveries that need a row: to retry, or a failure kept
  std::vector<PageEntryDone> page_done;  // page deliveries settled (each of new_rows among them)

  bool empty() const { return updates.empty() && new_rows.empty() && page_done.empty(); }
  std::size_t size() const { return updates.size() + page_done.size(); }
};

class Store {
 public:
  virtual ~Store() = default;

  virtual Result<CredentialRecord> insert_credential(CredentialRecord credential) = 0;
  virtual Result<CredentialRecord> find_credential(std::string_view account_sid, std::string_view sid) = 0;
  // Applies `change` to the stored record inside the write transaction; an error from it aborts.
  virtual Result<CredentialRecord> update_credential(std::string_view account_sid, std::string_view sid,
                                                     std::function<Status(CredentialRecord&)> change) = 0;
  // Also clears the references of the account's services and bindings to it.
  virtual Status delete_credential(std::string_view account_sid, std::string_view sid) = 0;
  virtual Result<Page<CredentialRecord>> list_credentials(std::string_view account_sid, PageRequest page) = 0;

  virtual Result<ServiceRecord> insert_service(ServiceRecord service) = 0;
  virtual Result<ServiceRecord> find_service(std::string_view account_sid, std::string_view sid) = 0;
  virtual Result<ServiceRecord> update_service(std::string_view account_sid, std::string_view sid,
                                               std::function<Status(ServiceRecord&)> change) = 0;
  // Deletes the service's bindings with it.
  virtual Status delete_service(std::string_view account_sid, std::string_view sid) = 0;
  virtual Result<Page<ServiceRecord>> list_services(std::string_view account_sid,
                                                    std::optional<std::string> friendly_name,
                                                    PageRequest page) = 0;

  // Inserts `binding` into its service (404 when the service is not the account's), replacing the
  // binding with the same type and Address and evicting the Identity's oldest beyond 20, atomically.
  virtual Result<BindingInsert> insert_binding(BindingRecord binding) = 0;
  virtual Result<BindingRecord> find_binding(std::string_view account_sid, std::string_view service_sid,
                                             std::string_view sid) = 0;
  virtual Status delete_binding(std::string_view account_sid, std::string_view service_sid,
                                std::string_view sid) = 0;
  virtual Result<Page<BindingRecord>> list_bindings(std::string_view account_sid,
                                                    std::string_view service_sid, const BindingFilter& filter,
                                                    PageRequest page) = 0;

  // The outbox. insert_notification stores the notification and its direct (ToBinding) deliveries in one
  // transaction: once it returns, the notification survives a crash. A query notification (`direct` empty
  // and `resolved` false) is resolved later, page by page.
  virtual Result<NotificationRecord> insert_notification(NotificationRecord notification,
                                                         std::vector<DeliveryRecord> direct) = 0;
  virtual Result<std::vector<NotificationRecord>> unresolved_notifications(std::size_t limit) = 0;
  virtual Result<NotificationRecord> find_notification(std::int64_t seq) = 0;
  // Adds deliveries for the next `page_size` bindings of the audience after the notification's cursor and
  // advances the cursor, atomically: resumable after a crash, never the whole audience in memory.
  // The page is stored as one row (its bindings and a bit per entry) and its deliveries are returned for the
  // caller to send at once: no row per delivery unless record_outcomes gives it one. A page left unsettled by
  // a process that died is turned into rows by release_leases.
  virtual Result<ResolvedPage> resolve_page(std::int64_t notification_seq, const BindingFilter& filter,
                                            std::size_t page_size) = 0;
  // Pending deliveries due at `now_ms`, oldest first, leased: each is pushed `lease_ms` into the future in
  // the same transaction, so it is not handed out twice and comes back by itself if the process dies.
  virtual Result<std::vector<DeliveryRecord>> claim_due_deliveries(std::int64_t now_ms, std::size_t limit,
                                                                   std::int64_t lease_ms) = 0;
  // Writes row updates, inserts the rows of page deliveries that need one (a target already in the
  // notification is not added twice) and sets the page bits, all in one transaction. A page whose every
  // entry is settled is deleted.
  virtual Status record_outcomes(DeliveryOutcomes outcomes) = 0;
  // At start: deliveries leased by a process that died are due again at once, and the unsettled entries of
  // its pages become pending rows (due at once; an entry whose binding is gone since is dropped). Returns
  // how many deliveries are due again.
  virtual Result<std::int64_t> release_leases() = 0;
  // Pending deliveries per notification, rows and unsettled page entries (for "finished" bookkeeping after
  // a restart).
  virtual Result<std::vector<std::pair<std::int64_t, std::int64_t>>> pending_per_notification() = 0;
  virtual Result<std::int64_t> pending_delivery_count() = 0;
  // Provider feedback: deletes the binding only if it still has this address and was not updated after
  // `invalid_since` (epoch seconds; nullopt: now). Returns whether it was deleted.
  virtual Result<bool> remove_invalid_binding(std::string_view binding_sid, std::string_view address,
                                              std::optional<Seconds> invalid_since) = 0;
};

}  // namespace notifyd
