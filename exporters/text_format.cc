// The serializer: the page's structure (families, metadata, series, the
// OpenMetrics "# EOF") and its streaming state. Numbers are written by
// number_format.cc.
#include "exporters/text_format.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exporters/number_format.h"

namespace sockeye::metrics {
namespace {

constexpr std::string_view kTotalSuffix = "_total";

bool IsAsciiAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

[[maybe_unused]] bool IsValidMetricName(std::string_view name) {
  if (name.empty() || IsAsciiDigit(name.front())) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return IsAsciiAlpha(c) || IsAsciiDigit(c) || c == '_' || c == ':';
  });
}

// Names starting with "__" are reserved for Prometheus' internal use.
[[maybe_unused]] bool IsValidLabelName(std::string_view name) {
  if (name.empty() || IsAsciiDigit(name.front()) || name.starts_with("__")) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return IsAsciiAlpha(c) || IsAsciiDigit(c) || c == '_'; });
}

[[maybe_unused]] bool LabelsAreValid(const Labels& labels, bool histogram) {
  return std::all_of(labels.begin(), labels.end(), [histogram](const Label& label) {
    return IsValidLabelName(label.name) && !(histogram && label.name == "le");
  });
}

// 0.0.4 HELP text only knows the \\ and \n escapes; OpenMetrics HELP is an
// escaped-string like label values, where a bare '"' is not allowed.
void AppendEscaped(std::string& out, std::string_view text, bool escape_quote) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && escape_quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void AppendLabels(std::string& out, const Labels& labels, std::string_view extra_name = {},
                  std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (const Label& label : labels) {
    if (!first) out += ',';
    first = false;
    out += label.name;
    out += "=\"";
    AppendEscaped(out, label.value, /*escape_quote=*/true);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;  // a formatted number, nothing to escape
    out += '"';
  }
  out += '}';
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

void AppendMetadata(std::string& out, std::string_view name, const MetricFamily& family,
                    Format format) {
  const bool open_metrics = format == Format::kOpenMetrics100;
  auto append_help = [&] {
    out += "# HELP ";
    out += name;
    out += ' ';
    AppendEscaped(out, family.help, /*escape_quote=*/open_metrics);
    out += '\n';
  };
  auto append_type = [&] {
    out += "# TYPE ";
    out += name;
    out += ' ';
    out += TypeName(family.type);
    out += '\n';
  };
  // Each format's customary order: client libraries write HELP first for
  // 0.0.4; the OpenMetrics spec asks for TYPE, UNIT, HELP.
  if (open_metrics) {
    append_type();
    append_help();
  } else {
    append_help();
    append_type();
  }
}

void AppendSample(std::string& out, std::string_view sample_name, const Sample& sample) {
  assert(LabelsAreValid(sample.labels, /*histogram=*/false));
  out += sample_name;
  AppendLabels(out, sample.labels);
  out += ' ';
  AppendValue(out, sample.value);
  out += '\n';
}

// Fills `buckets` with the bounds in increasing order and their
// non-cumulative counts. Collectors should already provide sorted, unique,
// finite bounds; sorting here keeps the output valid (buckets MUST
// increase) even if one does not. A +Inf bound is dropped because the +Inf
// bucket is always derived from `count`. `buckets` is the caller's so its
// capacity is reused from one series to the next.
void SortBuckets(const HistogramSample& histogram,
                 std::vector<std::pair<double, uint64_t>>& buckets) {
  assert(histogram.upper_bounds.size() == histogram.bucket_counts.size());
  const size_t n = std::min(histogram.upper_bounds.size(), histogram.bucket_counts.size());
  buckets.clear();
  for (size_t i = 0; i < n; ++i) {
    double bound = histogram.upper_bounds[i];
    if (std::isnan(bound) || (std::isinf(bound) && bound > 0)) continue;
    buckets.emplace_back(bound, histogram.bucket_counts[i]);
  }
  auto by_bound = [](const auto& a, const auto& b) { return a.first < b.first; };
  // stable_sort allocates a buffer on every call; the common case is
  // already sorted.
  if (!std::is_sorted(buckets.begin(), buckets.end(), by_bound)) {
    std::stable_sort(buckets.begin(), buckets.end(), by_bound);
  }
  // Merge duplicate bounds (in place) so each le value appears once.
  size_t kept = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (kept > 0 && buckets[kept - 1].first == buckets[i].first) {
      buckets[kept - 1].second += buckets[i].second;
    } else {
      buckets[kept++] = buckets[i];
    }
  }
  buckets.resize(kept);
}

