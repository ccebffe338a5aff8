// The ingestion side of the Aggregator: kernel records in, per-backend
// counters and histograms out; sweeps and expiry. What a scrape renders of
// them is in aggregator_collect.cc.
#include "agent/aggregator.h"

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sockeye {

Aggregator::Backend::Backend(std::string label_value, std::string pool_name, const Aggregator& agg)
    : label(std::move(label_value)),
      pool(std::move(pool_name)),
      connect_duration(agg.connect_bounds_),
      connection_duration(agg.lifetime_bounds_),
      time_to_first_byte(agg.ttfb_bounds_),
      response_duration(agg.response_bounds_),
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

constexpr double kNanosPerSecond = 1e9;

// Counters stop at the top instead of wrapping to a small value, which a
// scrape would read as a reset. Only records with absurd totals (2^64 bytes)
// get there, but a corrupt record must not make a counter go backwards.
void AddSaturating(uint64_t& counter, uint64_t amount) {
  counter = amount > UINT64_MAX - counter ? UINT64_MAX : counter + amount;
}

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
      response_bounds_(Share(options_.buckets.response_duration)),
      rtt_bounds_(Share(options_.buckets.rtt)),
      requests_bounds_(Share(options_.buckets.requests_per_connection)),
      overflow_(std::make_unique<Backend>(kOverflowBackend, "", *this)),
      frontend_overflow_(std::make_unique<Backend>(kOverflowBackend, "", *this)) {}

Aggregator::Backend* Aggregator::FindSeries(const Connection& conn, Clock::time_point now) {
  if (conn.frontend) return FrontendFor(conn.endpoint, now);
  return conn.overflow ? overflow_.get() : BackendFor(conn.endpoint, now);
}

// Series are only created between erasures, never moved, so a pointer found
// since the last erasure is what FindSeries() would return again (a full
// map stays full until something is erased).
Aggregator::Backend* Aggregator::SeriesOf(Connection& conn, Clock::time_point now) {
  if (conn.series && conn.series_epoch == series_epoch_) {
    conn.series->last_activity = now;
    return conn.series;
  }
  conn.series = FindSeries(conn, now);
  conn.series_epoch = series_epoch_;
  return conn.series;
}

std::string Aggregator::PoolFor(const Endpoint& endpoint) const {
  for (const auto& pool : options_.pools) {
    if (pool.match.Contains(endpoint)) return pool.name;
  }
  return "";
}

void Aggregator::SetPools(std::vector<PoolMapping> pools, std::vector<PoolMapping> frontend_names) {
  std::lock_guard lock(mutex_);
  options_.pools = std::move(pools);
  options_.frontend_names = std::move(frontend_names);
  for (auto& [endpoint, backend] : backends_) backend->pool = PoolFor(endpoint);
  for (auto& [listener, frontend] : frontends_) frontend->pool = FrontendNameFor(listener);
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
  conn.frontend = (event.flags & SOCKEYE_EVF_FRONTEND) != 0;
  conn.endpoint = conn.frontend ? ListenerOf(ToEndpoint(event.backend)) : ToEndpoint(event.backend);
  conn.adopted = (event.flags & SOCKEYE_EVF_ADOPTED) != 0;
  conn.not_swept = (event.flags & SOCKEYE_EVF_NOT_SWEPT) != 0;
  conn.born_generation = sweep_generation_;
  conn.opened_in_interval = sweep_interval_;
  ++open_connections_;
  ++opened_this_interval_;
  Backend* backend = FindSeries(conn, now);
  conn.overflow = backend == overflow_.get();
  if (conn.overflow) ++overflow_connections_;
  backend->active += 1;
  conn.series = backend;
  conn.series_epoch = series_epoch_;
  return &connections_.emplace(event.conn_id, conn).first->second;
}

void Aggregator::ApplyTotals(Backend* backend, Connection& conn,
                             const sockeye_conn_totals& totals) {
  auto advance = [](auto& last, auto current, uint64_t& counter) {
    if (current > last) {
      AddSaturating(counter, current - last);
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
    if (SOCKEYE_TURN_SRTT_US(turn)) backend->rtt.Observe(SOCKEYE_TURN_SRTT_US(turn) / 1e6);
    const uint32_t status = SOCKEYE_TURN_STATUS(turn);
    if (status != SOCKEYE_STATUS_NONE) {
      if (status != backend->last_status) {
        backend->last_status_count =
            &backend->responses[StatusCodeLabel(status, options_.status_codes)];
        backend->last_status = status;
      }
      *backend->last_status_count += 1;
    }
    ObserveResponse(backend, turn.prev_response_us);
  }
}

void Aggregator::ObserveResponse(Backend* backend, uint32_t response_us) {
  if (response_us) backend->response_duration.Observe(response_us / 1e6);
}

std::string StatusCodeLabel(uint32_t status, HttpStatusCodes codes) {
  if (status == SOCKEYE_STATUS_NONE) return "";
  if (status < 100 || status > 999) return "other";
  if (codes == HttpStatusCodes::kExact) return std::to_string(status);
  if (status > 599) return "other";
  return std::to_string(status / 100) + "xx";
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
    AddSaturating(backend->retransmits, event.totals.retransmits);
    AddSaturating(backend->resets_sent, event.totals.resets_sent);
    AddSaturating(backend->resets_received, event.totals.resets_received);
    return;
  }

  // Its connection's final close record made the agent forget it.
  if (event.kind == SOCKEYE_EV_RESET_AFTER_CLOSE) {
    const Endpoint endpoint = ToEndpoint(event.backend);
    Backend* series = (event.flags & SOCKEYE_EVF_FRONTEND) ? FrontendFor(ListenerOf(endpoint), now)
                                                           : BackendFor(endpoint, now);
    series->resets_sent += 1;
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
    ObserveTurns(SeriesOf(*conn, now), event);
    return;
  }

  // A record for a connection the kernel has closed and the agent has
  // already forgotten must not resurrect it (its totals were counted).
  bool kernel_closed = (event.flags & SOCKEYE_EVF_CLOSED) != 0;
  Connection* conn =
      ConnectionFor(event, now, !(kernel_closed && event.kind == SOCKEYE_EV_PROGRESS));
  if (!conn) return;
  Backend* backend = SeriesOf(*conn, now);
  ApplyTotals(backend, *conn, event.totals);
  ObserveTurns(backend, event);
  // Only the kernel's close and a sweep holding the socket lock complete
  // a response, each once.
  if (event.kind == SOCKEYE_EV_CLOSED || event.kind == SOCKEYE_EV_PROGRESS)
    ObserveResponse(backend, event.response_us);

  switch (event.kind) {
    case SOCKEYE_EV_CONNECTED:
      backend->established += 1;
      if (event.reason == SOCKEYE_SEEN_LATE) {
        ++transitions_seen_late_[0];
        conn->opened_late = true;
      } else if (!conn->frontend)  // an accept has no connect time
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
        if (event.flags & SOCKEYE_EVF_UNANSWERED)
          backend->unanswered[event.closed_by == SOCKEYE_CLOSED_BY_REMOTE ? 1 : 0] += 1;
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
    SeriesOf(conn, now)->active -= 1;
    ++retired_connections_;
  }
}

void Aggregator::Maintain(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  std::erase_if(connections_, [&](const auto& entry) {
    return !entry.second.open && now - entry.second.closed_at > options_.closed_connection_memory;
  });
  const size_t erased =
      std::erase_if(backends_,
                    [&](const auto& entry) {
                      bool idle = entry.second->active <= 0 &&
                                  now - entry.second->last_activity > options_.backend_idle_timeout;
                      if (idle) ++expired_backends_;
                      return idle;
                    }) +
      std::erase_if(frontends_, [&](const auto& entry) {
        return entry.second->active <= 0 &&
               now - entry.second->last_activity > options_.backend_idle_timeout;
      });
  if (erased > 0) ++series_epoch_;
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

}  // namespace sockeye
