#include "daemon/metrics/registry.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <variant>

#include "daemon/metrics/text_format.hpp"

namespace notifyd::metrics {
namespace {

bool is_name_char(char c, bool first, bool colon_ok) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (c == ':') return colon_ok;
  return !first && c >= '0' && c <= '9';
}

Labels labels_of(const std::vector<std::string>& names, const std::vector<std::string>& values) {
  Labels out;
  out.reserve(names.size() + 1);
  for (std::size_t i = 0; i < names.size(); ++i) out.emplace_back(names[i], values[i]);
  return out;
}

}  // namespace

bool is_valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!is_name_char(name[i], i == 0, true)) return false;
  }
  return true;
}

bool is_valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!is_name_char(name[i], i == 0, false)) return false;
  }
  return true;
}

struct Registry::Impl {
  struct Entry {
    std::string name;
    std::string help;
    std::variant<std::unique_ptr<Family<Counter>>, std::unique_ptr<Family<Gauge>>,
                 std::unique_ptr<Family<Histogram>>>
        family;
  };

  mutable std::mutex mu;
  std::vector<Entry> entries;
  std::vector<Collector> collectors;

  // Checks the names; the caller holds `mu`.
  void check(const std::string& name, const std::vector<std::string>& label_names, bool histogram) const {
    if (!is_valid_metric_name(name)) throw std::invalid_argument("invalid metric name \"" + name + "\"");
    for (const auto& label : label_names) {
      if (!is_valid_label_name(label) || (histogram && label == "le")) {
        throw std::invalid_argument("invalid label name \"" + label + "\" on " + name);
      }
    }
    if (std::any_of(entries.begin(), entries.end(), [&](const Entry& e) { return e.name == name; })) {
      throw std::invalid_argument("metric \"" + name + "\" registered twice");
    }
  }
};

Registry::Registry() : impl_(std::make_unique<Impl>()) {}
Registry::~Registry() = default;

Family<Counter>& Registry::counter(std::string name, std::string help, std::vector<std::string> label_names) {
  std::lock_guard lk(impl_->mu);
  impl_->check(name, label_names, false);
  auto family =
      std::make_unique<Family<Counter>>(std::move(label_names), [] { return std::make_unique<Counter>(); });
  auto& ref = *family;
  impl_->entries.push_back({std::move(name), std::move(help), std::move(family)});
  return ref;
}

Family<Gauge>& Registry::gauge(std::string name, std::string help, std::vector<std::string> label_names) {
  std::lock_guard lk(impl_->mu);
  impl_->check(name, label_names, false);
  auto family =
      std::make_unique<Family<Gauge>>(std::move(label_names), [] { return std::make_unique<Gauge>(); });
  auto& ref = *family;
  impl_->entries.push_back({std::move(name), std::move(help), std::move(family)});
  return ref;
}

Family<Histogram>& Registry::histogram(std::string name, std::string help,
                                       std::vector<std::string> label_names,
                                       std::vector<double> upper_bounds) {
  std::lock_guard lk(impl_->mu);
  impl_->check(name, label_names, true);
  Histogram probe(upper_bounds);  // throws now, at registration, for unusable bounds
  auto family = std::make_unique<Family<Histogram>>(
      std::move(label_names),
      [bounds = std::move(upper_bounds)] { return std::make_unique<Histogram>(bounds); });
  auto& ref = *family;
  impl_->entries.push_back({std::move(name), std::move(help), std::move(family)});
  return ref;
}

void Registry::add_collector(Collector collector) {
  std::lock_guard lk(impl_->mu);
  impl_->collectors.push_back(std::move(collector));
}

std::vector<FamilySnapshot> Registry::collect() const {
  std::vector<FamilySnapshot> out;
  std::vector<Collector> collectors;
  {
    std::lock_guard lk(impl_->mu);
    collectors = impl_->collectors;
    for (const auto& entry : impl_->entries) {
      FamilySnapshot snap;
      snap.name = entry.name;
      snap.help = entry.help;
      if (const auto* counters = std::get_if<std::unique_ptr<Family<Counter>>>(&entry.family)) {
        snap.type = MetricType::counter;
        const auto& names = (*counters)->label_names();
        (*counters)->for_each([&](const std::vector<std::string>& values, const Counter& c) {
          snap.samples.push_back({"", labels_of(names, values), static_cast<double>(c.value())});
        });
      } else if (const auto* gauges = std::get_if<std::unique_ptr<Family<Gauge>>>(&entry.family)) {
        snap.type = MetricType::gauge;
        const auto& names = (*gauges)->label_names();
        (*gauges)->for_each([&](const std::vector<std::string>& values, const Gauge& g) {
          snap.samples.push_back({"", labels_of(names, values), g.value()});
        });
      } else {
        const auto& histograms = std::get<std::unique_ptr<Family<Histogram>>>(entry.family);
        snap.type = MetricType::histogram;
        const auto& names = histograms->label_names();
        histograms->for_each([&](const std::vector<std::string>& values, const Histogram& h) {
          const auto s = h.snapshot();
          const Labels labels = labels_of(names, values);
          for (std::size_t i = 0; i < s.cumulative.size(); ++i) {
            Labels with_le = labels;
            with_le.emplace_back("le", i < s.upper_bounds.size() ? format_number(s.upper_bounds[i]) : "+Inf");
            snap.samples.push_back({"_bucket", std::move(with_le), static_cast<double>(s.cumulative[i])});
          }
          snap.samples.push_back({"_sum", labels, s.sum});
          snap.samples.push_back({"_count", labels, static_cast<double>(s.cumulative.back())});
        });
      }
      out.push_back(std::move(snap));
    }
  }
  for (const auto& collector : collectors) {
    auto families = collector();
    for (auto& f : families) out.push_back(std::move(f));
  }
  return out;
}

}  // namespace notifyd::metrics
