// The plain metric model every collector produces and every serializer
// consumes: families of samples, no formatting concerns.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
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

// Series of one family produced on demand, a batch at a time, instead of
// being listed in the family up front. A collector with many series (the
// aggregator: 110 lines per backend) takes a compact snapshot of its state
// in Collect and hands out sources that read it, so a scrape never holds
// every series in this model's form (strings and vectors per series, ~4 KB
// per backend) at once: a serializer holds one batch and reuses it.
//
// A source is read after Collect has returned, by whichever thread renders
// the page, possibly while the collector goes on changing: it must only
// read data it owns (the snapshot), and size() must never change. Anything
// that can fail belongs in Collect, where the Registry catches and counts
// it. A batch that fails anyway (an exception, or the wrong number of
// series) leaves the rest of that source out of the page, which goes on
// with the next source or family, and is counted (SeriesSourceFailures() in
// text_format.h, exported with the Registry's collector errors).
template <typename Series>
class SeriesSource {
 public:
  virtual ~SeriesSource() = default;

  // Number of series.
  virtual size_t size() const = 0;

  // Makes `out` hold exactly series [begin, end) (begin < end <= size()), in
  // order. `out` comes in holding an earlier batch: assigning into its
  // elements, rather than building new ones, reuses their strings' and
  // vectors' memory, so that a scrape allocates per batch size, not per
  // series.
  virtual void Produce(size_t begin, size_t end, std::vector<Series>& out) const = 0;
};
using SampleSource = SeriesSource<Sample>;
using HistogramSource = SeriesSource<HistogramSample>;

// A metric family. For counters `name` includes the `_total` suffix
// (Prometheus text 0.0.4 spelling); the OpenMetrics serializer strips it
// from the metadata lines.
//
// Its series are the listed ones (`samples` for counters and gauges,
// `histograms` for histograms) followed by those of each source of the same
// kind, in order.
struct MetricFamily {
  std::string name;
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<Sample> samples;              // counters and gauges
  std::vector<HistogramSample> histograms;  // histograms
  // "= {}": families built with braces, MetricFamily{name, help, type,
  // samples}, need not spell these out (no -Wmissing-field-initializers).
  std::vector<std::shared_ptr<const SampleSource>> sample_sources = {};
  std::vector<std::shared_ptr<const HistogramSource>> histogram_sources = {};
};

// What a family is, declared once and apart from its values: name, type,
// help text and the names of the labels its series carry (all of them, in
// the order a series lists them; a series may leave out one that does not
// apply, like `pool` for a backend without one). Collectors build their
// families from descriptors (MakeFamily) and only fill in the series at
// each scrape; docs/metrics.md is checked against the same descriptors
// (tests/unit/test_metrics_doc.cc).
struct MetricDescriptor {
  static constexpr size_t kMaxLabels = 4;

  std::string_view name;
  MetricType type = MetricType::kGauge;
  std::array<std::string_view, kMaxLabels> labels = {};  // unused ones empty
  std::string_view help;
};

// The family a descriptor declares, without series.
inline MetricFamily MakeFamily(const MetricDescriptor& descriptor) {
  MetricFamily family;
  family.name = descriptor.name;
  family.help = descriptor.help;
  family.type = descriptor.type;
  return family;
}

// A series' labels: one value for each of the descriptor's label names,
// from the first, in order. More values than names throw std::out_of_range.
inline Labels LabelValues(const MetricDescriptor& descriptor,
                          std::initializer_list<std::string_view> values) {
  Labels labels;
  labels.reserve(values.size());
  size_t i = 0;
  for (std::string_view value : values)
    labels.push_back({std::string(descriptor.labels.at(i++)), std::string(value)});
  return labels;
}

// The number of series of the family's own type (samples for counters and
// gauges, histograms for histograms), sources included.
inline size_t SeriesCount(const MetricFamily& family) {
  auto count = [](const auto& listed, const auto& sources) {
    size_t n = listed.size();
    for (const auto& source : sources) n += source->size();
    return n;
  };
  return family.type == MetricType::kHistogram ? count(family.histograms, family.histogram_sources)
                                               : count(family.samples, family.sample_sources);
}

// Produces every series of the family's sources and appends them to the
// listed ones, leaving no sources. For code that wants all series at hand
// (tests, tools); a scrape never does this, it is what sources avoid.
inline void Materialize(MetricFamily& family) {
  auto drain = [](auto& listed, auto& sources) {
    for (const auto& source : sources) {
      if (source->size() == 0) continue;
      typename std::remove_reference_t<decltype(listed)> produced;
      source->Produce(0, source->size(), produced);
      for (auto& series : produced) listed.push_back(std::move(series));
    }
    sources.clear();
  };
  drain(family.samples, family.sample_sources);
  drain(family.histograms, family.histogram_sources);
}

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
