// The aggregator's client side: frontend records count under the listener
// that accepted them (the bound address, else the wildcard listener on the
// port), apart from the backends, with the frontend name a mapping gives.
#include <gtest/gtest.h>

#include <string>

#include "agent/aggregator.h"
#include "tests/unit/aggregator_test_util.h"

namespace sockeye {
namespace {

using aggregator_test_util::Clock;
using aggregator_test_util::Event;
using aggregator_test_util::Scrape;
using aggregator_test_util::SmallOptions;
using aggregator_test_util::V4;

sockeye_event Frontend(uint8_t kind, uint64_t conn_id, const sockeye_endpoint& local) {
  sockeye_event e = Event(kind, conn_id, local);
  e.flags |= SOCKEYE_EVF_FRONTEND;
  return e;
}

TEST(AggregatorFrontends, CountUnderTheListenerThatAccepted) {
  Aggregator agg(SmallOptions());
  const auto now = Clock::now();
  // A wildcard listener on :80 and one bound to 10.0.0.9:8080.
  agg.SetListeners({*ParseEndpoint("0.0.0.0:80"), *ParseEndpoint("10.0.0.9:8080")});
  const auto via_wildcard = V4(10, 0, 0, 1, 80);
  const auto bound = V4(10, 0, 0, 9, 8080);
  agg.Handle(Frontend(SOCKEYE_EV_CONNECTED, 1, via_wildcard), now);
  agg.Handle(Frontend(SOCKEYE_EV_CONNECTED, 2, V4(10, 0, 0, 2, 80)), now);
  agg.Handle(Frontend(SOCKEYE_EV_CONNECTED, 3, bound), now);
  auto turn = Frontend(SOCKEYE_EV_TURN, 1, sockeye_endpoint{});
  turn.turn_count = 2;
  turn.turns[0] = {.ttfb_us = 30'000,
                   .srtt_status = 5 | (200u << SOCKEYE_TURN_SRTT_BITS),
                   .prev_response_us = 0};
  turn.turns[1] = {.ttfb_us = 10'000,
                   .srtt_status = 5 | (502u << SOCKEYE_TURN_SRTT_BITS),
                   .prev_response_us = 0};
  agg.Handle(turn, now);
  auto closed = Frontend(SOCKEYE_EV_CLOSED, 1, via_wildcard);
  closed.closed_by = SOCKEYE_CLOSED_BY_REMOTE;
  closed.totals = {.bytes_sent = 900,
                   .bytes_received = 120,
                   .requests = 2,
                   .retransmits = 0,
                   .resets_sent = 0,
                   .resets_received = 0};
  closed.duration_ns = 2'000'000'000;
  agg.Handle(closed, now);
  // A backend connection to the same address stays a backend.
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 4, bound), now);

  auto m = Scrape(agg);
  const std::string any = "{listener=0.0.0.0:80}";
  EXPECT_EQ(m["sockeye_frontend_connections_accepted_total" + any], 2);
  EXPECT_EQ(m["sockeye_frontend_connections_active" + any], 1);
  EXPECT_EQ(m["sockeye_frontend_connections_closed_total{listener=0.0.0.0:80,closed_by=remote}"],
            1);
  EXPECT_EQ(m["sockeye_frontend_sent_bytes_total" + any], 900);
  EXPECT_EQ(m["sockeye_frontend_received_bytes_total" + any], 120);
  EXPECT_EQ(m["sockeye_frontend_requests_total" + any], 2);
  EXPECT_EQ(m["sockeye_frontend_responses_total{listener=0.0.0.0:80,code=2xx}"], 1);
  EXPECT_EQ(m["sockeye_frontend_responses_total{listener=0.0.0.0:80,code=5xx}"], 1);
  EXPECT_EQ(m["sockeye_frontend_response_time_seconds_count" + any], 2);
  EXPECT_NEAR(m["sockeye_frontend_response_time_seconds_sum" + any], 0.040, 1e-12);
  EXPECT_EQ(m["sockeye_frontend_connection_duration_seconds_count" + any], 1);
  EXPECT_EQ(m["sockeye_frontend_connections_accepted_total{listener=10.0.0.9:8080}"], 1);
  EXPECT_EQ(m["sockeye_backend_connections_established_total{backend=10.0.0.9:8080}"], 1);
  // An accept has no connect time.
  EXPECT_EQ(m.count("sockeye_backend_connect_duration_seconds_count{backend=10.0.0.1:80}"), 0u);
}

TEST(AggregatorFrontends, DualStackAndUnknownListenersAndNames) {
  Aggregator agg(SmallOptions());
  const auto now = Clock::now();
  std::string error;
  agg.SetPools({}, {{"web", *ParseCidrMatch("[::/128]:443", &error)}});
  agg.SetListeners({*ParseEndpoint("[::]:443")});
  // An IPv4 client of a dual-stack [::]:443 listener.
  agg.Handle(Frontend(SOCKEYE_EV_CONNECTED, 1, V4(192, 0, 2, 1, 443)), now);
  // A listener that closed before the agent looked: its own address.
  agg.Handle(Frontend(SOCKEYE_EV_CONNECTED, 2, V4(192, 0, 2, 1, 9000)), now);
  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_frontend_connections_accepted_total{listener=[::]:443,frontend=web}"], 1);
  EXPECT_EQ(m["sockeye_frontend_connections_accepted_total{listener=192.0.2.1:9000}"], 1);
  EXPECT_EQ(agg.frontend_count(), 2u);
  EXPECT_EQ(agg.backend_count(), 0u);
}

}  // namespace
}  // namespace sockeye
