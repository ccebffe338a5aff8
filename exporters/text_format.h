// Renders metric families as Prometheus text exposition format 0.0.4 or
// OpenMetrics 1.0.0 text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exporters/metric_model.h"

namespace sockeye::metrics {

enum class Format { kPrometheusText004, kOpenMetrics100 };

// The exact Content-Type header value for `format`.
const char* ContentType(Format format);

// Renders `families` in order. Families without any series of their type
// (SeriesCount() == 0: no samples for counters/gauges, no histograms for
// histograms, listed or from sources) are skipped entirely, in both
// formats, so the output never carries metadata for series that do not
// exist. Family names are expected to be unique; merging duplicates is the
// Registry's job. Metric and label names are not escaped (collectors use
// constants) and are checked only by debug asserts.
std::string Serialize(const std::vector<MetricFamily>& families, Format format);

// The same rendering as Serialize, produced a piece at a time into a buffer
// the caller owns, so that a page of tens of MB never has to exist in one
// string (a scrape streams it out). Serialize is built on this class, so the
// concatenated pieces are byte for byte Serialize's output.
//
//   Serializer serializer(families, format);
//   std::string chunk;
//   while (!serializer.done()) {
//     chunk.clear();
//     serializer.AppendTo(chunk, 64 * 1024);
//     Send(chunk);
//   }
// Series source batches that failed while a page was rendered, over the
// process's life (see SeriesSource): the rest of each such source is missing
// from that page.
uint64_t SeriesSourceFailures();

class Serializer {
 public:
  // Series asked of a source at a time: large enough that a call per
  // batch costs nothing, small enough that the batch (~500 bytes a
  // histogram series) stays in cache next to the text being written.
  static constexpr size_t kSourceBatchSeries = 64;

  // `families` is read, not copied: it must stay alive and unchanged for as
  // long as AppendTo is called. Series from sources are produced as they are
  // rendered, kSourceBatchSeries at a time.
  Serializer(const std::vector<MetricFamily>& families, Format format);
  Serializer(const Serializer&) = delete;
  Serializer& operator=(const Serializer&) = delete;

  // Appends the next part of the page to `out` (never clearing it): whole
  // units (a family's HELP/TYPE lines, one counter or gauge sample, every
  // line of one histogram series, the closing "# EOF") until out.size()
  // reaches `soft_limit` or the page is complete. Unless the page is
  // already complete, at least one unit is appended even when `out` starts
  // at or above the limit, so a loop always makes progress; a unit is never
  // split, so `out` may end up above the limit by one unit (a few KiB for a
  // histogram series). Returns !done().
  bool AppendTo(std::string& out, size_t soft_limit);

  // True once the whole page has been appended, i.e. as soon as nothing is
  // left (not one call later). A page without any sample in the 0.0.4
  // format is done from the start.
  bool done() const { return done_; }

 private:
  void SkipEmptyFamilies();
  void EnterFamily(const MetricFamily& family);
  // The family's next series: a listed one, or one from a source, produced
  // a batch at a time into `batch`, valid until the next call. Null when a
  // failed source took the family's last series with it (the series it
  // would have produced are taken out of series_count_).
  template <typename Series>
  const Series* NextSeries(const std::vector<Series>& listed,
                           const std::vector<std::shared_ptr<const SeriesSource<Series>>>& sources,
                           std::vector<Series>& batch);
  void AppendHistogramSeries(std::string& out, const HistogramSample& histogram);

  const std::vector<MetricFamily>& families_;
  const Format format_;
  size_t family_ = 0;        // index of the family being rendered
  size_t series_ = 0;        // series of it appended so far
  size_t series_count_ = 0;  // SeriesCount() of it
  bool in_family_ = false;   // its metadata has been written
  bool done_ = false;

  // Where the next series comes from: part_ 0 is the family's listed
  // series, part_ i + 1 its source i; index_ is the series within the part.
  // The batch holds the part's series [batch_begin_, batch_end_).
  size_t part_ = 0;
  size_t index_ = 0;
  size_t batch_begin_ = 0;
  size_t batch_end_ = 0;
  std::vector<Sample> sample_batch_;
  std::vector<HistogramSample> histogram_batch_;

  // Per-family names, computed once per family rather than per series.
  std::string_view name_;    // family name in this format (counters lose _total in OpenMetrics)
  std::string sample_name_;  // name on counter and gauge sample lines
  std::string bucket_name_;  // name + "_bucket"
  // Scratch reused across series to avoid an allocation per series.
  std::string bucket_prefix_;                         // name_bucket{labels...,le="
  std::vector<std::pair<double, uint64_t>> buckets_;  // sorted, merged bounds
};

// Number rendering (number_format.cc), exposed for tests. Sample values: NaN, +Inf, -Inf;
// integral values below 1e17 in plain digits ("42", "1000000000000000");
// everything else as the shortest round-trip form ("0.25", "1.5e-07").
// Never depends on the C or C++ locale.
std::string FormatValue(double value);

// The `le` label value of a bucket bound: Go's %g shortest rendering
// ("0.005", "1", "2.5", "1e+06"), which is what Prometheus client libraries
// emit. OpenMetrics requires canonical numbers, i.e. the same rendering with
// ".0" appended when there is neither a decimal point nor an exponent
// ("1.0", "100000.0").
std::string FormatBucketBound(double bound, Format format);

}  // namespace sockeye::metrics