std::atomic<uint64_t> series_source_failures{0};

// One batch from a source, or false (counted) if it threw or did not make
// `out` hold exactly [begin, end).
template <typename Series>
bool ProduceBatch(const SeriesSource<Series>& source, size_t begin, size_t end,
                  std::vector<Series>& out) {
  try {
    source.Produce(begin, end, out);
    if (out.size() == end - begin) return true;
  } catch (...) {
  }
  series_source_failures.fetch_add(1, std::memory_order_relaxed);
  return false;
}

// Sizes Serialize's single reservation: ~96 bytes per line.
size_t EstimatedSize(const std::vector<MetricFamily>& families) {
  size_t lines = 0;
  std::vector<HistogramSample> first;
  for (const MetricFamily& family : families) {
    lines += 2 + family.samples.size();
    for (const auto& source : family.sample_sources) lines += source->size();
    for (const auto& h : family.histograms) lines += h.upper_bounds.size() + 3;
    // A source's series are taken to have as many buckets as its first.
    for (const auto& source : family.histogram_sources) {
      if (source->size() == 0) continue;
      const size_t buckets =
          ProduceBatch(*source, 0, 1, first) ? first.front().upper_bounds.size() : 0;
      lines += source->size() * (buckets + 3);
    }
  }
  return lines * 96;
}

}  // namespace

uint64_t SeriesSourceFailures() { return series_source_failures.load(std::memory_order_relaxed); }

const char* ContentType(Format format) {
  switch (format) {
    case Format::kPrometheusText004:
      return "text/plain; version=0.0.4; charset=utf-8";
    case Format::kOpenMetrics100:
      return "application/openmetrics-text; version=1.0.0; charset=utf-8";
  }
  return "text/plain; version=0.0.4; charset=utf-8";
}

std::string Serialize(const std::vector<MetricFamily>& families, Format format) {
  // One reservation instead of repeated doubling: at 10,000 backends the
  // output is ~90 MB, and regrowing it cost more than formatting it.
  std::string out;
  out.reserve(EstimatedSize(families));
  Serializer serializer(families, format);
  serializer.AppendTo(out, std::numeric_limits<size_t>::max());
  return out;
}

// ---------------------------------------------------------------------------

Serializer::Serializer(const std::vector<MetricFamily>& families, Format format)
    : families_(families), format_(format) {
  SkipEmptyFamilies();
}

bool Serializer::AppendTo(std::string& out, size_t soft_limit) {
  const size_t start = out.size();
  // out.size() == start: nothing appended yet in this call, so keep going
  // past the limit (see the header).
  while (!done_ && (out.size() == start || out.size() < soft_limit)) {
    if (family_ == families_.size()) {
      // Only reached in OpenMetrics: SkipEmptyFamilies ends a 0.0.4 page.
      out += "# EOF\n";
      done_ = true;
      break;
    }
    const MetricFamily& family = families_[family_];
    if (!in_family_) {
      EnterFamily(family);
      AppendMetadata(out, name_, family, format_);
      in_family_ = true;
      continue;
    }
    if (family.type == MetricType::kHistogram) {
      if (const HistogramSample* histogram =
              NextSeries(family.histograms, family.histogram_sources, histogram_batch_)) {
        AppendHistogramSeries(out, *histogram);
        ++series_;
      }
    } else if (const Sample* sample =
                   NextSeries(family.samples, family.sample_sources, sample_batch_)) {
      AppendSample(out, sample_name_, *sample);
      ++series_;
    }
    if (series_ == series_count_) {
      in_family_ = false;
      ++family_;
      SkipEmptyFamilies();
    }
  }
  return !done_;
}

