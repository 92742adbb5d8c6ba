#pragma once
// SqliteStore: the embedded Store (SQLite in WAL mode). Thread-safe; blocking calls.
// Writes go to one writer thread that groups every queued write into one transaction (group commit):
// each write runs in its own SAVEPOINT, so one failing write does not undo its neighbours, and every
// caller is answered only after the shared COMMIT is durable. Reads use a pool of read connections.
// Failures: 404 (store_not_found) or 500 ApiErrors; the open itself throws on an unusable database.
#include <memory>
#include <string>

#include "daemon/store/store.hpp"

namespace notifyd::sqlite {

struct SqliteOptions {
  std::string path;
  std::size_t max_batch = 512;  // writes folded into one commit at most
};

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(SqliteOptions options);  // opens, migrates, starts the writer thread
  ~SqliteStore() override;                      // finishes queued writes, then closes

  Result<CredentialRecord> insert_credential(CredentialRecord credential) override;
  Result<CredentialRecord> find_credential(std::string_view account_sid, std::string_view sid) override;
  Result<CredentialRecord> update_credential(std::string_view account_sid, std::string_view sid,
                                             std::function<Status(CredentialRecord&)> change) override;
  Status delete_credential(std::string_view account_sid, std::string_view sid) override;
  Result<Page<CredentialRecord>> list_credentials(std::string_view account_sid, PageRequest page) override;

  Result<ServiceRecord> insert_service(ServiceRecord service) override;
  Result<ServiceRecord> find_service(std::string_view account_sid, std::string_view sid) override;
  Result<ServiceRecord> update_service(std::string_view account_sid, std::string_view sid,
                                       std::function<Status(ServiceRecord&)> change) override;
  Status delete_service(std::string_view account_sid, std::string_view sid) override;
  Result<Page<ServiceRecord>> list_services(std::string_view account_sid,
                                            std::optional<std::string> friendly_name,
                                            PageRequest page) override;

  Result<BindingInsert> insert_binding(BindingRecord binding) override;
  Result<BindingRecord> find_binding(std::string_view account_sid, std::string_view service_sid,
                                     std::string_view sid) override;
  Status delete_binding(std::string_view account_sid, std::string_view service_sid,
                        std::string_view sid) override;
  Result<Page<BindingRecord>> list_bindings(std::string_view account_sid, std::string_view service_sid,
                                            const BindingFilter& filter, PageRequest page) override;

  Result<NotificationRecord> insert_notification(NotificationRecord notification,
                                                 std::vector<DeliveryRecord> direct) override;
  Result<std::vector<NotificationRecord>> unresolved_notifications(std::size_t limit) override;
  Result<NotificationRecord> find_notification(std::int64_t seq) override;
  Result<ResolvedPage> resolve_page(std::int64_t notification_seq, const BindingFilter& filter,
                                    std::size_t page_size) override;
  Result<std::vector<DeliveryRecord>> claim_due_deliveries(std::int64_t now_ms, std::size_t limit,
                                                           std::int64_t lease_ms) override;
  Status record_outcomes(DeliveryOutcomes outcomes) override;
  Result<std::int64_t> release_leases() override;
  Result<std::vector<std::pair<std::int64_t, std::int64_t>>> pending_per_notification() override;
  Result<std::int64_t> pending_delivery_count() override;
  Result<bool> remove_invalid_binding(std::string_view binding_sid, std::string_view address,
                                      std::optional<Seconds> invalid_since) override;

  // Commits made so far (each may hold many writes): lets tests and benchmarks see the grouping.
  std::uint64_t commit_count() const;
  // Those of them that synced the WAL (synchronous=FULL): every commit holding an API write; not those of
  // the fan-out's bookkeeping alone, which survive a crash of the process but not a power loss.
  std::uint64_t synced_commit_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace notifyd::sqlite
