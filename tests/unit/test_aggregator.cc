#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/aggregator.h"
#include "exporters/text_format.h"

namespace sockeye {
namespace {

using Clock = Aggregator::Clock;

sockeye_endpoint V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
  sockeye_endpoint e{};
  e.addr[10] = 0xff;
  e.addr[11] = 0xff;
  e.addr[12] = a;
  e.addr[13] = b;
  e.addr[14] = c;
  e.addr[15] = d;
  e.port = port;
  return e;
}

sockeye_event Event(uint8_t kind, uint64_t conn_id, sockeye_endpoint backend) {
  sockeye_event e{};
  e.kind = kind;
  e.conn_id = conn_id;
  e.backend = backend;
  return e;
}

// The families with their sources' series listed instead (per-backend
// series come from sources).
std::vector<metrics::MetricFamily> Listed(std::vector<metrics::MetricFamily> families) {
  for (auto& f : families) metrics::Materialize(f);
  return families;
}

// Flattens a scrape into "family{labels}" -> value for counters/gauges and
// "family_count{labels}" / "family_sum{labels}" for histograms.
std::map<std::string, double> Scrape(Aggregator& agg) {
  std::vector<metrics::MetricFamily> collected;
  agg.Collect(collected);
  const auto families = Listed(std::move(collected));
  std::map<std::string, double> out;
  auto key = [](const std::string& name, const metrics::Labels& labels) {
    std::string k = name + "{";
    for (size_t i = 0; i < labels.size(); ++i)
      k += (i ? "," : "") + labels[i].name + "=" + labels[i].value;
    return k + "}";
  };
  for (const auto& f : families) {
    for (const auto& s : f.samples) out[key(f.name, s.labels)] = s.value;
    for (const auto& h : f.histograms) {
      out[key(f.name + "_count", h.labels)] = static_cast<double>(h.count);
      out[key(f.name + "_sum", h.labels)] = h.sum;
    }
  }
  return out;
}

AggregatorOptions SmallOptions(size_t max_backends = 10) {
  AggregatorOptions o;
  o.max_backends = max_backends;
  o.backend_idle_timeout = std::chrono::seconds(60);
  o.closed_connection_memory = std::chrono::seconds(30);
  return o;
}

TEST(Aggregator, TurnsCarriedByAnyRecordKindAreObserved) {
  Aggregator agg(SmallOptions());
  auto now = Clock::now();
  auto backend = V4(10, 0, 0, 2, 80);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 1, backend), now);

  auto batch = Event(SOCKEYE_EV_TURN, 1, sockeye_endpoint{});
  batch.turn_count = SOCKEYE_TURN_BATCH;
  for (uint32_t i = 0; i < SOCKEYE_TURN_BATCH; ++i)
    batch.turns[i] = {.ttfb_us = 1'000 * (i + 1), .srtt_us = 0};
  agg.Handle(batch, now);

  // The CLOSED record carries the last two turns, one with an RTT.
  auto closed = Event(SOCKEYE_EV_CLOSED, 1, backend);
  closed.turn_count = 2;
  closed.turns[0] = {.ttfb_us = 500, .srtt_us = 40};
  closed.turns[1] = {.ttfb_us = 250, .srtt_us = 0};
  agg.Handle(closed, now);

  // A count past the batch size is not trusted: its turns are ignored and
  // counted as malformed, its totals still apply.
  auto bad = Event(SOCKEYE_EV_PROGRESS, 2, backend);
  bad.turn_count = SOCKEYE_TURN_BATCH + 1;
  bad.totals.bytes_sent = 7;
  agg.Handle(bad, now);

  auto m = Scrape(agg);
  // The batch's turns took 1, 2, ... SOCKEYE_TURN_BATCH ms.
  constexpr double kBatchSeconds = 0.001 * SOCKEYE_TURN_BATCH * (SOCKEYE_TURN_BATCH + 1) / 2;
  EXPECT_EQ(m["sockeye_backend_time_to_first_byte_seconds_count{backend=10.0.0.2:80}"],
            SOCKEYE_TURN_BATCH + 2);
  EXPECT_NEAR(m["sockeye_backend_time_to_first_byte_seconds_sum{backend=10.0.0.2:80}"],
              kBatchSeconds + 0.00075, 1e-12);
  EXPECT_EQ(m["sockeye_backend_rtt_seconds_count{backend=10.0.0.2:80}"], 1);
  EXPECT_EQ(m["sockeye_events_malformed_total{}"], 1);
  EXPECT_EQ(m["sockeye_backend_sent_bytes_total{backend=10.0.0.2:80}"], 7);
}

