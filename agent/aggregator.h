// Turns kernel records into per-backend and per-listener (frontend) counters
// and histograms.
//
// Records carry cumulative per-connection totals; the aggregator keeps the
// last totals it saw for each connection and adds only the difference, so
// a lost or reordered record delays a count but never loses or doubles it.
// Thread-safe: the event thread calls Handle()/Maintain(), scrapes call
// Collect().
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "agent/address.h"
#include "agent/config.h"
#include "agent/histogram.h"
#include "exporters/metric_model.h"
#include "sockeye_abi.h"

namespace sockeye {

// What one scrape renders of the backends (aggregator_collect.cc).
class BackendSnapshot;

struct AggregatorOptions {
  size_t max_backends = 5000;
  std::chrono::seconds backend_idle_timeout{600};
  // Closed connections are remembered this long so that late records for
  // them (a sweep racing the close) are differenced, not counted again.
  std::chrono::seconds closed_connection_memory{60};
  HistogramBuckets buckets = DefaultHistogramBuckets();
  std::vector<PoolMapping> pools;
  std::vector<PoolMapping> frontend_names;  // --frontend
  HttpStatusCodes status_codes = HttpStatusCodes::kClass;
};

// The `code` label of an HTTP status a turn carries (SOCKEYE_TURN_STATUS()):
// "2xx" and so on, "other" for a response that was no status line or a code
// outside 100-599; with exact codes the three digits (still "other" for no
// status line). Empty for SOCKEYE_STATUS_NONE.
std::string StatusCodeLabel(uint32_t status, HttpStatusCodes codes);

// The label value of the series that collects backends beyond
// --max-backends; parentheses never appear in an address:port.
inline constexpr const char* kOverflowBackend = "(overflow)";

// "connected", "turn", ... for enum sockeye_event_kind values.
const char* EventKindName(size_t kind);

class Aggregator : public metrics::Collector {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Aggregator(AggregatorOptions options);

  void Handle(const sockeye_event& event, Clock::time_point now);

  // A full sweep reports every open connection the kernel still follows.
  // Connections the agent thinks open that it did not report were closed
  // while their CLOSED record was lost: they are retired (and counted).
  void BeginFullSweep();
  void EndFullSweep();
  // A full sweep that failed part-way: nothing is retired.
  void AbortFullSweep();

  // Starts the next sweep interval. True when a connection open now was
  // already open when the previous interval started: only such a
  // connection can have moved without a record of its own (a connection is
  // reported when it opens and closes), so otherwise a sweep has nothing to
  // find and is skipped.
  bool StartSweepInterval();

  // Forgets idle backends and expired closed-connection memories.
  void Maintain(Clock::time_point now);

  // Pools and buckets can change on reload; counters are kept.
  void SetPools(std::vector<PoolMapping> pools, std::vector<PoolMapping> frontend_names = {});

  // The frontend listeners' bound addresses (agent/listener_selection.h): a
  // frontend connection counts under the listener that accepted it, found
  // from its local address: the listener bound to that address, else the
  // wildcard one on its port.
  void SetListeners(std::vector<Endpoint> listeners);

  void Collect(std::vector<metrics::MetricFamily>& out) override;

  size_t backend_count() const;
  size_t frontend_count() const;
  size_t open_connection_count() const;

 private:
  // The series of one backend, or of one frontend listener (its label the
  // listener's, its established count the connections accepted, its
  // time-to-first-byte the response time).
  struct Backend {
    Backend(std::string label_value, std::string pool_name, const Aggregator& agg);

    std::string label;
    std::string pool;
    uint64_t established = 0;
    std::array<uint64_t, SOCKEYE_FAIL_COUNT> failures{};
    std::array<uint64_t, 2> closed{};  // by enum sockeye_closed_by
    int64_t active = 0;
    uint64_t bytes_sent = 0;
    uint64_t bytes_received = 0;
    uint64_t requests = 0;
    uint64_t retransmits = 0;
    uint64_t resets_sent = 0;
    uint64_t resets_received = 0;
    Histogram connect_duration;
    Histogram connection_duration;
    Histogram time_to_first_byte;
    Histogram response_duration;
    Histogram rtt;
    // Final HTTP/1.x responses by `code` label value (StatusCodeLabel()):
    // at most 6 classes, or 901 exact values.
    std::map<std::string, uint64_t> responses;
    // The count of the status last seen: most responses repeat it, and the
    // label is then neither formatted nor looked up again (map nodes stay).
    uint32_t last_status = SOCKEYE_STATUS_NONE;
    uint64_t* last_status_count = nullptr;
    std::array<uint64_t, 2> unanswered{};  // by enum sockeye_closed_by
    Histogram requests_per_connection;
    Clock::time_point last_activity;
  };

