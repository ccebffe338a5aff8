// A fixed-bucket histogram in base units; bounds are shared by all series
// of one metric so each series stores only its counts.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

namespace sockeye {

using BucketBounds = std::shared_ptr<const std::vector<double>>;

class Histogram {
 public:
  explicit Histogram(BucketBounds bounds) : bounds_(std::move(bounds)), counts_(bounds_->size()) {}

  void Observe(double value) {
    // le semantics: a value equal to a bound belongs to that bucket.
    auto it = std::lower_bound(bounds_->begin(), bounds_->end(), value);
    if (it != bounds_->end()) ++counts_[static_cast<size_t>(it - bounds_->begin())];
    sum_ += value;
    ++count_;
  }

  uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  // Non-cumulative, one per bound (see metrics::HistogramSample).
  const std::vector<uint64_t>& bucket_counts() const { return counts_; }

 private:
  BucketBounds bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

}  // namespace sockeye
