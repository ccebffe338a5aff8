// LoopbackTraffic: requests and their time to first byte: delayed backends,
// batches of turns, sendfile, early responses, a backend that stops answering.
#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "loopback_fixture.h"

namespace sockeye {
namespace {

using namespace std::chrono_literals;
using testing::Behavior;
using testing::Client;
using testing::ClientWait;
using testing::kClockSlack;
using testing::LoopbackServer;
using testing::LoopbackTraffic;
using testing::VethNamespace;

TEST_F(LoopbackTraffic, TimeToFirstByteOfADelayedBackend) {
  StartAgent();
  if (!agent_) return;
  LoopbackServer server("127.0.0.3", Behavior::kRespond, 40ms);
  std::map<std::string, std::string> a{{"backend", Backend(server)}};
  std::chrono::duration<double> waited{0};
  {
    Client client(server.address(), server.port());
    ASSERT_TRUE(client.connected());
    for (int i = 0; i < 5; ++i) {
      const ClientWait wait(waited);
      ASSERT_EQ(client.Request(20, 100), 100u);
    }
  }
  EXPECT_EQ(WaitForMetric("sockeye_backend_time_to_first_byte_seconds_count", a, 5), 5);
  double mean = Metric("sockeye_backend_time_to_first_byte_seconds_sum", a) / 5;
  EXPECT_GE(mean, 0.040);
  EXPECT_LE(mean, waited.count() / 5 + kClockSlack);
}

// Completed turns travel in batches of SOCKEYE_TURN_BATCH: the full ones
// from tcp_probe, the rest of an idle keep-alive connection from the sweep,
// so its time-to-first-byte count is complete without waiting for close,
// and closing it later does not count a turn twice.
TEST_F(LoopbackTraffic, TurnsOfAnIdleKeepAliveConnectionArriveBeforeClose) {
  StartAgent();
  if (!agent_) return;
  LoopbackServer server("127.0.0.3");
  std::map<std::string, std::string> a{{"backend", Backend(server)}};
  constexpr int kRequests = 2 * SOCKEYE_TURN_BATCH + 5;
  Client client(server.address(), server.port());
  ASSERT_TRUE(client.connected());
  for (int i = 0; i < kRequests; ++i) ASSERT_EQ(client.Request(30, 300), 300u);

  EXPECT_EQ(WaitForMetric("sockeye_backend_time_to_first_byte_seconds_count", a, kRequests),
            kRequests);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), kRequests);
  EXPECT_EQ(Metric("sockeye_backend_connections_active", a), 1);
  EXPECT_GE(Metric("sockeye_events_total", {{"kind", "turn"}}), 1);

  client.Close();
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_closed_total",
                          {{"backend", Backend(server)}, {"closed_by", "local"}}, 1),
            1);
  EXPECT_EQ(Metric("sockeye_backend_time_to_first_byte_seconds_count", a), kRequests);
  EXPECT_EQ(Metric("sockeye_backend_requests_per_connection_sum", a), kRequests);
  EXPECT_EQ(Metric("sockeye_turns_lost_total", {}), 0);
}

// Requests sent with sendfile(2) (as HAProxy's splice mode and nginx's
// sendfile do) never pass through tcp_sendmsg on kernels before 6.5, so in
// fentry/kprobe mode the turn starts from tcp_probe's look at write_seq,
// timed by the kernel's own transmit timestamp: still exact and on time.
TEST_F(LoopbackTraffic, RequestsSentWithSendfileAreCountedAndTimed) {
  StartAgent();
  if (!agent_) return;
  LoopbackServer server("127.0.0.3", Behavior::kRespond, 30ms);
  std::map<std::string, std::string> a{{"backend", Backend(server)}};
  constexpr int kRequests = 6;
  std::chrono::duration<double> waited{0};
  {
    Client client(server.address(), server.port());
    ASSERT_TRUE(client.connected());
    for (int i = 0; i < kRequests; ++i) {
      const ClientWait wait(waited);
      ASSERT_EQ(client.Request(200, 100, false, Client::SendPath::kSendfile), 100u);
    }
  }
  EXPECT_EQ(WaitForMetric("sockeye_backend_time_to_first_byte_seconds_count", a, kRequests),
            kRequests);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), kRequests);
  EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", a), kRequests * 200);
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), kRequests * 100);
  double mean = Metric("sockeye_backend_time_to_first_byte_seconds_sum", a) / kRequests;
  EXPECT_GE(mean, 0.030);
  EXPECT_LE(mean, waited.count() / kRequests + kClockSlack);
}

