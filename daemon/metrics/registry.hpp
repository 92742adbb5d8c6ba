#pragma once
// Registry: the metric families of one process (counters, gauges, histograms with labels) and the
// collectors that report values kept elsewhere (dispatcher and pool stats) at scrape time, so those are
// never counted twice. Owned by the app (through the Router); families are registered at startup and
// live as long as the registry, so the references it hands out may be cached. Every method is
// thread-safe. Registering an invalid or duplicate name throws std::invalid_argument (a bug); a collector
// that throws fails that scrape (the exception reaches the caller).
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/metrics/family.hpp"
#include "daemon/metrics/instruments.hpp"
#include "daemon/metrics/snapshot.hpp"

namespace notifyd::metrics {

class Registry {
 public:
  using Collector = std::function<std::vector<FamilySnapshot>()>;

  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<Counter>& counter(std::string name, std::string help, std::vector<std::string> label_names = {});
  Family<Gauge>& gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  Family<Histogram>& histogram(std::string name, std::string help, std::vector<std::string> label_names,
                               std::vector<double> upper_bounds);

  // Runs at every scrape (on the scraping thread): must be quick and must not block.
  void add_collector(Collector collector);

  // The registry's own families in registration order, then each collector's, in the order added.
  std::vector<FamilySnapshot> collect() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Metric names [a-zA-Z_:][a-zA-Z0-9_:]*; label names [a-zA-Z_][a-zA-Z0-9_]* and not starting with "__".
bool is_valid_metric_name(std::string_view name);
bool is_valid_label_name(std::string_view name);

}  // namespace notifyd::metrics
