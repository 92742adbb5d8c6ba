#pragma once
// The key a failure reason is counted under (DispatcherStats::failed_by_reason, and so a metrics label):
// provider reasons ("Unregistered", "BadDeviceToken") stay as they are; SIDs inside our own reasons
// ("credential CR… not found") become "<sid>", so the set of keys stays small however many credentials,
// services or bindings there are.
#include <string>
#include <string_view>

namespace notifyd::fanout {

// At most this many distinct keys are kept; later new ones are counted as "other".
inline constexpr std::size_t kMaxFailureReasons = 64;

std::string failure_reason_key(std::string_view reason);

}  // namespace notifyd::fanout
