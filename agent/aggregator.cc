#include "agent/aggregator.h"

#include <algorithm>
#include <deque>
#include <iterator>
#include <utility>

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
  conn.born_generation = sweep_generation_;
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
    ++malformed_turn_batches_;
    return;
  }
  for (uint32_t i = 0; i < event.turn_count; ++i) {
    const sockeye_turn& turn = event.turns[i];
    backend->time_to_first_byte.Observe(static_cast<double>(turn.ttfb_ns) / kNanosPerSecond);
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
      backend->connect_duration.Observe(static_cast<double>(event.duration_ns) / kNanosPerSecond);
      break;
    case SOCKEYE_EV_PROGRESS:
      conn->seen_generation = sweep_generation_;
      break;
    case SOCKEYE_EV_CLOSED:
      if (conn->open) {
        conn->open = false;
        backend->active -= 1;
        conn->closed_at = now;
      }
      if (!conn->close_recorded) {
        conn->close_recorded = true;
        backend->closed[event.closed_by == SOCKEYE_CLOSED_BY_REMOTE ? 1 : 0] += 1;
        if (!conn->adopted) {
          backend->connection_duration.Observe(static_cast<double>(event.duration_ns) /
                                               kNanosPerSecond);
          backend->requests_per_connection.Observe(static_cast<double>(event.totals.requests));
        }
        if (event.srtt_us) backend->rtt.Observe(event.srtt_us / 1e6);
      }
      break;
    default:
      break;
  }
}

void Aggregator::BeginFullSweep() {
  std::lock_guard lock(mutex_);
  ++sweep_generation_;
  in_full_sweep_ = true;
}