// A batch record carries only the conn_id and the turns: it never opens a
// connection (it names no backend) and never moves totals; the turns of a
// connection the agent does not know are counted, not observed.
TEST(Aggregator, TurnBatchesBelongToTheirConnectionOnly) {
  Aggregator agg(SmallOptions());
  auto now = Clock::now();
  auto backend = V4(10, 0, 0, 5, 80);

  auto orphan = Event(SOCKEYE_EV_TURN, 7, backend);
  orphan.turn_count = 3;
  orphan.totals.bytes_sent = 99;
  agg.Handle(orphan, now);

  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 8, backend), now);
  auto batch = Event(SOCKEYE_EV_TURN, 8, sockeye_endpoint{});
  batch.turn_count = 2;
  batch.turns[0].ttfb_us = 1000;
  batch.turns[1].ttfb_us = 3000;
  batch.totals.bytes_sent = 500;
  agg.Handle(batch, now);

  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_turns_unmatched_total{}"], 3);
  EXPECT_EQ(m["sockeye_backend_time_to_first_byte_seconds_count{backend=10.0.0.5:80}"], 2);
  EXPECT_NEAR(m["sockeye_backend_time_to_first_byte_seconds_sum{backend=10.0.0.5:80}"], 0.004,
              1e-12);
  EXPECT_EQ(m["sockeye_backend_sent_bytes_total{backend=10.0.0.5:80}"], 0);
  EXPECT_EQ(m["sockeye_backends{}"], 1);
  EXPECT_EQ(m["sockeye_events_total{kind=turn}"], 2);
}

TEST(Aggregator, ConnectionLifecycleCountsOnce) {
  Aggregator agg(SmallOptions());
  auto now = Clock::now();
  auto backend = V4(10, 0, 0, 1, 8080);

  auto connected = Event(SOCKEYE_EV_CONNECTED, 1, backend);
  connected.duration_ns = 250'000;  // 250 us
  agg.Handle(connected, now);

  auto turn = Event(SOCKEYE_EV_TURN, 1, backend);
  turn.turn_count = 1;
  turn.turns[0].ttfb_us = 2000;
  turn.turns[0].srtt_us = 100;
  turn.totals.bytes_sent = 100;
  turn.totals.requests = 1;
  agg.Handle(turn, now);

  auto closed = Event(SOCKEYE_EV_CLOSED, 1, backend);
  closed.closed_by = SOCKEYE_CLOSED_BY_REMOTE;
  closed.duration_ns = 5'000'000'000;
  closed.totals.bytes_sent = 100;
  closed.totals.bytes_received = 5000;
  closed.totals.requests = 1;
  closed.totals.retransmits = 2;
  agg.Handle(closed, now);
  // A sweep record that raced the close carries the same totals: no double count.
  auto late = closed;
  late.kind = SOCKEYE_EV_PROGRESS;
  late.flags = SOCKEYE_EVF_CLOSED;
  agg.Handle(late, now);

  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backend_connections_established_total{backend=10.0.0.1:8080}"], 1);
  EXPECT_EQ(m["sockeye_backend_connections_active{backend=10.0.0.1:8080}"], 0);
  EXPECT_EQ(m["sockeye_backend_connections_closed_total{backend=10.0.0.1:8080,closed_by=remote}"],
            1);
  EXPECT_EQ(m["sockeye_backend_connections_closed_total{backend=10.0.0.1:8080,closed_by=local}"],
            0);
  EXPECT_EQ(m["sockeye_backend_sent_bytes_total{backend=10.0.0.1:8080}"], 100);
  EXPECT_EQ(m["sockeye_backend_received_bytes_total{backend=10.0.0.1:8080}"], 5000);
  EXPECT_EQ(m["sockeye_backend_requests_total{backend=10.0.0.1:8080}"], 1);
  EXPECT_EQ(m["sockeye_backend_retransmits_total{backend=10.0.0.1:8080}"], 2);
  EXPECT_EQ(m["sockeye_backend_connect_duration_seconds_count{backend=10.0.0.1:8080}"], 1);
  EXPECT_DOUBLE_EQ(m["sockeye_backend_connect_duration_seconds_sum{backend=10.0.0.1:8080}"],
                   0.00025);
  EXPECT_DOUBLE_EQ(m["sockeye_backend_time_to_first_byte_seconds_sum{backend=10.0.0.1:8080}"],
                   0.002);
  EXPECT_EQ(m["sockeye_backend_connection_duration_seconds_count{backend=10.0.0.1:8080}"], 1);
  EXPECT_EQ(m["sockeye_backend_requests_per_connection_count{backend=10.0.0.1:8080}"], 1);
  EXPECT_EQ(m["sockeye_backend_rtt_seconds_count{backend=10.0.0.1:8080}"], 1);
  EXPECT_EQ(m["sockeye_events_total{kind=closed}"], 1);
  EXPECT_EQ(m["sockeye_events_total{kind=progress}"], 1);
}

