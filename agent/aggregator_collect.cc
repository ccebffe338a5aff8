// The scrape side of the Aggregator: Collect() copies the backends and the
// frontend listeners into snapshots under the lock and returns families whose
// series are read from them while the page is rendered. Record ingestion is in
// aggregator.cc; every family is declared in agent/metric_descriptors.h. Why
// this file is long (~440 lines): the snapshot's layout and the sources that
// read it are one design, kept beside the one function that fills them.
#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/aggregator.h"
#include "agent/metric_descriptors.h"

namespace sockeye {

using metrics::HistogramSample;
using metrics::Labels;
using metrics::MetricDescriptor;
using metrics::MetricFamily;
using metrics::Sample;

namespace {

const char* FailureReasonName(size_t reason) {
  switch (reason) {
    case SOCKEYE_FAIL_REFUSED:
      return "refused";
    case SOCKEYE_FAIL_TIMEOUT:
      return "timeout";
    case SOCKEYE_FAIL_UNREACHABLE:
      return "unreachable";
    case SOCKEYE_FAIL_RESET:
      return "reset";
    default:
      return "other";
  }
}

// What a scrape renders of a backend, in columns of a snapshot row: its
// counters and gauges...
enum Column : size_t {
  kEstablished,
  kFailuresFirst,  // one column per failure reason
  kActive = kFailuresFirst + SOCKEYE_FAIL_COUNT,
  kClosedLocal,
  kClosedRemote,
  kBytesSent,
  kBytesReceived,
  kRequests,
  kRetransmits,
  kResetsReceived,
  kResetsSent,
  kUnansweredLocal,
  kUnansweredRemote,
  kColumns,
};

// ...and its histograms.
enum HistogramKind : size_t {
  kConnectDuration,
  kConnectionDuration,
  kTimeToFirstByte,
  kResponseDuration,
  kRtt,
  kRequestsPerConnection,
  kHistogramKinds,
};

}  // namespace

// The per-backend state one scrape renders, copied under the aggregator's
// lock into a few flat arrays, and read by the series sources below after
// the lock is released, while the page is rendered a batch of series at a
// time.
//
// Why not list the series in the metric model: that is ~110 strings,
// vectors and label sets per backend (4.3 MB per 1,000 backends), allocated
// and freed on every scrape, and at 10,000 backends (49 MB) it no longer
// fits in the CPU's caches, so rendering it was slower per backend than at
// 1,000. This snapshot is ~0.85 KB per backend, read in order, and the
// aggregator reuses it from one scrape to the next (see Collect).
class BackendSnapshot {
 public:
  // Empties the snapshot for `backends` backends, keeping its memory. Its
  // series are labelled `name` (backend, or listener for frontends) and
  // `group` (pool, or frontend).
  void Reset(size_t backends, std::array<BucketBounds, kHistogramKinds> bounds,
             std::string_view name, std::string_view group) {
    name_label_ = name;
    group_label_ = group;
    text_.clear();
    ends_.clear();
    ends_.reserve(2 * backends);
    values_.clear();
    values_.reserve(kColumns * backends);
    for (size_t k = 0; k < kHistogramKinds; ++k) {
      Histograms& h = histograms_[k];
      h.bounds = std::move(bounds[k]);
      h.buckets.clear();
      h.buckets.reserve(h.bounds->size() * backends);
      h.sums.clear();
      h.sums.reserve(backends);
      h.counts.clear();
      h.counts.reserve(backends);
    }
  }

  // Appends a backend. The histograms must use this snapshot's bounds (an
  // aggregator's histograms all do: its bounds never change).
  void Add(std::string_view label, std::string_view pool,
           const std::array<double, kColumns>& values,
           const std::array<const Histogram*, kHistogramKinds>& histograms) {
    text_ += label;
    ends_.push_back(text_.size());
    text_ += pool;
    ends_.push_back(text_.size());
    values_.insert(values_.end(), values.begin(), values.end());
    for (size_t k = 0; k < kHistogramKinds; ++k) {
      Histograms& h = histograms_[k];
      const std::vector<uint64_t>& counts = histograms[k]->bucket_counts();
      assert(counts.size() == h.bounds->size());
      h.buckets.insert(h.buckets.end(), counts.begin(), counts.end());
      h.sums.push_back(histograms[k]->sum());
      h.counts.push_back(histograms[k]->count());
    }
  }

