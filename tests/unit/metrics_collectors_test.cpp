// The daemon's delivery and transport metric families, built from DispatcherStats and TransportStats values:
// names, types, labels and values as the README documents them.
#include <gtest/gtest.h>

#include "daemon/metrics/collectors/daemon_collectors.hpp"
#include "daemon/metrics/text_format.hpp"

namespace notifyd::metrics {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

TEST(MetricsCollectorsTest, DeliveriesByChannelAndOutcome) {
  fanout::DispatcherStats stats;
  stats.accepted = 5;
  stats.queue_depth = 12;
  stats.in_flight = 3;
  auto& apn = stats.by_channel["apn"];
  apn.delivered = 4;
  apn.failed = 2;
  apn.expired = 1;
  apn.bindings_removed = 1;
  apn.attempts = {{"delivered", 4}, {"invalid_address", 1}, {"retry_later", 6}};
  stats.by_channel["sms"].delivered = 9;
  stats.by_channel["sms"].attempts = {{"delivered", 9}};
  stats.failed_by_reason = {{"Unregistered", 1}, {"credential <sid> not found", 1}};

  const std::string text = render_text(delivery_families(stats));
  for (const char* line : {
           "# TYPE notifyd_notifications_accepted_total counter",
           "notifyd_notifications_accepted_total 5",
           "# TYPE notifyd_deliveries_total counter",
           "notifyd_deliveries_total{channel=\"apn\",outcome=\"delivered\"} 4",
           "notifyd_deliveries_total{channel=\"apn\",outcome=\"failed\"} 2",
           "notifyd_deliveries_total{channel=\"apn\",outcome=\"expired\"} 1",
           "notifyd_deliveries_total{channel=\"sms\",outcome=\"delivered\"} 9",
           "notifyd_deliveries_total{channel=\"sms\",outcome=\"failed\"} 0",
           "notifyd_delivery_attempts_total{channel=\"apn\",result=\"invalid_address\"} 1",
           "notifyd_delivery_attempts_total{channel=\"apn\",result=\"retry_later\"} 6",
           "notifyd_delivery_attempts_total{channel=\"sms\",result=\"delivered\"} 9",
           "notifyd_bindings_removed_total{channel=\"apn\"} 1",
           "notifyd_bindings_removed_total{channel=\"sms\"} 0",
           "# TYPE notifyd_deliveries_failed_by_reason_total counter",
           "notifyd_deliveries_failed_by_reason_total{reason=\"Unregistered\"} 1",
           "notifyd_deliveries_failed_by_reason_total{reason=\"credential <sid> not found\"} 1",
           "# TYPE notifyd_delivery_queue_depth gauge",
           "notifyd_delivery_queue_depth 12",
           "# TYPE notifyd_deliveries_in_flight gauge",
           "notifyd_deliveries_in_flight 3",
       }) {
    EXPECT_TRUE(has_line(text, line)) << "missing: " << line << "\nin:\n" << text;
  }
}

TEST(MetricsCollectorsTest, TransportPoolsAndTokenRefreshes) {
  transport::TransportStats apns{"apns", 2, {}, 3};
  apns.pool.connections = 4;
  apns.pool.streams_in_flight = 17;
  apns.pool.waiting = 1;
  apns.pool.connections_opened = 6;
  apns.pool.goaways = 2;
  transport::TransportStats fcm{"fcm", 1, {}, 5};
  const std::string text = render_text(transport_families({apns, fcm}));
  for (const char* line : {
           "# TYPE notifyd_transport_pools gauge",
           "notifyd_transport_pools{transport=\"apns\"} 2",
           "# TYPE notifyd_transport_connections gauge",
           "notifyd_transport_connections{transport=\"apns\"} 4",
           "notifyd_transport_connections{transport=\"fcm\"} 0",
           "# TYPE notifyd_transport_streams_open gauge",
           "notifyd_transport_streams_open{transport=\"apns\"} 17",
           "notifyd_transport_streams_waiting{transport=\"apns\"} 1",
           "# TYPE notifyd_transport_connections_opened_total counter",
           "notifyd_transport_connections_opened_total{transport=\"apns\"} 6",
           "notifyd_transport_goaways_total{transport=\"apns\"} 2",
           "# TYPE notifyd_token_refreshes_total counter",
           "notifyd_token_refreshes_total{transport=\"apns\"} 3",
           "notifyd_token_refreshes_total{transport=\"fcm\"} 5",
       }) {
    EXPECT_TRUE(has_line(text, line)) << "missing: " << line << "\nin:\n" << text;
  }
}

}  // namespace
}  // namespace notifyd::metrics