// A close record marked final (the application had let go of the socket) is
// the connection's last: the agent keeps nothing for it, while a closed
// connection the application still holds is kept for its late records.
TEST(Aggregator, FinalCloseRecordsAreNotRemembered) {
  Aggregator agg(SmallOptions());
  auto now = Clock::now();
  auto backend = V4(10, 0, 0, 1, 8080);
  for (uint64_t id : {1, 2}) {
    auto connected = Event(SOCKEYE_EV_CONNECTED, id, backend);
    agg.Handle(connected, now);
    auto closed = Event(SOCKEYE_EV_CLOSED, id, backend);
    closed.totals.bytes_received = 1000;
    closed.totals.requests = 1;
    closed.flags = SOCKEYE_EVF_CLOSED | (id == 1 ? SOCKEYE_EVF_FINAL : 0);
    agg.Handle(closed, now);
  }
  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_connections_remembered{}"], 1);
  EXPECT_EQ(m["sockeye_connections_followed{}"], 0);
  EXPECT_EQ(m["sockeye_backend_connections_active{backend=10.0.0.1:8080}"], 0);
  EXPECT_EQ(m["sockeye_backend_connections_closed_total{backend=10.0.0.1:8080,closed_by=local}"],
            2);
  EXPECT_EQ(m["sockeye_backend_received_bytes_total{backend=10.0.0.1:8080}"], 2000);
  EXPECT_EQ(m["sockeye_backend_requests_per_connection_count{backend=10.0.0.1:8080}"], 2);

  // A reset the kernel sent after connection 1's final close record.
  auto reset = Event(SOCKEYE_EV_RESET_AFTER_CLOSE, 1, backend);
  reset.totals.resets_sent = 1;
  reset.flags = SOCKEYE_EVF_CLOSED;
  agg.Handle(reset, now);
  m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backend_resets_sent_total{backend=10.0.0.1:8080}"], 1);
  EXPECT_EQ(m["sockeye_backend_connections_active{backend=10.0.0.1:8080}"], 0);
  EXPECT_EQ(m["sockeye_connections_remembered{}"], 1);

  // Data read after a reset closed connection 2 still counts, once.
  auto late = Event(SOCKEYE_EV_PROGRESS, 2, backend);
  late.flags = SOCKEYE_EVF_CLOSED;
  late.totals.bytes_received = 1500;
  late.totals.requests = 1;
  agg.Handle(late, now);
  agg.Handle(late, now);
  m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backend_received_bytes_total{backend=10.0.0.1:8080}"], 2500);
  EXPECT_EQ(m["sockeye_connections_remembered{}"], 1);
}

// A sweep can only find something on a connection that has been open since
// before the previous one: the others reported their opening (and, if
// closed, their close) themselves.
TEST(Aggregator, SweepsAreNeededOnlyForConnectionsOpenAcrossAnInterval) {
  Aggregator agg(SmallOptions());
  auto now = Clock::now();
  auto backend = V4(10, 0, 0, 1, 8080);
  EXPECT_FALSE(agg.StartSweepInterval());  // nothing open

  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 1, backend), now);
  auto closed = Event(SOCKEYE_EV_CLOSED, 1, backend);
  closed.flags = SOCKEYE_EVF_CLOSED | SOCKEYE_EVF_FINAL;
  agg.Handle(closed, now);  // opened and closed within the interval
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 2, backend), now);
  EXPECT_FALSE(agg.StartSweepInterval());  // 2 is younger than the interval
  EXPECT_TRUE(agg.StartSweepInterval());   // 2 has lived through one
  EXPECT_TRUE(agg.StartSweepInterval());

  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 3, backend), now);
  auto closed2 = Event(SOCKEYE_EV_CLOSED, 2, backend);
  closed2.flags = SOCKEYE_EVF_CLOSED;
  agg.Handle(closed2, now);
  EXPECT_FALSE(agg.StartSweepInterval());  // only 3 is open, and it is new
  EXPECT_TRUE(agg.StartSweepInterval());

  // A connection retired by a full sweep is no longer open either.
  agg.BeginFullSweep();
  agg.EndFullSweep();
  EXPECT_EQ(agg.open_connection_count(), 0u);
  EXPECT_FALSE(agg.StartSweepInterval());
}