// Moves past families without series, so that done() turns true as soon as
// nothing is left to append: a caller streaming the page then knows that
// the piece it holds is the last one.
void Serializer::SkipEmptyFamilies() {
  while (family_ < families_.size() && SeriesCount(families_[family_]) == 0) {
    assert(IsValidMetricName(families_[family_].name));
    ++family_;
  }
  if (family_ == families_.size() && format_ != Format::kOpenMetrics100) done_ = true;
}

void Serializer::EnterFamily(const MetricFamily& family) {
  assert(IsValidMetricName(family.name));
  series_ = 0;
  series_count_ = SeriesCount(family);
  part_ = 0;
  index_ = 0;
  batch_begin_ = batch_end_ = 0;
  name_ = family.name;
  sample_name_ = family.name;
  if (family.type == MetricType::kCounter) {
    // The model spells counters with _total, as 0.0.4 does. OpenMetrics
    // names the family without it and requires it on the samples.
    assert(name_.ends_with(kTotalSuffix));
    if (format_ == Format::kOpenMetrics100) {
      if (name_.ends_with(kTotalSuffix)) {
        name_.remove_suffix(kTotalSuffix.size());
      } else {
        sample_name_ += kTotalSuffix;
      }
    }
  }
  bucket_name_ = name_;
  bucket_name_ += "_bucket";
}

template <typename Series>
const Series* Serializer::NextSeries(
    const std::vector<Series>& listed,
    const std::vector<std::shared_ptr<const SeriesSource<Series>>>& sources,
    std::vector<Series>& batch) {
  auto part_size = [&] { return part_ == 0 ? listed.size() : sources[part_ - 1]->size(); };
  for (;;) {
    // Move on to the next part with a series left: the listed series are
    // part 0, source i is part i + 1. The caller knows one is left.
    while (index_ == part_size()) {
      ++part_;
      assert(part_ <= sources.size());
      index_ = 0;
      batch_begin_ = batch_end_ = 0;
    }
    if (part_ == 0) return &listed[index_++];
    if (index_ < batch_end_) return &batch[index_++ - batch_begin_];
    const SeriesSource<Series>& source = *sources[part_ - 1];
    batch_begin_ = index_;
    batch_end_ = std::min(source.size(), index_ + kSourceBatchSeries);
    if (ProduceBatch(source, batch_begin_, batch_end_, batch)) continue;
    // The rest of this source is left out of the page.
    series_count_ -= source.size() - index_;
    index_ = batch_end_ = source.size();
    if (series_ == series_count_) return nullptr;
  }
}

void Serializer::AppendHistogramSeries(std::string& out, const HistogramSample& histogram) {
  assert(LabelsAreValid(histogram.labels, /*histogram=*/true));
  bucket_prefix_ = bucket_name_;  // becomes name_bucket{labels...,le="
  AppendLabels(bucket_prefix_, histogram.labels, "le", "");
  bucket_prefix_.resize(bucket_prefix_.size() - 2);  // drop the closing "}
  SortBuckets(histogram, buckets_);
  uint64_t cumulative = 0;
  for (const auto& [bound, count] : buckets_) {
    cumulative += count;
    out += bucket_prefix_;
    AppendBucketBound(out, bound, format_);
    out += "\"} ";
    AppendToChars(out, cumulative);
    out += '\n';
  }
  // Collectors read buckets and count without a common snapshot, so count
  // may trail the bucket sum; buckets must never decrease, and +Inf and
  // _count must agree, so both use the larger value.
  const uint64_t total = std::max(cumulative, histogram.count);
  out += bucket_name_;
  AppendLabels(out, histogram.labels, "le", "+Inf");
  out += ' ';
  AppendToChars(out, total);
  out += '\n';

  out += name_;
  out += "_sum";
  AppendLabels(out, histogram.labels);
  out += ' ';
  AppendValue(out, histogram.sum);
  out += '\n';

  out += name_;
  out += "_count";
  AppendLabels(out, histogram.labels);
  out += ' ';
  AppendToChars(out, total);
  out += '\n';
}

}  // namespace sockeye::metrics
