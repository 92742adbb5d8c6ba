#pragma once
// The three instruments behind a metric family's label set: Counter, Gauge and Histogram. Each is a few
// atomics updated with relaxed ordering, so any thread may update one with no lock; a scrape reads them
// while they move (a histogram's _sum may lag its buckets by the observations in progress). Never throw
// once built; Histogram's constructor throws std::invalid_argument for unusable bounds (a bug).
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace notifyd::metrics {

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // Finite upper bounds in increasing order; the +Inf bucket is implied.
  explicit Histogram(std::vector<double> upper_bounds);

  void observe(double value) noexcept;

  struct Snapshot {
    std::vector<double> upper_bounds;       // as given (without +Inf)
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // per bucket, not cumulative; last is +Inf
  std::atomic<double> sum_{0};
};

// Latency buckets in seconds, from 1 ms to 10 s: an API request is usually a few ms (SQLite on local disk)
// and a slow store shows up in the upper buckets.
std::vector<double> latency_buckets_seconds();

}  // namespace notifyd::metrics