// A transition the kernel skipped in both state-hook programs is reported
// when a later one shows it (SOCKEYE_SEEN_LATE): the connection counts, its
// duration is not a measurement and must stay out of the histograms.
TEST(Aggregator, TransitionsSeenLateCountButAreNotTimed) {
  Aggregator agg(SmallOptions());
  auto now = Clock::now();
  auto backend = V4(10, 0, 0, 9, 80);

  auto late_open = Event(SOCKEYE_EV_CONNECTED, 1, backend);
  late_open.reason = SOCKEYE_SEEN_LATE;
  agg.Handle(late_open, now);
  auto timed = Event(SOCKEYE_EV_CONNECTED, 2, backend);
  timed.duration_ns = 1'000'000;
  agg.Handle(timed, now);

  auto late_close = Event(SOCKEYE_EV_CLOSED, 1, backend);
  late_close.reason = SOCKEYE_SEEN_LATE;
  late_close.duration_ns = 7'000'000'000;
  late_close.totals.bytes_sent = 10;
  agg.Handle(late_close, now);
  auto closed = Event(SOCKEYE_EV_CLOSED, 2, backend);
  closed.duration_ns = 2'000'000'000;
  agg.Handle(closed, now);

  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backend_connections_established_total{backend=10.0.0.9:80}"], 2);
  EXPECT_EQ(m["sockeye_backend_connections_active{backend=10.0.0.9:80}"], 0);
  EXPECT_EQ(m["sockeye_backend_connections_closed_total{backend=10.0.0.9:80,closed_by=local}"], 2);
  EXPECT_EQ(m["sockeye_backend_sent_bytes_total{backend=10.0.0.9:80}"], 10);
  EXPECT_EQ(m["sockeye_backend_connect_duration_seconds_count{backend=10.0.0.9:80}"], 1);
  EXPECT_DOUBLE_EQ(m["sockeye_backend_connect_duration_seconds_sum{backend=10.0.0.9:80}"], 0.001);
  EXPECT_EQ(m["sockeye_backend_connection_duration_seconds_count{backend=10.0.0.9:80}"], 1);
  EXPECT_DOUBLE_EQ(m["sockeye_backend_connection_duration_seconds_sum{backend=10.0.0.9:80}"], 2);
  // Requests before a late open are not counted: no requests-per-connection
  // sample for that connection.
  EXPECT_EQ(m["sockeye_backend_requests_per_connection_count{backend=10.0.0.9:80}"], 1);
  EXPECT_EQ(m["sockeye_transitions_seen_late_total{transition=established}"], 1);
  EXPECT_EQ(m["sockeye_transitions_seen_late_total{transition=close}"], 1);
}

TEST(Aggregator, TotalsAreDifferencedAndReorderingIsHarmless) {
  Aggregator agg(SmallOptions());
  auto now = Clock::now();
  auto backend = V4(10, 0, 0, 2, 80);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 7, backend), now);
  auto progress = Event(SOCKEYE_EV_PROGRESS, 7, backend);
  progress.totals.bytes_received = 3000;
  progress.totals.requests = 3;
  agg.Handle(progress, now);
  auto older = progress;  // an earlier record delivered late
  older.totals.bytes_received = 1000;
  older.totals.requests = 1;
  agg.Handle(older, now);
  progress.totals.bytes_received = 4000;
  agg.Handle(progress, now);
  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backend_received_bytes_total{backend=10.0.0.2:80}"], 4000);
  EXPECT_EQ(m["sockeye_backend_requests_total{backend=10.0.0.2:80}"], 3);
  EXPECT_EQ(m["sockeye_backend_connections_active{backend=10.0.0.2:80}"], 1);
}