  struct Connection {
    Endpoint endpoint;  // the backend, or the frontend's listener
    bool frontend = false;
    bool overflow = false;
    bool open = true;
    bool close_recorded = false;
    bool adopted = false;
    bool opened_late = false;  // its CONNECTED record was SOCKEYE_SEEN_LATE
    bool not_swept = false;    // the sweep cannot see it (SOCKEYE_EVF_NOT_SWEPT)
    sockeye_conn_totals last{};
    Clock::time_point closed_at;
    uint64_t born_generation = 0;
    uint64_t seen_generation = 0;
    uint64_t opened_in_interval = 0;
    // Its series as last found, valid while series_epoch is the
    // aggregator's: looked up by endpoint once per connection, not per record.
    Backend* series = nullptr;
    uint64_t series_epoch = 0;
  };

  void MarkClosed(Connection& conn, Clock::time_point now);
  Backend* BackendFor(const Endpoint& endpoint, Clock::time_point now);
  Backend* FrontendFor(const Endpoint& listener, Clock::time_point now);
  // Where a connection's counts go.
  Backend* SeriesOf(Connection& conn, Clock::time_point now);
  Backend* FindSeries(const Connection& conn, Clock::time_point now);
  Endpoint ListenerOf(const Endpoint& local) const;
  Connection* ConnectionFor(const sockeye_event& event, Clock::time_point now, bool create_open);
  // Adds what the connection's cumulative totals moved since the last record.
  void ApplyTotals(Backend* backend, Connection& conn, const sockeye_conn_totals& totals);
  // Time-to-first-byte, RTT, HTTP status and the previous response's
  // duration of the completed turns a record carries.
  void ObserveTurns(Backend* backend, const sockeye_event& event);
  void ObserveResponse(Backend* backend, uint32_t response_us);
  std::string PoolFor(const Endpoint& endpoint) const;
  std::string FrontendNameFor(const Endpoint& listener) const;
  // Copies `ordered` into `kept`, reused when no page still reads it
  // (aggregator_collect.cc).
  std::shared_ptr<BackendSnapshot> FillSnapshot(std::shared_ptr<BackendSnapshot>& kept,
                                                const std::vector<const Backend*>& ordered,
                                                std::string_view name,
                                                std::string_view group) const;

  AggregatorOptions options_;
  BucketBounds connect_bounds_, lifetime_bounds_, ttfb_bounds_, response_bounds_, rtt_bounds_,
      requests_bounds_;

  mutable std::mutex mutex_;
  std::unordered_map<Endpoint, std::unique_ptr<Backend>, EndpointHash> backends_;
  std::unique_ptr<Backend> overflow_;
  // Distinct addresses folded into the overflow series (bounded).
  std::unordered_map<Endpoint, Clock::time_point, EndpointHash> overflowed_;
  std::unordered_map<uint64_t, Connection> connections_;
  // Per listener; bounded by kMaxFrontends, past which one "(overflow)"
  // series collects the rest.
  std::unordered_map<Endpoint, std::unique_ptr<Backend>, EndpointHash> frontends_;
  std::unique_ptr<Backend> frontend_overflow_;
  std::vector<Endpoint> listeners_;
  // Advanced whenever a series is erased, which invalidates the series
  // pointers connections keep (Connection::series).
  uint64_t series_epoch_ = 1;
  uint64_t sweep_generation_ = 0;
  // Sweep intervals (StartSweepInterval()) and the open connections, in all
  // and opened in the current interval.
  uint64_t sweep_interval_ = 0;
  size_t open_connections_ = 0;
  size_t opened_this_interval_ = 0;
  bool in_full_sweep_ = false;
  // The last scrape's snapshot, reused by the next one when no page still
  // reads it: ~0.85 KB per backend, kept between scrapes.
  std::shared_ptr<BackendSnapshot> snapshot_;
  std::shared_ptr<BackendSnapshot> frontend_snapshot_;

  std::array<uint64_t, SOCKEYE_EV_KIND_COUNT> events_by_kind_{};
  uint64_t malformed_events_ = 0;
  uint64_t unmatched_turns_ = 0;
  // Transitions reported late (SOCKEYE_SEEN_LATE): established, close.
  std::array<uint64_t, 2> transitions_seen_late_{};
  uint64_t overflow_connections_ = 0;
  uint64_t retired_connections_ = 0;
  uint64_t expired_backends_ = 0;
};

}  // namespace sockeye
