// The set of collectors behind one /metrics endpoint.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "exporters/metric_model.h"

namespace sockeye::metrics {

inline constexpr char kCollectorErrorsMetric[] = "sockeye_collector_errors_total";
// The family Gather() appends to every scrape.
inline constexpr MetricDescriptor kCollectorErrors{
    .name = kCollectorErrorsMetric,
    .type = MetricType::kCounter,
    .help =
        "Collector failures during scrapes (a collector that threw, a family whose type clashed "
        "with another's, a series source that failed half-way through a page); the failed "
        "part's metrics are missing from that scrape."};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Adds a collector; null is ignored. Safe to call while another thread is
  // in Gather (that Gather may or may not see the new collector).
  void Register(std::shared_ptr<Collector> collector);

  // Calls every collector in registration order and returns their families,
  // with same-named families merged into the first one (listed series and
  // series sources appended; a merged family renders all listed series
  // before any source's, see MetricFamily),
  // followed by `sockeye_collector_errors_total`. A collector that throws
  // contributes nothing to this scrape and increments the error counter; so
  // does a family whose name another collector already used with a
  // different type (it is dropped, since the output would be invalid). The
  // counter also includes series sources that failed while a page was
  // rendered (SeriesSourceFailures(), text_format.h).
  // Concurrent calls are allowed; collectors must be thread-safe.
  std::vector<MetricFamily> Gather();

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<Collector>> collectors_;  // guarded by mu_
  std::atomic<uint64_t> errors_{0};
};

}  // namespace sockeye::metrics