TEST(Aggregator, LostConnectedRecordStillCountsBytesAndActive) {
  Aggregator agg(SmallOptions());
  auto now = Clock::now();
  auto backend = V4(10, 0, 0, 3, 80);
  auto progress = Event(SOCKEYE_EV_PROGRESS, 9, backend);
  progress.totals.bytes_sent = 10;
  agg.Handle(progress, now);
  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backend_sent_bytes_total{backend=10.0.0.3:80}"], 10);
  EXPECT_EQ(m["sockeye_backend_connections_active{backend=10.0.0.3:80}"], 1);
  // A late record for a closed connection the agent never knew is ignored.
  auto stale = Event(SOCKEYE_EV_PROGRESS, 10, backend);
  stale.flags = SOCKEYE_EVF_CLOSED;
  stale.totals.bytes_sent = 99;
  agg.Handle(stale, now);
  EXPECT_EQ(Scrape(agg)["sockeye_backend_sent_bytes_total{backend=10.0.0.3:80}"], 10);
}

TEST(Aggregator, ConnectFailuresByReasonAndIPv6Label) {
  Aggregator agg(SmallOptions());
  auto now = Clock::now();
  sockeye_endpoint v6{};
  v6.addr[15] = 1;  // ::1
  v6.port = 443;
  auto failed = Event(SOCKEYE_EV_CONNECT_FAILED, 3, v6);
  failed.reason = SOCKEYE_FAIL_REFUSED;
  failed.totals.resets_received = 1;
  agg.Handle(failed, now);
  failed.reason = SOCKEYE_FAIL_TIMEOUT;
  failed.totals.resets_received = 0;
  agg.Handle(failed, now);
  failed.reason = 200;  // odd kernel data lands in "other", never out of bounds
  agg.Handle(failed, now);
  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backend_connect_failures_total{backend=[::1]:443,reason=refused}"], 1);
  EXPECT_EQ(m["sockeye_backend_connect_failures_total{backend=[::1]:443,reason=timeout}"], 1);
  EXPECT_EQ(m["sockeye_backend_connect_failures_total{backend=[::1]:443,reason=other}"], 1);
  EXPECT_EQ(m["sockeye_backend_connect_failures_total{backend=[::1]:443,reason=reset}"], 0);
  EXPECT_EQ(m["sockeye_backend_resets_received_total{backend=[::1]:443}"], 1);
}

TEST(Aggregator, MalformedKindIsCountedNotApplied) {
  Aggregator agg(SmallOptions());
  agg.Handle(Event(0, 1, V4(1, 2, 3, 4, 5)), Clock::now());
  agg.Handle(Event(250, 1, V4(1, 2, 3, 4, 5)), Clock::now());
  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_events_malformed_total{}"], 2);
  EXPECT_EQ(m["sockeye_backends{}"], 0);
}

TEST(Aggregator, OverflowSeriesAndCounting) {
  Aggregator agg(SmallOptions(/*max_backends=*/2));
  auto now = Clock::now();
  for (uint64_t i = 0; i < 5; ++i) {
    auto e = Event(SOCKEYE_EV_CONNECTED, i + 1, V4(10, 0, 0, static_cast<uint8_t>(i + 1), 80));
    agg.Handle(e, now);
  }
  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backends{}"], 2);
  EXPECT_EQ(m["sockeye_backends_overflow{}"], 2);  // capped at max_backends
  EXPECT_EQ(m["sockeye_backend_overflow_connections_total{}"], 3);
  EXPECT_EQ(m["sockeye_backend_connections_established_total{backend=(overflow)}"], 3);
  EXPECT_EQ(m["sockeye_backend_connections_active{backend=(overflow)}"], 3);
  EXPECT_EQ(m.count("sockeye_backend_connections_established_total{backend=10.0.0.5:80}"), 0u);
}

TEST(Aggregator, IdleBackendsExpireButBusyOnesStay) {
  Aggregator agg(SmallOptions());
  auto t0 = Clock::now();
  auto idle = V4(10, 0, 0, 1, 80);
  auto busy = V4(10, 0, 0, 2, 80);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 1, idle), t0);
  auto closed = Event(SOCKEYE_EV_CLOSED, 1, idle);
  agg.Handle(closed, t0);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 2, busy), t0);  // stays open
  agg.Maintain(t0 + std::chrono::seconds(30));
  EXPECT_EQ(agg.backend_count(), 2u);
  agg.Maintain(t0 + std::chrono::seconds(61));
  EXPECT_EQ(agg.backend_count(), 1u);
  auto m = Scrape(agg);
  EXPECT_EQ(m.count("sockeye_backend_connections_active{backend=10.0.0.1:80}"), 0u);
  EXPECT_EQ(m["sockeye_backend_connections_active{backend=10.0.0.2:80}"], 1);
  EXPECT_EQ(m["sockeye_backends_expired_total{}"], 1);
}

