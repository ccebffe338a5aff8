// LoopbackTraffic: exact connection, byte and request counts over keep-alive
// connections, long streams, peeked reads, and with or without a hot slot.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "loopback_fixture.h"

namespace sockeye {
namespace {

using testing::Client;
using testing::LoopbackServer;
using testing::LoopbackTraffic;

TEST_F(LoopbackTraffic, ExactCountsOverKeepAliveConnectionsIPv4AndIPv6) {
  StartAgent();
  if (!agent_) return;
  LoopbackServer v4("127.0.0.2");
  LoopbackServer v6("::1");
  for (int c = 0; c < 4; ++c) {
    Client client(v4.address(), v4.port());
    ASSERT_TRUE(client.connected());
    for (int r = 0; r < 25; ++r) ASSERT_EQ(client.Request(120, 1500), 1500u);
  }
  for (int c = 0; c < 2; ++c) {
    Client client(v6.address(), v6.port());
    ASSERT_TRUE(client.connected());
    for (int r = 0; r < 10; ++r) ASSERT_EQ(client.Request(64, 70000), 70000u);
  }
  std::map<std::string, std::string> a{{"backend", Backend(v4)}};
  std::map<std::string, std::string> b{{"backend", Backend(v6)}};
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_closed_total",
                          {{"backend", Backend(v4)}, {"closed_by", "local"}}, 4),
            4);
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_closed_total",
                          {{"backend", Backend(v6)}, {"closed_by", "local"}}, 2),
            2);
  EXPECT_EQ(Metric("sockeye_backend_connections_established_total", a), 4);
  EXPECT_EQ(Metric("sockeye_backend_connections_active", a), 0);
  EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", a), 4 * 25 * 120);
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), 4 * 25 * 1500);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), 100);
  EXPECT_EQ(Metric("sockeye_backend_time_to_first_byte_seconds_count", a), 100);
  EXPECT_EQ(Metric("sockeye_backend_requests_per_connection_count", a), 4);
  EXPECT_EQ(Metric("sockeye_backend_requests_per_connection_sum", a), 100);
  EXPECT_EQ(Metric("sockeye_backend_connect_duration_seconds_count", a), 4);
  EXPECT_EQ(Metric("sockeye_backend_connection_duration_seconds_count", a), 4);
  EXPECT_GT(Metric("sockeye_backend_rtt_seconds_count", a), 0);
  EXPECT_EQ(Metric("sockeye_backend_connect_failures_total",
                   {{"backend", Backend(v4)}, {"reason", "refused"}}),
            0);
  EXPECT_EQ(Metric("sockeye_backend_connections_established_total", b), 2);
  EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", b), 2 * 10 * 64);
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", b), 2 * 10 * 70000);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", b), 20);
  EXPECT_EQ(Metric("sockeye_backend_retransmits_total", a), 0);
}

TEST_F(LoopbackTraffic, MultiMegabyteStreamIsCountedWhileOpenAndAtClose) {
  StartAgent();
  if (!agent_) return;
  LoopbackServer server("127.0.0.2");
  constexpr size_t kResponse = 24u << 20;
  std::map<std::string, std::string> a{{"backend", Backend(server)}};
  {
    Client client(server.address(), server.port());
    ASSERT_TRUE(client.connected());
    ASSERT_EQ(client.Request(50, kResponse), kResponse);
    // Still open: the periodic sweep reports the bytes without a close.
    EXPECT_EQ(WaitForMetric("sockeye_backend_received_bytes_total", a, kResponse), kResponse);
    EXPECT_EQ(Metric("sockeye_backend_connections_active", a), 1);
  }
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_active", a, 0), 0);
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), kResponse);
  EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", a), 50);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), 1);
}

TEST_F(LoopbackTraffic, PeekedBytesAreNotCounted) {
  StartAgent();
  if (!agent_) return;
  LoopbackServer server("127.0.0.2");
  std::map<std::string, std::string> a{{"backend", Backend(server)}};
  {
    Client client(server.address(), server.port());
    ASSERT_TRUE(client.connected());
    for (int i = 0; i < 3; ++i) ASSERT_EQ(client.Request(30, 777, /*peek_first=*/true), 777u);
  }
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_active", a, 0), 0);
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), 3 * 777);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), 3);
}

// With one hot slot, the first of two concurrent connections takes it and
// the second keeps its per-segment state in socket storage: both count
// exactly, the fallback is counted, and the slot is free again once its
// socket is destroyed (a third connection gets it: no second fallback).
TEST_F(LoopbackTraffic, ConnectionsWithAndWithoutAHotSlotCountTheSame) {
  StartAgent([](Config& config) { config.hot_slots = 1; });
  if (!agent_) return;
  LoopbackServer server("127.0.0.2");
  std::map<std::string, std::string> a{{"backend", Backend(server)}};
  const std::map<std::string, std::string> closed{{"backend", Backend(server)},
                                                  {"closed_by", "local"}};
  constexpr int kRequests = 2 * SOCKEYE_TURN_BATCH + 3;
  {
    Client first(server.address(), server.port());
    Client second(server.address(), server.port());
    ASSERT_TRUE(first.connected());
    ASSERT_TRUE(second.connected());
    for (int i = 0; i < kRequests; ++i) {
      ASSERT_EQ(first.Request(40, 400), 400u);
      ASSERT_EQ(second.Request(50, 500), 500u);
    }
    EXPECT_EQ(WaitForMetric("sockeye_backend_time_to_first_byte_seconds_count", a, 2 * kRequests),
              2 * kRequests);
  }
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_closed_total", closed, 2), 2);
  EXPECT_EQ(Metric("sockeye_hot_slot_fallbacks_total", {}), 1);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), 2 * kRequests);
  EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", a), kRequests * (40 + 50));
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), kRequests * (400 + 500));
  {
    Client third(server.address(), server.port());
    ASSERT_TRUE(third.connected());
    for (int i = 0; i < kRequests; ++i) ASSERT_EQ(third.Request(60, 600), 600u);
  }
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_closed_total", closed, 3), 3);
  EXPECT_EQ(Metric("sockeye_hot_slot_fallbacks_total", {}), 1);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), 3 * kRequests);
  EXPECT_EQ(Metric("sockeye_backend_time_to_first_byte_seconds_count", a), 3 * kRequests);
  EXPECT_EQ(Metric("sockeye_backend_requests_per_connection_sum", a), 3 * kRequests);
  EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", a), kRequests * (40 + 50 + 60));
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), kRequests * (400 + 500 + 600));
  EXPECT_EQ(Metric("sockeye_turns_lost_total", {}), 0);
}

}  // namespace
}  // namespace sockeye
