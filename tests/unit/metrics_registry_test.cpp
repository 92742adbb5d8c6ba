// metrics::Registry: families of counters, gauges and histograms with labels, collectors, name checks, and
// exact totals under concurrent updates; rendered through the text format so the whole scrape text is
// checked.
#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>
#include <vector>

#include "daemon/metrics/registry.hpp"
#include "daemon/metrics/text_format.hpp"

namespace notifyd::metrics {
namespace {

std::string scrape(const Registry& r) { return render_text(r.collect()); }

TEST(MetricsRegistryTest, CounterWithoutLabels) {
  Registry r;
  auto& jobs = r.counter("notifyd_jobs_total", "Jobs done.");
  jobs.with({}).inc();
  jobs.with({}).inc(2);
  EXPECT_EQ(scrape(r),
            "# HELP notifyd_jobs_total Jobs done.\n"
            "# TYPE notifyd_jobs_total counter\n"
            "notifyd_jobs_total 3\n");
}

TEST(MetricsRegistryTest, LabelledFamilyOneSeriesPerLabelSetInLabelOrder) {
  Registry r;
  auto& requests = r.counter("http_requests_total", "Requests.", {"route", "status"});
  requests.with({"/v1/Services", "201"}).inc();
  requests.with({"/v1/Credentials", "200"}).inc(4);
  requests.with({"/v1/Services", "201"}).inc();
  auto& depth = r.gauge("queue_depth", "Depth.");
  depth.with({}).set(7);
  depth.with({}).add(-2.5);
  EXPECT_EQ(scrape(r),
            "# HELP http_requests_total Requests.\n"
            "# TYPE http_requests_total counter\n"
            "http_requests_total{route=\"/v1/Credentials\",status=\"200\"} 4\n"
            "http_requests_total{route=\"/v1/Services\",status=\"201\"} 2\n"
            "# HELP queue_depth Depth.\n"
            "# TYPE queue_depth gauge\n"
            "queue_depth 4.5\n");
  // The same label values give the same cell.
  EXPECT_EQ(&requests.with({"/v1/Services", "201"}), &requests.with({"/v1/Services", "201"}));
}

TEST(MetricsRegistryTest, HistogramHasCumulativeLeBucketsSumAndCount) {
  Registry r;
  auto& latency = r.histogram("lat_seconds", "Latency.", {"route"}, {0.125, 1});
  auto& a = latency.with({"/a"});
  a.observe(0.0625);
  a.observe(0.125);  // le is inclusive
  a.observe(0.5);
  a.observe(3);
  EXPECT_EQ(scrape(r),
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{route=\"/a\",le=\"0.125\"} 2\n"
            "lat_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"
            "lat_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"
            "lat_seconds_sum{route=\"/a\"} 3.6875\n"
            "lat_seconds_count{route=\"/a\"} 4\n");
}

TEST(MetricsRegistryTest, LabelValuesAreEscapedInTheScrape) {
  Registry r;
  r.counter("odd_total", "Odd \\ help\nsecond line.", {"value"}).with({"a\"b\\c\nd"}).inc();
  EXPECT_EQ(scrape(r),
            "# HELP odd_total Odd \\\\ help\\nsecond line.\n"
            "# TYPE odd_total counter\n"
            "odd_total{value=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsRegistryTest, CollectorsComeAfterOwnFamiliesInOrderAdded) {
  Registry r;
  r.counter("own_total", "Own.").with({}).inc();
  int calls = 0;
  r.add_collector([&calls] {
    ++calls;
    return std::vector<FamilySnapshot>{{"first", "F.", MetricType::gauge, {{"", {{"k", "v"}}, 1}}}};
  });
  r.add_collector([] {
    return std::vector<FamilySnapshot>{{"second_total", "S.", MetricType::counter, {{"", {}, 9}}}};
  });
  EXPECT_EQ(scrape(r),
            "# HELP own_total Own.\n# TYPE own_total counter\nown_total 1\n"
            "# HELP first F.\n# TYPE first gauge\nfirst{k=\"v\"} 1\n"
            "# HELP second_total S.\n# TYPE second_total counter\nsecond_total 9\n");
  scrape(r);
  EXPECT_EQ(calls, 2);  // at every scrape
}

TEST(MetricsRegistryTest, BadNamesDuplicatesAndWrongLabelCountsAreBugs) {
  Registry r;
  EXPECT_THROW(r.counter("9starts_with_digit", "x"), std::invalid_argument);
  EXPECT_THROW(r.counter("has-dash", "x"), std::invalid_argument);
  EXPECT_THROW(r.counter("ok_total", "x", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(r.counter("ok_total", "x", {"a:b"}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h", "x", {"le"}, {1}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h", "x", {}, {1, 1}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h", "x", {}, {2, 1}), std::invalid_argument);
  auto& ok = r.counter("ok_total", "x", {"a"});
  EXPECT_THROW(r.gauge("ok_total", "again"), std::invalid_argument);
  EXPECT_THROW(ok.with({}), std::invalid_argument);
  EXPECT_THROW(ok.with({"1", "2"}), std::invalid_argument);
  EXPECT_TRUE(is_valid_metric_name("notifyd:rule_total"));
  EXPECT_FALSE(is_valid_label_name("9x"));
}

TEST(MetricsRegistryTest, ConcurrentUpdatesAreAllCounted) {
  Registry r;
  auto& counter = r.counter("c_total", "c", {"who"});
  auto& histogram = r.histogram("h_seconds", "h", {}, {0.5});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string who = t % 2 == 0 ? "even" : "odd";  // two threads share each cell
      for (int i = 0; i < kPerThread; ++i) {
        counter.with({who}).inc();
        histogram.with({}).observe(i % 2 == 0 ? 0.25 : 1.0);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(counter.with({"even"}).value(), 2u * kPerThread);
  EXPECT_EQ(counter.with({"odd"}).value(), 2u * kPerThread);
  const auto s = histogram.with({}).snapshot();
  ASSERT_EQ(s.cumulative.size(), 2u);
  EXPECT_EQ(s.cumulative[0], static_cast<std::uint64_t>(kThreads * kPerThread / 2));
  EXPECT_EQ(s.cumulative[1], static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_DOUBLE_EQ(s.sum, kThreads * kPerThread / 2 * 1.25);
}

}  // namespace
}  // namespace notifyd::metrics