// A sweep that failed part-way did not reach every open connection, and one
// in a network namespace the sweep does not walk is never reached: neither
// may be taken for closed.
TEST(Aggregator, FailedSweepsAndUnsweptConnectionsRetireNothing) {
  Aggregator agg(SmallOptions());
  auto now = Clock::now();
  auto backend = V4(10, 0, 0, 1, 80);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 1, backend), now);
  auto elsewhere = Event(SOCKEYE_EV_CONNECTED, 2, backend);
  elsewhere.flags = SOCKEYE_EVF_NOT_SWEPT;
  agg.Handle(elsewhere, now);
  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_connections_not_swept{}"], 1);

  agg.BeginFullSweep();
  agg.AbortFullSweep();
  agg.EndFullSweep();  // a stray end after an abort retires nothing either
  m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backend_connections_active{backend=10.0.0.1:80}"], 2);
  EXPECT_EQ(m["sockeye_connections_retired_total{}"], 0);

  agg.BeginFullSweep();
  agg.EndFullSweep();  // reached neither: only the swept one is retired
  m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backend_connections_active{backend=10.0.0.1:80}"], 1);
  EXPECT_EQ(m["sockeye_connections_retired_total{}"], 1);
  EXPECT_EQ(m["sockeye_connections_not_swept{}"], 1);
}

TEST(Aggregator, FullSweepRetiresConnectionsWhoseCloseWasLost) {
  Aggregator agg(SmallOptions());
  auto now = Clock::now();
  auto backend = V4(10, 0, 0, 1, 80);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 1, backend), now);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 2, backend), now);
  agg.BeginFullSweep();
  agg.Handle(Event(SOCKEYE_EV_PROGRESS, 2, backend), now);   // only conn 2 is still open
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 3, backend), now);  // opened during the sweep
  agg.EndFullSweep();
  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backend_connections_active{backend=10.0.0.1:80}"], 2);
  EXPECT_EQ(m["sockeye_connections_retired_total{}"], 1);
  // The lost close turns up after all: counted as closed, active unchanged.
  auto closed = Event(SOCKEYE_EV_CLOSED, 1, backend);
  closed.totals.bytes_sent = 7;
  agg.Handle(closed, now);
  m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backend_connections_active{backend=10.0.0.1:80}"], 2);
  EXPECT_EQ(m["sockeye_backend_connections_closed_total{backend=10.0.0.1:80,closed_by=local}"], 1);
  EXPECT_EQ(m["sockeye_backend_sent_bytes_total{backend=10.0.0.1:80}"], 7);
}

TEST(Aggregator, AdoptedConnectionsCountBytesButNotLifetime) {
  Aggregator agg(SmallOptions());
  auto now = Clock::now();
  auto backend = V4(10, 0, 0, 1, 80);
  auto adopted = Event(SOCKEYE_EV_ADOPTED, 1, backend);
  adopted.flags = SOCKEYE_EVF_ADOPTED;
  agg.Handle(adopted, now);
  auto closed = Event(SOCKEYE_EV_CLOSED, 1, backend);
  closed.flags = SOCKEYE_EVF_ADOPTED | SOCKEYE_EVF_CLOSED;
  closed.totals.bytes_received = 42;
  closed.totals.requests = 2;
  closed.duration_ns = 1'000'000;
  agg.Handle(closed, now);
  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backend_connections_established_total{backend=10.0.0.1:80}"], 0);
  EXPECT_EQ(m["sockeye_backend_received_bytes_total{backend=10.0.0.1:80}"], 42);
  EXPECT_EQ(m["sockeye_backend_requests_total{backend=10.0.0.1:80}"], 2);
  EXPECT_EQ(m["sockeye_backend_connection_duration_seconds_count{backend=10.0.0.1:80}"], 0);
  EXPECT_EQ(m["sockeye_backend_connections_closed_total{backend=10.0.0.1:80,closed_by=local}"], 1);
}

