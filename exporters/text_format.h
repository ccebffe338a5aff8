// Renders metric families as Prometheus text exposition format 0.0.4 or
// OpenMetrics 1.0.0 text.
#pragma once

#include <string>
#include <vector>

#include "exporters/metric_model.h"

namespace sockeye::metrics {

enum class Format { kPrometheusText004, kOpenMetrics100 };

// The exact Content-Type header value for `format`.
const char* ContentType(Format format);

// Renders `families` in order. Families without any sample of their type
// (no `samples` for counters/gauges, no `histograms` for histograms) are
// skipped entirely, in both formats, so the output never carries metadata
// for series that do not exist. Family names are expected to be unique;
// merging duplicates is the Registry's job. Metric and label names are not
// escaped (collectors use constants) and are checked only by debug asserts.
std::string Serialize(const std::vector<MetricFamily>& families, Format format);

// Number rendering, exposed for tests. Sample values: NaN, +Inf, -Inf;
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
