// The plain metric model every collector produces and every serializer
// consumes: families of samples, no formatting concerns.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sockeye::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

struct Label {
  std::string name;
  std::string value;
};
using Labels = std::vector<Label>;

// A counter or gauge value.
struct Sample {
  Labels labels;
  double value = 0;
};

// One histogram series. bucket_counts[i] is the number of observations
// <= upper_bounds[i] that were not counted in an earlier bucket (i.e. NOT
// cumulative); observations above the last bound only count in `count`.
// Serializers produce the cumulative `_bucket{le=...}` lines and `+Inf`.
struct HistogramSample {
  Labels labels;
  std::vector<double> upper_bounds;
  std::vector<uint64_t> bucket_counts;
  double sum = 0;
  uint64_t count = 0;
};

// A metric family. For counters `name` includes the `_total` suffix
// (Prometheus text 0.0.4 spelling); the OpenMetrics serializer strips it
// from the metadata lines.
struct MetricFamily {
  std::string name;
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<Sample> samples;              // counters and gauges
  std::vector<HistogramSample> histograms;  // histograms
};

// A source of metric families, called once per scrape. Implementations
// must be thread-safe with respect to their own state; an exception thrown
// from Collect is caught by the Registry and counted, it never fails the
// whole scrape.
class Collector {
 public:
  virtual ~Collector() = default;
  virtual void Collect(std::vector<MetricFamily>& out) = 0;
};

}  // namespace sockeye::metrics
