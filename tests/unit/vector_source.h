// Test helper: a series source (exporters/metric_model.h) that hands out the
// series of a vector it owns, a batch at a time, recording each call.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "exporters/metric_model.h"

namespace sockeye::metrics::test_util {

template <typename Series>
class VectorSource final : public SeriesSource<Series> {
 public:
  struct Call {
    size_t begin, end;
    size_t size_on_entry;  // what `out` held: the previous batch
  };

  explicit VectorSource(std::vector<Series> series) : series_(std::move(series)) {}
  size_t size() const override { return series_.size(); }
  void Produce(size_t begin, size_t end, std::vector<Series>& out) const override {
    calls.push_back({begin, end, out.size()});
    out.resize(end - begin);
    std::copy(series_.begin() + static_cast<std::ptrdiff_t>(begin),
              series_.begin() + static_cast<std::ptrdiff_t>(end), out.begin());
  }

  // Every Produce so far, in order. Not synchronized: for pages rendered by
  // one thread at a time.
  mutable std::vector<Call> calls;

 private:
  std::vector<Series> series_;
};

}  // namespace sockeye::metrics::test_util
