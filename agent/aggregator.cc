#include "agent/aggregator.h"

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

namespace sockeye {

using metrics::HistogramSample;
using metrics::Labels;
using metrics::MetricFamily;
using metrics::MetricType;
using metrics::Sample;

Aggregator::Backend::Backend(std::string label_value, std::string pool_name, const Aggregator& agg)
    : label(std::move(label_value)),
      pool(std::move(pool_name)),
      connect_duration(agg.connect_bounds_),
      connection_duration(agg.lifetime_bounds_),
      time_to_first_byte(agg.ttfb_bounds_),
      rtt(agg.rtt_bounds_),
      requests_per_connection(agg.requests_bounds_) {}

namespace {

BucketBounds Share(const std::vector<double>& bounds) {
  return std::make_shared<const std::vector<double>>(bounds);
}

Endpoint ToEndpoint(const sockeye_endpoint& e) {
  Endpoint endpoint;
  std::copy(std::begin(e.addr), std::end(e.addr), endpoint.addr.begin());
  endpoint.port = e.port;
  return endpoint;
}

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

constexpr double kNanosPerSecond = 1e9;

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
  kColumns,
};

// ...and its histograms.
enum HistogramKind : size_t {
  kConnectDuration,
  kConnectionDuration,
  kTimeToFirstByte,
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
  // Empties the snapshot for `backends` backends, keeping its memory.
  void Reset(size_t backends, std::array<BucketBounds, kHistogramKinds> bounds) {
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
  // and, when `extra_name` is set, the extra label, in that order. Assigns
  // into the labels already there, keeping their memory.
  void SetLabels(size_t backend, Labels& labels, const char* extra_name = nullptr,
                 const char* extra_value = nullptr) const {
    const size_t label_begin = backend == 0 ? 0 : ends_[2 * backend - 1];
    const size_t label_end = ends_[2 * backend];
    const size_t pool_end = ends_[2 * backend + 1];
    const std::string_view text = text_;
    const bool has_pool = pool_end > label_end;
    labels.resize(1 + (has_pool ? 1 : 0) + (extra_name ? 1 : 0));
    auto set = [&labels](size_t i, std::string_view name, std::string_view value) {
      labels[i].name.assign(name);
      labels[i].value.assign(value);
    };
    size_t i = 0;
    set(i++, "backend", text.substr(label_begin, label_end - label_begin));
    if (has_pool) set(i++, "pool", text.substr(label_end, pool_end - label_end));
    if (extra_name) set(i, extra_name, extra_value);
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

  std::string text_;            // every backend's label value then pool name, back to back
  std::vector<size_t> ends_;    // where each of those strings ends in text_
  std::vector<double> values_;  // kColumns per backend
  std::array<Histograms, kHistogramKinds> histograms_;
};

namespace {

// A per-backend counter or gauge family: for each backend of the snapshot,
// in order, one series per entry of `series` (e.g. one per failure reason),
// told apart by the label `label` (none when there is one entry).
class BackendSamples final : public metrics::SampleSource {
 public:
  struct Series {
    const char* label_value;
    size_t column;
  };

  BackendSamples(std::shared_ptr<const BackendSnapshot> snapshot, const char* label,
                 std::vector<Series> series)
      : snapshot_(std::move(snapshot)), label_(label), series_(std::move(series)) {
    assert(!series_.empty() && (label_ != nullptr || series_.size() == 1));
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
  const char* const label_;
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

const char* EventKindName(size_t kind) {
  switch (kind) {
    case SOCKEYE_EV_CONNECTED:
      return "connected";
    case SOCKEYE_EV_CONNECT_FAILED:
      return "connect_failed";
    case SOCKEYE_EV_TURN:
      return "turn";
    case SOCKEYE_EV_CLOSED:
      return "closed";
    case SOCKEYE_EV_PROGRESS:
      return "progress";
    case SOCKEYE_EV_ADOPTED:
      return "adopted";
    case SOCKEYE_EV_RESET_AFTER_CLOSE:
      return "reset_after_close";
    default:
      return "unknown";
  }
}

Aggregator::Aggregator(AggregatorOptions options)
    : options_(std::move(options)),
      connect_bounds_(Share(options_.buckets.connect_duration)),
      lifetime_bounds_(Share(options_.buckets.connection_duration)),
      ttfb_bounds_(Share(options_.buckets.time_to_first_byte)),
      rtt_bounds_(Share(options_.buckets.rtt)),
      requests_bounds_(Share(options_.buckets.requests_per_connection)),
      overflow_(std::make_unique<Backend>(kOverflowBackend, "", *this)) {}

std::string Aggregator::PoolFor(const Endpoint& endpoint) const {
  for (const auto& pool : options_.pools) {
    if (pool.match.Contains(endpoint)) return pool.name;
  }
  return "";
}

void Aggregator::SetPools(std::vector<PoolMapping> pools) {
  std::lock_guard lock(mutex_);
  options_.pools = std::move(pools);
  for (auto& [endpoint, backend] : backends_) backend->pool = PoolFor(endpoint);
}

Aggregator::Backend* Aggregator::BackendFor(const Endpoint& endpoint, Clock::time_point now) {
  auto it = backends_.find(endpoint);
  if (it == backends_.end()) {
    if (backends_.size() >= options_.max_backends) {
      if (overflowed_.size() < options_.max_backends || overflowed_.count(endpoint)) {
        overflowed_[endpoint] = now;
      }
      overflow_->last_activity = now;
      return overflow_.get();
    }
    it = backends_
             .emplace(endpoint,
                      std::make_unique<Backend>(FormatEndpoint(endpoint), PoolFor(endpoint), *this))
             .first;
  }
  it->second->last_activity = now;
  return it->second.get();
}

Aggregator::Connection* Aggregator::ConnectionFor(const sockeye_event& event, Clock::time_point now,
                                                  bool create_open) {
  auto it = connections_.find(event.conn_id);
  if (it != connections_.end()) return &it->second;
  if (!create_open) return nullptr;
  Connection conn;
  conn.endpoint = ToEndpoint(event.backend);
  conn.adopted = (event.flags & SOCKEYE_EVF_ADOPTED) != 0;
  conn.not_swept = (event.flags & SOCKEYE_EVF_NOT_SWEPT) != 0;
  conn.born_generation = sweep_generation_;
  conn.opened_in_interval = sweep_interval_;
  ++open_connections_;
  ++opened_this_interval_;
  Backend* backend = BackendFor(conn.endpoint, now);
  conn.overflow = backend == overflow_.get();
  if (conn.overflow) ++overflow_connections_;
  backend->active += 1;
  return &connections_.emplace(event.conn_id, conn).first->second;
}

void Aggregator::ApplyTotals(Backend* backend, Connection& conn,
                             const sockeye_conn_totals& totals) {
  auto advance = [](auto& last, auto current, uint64_t& counter) {
    if (current > last) {
      counter += current - last;
      last = current;
    }
  };
  advance(conn.last.bytes_sent, totals.bytes_sent, backend->bytes_sent);
  advance(conn.last.bytes_received, totals.bytes_received, backend->bytes_received);
  advance(conn.last.requests, totals.requests, backend->requests);
  advance(conn.last.retransmits, totals.retransmits, backend->retransmits);
  advance(conn.last.resets_sent, totals.resets_sent, backend->resets_sent);
  advance(conn.last.resets_received, totals.resets_received, backend->resets_received);
}

void Aggregator::ObserveTurns(Backend* backend, const sockeye_event& event) {
  if (event.turn_count > SOCKEYE_TURN_BATCH) {
    ++malformed_events_;
    return;
  }
  for (uint32_t i = 0; i < event.turn_count; ++i) {
    const sockeye_turn& turn = event.turns[i];
    backend->time_to_first_byte.Observe(turn.ttfb_us / 1e6);
    if (turn.srtt_us) backend->rtt.Observe(turn.srtt_us / 1e6);
  }
}

void Aggregator::Handle(const sockeye_event& event, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (event.kind == 0 || event.kind >= SOCKEYE_EV_KIND_COUNT) {
    ++malformed_events_;
    return;
  }
  ++events_by_kind_[event.kind];

  if (event.kind == SOCKEYE_EV_CONNECT_FAILED) {
    Backend* backend = BackendFor(ToEndpoint(event.backend), now);
    backend->failures[std::min<size_t>(event.reason, SOCKEYE_FAIL_OTHER)] += 1;
    backend->retransmits += event.totals.retransmits;
    backend->resets_sent += event.totals.resets_sent;
    backend->resets_received += event.totals.resets_received;
    return;
  }

  // Its connection's final close record made the agent forget it.
  if (event.kind == SOCKEYE_EV_RESET_AFTER_CLOSE) {
    BackendFor(ToEndpoint(event.backend), now)->resets_sent += 1;
    return;
  }

  // A batch of turns carries its conn_id and nothing else (no backend to
  // open the connection with, no totals): its connection's opening record
  // came first, unless the ring buffer was full for it.
  if (event.kind == SOCKEYE_EV_TURN) {
    Connection* conn = ConnectionFor(event, now, /*create_open=*/false);
    if (!conn) {
      unmatched_turns_ += std::min<uint64_t>(event.turn_count, SOCKEYE_TURN_BATCH);
      return;
    }
    ObserveTurns(conn->overflow ? overflow_.get() : BackendFor(conn->endpoint, now), event);
    return;
  }

  // A record for a connection the kernel has closed and the agent has
  // already forgotten must not resurrect it (its totals were counted).
  bool kernel_closed = (event.flags & SOCKEYE_EVF_CLOSED) != 0;
  Connection* conn =
      ConnectionFor(event, now, !(kernel_closed && event.kind == SOCKEYE_EV_PROGRESS));
  if (!conn) return;
  Backend* backend = conn->overflow ? overflow_.get() : BackendFor(conn->endpoint, now);
  ApplyTotals(backend, *conn, event.totals);
  ObserveTurns(backend, event);

  switch (event.kind) {
    case SOCKEYE_EV_CONNECTED:
      backend->established += 1;
      if (event.reason == SOCKEYE_SEEN_LATE) {
        ++transitions_seen_late_[0];
        conn->opened_late = true;
      } else
        backend->connect_duration.Observe(static_cast<double>(event.duration_ns) / kNanosPerSecond);
      break;
    case SOCKEYE_EV_PROGRESS:
      conn->seen_generation = sweep_generation_;
      break;
    case SOCKEYE_EV_CLOSED:
      if (conn->open) {
        MarkClosed(*conn, now);
        backend->active -= 1;
      }
      if (!conn->close_recorded) {
        conn->close_recorded = true;
        backend->closed[event.closed_by == SOCKEYE_CLOSED_BY_REMOTE ? 1 : 0] += 1;
        if (event.reason == SOCKEYE_SEEN_LATE) ++transitions_seen_late_[1];
        if (!conn->adopted && event.reason != SOCKEYE_SEEN_LATE)
          backend->connection_duration.Observe(static_cast<double>(event.duration_ns) /
                                               kNanosPerSecond);
        if (!conn->adopted && !conn->opened_late)
          backend->requests_per_connection.Observe(static_cast<double>(event.totals.requests));
        if (event.srtt_us) backend->rtt.Observe(event.srtt_us / 1e6);
      }
      // No record can follow, so there is nothing to difference later.
      if (event.flags & SOCKEYE_EVF_FINAL) connections_.erase(event.conn_id);
      break;
    default:
      break;
  }
}

void Aggregator::MarkClosed(Connection& conn, Clock::time_point now) {
  conn.open = false;
  conn.closed_at = now;
  --open_connections_;
  if (conn.opened_in_interval == sweep_interval_) --opened_this_interval_;
}

bool Aggregator::StartSweepInterval() {
  std::lock_guard lock(mutex_);
  const bool open_since_before = open_connections_ > opened_this_interval_;
  ++sweep_interval_;
  opened_this_interval_ = 0;
  return open_since_before;
}

void Aggregator::BeginFullSweep() {
  std::lock_guard lock(mutex_);
  ++sweep_generation_;
  in_full_sweep_ = true;
}

void Aggregator::AbortFullSweep() {
  std::lock_guard lock(mutex_);
  in_full_sweep_ = false;
}

void Aggregator::EndFullSweep() {
  std::lock_guard lock(mutex_);
  if (!in_full_sweep_) return;
  in_full_sweep_ = false;
  auto now = Clock::now();
  for (auto& [id, conn] : connections_) {
    if (!conn.open || conn.not_swept || conn.born_generation >= sweep_generation_ ||
        conn.seen_generation == sweep_generation_)
      continue;
    MarkClosed(conn, now);
    Backend* backend = conn.overflow ? overflow_.get() : BackendFor(conn.endpoint, now);
    backend->active -= 1;
    ++retired_connections_;
  }
}

void Aggregator::Maintain(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  std::erase_if(connections_, [&](const auto& entry) {
    return !entry.second.open && now - entry.second.closed_at > options_.closed_connection_memory;
  });
  std::erase_if(backends_, [&](const auto& entry) {
    bool idle = entry.second->active <= 0 &&
                now - entry.second->last_activity > options_.backend_idle_timeout;
    if (idle) ++expired_backends_;
    return idle;
  });
  std::erase_if(overflowed_, [&](const auto& entry) {
    return now - entry.second > options_.backend_idle_timeout;
  });
}

size_t Aggregator::backend_count() const {
  std::lock_guard lock(mutex_);
  return backends_.size();
}

size_t Aggregator::open_connection_count() const {
  std::lock_guard lock(mutex_);
  return open_connections_;
}

void Aggregator::Collect(std::vector<MetricFamily>& out) {
  std::lock_guard lock(mutex_);

  // Sorted by label so that the output is stable from scrape to scrape; the
  // overflow series comes last.
  std::vector<const Backend*> ordered;
  ordered.reserve(backends_.size() + 1);
  for (const auto& [endpoint, backend] : backends_) ordered.push_back(backend.get());
  std::sort(ordered.begin(), ordered.end(),
            [](const Backend* a, const Backend* b) { return a->label < b->label; });
  if (overflow_connections_ > 0) ordered.push_back(overflow_.get());

  // The previous scrape's snapshot is refilled when no page reads it any
  // more, i.e. nearly always. A fresh one would be megabytes of newly
  // mapped memory on every scrape (the agent hands freed memory back to the
  // kernel after each one): at 10,000 backends, ~2,000 page faults that
  // took a quarter of the render time on a PVM guest. A count of 1 cannot
  // go up behind our back: a reference can only be copied from another
  // one, and snapshot_ is the only one left. The fence orders the last
  // reader's release of the snapshot before our writes to it.
  if (snapshot_ && snapshot_.use_count() == 1) {
    std::atomic_thread_fence(std::memory_order_acquire);
  } else {
    snapshot_ = std::make_shared<BackendSnapshot>();
  }
  const std::shared_ptr<BackendSnapshot>& snapshot = snapshot_;
  snapshot->Reset(ordered.size(),
                  {connect_bounds_, lifetime_bounds_, ttfb_bounds_, rtt_bounds_, requests_bounds_});
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
    snapshot->Add(b->label, b->pool, values,
                  {&b->connect_duration, &b->connection_duration, &b->time_to_first_byte, &b->rtt,
                   &b->requests_per_connection});
  }

  // Built aside and appended at the end, so that `out` is left as it was if
  // anything here throws.
  std::vector<MetricFamily> built;
  auto family = [&](const char* name, const char* help, MetricType type) -> MetricFamily& {
    MetricFamily& f = built.emplace_back();
    f.name = name;
    f.help = help;
    f.type = type;
    return f;
  };
  // A per-backend counter or gauge family, read from the snapshot.
  auto per_backend = [&](const char* name, const char* help, MetricType type, const char* label,
                         std::vector<BackendSamples::Series> series) {
    family(name, help, type)
        .sample_sources.push_back(
            std::make_shared<BackendSamples>(snapshot, label, std::move(series)));
  };
  // ...with one series per backend.
  auto per_backend_value = [&](const char* name, const char* help, MetricType type, Column column) {
    per_backend(name, help, type, nullptr, {{nullptr, column}});
  };
  auto per_backend_histogram = [&](const char* name, const char* help, HistogramKind kind) {
    family(name, help, MetricType::kHistogram)
        .histogram_sources.push_back(std::make_shared<BackendHistograms>(snapshot, kind));
  };

  per_backend_value("sockeye_backend_connections_established_total",
                    "TCP connections to the backend that completed the handshake.",
                    MetricType::kCounter, kEstablished);
  std::vector<BackendSamples::Series> by_reason;
  for (size_t r = 0; r < SOCKEYE_FAIL_COUNT; ++r)
    by_reason.push_back({FailureReasonName(r), kFailuresFirst + r});
  per_backend("sockeye_backend_connect_failures_total",
              "Connection attempts to the backend that failed, by reason.", MetricType::kCounter,
              "reason", std::move(by_reason));
  per_backend_value("sockeye_backend_connections_active", "Open TCP connections to the backend.",
                    MetricType::kGauge, kActive);
  per_backend("sockeye_backend_connections_closed_total",
              "Connections to the backend that closed, by which side closed first.",
              MetricType::kCounter, "closed_by",
              {{"local", kClosedLocal}, {"remote", kClosedRemote}});
  per_backend_histogram("sockeye_backend_connect_duration_seconds",
                        "Time from SYN sent to connection established.", kConnectDuration);
  per_backend_histogram(
      "sockeye_backend_connection_duration_seconds",
      "Lifetime of connections from connect() to close (connections open at agent start are "
      "not observed).",
      kConnectionDuration);
  per_backend_value("sockeye_backend_sent_bytes_total",
                    "Payload bytes the host sent to the backend.", MetricType::kCounter,
                    kBytesSent);
  per_backend_value("sockeye_backend_received_bytes_total",
                    "Payload bytes the host read from the backend.", MetricType::kCounter,
                    kBytesReceived);
  per_backend_value("sockeye_backend_requests_total",
                    "Requests (request/response turns) sent to the backend.", MetricType::kCounter,
                    kRequests);
  per_backend_histogram("sockeye_backend_time_to_first_byte_seconds",
                        "Time from the start of a request to the first byte of its response.",
                        kTimeToFirstByte);
  per_backend_histogram("sockeye_backend_requests_per_connection",
                        "Requests carried by each closed connection.", kRequestsPerConnection);
  per_backend_histogram("sockeye_backend_rtt_seconds",
                        "Smoothed TCP round-trip time, sampled at each response and at close.",
                        kRtt);
  per_backend_value("sockeye_backend_retransmits_total",
                    "TCP segments retransmitted to the backend.", MetricType::kCounter,
                    kRetransmits);
  per_backend_value("sockeye_backend_resets_received_total",
                    "TCP resets received from the backend.", MetricType::kCounter, kResetsReceived);
  per_backend_value("sockeye_backend_resets_sent_total", "TCP resets sent to the backend.",
                    MetricType::kCounter, kResetsSent);

  auto& events = family("sockeye_events_total", "Kernel records processed by the agent, by kind.",
                        MetricType::kCounter);
  for (size_t k = 1; k < SOCKEYE_EV_KIND_COUNT; ++k)
    events.samples.push_back(
        {{{"kind", EventKindName(k)}}, static_cast<double>(events_by_kind_[k])});
  family("sockeye_events_malformed_total",
         "Kernel records with an unknown kind, or with more turns than a batch holds; "
         "ignored (the turns) or dropped (the record).",
         MetricType::kCounter)
      .samples.push_back({{}, static_cast<double>(malformed_events_)});
  family("sockeye_turns_unmatched_total",
         "Time-to-first-byte samples in batch records of connections the agent does not "
         "know (their opening record found the ring buffer full); not observed.",
         MetricType::kCounter)
      .samples.push_back({{}, static_cast<double>(unmatched_turns_)});
  auto& late =
      family("sockeye_transitions_seen_late_total",
             "Connections whose ESTABLISHED or CLOSE transition the kernel skipped in both of the "
             "state hook's programs (see sockeye_bpf_program_missed_runs_total), counted when a "
             "later transition or the socket's destruction showed it: no connect time or lifetime "
             "sample, and requests before an established one was seen are not counted.",
             MetricType::kCounter);
  late.samples.push_back(
      {{{"transition", "established"}}, static_cast<double>(transitions_seen_late_[0])});
  late.samples.push_back(
      {{{"transition", "close"}}, static_cast<double>(transitions_seen_late_[1])});
  family("sockeye_backends", "Backends with their own series.", MetricType::kGauge)
      .samples.push_back({{}, static_cast<double>(backends_.size())});
  family("sockeye_backends_max", "Backends that may have their own series (--max-backends).",
         MetricType::kGauge)
      .samples.push_back({{}, static_cast<double>(options_.max_backends)});
  family("sockeye_backends_overflow",
         "Distinct backend addresses counted in the (overflow) backend series because "
         "--max-backends was reached (capped at --max-backends).",
         MetricType::kGauge)
      .samples.push_back({{}, static_cast<double>(overflowed_.size())});
  family("sockeye_backend_overflow_connections_total",
         "Connections counted in the (overflow) backend series.", MetricType::kCounter)
      .samples.push_back({{}, static_cast<double>(overflow_connections_)});
  family("sockeye_backends_expired_total",
         "Backends forgotten after --backend-idle-timeout without connections.",
         MetricType::kCounter)
      .samples.push_back({{}, static_cast<double>(expired_backends_)});
  size_t not_swept = 0;
  for (const auto& [id, conn] : connections_) not_swept += conn.open && conn.not_swept ? 1 : 0;
  family("sockeye_connections_followed", "Backend connections the agent follows now.",
         MetricType::kGauge)
      .samples.push_back({{}, static_cast<double>(open_connections_)});
  family("sockeye_connections_remembered",
         "Closed connections the agent still keeps, so that a late record for one (data "
         "read after a reset closed it) is differenced, not counted again; kept for a minute. "
         "A connection the application had already let go of at close is not kept.",
         MetricType::kGauge)
      .samples.push_back({{}, static_cast<double>(connections_.size() - open_connections_)});
  family("sockeye_connections_not_swept",
         "Followed connections in network namespaces the sweep does not walk (the sweep runs "
         "over iter/tcp, which sees only the agent's own): their totals and the last turns of "
         "an idle connection arrive at state changes and at close, not every sweep.",
         MetricType::kGauge)
      .samples.push_back({{}, static_cast<double>(not_swept)});
  family("sockeye_connections_retired_total",
         "Connections found closed by a full sweep because their close record was lost.",
         MetricType::kCounter)
      .samples.push_back({{}, static_cast<double>(retired_connections_)});
  std::move(built.begin(), built.end(), std::back_inserter(out));
}

}  // namespace sockeye