TEST(Aggregator, PoolLabelFromMappings) {
  std::string error;
  auto options = SmallOptions();
  options.pools.push_back({"api", *ParseCidrMatch("10.1.0.0/24:8080", &error)});
  Aggregator agg(options);
  auto now = Clock::now();
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 1, V4(10, 1, 0, 7, 8080)), now);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 2, V4(10, 1, 0, 7, 9090)), now);
  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backend_connections_active{backend=10.1.0.7:8080,pool=api}"], 1);
  EXPECT_EQ(m["sockeye_backend_connections_active{backend=10.1.0.7:9090}"], 1);
}

// Three backends with their own series (one in a pool, one IPv6) and two
// in (overflow): connections, turns, a close and a failure each.
std::unique_ptr<Aggregator> PopulatedWithPoolAndOverflow() {
  std::string error;
  auto options = SmallOptions(/*max_backends=*/3);
  options.pools.push_back({"api", *ParseCidrMatch("10.1.0.0/24:8080", &error)});
  auto agg_owner = std::make_unique<Aggregator>(options);
  Aggregator& agg = *agg_owner;
  sockeye_endpoint v6{};
  v6.addr[15] = 1;  // ::1
  v6.port = 443;
  const std::vector<sockeye_endpoint> backends = {V4(10, 1, 0, 7, 8080), v6, V4(10, 0, 0, 2, 80),
                                                  V4(10, 0, 0, 3, 80), V4(10, 0, 0, 4, 80)};
  auto now = Clock::now();
  uint64_t conn = 1;
  for (size_t b = 0; b < backends.size(); ++b, ++conn) {
    auto connected = Event(SOCKEYE_EV_CONNECTED, conn, backends[b]);
    connected.duration_ns = 200'000 * (b + 1);
    agg.Handle(connected, now);
    auto turn = Event(SOCKEYE_EV_TURN, conn, backends[b]);
    turn.turn_count = 1;
    turn.turns[0] = {.ttfb_us = static_cast<__u32>(3'000 * (b + 1)), .srtt_us = 100};
    turn.totals.requests = 1;
    turn.totals.bytes_sent = 100 + b;
    agg.Handle(turn, now);
    auto closed = Event(SOCKEYE_EV_CLOSED, conn, backends[b]);
    closed.closed_by = b % 2 ? SOCKEYE_CLOSED_BY_REMOTE : 0;
    closed.duration_ns = 1'000'000'000;
    closed.totals = turn.totals;
    agg.Handle(closed, now);
    auto failed = Event(SOCKEYE_EV_CONNECT_FAILED, 0, backends[b]);
    failed.reason = static_cast<uint8_t>(b % SOCKEYE_FAIL_COUNT);
    agg.Handle(failed, now);
  }
  return agg_owner;
}

TEST(Aggregator, PerBackendSeriesComeFromSourcesInLabelOrder) {
  auto owner = PopulatedWithPoolAndOverflow();
  Aggregator& agg = *owner;
  std::vector<metrics::MetricFamily> families;
  agg.Collect(families);
  for (const auto& f : families) {
    if (f.name.starts_with("sockeye_backend_") &&
        f.name != "sockeye_backend_overflow_connections_total") {
      EXPECT_TRUE(f.samples.empty() && f.histograms.empty()) << f.name;
      // Per backend label set (three backends and the overflow): one series,
      // or one per failure reason or per closed_by.
      size_t per_backend = 1;
      if (f.name.find("failures") != std::string::npos)
        per_backend = SOCKEYE_FAIL_COUNT;
      else if (f.name.find("closed") != std::string::npos)
        per_backend = 2;
      EXPECT_EQ(metrics::SeriesCount(f), 4 * per_backend) << f.name;
    }
  }
  for (auto format : {metrics::Format::kPrometheusText004, metrics::Format::kOpenMetrics100}) {
    EXPECT_EQ(metrics::Serialize(families, format), metrics::Serialize(Listed(families), format));
  }
  const std::string page = metrics::Serialize(families, metrics::Format::kPrometheusText004);
  // Sorted by label, the overflow series last; pool before any other label.
  EXPECT_NE(page.find("# TYPE sockeye_backend_connect_failures_total counter\n"
                      "sockeye_backend_connect_failures_total{backend=\"10.0.0.2:80\","
                      "reason=\"refused\"} 0\n"),
            std::string::npos);
  EXPECT_NE(page.find("sockeye_backend_connect_failures_total{backend=\"10.1.0.7:8080\","
                      "pool=\"api\",reason=\"other\"} 0\n"
                      "sockeye_backend_connect_failures_total{backend=\"[::1]:443\","
                      "reason=\"refused\"} 0\n"),
            std::string::npos);
  EXPECT_NE(page.find("sockeye_backend_connections_closed_total{backend=\"(overflow)\","
                      "closed_by=\"remote\"} 1\n"
                      "# HELP sockeye_backend_connect_duration_seconds "),
            std::string::npos);
  EXPECT_NE(page.find("sockeye_backend_rtt_seconds_bucket{backend=\"10.1.0.7:8080\",pool=\"api\","
                      "le=\"0.0001\"} 1\n"),
            std::string::npos);
}

TEST(Aggregator, PageShowsTheStateAtCollectWhateverHappensAfter) {
  auto owner = PopulatedWithPoolAndOverflow();
  Aggregator& agg = *owner;
  auto now = Clock::now();
  std::vector<metrics::MetricFamily> first;
  agg.Collect(first);
  const std::string first_page =
      metrics::Serialize(Listed(first), metrics::Format::kOpenMetrics100);

  // More traffic, a new backend (the overflow), and a scrape while the
  // first page is still being rendered: it must get a snapshot of its own.
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 100, V4(10, 1, 0, 7, 8080)), now);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 101, V4(192, 0, 2, 1, 80)), now);
  std::vector<metrics::MetricFamily> second;
  agg.Collect(second);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 102, V4(10, 1, 0, 7, 8080)), now);
  EXPECT_EQ(metrics::Serialize(first, metrics::Format::kOpenMetrics100), first_page);
  const std::string second_page = metrics::Serialize(second, metrics::Format::kPrometheusText004);
  EXPECT_NE(second_page.find("sockeye_backend_connections_active{backend=\"10.1.0.7:8080\","
                             "pool=\"api\"} 1\n"),
            std::string::npos);

  // With no page left, the next scrape refills the same snapshot; what the
  // event thread does next still does not show in its page.
  first.clear();
  second.clear();
  std::vector<metrics::MetricFamily> third;
  agg.Collect(third);
  const std::string third_page =
      metrics::Serialize(Listed(third), metrics::Format::kOpenMetrics100);
  EXPECT_NE(third_page.find("sockeye_backend_connections_active{backend=\"10.1.0.7:8080\","
                            "pool=\"api\"} 2\n"),
            std::string::npos);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 103, V4(10, 1, 0, 7, 8080)), now);
  agg.Maintain(now + std::chrono::hours(1));
  EXPECT_EQ(metrics::Serialize(third, metrics::Format::kOpenMetrics100), third_page);
}

