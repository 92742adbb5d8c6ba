// The Prometheus text format (0.0.4) renderer: exact text of HELP/TYPE lines and samples, label and HELP
// escaping, and number formatting.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "daemon/metrics/text_format.hpp"

namespace notifyd::metrics {
namespace {

TEST(MetricsTextFormatTest, CounterWithoutLabels) {
  const std::vector<FamilySnapshot> families = {
      {"jobs_total", "Jobs done.", MetricType::counter, {{"", {}, 3}}}};
  EXPECT_EQ(render_text(families),
            "# HELP jobs_total Jobs done.\n"
            "# TYPE jobs_total counter\n"
            "jobs_total 3\n");
}

TEST(MetricsTextFormatTest, LabelsInOrderAndSeveralFamilies) {
  const std::vector<FamilySnapshot> families = {
      {"requests_total",
       "Requests.",
       MetricType::counter,
       {{"", {{"route", "/a"}, {"status", "200"}}, 2}, {"", {{"route", "/b"}, {"status", "404"}}, 1}}},
      {"depth", "Queue depth.", MetricType::gauge, {{"", {}, -4}}}};
  EXPECT_EQ(render_text(families),
            "# HELP requests_total Requests.\n"
            "# TYPE requests_total counter\n"
            "requests_total{route=\"/a\",status=\"200\"} 2\n"
            "requests_total{route=\"/b\",status=\"404\"} 1\n"
            "# HELP depth Queue depth.\n"
            "# TYPE depth gauge\n"
            "depth -4\n");
}

TEST(MetricsTextFormatTest, LabelValuesAreEscaped) {
  const std::vector<FamilySnapshot> families = {
      {"x", "h", MetricType::gauge, {{"", {{"path", "C:\\dir \"q\"\nnext"}}, 1}}}};
  EXPECT_EQ(render_text(families),
            "# HELP x h\n"
            "# TYPE x gauge\n"
            "x{path=\"C:\\\\dir \\\"q\\\"\\nnext\"} 1\n");
  EXPECT_EQ(escape_label_value("plain {route}/ok"), "plain {route}/ok");
}

TEST(MetricsTextFormatTest, HelpIsEscapedButQuotesAreNot) {
  EXPECT_EQ(escape_help("line one\nline \"two\" \\ end"), "line one\\nline \"two\" \\\\ end");
  const std::vector<FamilySnapshot> families = {{"y", "a\nb", MetricType::counter, {}}};
  EXPECT_EQ(render_text(families), "# HELP y a\\nb\n# TYPE y counter\n");
}

TEST(MetricsTextFormatTest, HistogramSamplesKeepTheirSuffixes) {
  const std::vector<FamilySnapshot> families = {{"lat_seconds",
                                                 "Latency.",
                                                 MetricType::histogram,
                                                 {{"_bucket", {{"le", "0.5"}}, 1},
                                                  {"_bucket", {{"le", "+Inf"}}, 2},
                                                  {"_sum", {}, 2.25},
                                                  {"_count", {}, 2}}}};
  EXPECT_EQ(render_text(families),
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"0.5\"} 1\n"
            "lat_seconds_bucket{le=\"+Inf\"} 2\n"
            "lat_seconds_sum 2.25\n"
            "lat_seconds_count 2\n");
}

TEST(MetricsTextFormatTest, Numbers) {
  EXPECT_EQ(format_number(0), "0");
  EXPECT_EQ(format_number(42), "42");
  EXPECT_EQ(format_number(-2), "-2");
  EXPECT_EQ(format_number(1e300), "1e+300");  // the shortest form that reads back exactly
  EXPECT_EQ(format_number(0.1), "0.1");
  EXPECT_EQ(format_number(9007199254740992.0), "9007199254740992");
  EXPECT_EQ(format_number(0.005), "0.005");
  EXPECT_EQ(format_number(2.5), "2.5");
  EXPECT_EQ(format_number(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_number(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_number(std::nan("")), "NaN");
}

TEST(MetricsTextFormatTest, ContentTypeIsVersion004) {
  EXPECT_EQ(kTextFormatContentType, "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace
}  // namespace notifyd::metrics
