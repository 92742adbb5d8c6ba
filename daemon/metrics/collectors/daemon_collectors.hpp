#pragma once
// The daemon's delivery and transport metrics, read at scrape time from the counters the dispatcher and
// the transports already keep (DispatcherStats, pool stats, token counts), so nothing is counted twice.
// The *_families functions are pure; add_daemon_collectors() registers collectors that call the
// dispatcher's and the registry's thread-safe stats() on the scraping thread: both must outlive every
// scrape (the app stops the listener before destroying them).
#include <vector>

#include "daemon/fanout/dispatcher.hpp"
#include "daemon/metrics/registry.hpp"
#include "transports/registry/registry.hpp"

namespace notifyd::metrics {

// notifyd_notifications_accepted_total, notifyd_deliveries_total{channel,outcome},
// notifyd_delivery_attempts_total{channel,result}, notifyd_bindings_removed_total{channel},
// notifyd_delivery_queue_depth, notifyd_deliveries_in_flight.
std::vector<FamilySnapshot> delivery_families(const fanout::DispatcherStats& stats);

// notifyd_transport_pools, notifyd_transport_connections, notifyd_transport_streams_open,
// notifyd_transport_streams_waiting (gauges), notifyd_transport_connections_opened_total,
// notifyd_transport_goaways_total, notifyd_token_refreshes_total (counters); all by {transport}.
std::vector<FamilySnapshot> transport_families(const std::vector<transport::TransportStats>& stats);

void add_daemon_collectors(Registry& registry, const fanout::Dispatcher& dispatcher,
                           const transport::TransportRegistry& transports);

}  // namespace notifyd::metrics