// A backend may answer before it has read the whole request (an early
// error during an upload): that response ends the turn although most of
// the request is still unacknowledged, and the next request on the
// connection is a turn of its own. Found in review: timing responses at
// sk_data_ready first required the whole request to be acknowledged, which
// left the turn waiting and did not count the next request.
TEST_F(LoopbackTraffic, AResponseBeforeTheWholeRequestEndsItsTurn) {
  StartAgent();
  if (!agent_) return;
  LoopbackServer server("127.0.0.3");
  std::map<std::string, std::string> a{{"backend", Backend(server)}};
  // The server answers "100" at the first newline, then reads the 4 MiB of
  // zeros as the start of its next line, which "50 x" ends: 50 more bytes.
  const std::string upload = "100\n" + std::string(4u << 20, '0');
  const std::string next = "50 x\n";
  size_t received = 0;
  {
    Client client(server.address(), server.port());
    ASSERT_TRUE(client.connected());
    for (const std::string* part : {&upload, &next}) {
      size_t sent = 0;
      while (sent < part->size()) {
        ssize_t n = send(client.fd(), part->data() + sent, part->size() - sent, MSG_NOSIGNAL);
        ASSERT_GT(n, 0);
        sent += static_cast<size_t>(n);
      }
    }
    char buffer[4096];
    while (received < 150) {
      ssize_t n = recv(client.fd(), buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      received += static_cast<size_t>(n);
    }
  }
  ASSERT_EQ(received, 150u);
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_closed_total", a, 1), 1);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), 2);
  EXPECT_EQ(Metric("sockeye_backend_time_to_first_byte_seconds_count", a), 2);
  EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", a), upload.size() + next.size());
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), 150);
}

// With no send hook (the default), a request is noticed when the backend's
// next segment arrives. One the backend never acknowledges is still counted,
// when the connection changes state (here: the proxy gives up and closes).
TEST_F(LoopbackTraffic, RequestToABackendThatStopsAnsweringIsCounted) {
  VethNamespace ns(212, VethNamespace::Peer::kBackend);
  StartAgentFollowing(ns);
  if (!agent_) return;
  auto server = ns.StartServer();
  ASSERT_TRUE(server) << "cannot listen inside the test namespace";
  std::map<std::string, std::string> a = {{"backend", Backend(*server)}};
  {
    Client client(server->address(), server->port());
    ASSERT_TRUE(client.connected());
    ASSERT_EQ(client.Request(64, 100), 100u);
    ns.CutLink();
    std::string request = "100 unanswered\n";
    ASSERT_EQ(send(client.fd(), request.data(), request.size(), MSG_NOSIGNAL),
              ssize_t(request.size()));
    std::this_thread::sleep_for(200ms);
    int unacknowledged = 0;
    ASSERT_EQ(ioctl(client.fd(), SIOCOUTQ, &unacknowledged), 0);
    ASSERT_EQ(unacknowledged, 15) << "the request was acknowledged: the link is not cut";
  }  // closed: FIN_WAIT1, the FIN never leaves either
  EXPECT_EQ(WaitForMetric("sockeye_backend_requests_total", a, 2), 2);
  EXPECT_EQ(Metric("sockeye_backend_time_to_first_byte_seconds_count", a), 1);
  EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", a), 64 + 15);
}

}  // namespace
}  // namespace sockeye