  size_t size() const { return ends_.size() / 2; }

  double value(size_t backend, size_t column) const { return values_[backend * kColumns + column]; }

  // Sets `labels` to backend="...", pool="..." (when the backend has a pool)
  // (listener and frontend for a frontend snapshot)
  // and, when `extra_name` is not empty, the extra label, in that order.
  // Assigns into the labels already there, keeping their memory.
  void SetLabels(size_t backend, Labels& labels, std::string_view extra_name = {},
                 std::string_view extra_value = {}) const {
    const size_t label_begin = backend == 0 ? 0 : ends_[2 * backend - 1];
    const size_t label_end = ends_[2 * backend];
    const size_t pool_end = ends_[2 * backend + 1];
    const std::string_view text = text_;
    const bool has_pool = pool_end > label_end;
    labels.resize(1 + (has_pool ? 1 : 0) + (extra_name.empty() ? 0 : 1));
    auto set = [&labels](size_t i, std::string_view name, std::string_view value) {
      labels[i].name.assign(name);
      labels[i].value.assign(value);
    };
    size_t i = 0;
    set(i++, name_label_, text.substr(label_begin, label_end - label_begin));
    if (has_pool) set(i++, group_label_, text.substr(label_end, pool_end - label_end));
    if (!extra_name.empty()) set(i, extra_name, extra_value);
  }

  // Everything of a histogram series but its labels.
  void SetHistogram(size_t backend, HistogramKind kind, HistogramSample& out) const {
    const Histograms& h = histograms_[kind];
    const size_t n = h.bounds->size();
    out.upper_bounds.assign(h.bounds->begin(), h.bounds->end());
    const auto first = h.buckets.begin() + static_cast<std::ptrdiff_t>(backend * n);
    out.bucket_counts.assign(first, first + static_cast<std::ptrdiff_t>(n));
    out.sum = h.sums[backend];
    out.count = h.counts[backend];
  }

 private:
  struct Histograms {
    BucketBounds bounds;
    std::vector<uint64_t> buckets;  // bounds->size() per backend
    std::vector<double> sums;
    std::vector<uint64_t> counts;
  };

  std::string_view name_label_ = "backend";  // static strings
  std::string_view group_label_ = "pool";
  std::string text_;            // every backend's label value then pool name, back to back
  std::vector<size_t> ends_;    // where each of those strings ends in text_
  std::vector<double> values_;  // kColumns per backend
  std::array<Histograms, kHistogramKinds> histograms_;
};

namespace {

// A per-backend counter or gauge family: for each backend of the snapshot,
// in order, one series per entry of `series` (e.g. one per failure reason),
// told apart by the label `label` (none, empty, when there is one entry).
class BackendSamples final : public metrics::SampleSource {
 public:
  struct Series {
    std::string_view label_value;  // static
    size_t column;
  };

  BackendSamples(std::shared_ptr<const BackendSnapshot> snapshot, std::string_view label,
                 std::vector<Series> series)
      : snapshot_(std::move(snapshot)), label_(label), series_(std::move(series)) {
    assert(!series_.empty() && (!label_.empty() || series_.size() == 1));
  }

  size_t size() const override { return snapshot_->size() * series_.size(); }

  void Produce(size_t begin, size_t end, std::vector<Sample>& out) const override {
    out.resize(end - begin);
    for (size_t i = begin; i < end; ++i) {
      const size_t backend = i / series_.size();
      const Series& series = series_[i % series_.size()];
      Sample& sample = out[i - begin];
      snapshot_->SetLabels(backend, sample.labels, label_, series.label_value);
      sample.value = snapshot_->value(backend, series.column);
    }
  }

