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
};

}  // namespace notifyd