void Aggregator::EndFullSweep() {
  std::lock_guard lock(mutex_);
  if (!in_full_sweep_) return;
  in_full_sweep_ = false;
  auto now = Clock::now();
  for (auto& [id, conn] : connections_) {
    if (!conn.open || conn.born_generation >= sweep_generation_ ||
        conn.seen_generation == sweep_generation_)
      continue;
    conn.open = false;
    conn.closed_at = now;
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
  return static_cast<size_t>(std::count_if(connections_.begin(), connections_.end(),
                                           [](const auto& e) { return e.second.open; }));
}

void Aggregator::Collect(std::vector<MetricFamily>& out) {
  std::lock_guard lock(mutex_);

  // A deque keeps references to earlier families valid while adding more.
  std::deque<MetricFamily> built;
  auto family = [&](const char* name, const char* help, MetricType type) -> MetricFamily& {
    return built.emplace_back(MetricFamily{name, help, type, {}, {}});
  };
  auto& established =
      family("sockeye_backend_connections_established_total",
             "TCP connections to the backend that completed the handshake.", MetricType::kCounter);
  auto& failures =
      family("sockeye_backend_connect_failures_total",
             "Connection attempts to the backend that failed, by reason.", MetricType::kCounter);
  auto& active = family("sockeye_backend_connections_active",
                        "Open TCP connections to the backend.", MetricType::kGauge);
  auto& closed = family("sockeye_backend_connections_closed_total",
                        "Connections to the backend that closed, by which side closed first.",
                        MetricType::kCounter);
  auto& connect_duration =
      family("sockeye_backend_connect_duration_seconds",
             "Time from SYN sent to connection established.", MetricType::kHistogram);
  auto& connection_duration =
      family("sockeye_backend_connection_duration_seconds",
             "Lifetime of connections from connect() to close (connections open at agent start are "
             "not observed).",
             MetricType::kHistogram);
  auto& sent = family("sockeye_backend_sent_bytes_total",
                      "Payload bytes the host sent to the backend.", MetricType::kCounter);
  auto& received = family("sockeye_backend_received_bytes_total",
                          "Payload bytes the host read from the backend.", MetricType::kCounter);
  auto& requests =
      family("sockeye_backend_requests_total",
             "Requests (request/response turns) sent to the backend.", MetricType::kCounter);
  auto& ttfb = family("sockeye_backend_time_to_first_byte_seconds",
                      "Time from the start of a request to the first byte of its response.",
                      MetricType::kHistogram);
  auto& per_connection =
      family("sockeye_backend_requests_per_connection",
             "Requests carried by each closed connection.", MetricType::kHistogram);
  auto& rtt = family("sockeye_backend_rtt_seconds",
                     "Smoothed TCP round-trip time, sampled at each response and at close.",
                     MetricType::kHistogram);
  auto& retransmits = family("sockeye_backend_retransmits_total",
                             "TCP segments retransmitted to the backend.", MetricType::kCounter);
  auto& resets_received = family("sockeye_backend_resets_received_total",
                                 "TCP resets received from the backend.", MetricType::kCounter);
  auto& resets_sent = family("sockeye_backend_resets_sent_total", "TCP resets sent to the backend.",
                             MetricType::kCounter);

  auto emit = [&](const Backend& b) {
    Labels labels{{"backend", b.label}};
    if (!b.pool.empty()) labels.push_back({"pool", b.pool});
    auto with = [&](const char* name, const char* value) {
      Labels l = labels;
      l.push_back({name, value});
      return l;
    };
    established.samples.push_back({labels, static_cast<double>(b.established)});
    for (size_t r = 0; r < SOCKEYE_FAIL_COUNT; ++r)
      failures.samples.push_back(
          {with("reason", FailureReasonName(r)), static_cast<double>(b.failures[r])});
    active.samples.push_back({labels, static_cast<double>(std::max<int64_t>(b.active, 0))});
    closed.samples.push_back({with("closed_by", "local"), static_cast<double>(b.closed[0])});
    closed.samples.push_back({with("closed_by", "remote"), static_cast<double>(b.closed[1])});
    connect_duration.histograms.push_back(b.connect_duration.ToSample(labels));
    connection_duration.histograms.push_back(b.connection_duration.ToSample(labels));
    sent.samples.push_back({labels, static_cast<double>(b.bytes_sent)});
    received.samples.push_back({labels, static_cast<double>(b.bytes_received)});
    requests.samples.push_back({labels, static_cast<double>(b.requests)});
    ttfb.histograms.push_back(b.time_to_first_byte.ToSample(labels));
    per_connection.histograms.push_back(b.requests_per_connection.ToSample(labels));
    rtt.histograms.push_back(b.rtt.ToSample(labels));
    retransmits.samples.push_back({labels, static_cast<double>(b.retransmits)});
    resets_received.samples.push_back({labels, static_cast<double>(b.resets_received)});
    resets_sent.samples.push_back({labels, static_cast<double>(b.resets_sent)});
  };

  // Sorted by label so that the output is stable from scrape to scrape.
  std::vector<const Backend*> ordered;
  ordered.reserve(backends_.size() + 1);
  for (const auto& [endpoint, backend] : backends_) ordered.push_back(backend.get());
  std::sort(ordered.begin(), ordered.end(),
            [](const Backend* a, const Backend* b) { return a->label < b->label; });
  for (const Backend* b : ordered) emit(*b);
  if (overflow_connections_ > 0) emit(*overflow_);

  auto& events = family("sockeye_events_total", "Kernel records processed by the agent, by kind.",
                        MetricType::kCounter);
  for (size_t k = 1; k < SOCKEYE_EV_KIND_COUNT; ++k)
    events.samples.push_back(
        {{{"kind", EventKindName(k)}}, static_cast<double>(events_by_kind_[k])});
  family("sockeye_events_malformed_total",
         "Kernel records with an unknown kind, or with more turns than a batch holds; "
         "ignored (the turns) or dropped (the record).",
         MetricType::kCounter)
      .samples.push_back({{}, static_cast<double>(malformed_events_ + malformed_turn_batches_)});
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
  size_t open = 0;
  for (const auto& [id, conn] : connections_) open += conn.open ? 1 : 0;
  family("sockeye_connections_followed", "Backend connections the agent follows now.",
         MetricType::kGauge)
      .samples.push_back({{}, static_cast<double>(open)});
  family("sockeye_connections_retired_total",
         "Connections found closed by a full sweep because their close record was lost.",
         MetricType::kCounter)
      .samples.push_back({{}, static_cast<double>(retired_connections_)});
  std::move(built.begin(), built.end(), std::back_inserter(out));
}

}  // namespace sockeye
