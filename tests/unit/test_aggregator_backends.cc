// The aggregator's backends and open connections: sweeps, the overflow
// series, idle expiry, retirement, adoption and pools.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "agent/aggregator.h"
#include "exporters/text_format.h"
#include "tests/unit/aggregator_test_util.h"

namespace sockeye {
namespace {

using aggregator_test_util::Clock;
using aggregator_test_util::Event;
using aggregator_test_util::Scrape;
using aggregator_test_util::SmallOptions;
using aggregator_test_util::V4;

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

// A connection keeps its series between records; a remembered closed
// connection whose series expired meanwhile must find a new one for a late
// record, not the freed one.
TEST(Aggregator, ALateRecordAfterItsSeriesExpiredLandsInANewSeries) {
  AggregatorOptions options = SmallOptions();
  options.closed_connection_memory = std::chrono::seconds(120);
  Aggregator agg(options);
  auto t0 = Clock::now();
  auto backend = V4(10, 0, 0, 1, 80);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 1, backend), t0);
  auto closed = Event(SOCKEYE_EV_CLOSED, 1, backend);
  closed.flags = SOCKEYE_EVF_CLOSED;  // not final: remembered
  closed.totals.bytes_sent = 100;
  agg.Handle(closed, t0);
  agg.Maintain(t0 + std::chrono::seconds(61));
  EXPECT_EQ(agg.backend_count(), 0u);

  auto late = Event(SOCKEYE_EV_PROGRESS, 1, backend);
  late.flags = SOCKEYE_EVF_CLOSED;
  late.totals.bytes_sent = 130;
  agg.Handle(late, t0 + std::chrono::seconds(62));
  auto m = Scrape(agg);
  EXPECT_EQ(agg.backend_count(), 1u);
  EXPECT_EQ(m["sockeye_backend_sent_bytes_total{backend=10.0.0.1:80}"], 30);
  EXPECT_EQ(m["sockeye_backend_connections_active{backend=10.0.0.1:80}"], 0);
}

}  // namespace
}  // namespace sockeye
