#pragma once
// Family<Cell>: one metric's instruments, one per combination of label values, created at first use and
// kept for the family's life (references stay valid). Lookups of an existing combination take a shared
// lock and allocate nothing, so concurrent updates of different or equal label sets do not serialise on
// one lock; only the first use of a combination takes the exclusive lock. with() throws
// std::invalid_argument when the number of values differs from the label names (a bug).
#include <algorithm>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace notifyd::metrics {

template <class Cell>
class Family {
 public:
  using Factory = std::function<std::unique_ptr<Cell>()>;

  Family(std::vector<std::string> label_names, Factory make)
      : label_names_(std::move(label_names)), make_(std::move(make)) {}
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  Cell& with(std::initializer_list<std::string_view> values) {
    return with(std::span<const std::string_view>(values.begin(), values.size()));
  }

  Cell& with(std::span<const std::string_view> values) {
    if (values.size() != label_names_.size()) {
      throw std::invalid_argument("metric family has " + std::to_string(label_names_.size()) +
                                  " labels, got " + std::to_string(values.size()) + " values");
    }
    {
      std::shared_lock lk(mu_);
      if (auto it = cells_.find(values); it != cells_.end()) return *it->second;
    }
    std::unique_lock lk(mu_);
    if (auto it = cells_.find(values); it != cells_.end()) return *it->second;
    std::vector<std::string> key(values.begin(), values.end());
    return *cells_.emplace(std::move(key), make_()).first->second;
  }

  const std::vector<std::string>& label_names() const { return label_names_; }

  // Calls f(label values, cell) for every combination used so far, in label-value order.
  void for_each(const std::function<void(const std::vector<std::string>&, const Cell&)>& f) const {
    std::shared_lock lk(mu_);
    for (const auto& [values, cell] : cells_) f(values, *cell);
  }

 private:
  // Orders stored keys and looked-up spans alike, so a lookup needs no std::vector<std::string>.
  struct Less {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                          [](std::string_view x, std::string_view y) { return x < y; });
    }
  };

  std::vector<std::string> label_names_;
  Factory make_;
  mutable std::shared_mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Cell>, Less> cells_;
};

}  // namespace notifyd::metrics
