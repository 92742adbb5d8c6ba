#include "daemon/metrics/collectors/daemon_collectors.hpp"

#include <string>

namespace notifyd::metrics {
namespace {

FamilySnapshot family(std::string name, std::string help, MetricType type) {
  FamilySnapshot f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add(FamilySnapshot& f, Labels labels, double value) {
  f.samples.push_back({"", std::move(labels), value});
}

}  // namespace

std::vector<FamilySnapshot> delivery_families(const fanout::DispatcherStats& stats) {
  auto accepted =
      family("notifyd_notifications_accepted_total",
             "Notifications taken into fan-out (resolved to their bindings).", MetricType::counter);
  add(accepted, {}, static_cast<double>(stats.accepted));

  auto deliveries =
      family("notifyd_deliveries_total",
             "Deliveries finished, by channel (binding type) and final outcome: delivered, failed, expired.",
             MetricType::counter);
  auto attempts = family("notifyd_delivery_attempts_total",
                         "Deliveries sent to a transport, by channel and the transport's result (delivered, "
                         "invalid_address, retry_later, credential_rejected, payload_rejected, "
                         "unsupported_channel).",
                         MetricType::counter);
  auto removed = family("notifyd_bindings_removed_total",
                        "Bindings removed because the provider called their address invalid, by channel.",
                        MetricType::counter);
  for (const auto& [channel, c] : stats.by_channel) {
    add(deliveries, {{"channel", channel}, {"outcome", "delivered"}}, static_cast<double>(c.delivered));
    add(deliveries, {{"channel", channel}, {"outcome", "failed"}}, static_cast<double>(c.failed));
    add(deliveries, {{"channel", channel}, {"outcome", "expired"}}, static_cast<double>(c.expired));
    for (const auto& [result, n] : c.attempts) {
      add(attempts, {{"channel", channel}, {"result", result}}, static_cast<double>(n));
    }
    add(removed, {{"channel", channel}}, static_cast<double>(c.bindings_removed));
  }

  auto failed_by_reason =
      family("notifyd_deliveries_failed_by_reason_total",
             "Deliveries finished as failed, by the provider's reason (e.g. Unregistered, BadDeviceToken) or "
             "notifyd's own, with SIDs elided; at most 64 reasons, then \"other\".",
             MetricType::counter);
  for (const auto& [reason, n] : stats.failed_by_reason) {
    add(failed_by_reason, {{"reason", reason}}, static_cast<double>(n));
  }

  auto depth = family("notifyd_delivery_queue_depth",
                      "Deliveries pending in the store (counted about once a second).", MetricType::gauge);
  add(depth, {}, static_cast<double>(stats.queue_depth));
  auto in_flight = family("notifyd_deliveries_in_flight", "Deliveries being sent right now, all channels.",
                          MetricType::gauge);
  add(in_flight, {}, static_cast<double>(stats.in_flight));

  std::vector<FamilySnapshot> out;
  out.push_back(std::move(accepted));
  out.push_back(std::move(deliveries));
  out.push_back(std::move(attempts));
  out.push_back(std::move(removed));
  out.push_back(std::move(failed_by_reason));
  out.push_back(std::move(depth));
  out.push_back(std::move(in_flight));
  return out;
}

std::vector<FamilySnapshot> transport_families(const std::vector<transport::TransportStats>& stats) {
  auto pools = family("notifyd_transport_pools", "HTTP/2 connection pools (one per credential and endpoint).",
                      MetricType::gauge);
  auto connections = family("notifyd_transport_connections", "Open HTTP/2 connections.", MetricType::gauge);
  auto streams = family("notifyd_transport_streams_open", "HTTP/2 streams in flight.", MetricType::gauge);
  auto waiting =
      family("notifyd_transport_streams_waiting", "Requests waiting for a free stream.", MetricType::gauge);
  auto opened =
      family("notifyd_transport_connections_opened_total", "HTTP/2 connections opened.", MetricType::counter);
  auto goaways = family("notifyd_transport_goaways_total", "GOAWAY frames received from the provider.",
                        MetricType::counter);
  auto tokens = family("notifyd_token_refreshes_total",
                       "Provider auth tokens obtained: APNs provider tokens minted (ES256 JWT), FCM OAuth2 "
                       "access tokens fetched.",
                       MetricType::counter);
  for (const auto& t : stats) {
    const Labels labels = {{"transport", std::string(t.transport)}};
    add(pools, labels, static_cast<double>(t.pools));
    add(connections, labels, static_cast<double>(t.pool.connections));
    add(streams, labels, static_cast<double>(t.pool.streams_in_flight));
    add(waiting, labels, static_cast<double>(t.pool.waiting));
    add(opened, labels, static_cast<double>(t.pool.connections_opened));
    add(goaways, labels, static_cast<double>(t.pool.goaways));
    add(tokens, labels, static_cast<double>(t.token_refreshes));
  }
  std::vector<FamilySnapshot> out;
  for (auto* f : {&pools, &connections, &streams, &waiting, &opened, &goaways, &tokens}) {
    out.push_back(std::move(*f));
  }
  return out;
}

void add_daemon_collectors(Registry& registry, const fanout::Dispatcher& dispatcher,
                           const transport::TransportRegistry& transports) {
  registry.add_collector([&dispatcher] { return delivery_families(dispatcher.stats()); });
  registry.add_collector([&transports] { return transport_families(transports.stats()); });
}

}  // namespace notifyd::metrics
