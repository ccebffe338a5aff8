// The aggregator applied to the kernel's records: turns, lifecycles, final
// closes, late transitions, reordered totals, failures and malformed records.
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

TEST(Aggregator, TurnsCarriedByAnyRecordKindAreObserved) {
  Aggregator agg(SmallOptions());
  auto now = Clock::now();
  auto backend = V4(10, 0, 0, 2, 80);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 1, backend), now);

  auto batch = Event(SOCKEYE_EV_TURN, 1, sockeye_endpoint{});
  batch.turn_count = SOCKEYE_TURN_BATCH;
  for (uint32_t i = 0; i < SOCKEYE_TURN_BATCH; ++i)
    batch.turns[i] = {.ttfb_us = 1'000 * (i + 1), .srtt_status = 0, .prev_response_us = 0};
  agg.Handle(batch, now);

  // The CLOSED record carries the last two turns, one with an RTT.
  auto closed = Event(SOCKEYE_EV_CLOSED, 1, backend);
  closed.turn_count = 2;
  closed.turns[0] = {.ttfb_us = 500, .srtt_status = 40, .prev_response_us = 0};
  closed.turns[1] = {.ttfb_us = 250, .srtt_status = 0, .prev_response_us = 0};
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
  turn.turns[0].srtt_status = 100;
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

// Found by tests/fuzz/fuzz_aggregator: the increments of two connections
// with absurd totals wrapped the backend's counter around to a small value,
// which a scrape reads as a counter reset.
TEST(Aggregator, CountersSaturateInsteadOfWrapping) {
  Aggregator agg(SmallOptions());
  auto now = Clock::now();
  auto backend = V4(10, 0, 0, 7, 80);
  const std::string key = "sockeye_backend_sent_bytes_total{backend=10.0.0.7:80}";
  for (uint64_t conn_id : {1, 2}) {
    agg.Handle(Event(SOCKEYE_EV_CONNECTED, conn_id, backend), now);
    auto progress = Event(SOCKEYE_EV_PROGRESS, conn_id, backend);
    progress.totals.bytes_sent = (uint64_t{1} << 63) + (uint64_t{1} << 62);
    agg.Handle(progress, now);
  }
  EXPECT_EQ(Scrape(agg)[key], static_cast<double>(UINT64_MAX));
  // A connection failure's retransmits and resets are added as they come.
  auto failed = Event(SOCKEYE_EV_CONNECT_FAILED, 3, backend);
  failed.totals.retransmits = 5;
  agg.Handle(failed, now);
  agg.Handle(failed, now);
  EXPECT_EQ(Scrape(agg)["sockeye_backend_retransmits_total{backend=10.0.0.7:80}"], 10);
}

}  // namespace
}  // namespace sockeye