// Scrapes rendering on two threads while events keep arriving; meant for
// sanitizer builds (a race on the snapshot shows there), and checks every
// page is whole.
TEST(Aggregator, ConcurrentScrapesWhileEventsArrive) {
  Aggregator agg(SmallOptions(/*max_backends=*/50));
  std::atomic<bool> done{false};
  std::thread events([&] {
    auto now = Clock::now();
    for (uint64_t i = 0; i < 20000; ++i) {
      auto e = Event(i % 3 ? SOCKEYE_EV_PROGRESS : SOCKEYE_EV_CONNECTED, i % 400 + 1,
                     V4(10, 0, static_cast<uint8_t>(i % 7), static_cast<uint8_t>(i % 60), 80));
      e.totals.bytes_sent = i;
      agg.Handle(e, now);
    }
    done = true;
  });
  auto scrape = [&] {
    size_t pages = 0;
    while (!done || pages < 3) {
      std::vector<metrics::MetricFamily> families;
      agg.Collect(families);
      metrics::Serializer serializer(families, metrics::Format::kOpenMetrics100);
      std::string page;
      while (serializer.AppendTo(page, page.size() + 512)) {
      }
      EXPECT_TRUE(page.ends_with("sockeye_connections_retired_total 0\n# EOF\n"));
      ++pages;
    }
  };
  std::thread other(scrape);
  scrape();
  other.join();
  events.join();
}

TEST(Histogram, BucketsUseLessOrEqual) {
  auto bounds = std::make_shared<const std::vector<double>>(std::vector<double>{1, 2, 5});
  Histogram h(bounds);
  h.Observe(1);    // le=1
  h.Observe(1.5);  // le=2
  h.Observe(6);    // only +Inf
  EXPECT_EQ(h.bucket_counts(), (std::vector<uint64_t>{1, 1, 0}));
  EXPECT_EQ(h.count(), 3u);
  EXPECT_DOUBLE_EQ(h.sum(), 8.5);
}

}  // namespace
}  // namespace sockeye
