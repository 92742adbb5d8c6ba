#pragma once
// What a scrape sees: metric families as plain values (name, help, type, samples with their labels), built
// by Registry::collect() from its own instruments and by collectors from counters kept elsewhere
// (DispatcherStats, pool stats). Plain data, no synchronisation: each scrape builds its own.
#include <string>
#include <utility>
#include <vector>

namespace notifyd::metrics {

enum class MetricType { counter, gauge, histogram };

using Labels = std::vector<std::pair<std::string, std::string>>;  // name, value; in this order on the wire

struct Sample {
  std::string suffix;  // appended to the family name: "", or "_bucket", "_sum", "_count" for histograms
  Labels labels;
  double value = 0;
};

struct FamilySnapshot {
  std::string name;  // counters end in "_total" (exposition format 0.0.4 keeps it in the TYPE line)
  std::string help;
  MetricType type = MetricType::counter;
  std::vector<Sample> samples;
};

}  // namespace notifyd::metrics