 private:
  const std::shared_ptr<const BackendSnapshot> snapshot_;
  const std::string_view label_;  // a descriptor's, static
  const std::vector<Series> series_;
};

// A per-backend histogram family: one series per backend of the snapshot.
class BackendHistograms final : public metrics::HistogramSource {
 public:
  BackendHistograms(std::shared_ptr<const BackendSnapshot> snapshot, HistogramKind kind)
      : snapshot_(std::move(snapshot)), kind_(kind) {}

  size_t size() const override { return snapshot_->size(); }

  void Produce(size_t begin, size_t end, std::vector<HistogramSample>& out) const override {
    out.resize(end - begin);
    for (size_t backend = begin; backend < end; ++backend) {
      HistogramSample& series = out[backend - begin];
      snapshot_->SetLabels(backend, series.labels);
      snapshot_->SetHistogram(backend, kind_, series);
    }
  }

 private:
  const std::shared_ptr<const BackendSnapshot> snapshot_;
  const HistogramKind kind_;
};

}  // namespace

namespace {

// Sorted by label so that the output is stable from scrape to scrape; the
// overflow series, when used, comes last.
template <typename Map, typename Series>
std::vector<const Series*> Ordered(const Map& map, const Series* overflow) {
  std::vector<const Series*> ordered;
  ordered.reserve(map.size() + 1);
  for (const auto& [endpoint, series] : map) ordered.push_back(series.get());
  std::sort(ordered.begin(), ordered.end(),
            [](const Series* a, const Series* b) { return a->label < b->label; });
  if (overflow) ordered.push_back(overflow);
  return ordered;
}

}  // namespace

// The previous scrape's snapshot is refilled when no page reads it any more,
// i.e. nearly always. A fresh one would be megabytes of newly mapped memory on
// every scrape (the agent hands freed memory back to the kernel after each
// one): at 10,000 backends, ~2,000 page faults that took a quarter of the
// render time on a PVM guest. A count of 1 cannot go up behind our back: a
// reference can only be copied from another one, and `kept` is the only one
// left. The fence orders the last reader's release of the snapshot before our
// writes to it.
std::shared_ptr<BackendSnapshot> Aggregator::FillSnapshot(
    std::shared_ptr<BackendSnapshot>& kept, const std::vector<const Backend*>& ordered,
    std::string_view name, std::string_view group) const {
  if (kept && kept.use_count() == 1) {
    std::atomic_thread_fence(std::memory_order_acquire);
  } else {
    kept = std::make_shared<BackendSnapshot>();
  }
  kept->Reset(ordered.size(),
              {connect_bounds_, lifetime_bounds_, ttfb_bounds_, response_bounds_, rtt_bounds_,
               requests_bounds_},
              name, group);
  for (const Backend* b : ordered) {
    std::array<double, kColumns> values{};
    values[kEstablished] = static_cast<double>(b->established);
    for (size_t r = 0; r < SOCKEYE_FAIL_COUNT; ++r)
      values[kFailuresFirst + r] = static_cast<double>(b->failures[r]);
    values[kActive] = static_cast<double>(std::max<int64_t>(b->active, 0));
    values[kClosedLocal] = static_cast<double>(b->closed[0]);
    values[kClosedRemote] = static_cast<double>(b->closed[1]);
    values[kBytesSent] = static_cast<double>(b->bytes_sent);
    values[kBytesReceived] = static_cast<double>(b->bytes_received);
    values[kRequests] = static_cast<double>(b->requests);
    values[kRetransmits] = static_cast<double>(b->retransmits);
    values[kResetsReceived] = static_cast<double>(b->resets_received);
    values[kResetsSent] = static_cast<double>(b->resets_sent);
    values[kUnansweredLocal] = static_cast<double>(b->unanswered[0]);
    values[kUnansweredRemote] = static_cast<double>(b->unanswered[1]);
    kept->Add(b->label, b->pool, values,
              {&b->connect_duration, &b->connection_duration, &b->time_to_first_byte,
               &b->response_duration, &b->rtt, &b->requests_per_connection});
  }
  return kept;
}

void Aggregator::Collect(std::vector<MetricFamily>& out) {
  std::lock_guard lock(mutex_);

  const std::vector<const Backend*> backends =
      Ordered(backends_, overflow_connections_ > 0 ? overflow_.get() : nullptr);
  const std::vector<const Backend*> frontends =
      Ordered(frontends_, frontend_overflow_->last_activity != Clock::time_point{}
                              ? frontend_overflow_.get()
                              : nullptr);
  const std::shared_ptr<const BackendSnapshot> snapshot =
      FillSnapshot(snapshot_, backends, "backend", "pool");
  const std::shared_ptr<const BackendSnapshot> frontend_snapshot =
      FillSnapshot(frontend_snapshot_, frontends, "listener", "frontend");

  // Built aside and appended at the end, so that `out` is left as it was if
  // anything here throws.
  namespace f = families;
  std::vector<MetricFamily> built;
  built.reserve(f::kAggregatorFamilies.size());
  auto family = [&built](const MetricDescriptor& descriptor) -> MetricFamily& {
    return built.emplace_back(metrics::MakeFamily(descriptor));
  };
  // A per-backend (or per-listener) counter or gauge family, read from a
  // snapshot; the series of a backend are told apart by the label after
  // backend and pool.
  auto per_series = [&](const std::shared_ptr<const BackendSnapshot>& from,
                        const MetricDescriptor& descriptor,
                        std::vector<BackendSamples::Series> series) {
    family(descriptor)
        .sample_sources.push_back(
            std::make_shared<BackendSamples>(from, descriptor.labels[2], std::move(series)));
  };
  auto per_backend = [&](const MetricDescriptor& descriptor,
                         std::vector<BackendSamples::Series> series) {
    per_series(snapshot, descriptor, std::move(series));
  };
  // ...with one series per backend.
  auto per_backend_value = [&](const MetricDescriptor& descriptor, Column column) {
    per_backend(descriptor, {{{}, column}});
  };
  auto per_backend_histogram = [&](const MetricDescriptor& descriptor, HistogramKind kind) {
    family(descriptor)
        .histogram_sources.push_back(std::make_shared<BackendHistograms>(snapshot, kind));
  };
  auto per_frontend_value = [&](const MetricDescriptor& descriptor, Column column) {
    per_series(frontend_snapshot, descriptor, {{{}, column}});
  };
  auto per_frontend_histogram = [&](const MetricDescriptor& descriptor, HistogramKind kind) {
    family(descriptor)
        .histogram_sources.push_back(std::make_shared<BackendHistograms>(frontend_snapshot, kind));
  };
  // Only series that answered HTTP/1.x have these, one per code label value
  // seen: sparse, so listed here rather than in the snapshot.
  auto responses = [&](const MetricDescriptor& descriptor, const std::vector<const Backend*>& of) {
    auto& by_code = family(descriptor);
    for (const Backend* b : of) {
      for (const auto& [code, count] : b->responses) {
        metrics::Labels labels{{std::string(descriptor.labels[0]), b->label}};
        if (!b->pool.empty()) labels.push_back({std::string(descriptor.labels[1]), b->pool});
        labels.push_back({"code", code});
        by_code.samples.push_back({std::move(labels), static_cast<double>(count)});
      }
    }
  };
  // A family of one series without labels.
  auto single = [&](const MetricDescriptor& descriptor, double value) {
    family(descriptor).samples.push_back({{}, value});
  };

  per_backend_value(f::kBackendConnectionsEstablished, kEstablished);
  std::vector<BackendSamples::Series> by_reason;
  for (size_t r = 0; r < SOCKEYE_FAIL_COUNT; ++r)
    by_reason.push_back({FailureReasonName(r), kFailuresFirst + r});
  per_backend(f::kBackendConnectFailures, std::move(by_reason));
  per_backend_value(f::kBackendConnectionsActive, kActive);
  per_backend(f::kBackendConnectionsClosed, {{"local", kClosedLocal}, {"remote", kClosedRemote}});
  per_backend_histogram(f::kBackendConnectDuration, kConnectDuration);
  per_backend_histogram(f::kBackendConnectionDuration, kConnectionDuration);
  per_backend_value(f::kBackendSentBytes, kBytesSent);
  per_backend_value(f::kBackendReceivedBytes, kBytesReceived);
  per_backend_value(f::kBackendRequests, kRequests);
  per_backend_histogram(f::kBackendTimeToFirstByte, kTimeToFirstByte);
  responses(f::kBackendResponses, backends);
  per_backend(f::kBackendRequestsUnanswered,
              {{"local", kUnansweredLocal}, {"remote", kUnansweredRemote}});
  per_backend_histogram(f::kBackendResponseDuration, kResponseDuration);
  per_backend_histogram(f::kBackendRequestsPerConnection, kRequestsPerConnection);
  per_backend_histogram(f::kBackendRtt, kRtt);
  per_backend_value(f::kBackendRetransmits, kRetransmits);
  per_backend_value(f::kBackendResetsReceived, kResetsReceived);
  per_backend_value(f::kBackendResetsSent, kResetsSent);

  per_frontend_value(f::kFrontendConnectionsAccepted, kEstablished);
  per_frontend_value(f::kFrontendConnectionsActive, kActive);
  per_series(frontend_snapshot, f::kFrontendConnectionsClosed,
             {{"local", kClosedLocal}, {"remote", kClosedRemote}});
  per_frontend_histogram(f::kFrontendConnectionDuration, kConnectionDuration);
  per_frontend_value(f::kFrontendReceivedBytes, kBytesReceived);
  per_frontend_value(f::kFrontendSentBytes, kBytesSent);
  per_frontend_value(f::kFrontendRequests, kRequests);
  responses(f::kFrontendResponses, frontends);
  per_series(frontend_snapshot, f::kFrontendRequestsUnanswered,
             {{"local", kUnansweredLocal}, {"remote", kUnansweredRemote}});
  per_frontend_histogram(f::kFrontendResponseTime, kTimeToFirstByte);
  per_frontend_histogram(f::kFrontendRtt, kRtt);
  per_frontend_value(f::kFrontendRetransmits, kRetransmits);
  per_frontend_value(f::kFrontendResetsReceived, kResetsReceived);
  per_frontend_value(f::kFrontendResetsSent, kResetsSent);

  auto& events = family(f::kEvents);
  for (size_t k = 1; k < SOCKEYE_EV_KIND_COUNT; ++k)
    events.samples.push_back({metrics::LabelValues(f::kEvents, {EventKindName(k)}),
                              static_cast<double>(events_by_kind_[k])});
  single(f::kEventsMalformed, static_cast<double>(malformed_events_));
  single(f::kTurnsUnmatched, static_cast<double>(unmatched_turns_));
  auto& late = family(f::kTransitionsSeenLate);
  late.samples.push_back({metrics::LabelValues(f::kTransitionsSeenLate, {"established"}),
                          static_cast<double>(transitions_seen_late_[0])});
  late.samples.push_back({metrics::LabelValues(f::kTransitionsSeenLate, {"close"}),
                          static_cast<double>(transitions_seen_late_[1])});
  single(f::kBackends, static_cast<double>(backends_.size()));
  single(f::kBackendsMax, static_cast<double>(options_.max_backends));
  single(f::kBackendsOverflow, static_cast<double>(overflowed_.size()));
  single(f::kBackendOverflowConnections, static_cast<double>(overflow_connections_));
  single(f::kBackendsExpired, static_cast<double>(expired_backends_));
  size_t not_swept = 0;
  for (const auto& [id, conn] : connections_) not_swept += conn.open && conn.not_swept ? 1 : 0;
  single(f::kConnectionsFollowed, static_cast<double>(open_connections_));
  single(f::kConnectionsRemembered, static_cast<double>(connections_.size() - open_connections_));
  single(f::kConnectionsNotSwept, static_cast<double>(not_swept));
  single(f::kConnectionsRetired, static_cast<double>(retired_connections_));
  std::move(built.begin(), built.end(), std::back_inserter(out));
}

}  // namespace sockeye
