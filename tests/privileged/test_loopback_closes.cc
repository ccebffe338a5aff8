// LoopbackTraffic: failed connects, resets and closes: refused and
// unanswered connects, resets either way, abortive closes, who closed first.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "agent/unique_fd.h"
#include "loopback_fixture.h"

namespace sockeye {
namespace {

using namespace std::chrono_literals;
using testing::Behavior;
using testing::Client;
using testing::LoopbackServer;
using testing::LoopbackTraffic;
using testing::VethNamespace;

TEST_F(LoopbackTraffic, RefusedConnectIsAFailureNotAConnection) {
  StartAgent();
  if (!agent_) return;
  // A port nobody listens on: bind to learn a free one, then release it.
  uint16_t port;
  {
    LoopbackServer probe("127.0.0.3");
    port = probe.port();
  }
  Client client("127.0.0.3", port);
  ASSERT_FALSE(client.connected());
  ASSERT_EQ(client.connect_errno(), ECONNREFUSED);
  std::string backend = "127.0.0.3:" + std::to_string(port);
  EXPECT_EQ(WaitForMetric("sockeye_backend_connect_failures_total",
                          {{"backend", backend}, {"reason", "refused"}}, 1),
            1);
  EXPECT_EQ(Metric("sockeye_backend_connect_failures_total",
                   {{"backend", backend}, {"reason", "timeout"}}),
            0);
  EXPECT_EQ(Metric("sockeye_backend_connections_established_total", {{"backend", backend}}), 0);
  EXPECT_EQ(Metric("sockeye_backend_resets_received_total", {{"backend", backend}}), 1);
}

TEST_F(LoopbackTraffic, ResetByBackendIsCountedAndClosedByRemote) {
  StartAgent();
  if (!agent_) return;
  LoopbackServer server("127.0.0.4", Behavior::kResetAfterRequest);
  std::map<std::string, std::string> a{{"backend", Backend(server)}};
  {
    Client client(server.address(), server.port());
    ASSERT_TRUE(client.connected());
    EXPECT_EQ(client.Request(40, 10), 0u);  // reset instead of a response
  }
  EXPECT_EQ(WaitForMetric("sockeye_backend_resets_received_total", a, 1), 1);
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_closed_total",
                          {{"backend", Backend(server)}, {"closed_by", "remote"}}, 1),
            1);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), 1);
  EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", a), 40);
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), 0);
  EXPECT_EQ(Metric("sockeye_backend_connections_active", a), 0);
}

TEST_F(LoopbackTraffic, ClosingWithUnreadDataSendsAReset) {
  StartAgent();
  if (!agent_) return;
  LoopbackServer server("127.0.0.2");
  std::map<std::string, std::string> a{{"backend", Backend(server)}};
  {
    Client client(server.address(), server.port());
    ASSERT_TRUE(client.connected());
    // Ask for a response and close without reading it: tcp_close() finds
    // unread data and answers with a reset instead of a FIN.
    std::string request = "5000 x\n";
    ASSERT_EQ(send(client.fd(), request.data(), request.size(), 0), ssize_t(request.size()));
    char byte;
    ASSERT_EQ(recv(client.fd(), &byte, 1, MSG_PEEK), 1);  // the response has arrived
  }
  EXPECT_EQ(WaitForMetric("sockeye_backend_resets_sent_total", a, 1), 1);
  EXPECT_EQ(Metric("sockeye_backend_connections_closed_total",
                   {{"backend", Backend(server)}, {"closed_by", "local"}}),
            1);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), 1);
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), 0);  // peeked, never read
}

TEST_F(LoopbackTraffic, UnansweredSynIsATimeoutWithARetransmit) {
  VethNamespace ns(211, VethNamespace::Peer::kBlackhole);
  StartAgentFollowing(ns);
  if (!agent_) return;
  sockaddr_storage addr = LoopbackServer::MakeAddress(ns.address(), 8080);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  // One SYN retry: the kernel gives up after ~3 s. How many retransmits it
  // makes by then is its own business (two on 6.18, whose SYN timeouts are
  // time-based), so the expected count is read from TCP_INFO.
  int one_retry = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_SYNCNT, &one_retry, sizeof(one_retry));
  // Non-blocking: a failed blocking connect() calls tcp_disconnect(), which
  // zeroes total_retrans before TCP_INFO can be read.
  fcntl(fd, F_SETFL, O_NONBLOCK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), -1);
  ASSERT_EQ(errno, EINPROGRESS);
  pollfd pfd{fd, POLLOUT, 0};
  ASSERT_EQ(poll(&pfd, 1, 10000), 1);
  int err = 0;
  socklen_t err_len = sizeof(err);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
  tcp_info info{};
  socklen_t info_len = sizeof(info);
  ASSERT_EQ(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &info_len), 0);
  close(fd);
  ASSERT_EQ(err, ETIMEDOUT);
  ASSERT_GE(info.tcpi_total_retrans, 1u);
  std::string backend = ns.address() + ":8080";
  EXPECT_EQ(WaitForMetric("sockeye_backend_connect_failures_total",
                          {{"backend", backend}, {"reason", "timeout"}}, 1),
            1);
  EXPECT_EQ(Metric("sockeye_backend_retransmits_total", {{"backend", backend}}),
            info.tcpi_total_retrans);
  EXPECT_EQ(Metric("sockeye_backend_connections_established_total", {{"backend", backend}}), 0);
}

// The reset closes the client's socket (TCP_CLOSE) while the response still
// waits in its receive queue; the application reads it afterwards, then
// closes. Those bytes were read, so they count (found by the proxy lab:
// nginx and HAProxy both read after such resets).
TEST_F(LoopbackTraffic, BytesReadAfterAResetClosedTheSocketAreCounted) {
  StartAgent();
  if (!agent_) return;
  LoopbackServer server("127.0.0.4", Behavior::kRespondThenReset);
  std::map<std::string, std::string> a{{"backend", Backend(server)}};
  size_t read_total = 0;
  {
    Client client(server.address(), server.port());
    ASSERT_TRUE(client.connected());
    std::string request = "1082 x\n";
    ASSERT_EQ(send(client.fd(), request.data(), request.size(), 0), ssize_t(request.size()));
    // Wait until the reset has closed the socket, then read what is queued.
    for (int i = 0; i < 500; ++i) {
      tcp_info info{};
      socklen_t len = sizeof(info);
      getsockopt(client.fd(), IPPROTO_TCP, TCP_INFO, &info, &len);
      if (info.tcpi_state == TCP_CLOSE) break;
      std::this_thread::sleep_for(2ms);
    }
    char buffer[4096];
    ssize_t n;
    while ((n = recv(client.fd(), buffer, sizeof(buffer), MSG_DONTWAIT)) > 0)
      read_total += static_cast<size_t>(n);
  }
  ASSERT_EQ(read_total, 1082u);
  EXPECT_EQ(WaitForMetric("sockeye_backend_received_bytes_total", a, 1082), 1082);
  EXPECT_EQ(Metric("sockeye_backend_resets_received_total", a), 1);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), 1);
}

// An abortive close (SO_LINGER 0, as HAProxy closes server connections)
// goes through tcp_disconnect(), which moves the sequence numbers after the
// socket reached CLOSE; totals must stay what the connection really moved.
TEST_F(LoopbackTraffic, AbortiveCloseKeepsExactTotals) {
  StartAgent();
  if (!agent_) return;
  LoopbackServer server("127.0.0.3");
  std::map<std::string, std::string> a{{"backend", Backend(server)}};
  for (int c = 0; c < 3; ++c) {
    Client client(server.address(), server.port());
    ASSERT_TRUE(client.connected());
    for (int r = 0; r < 4; ++r) ASSERT_EQ(client.Request(200, 3000), 3000u);
    linger hard{1, 0};
    setsockopt(client.fd(), SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  }
  // A linger-0 close() disconnects, resets and destroys the socket before it
  // returns, so every record (close, reset, destroy) is in the ring by now.
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_active", a, 0), 0);
  agent_->Flush(true);
  EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", a), 3 * 4 * 200);
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), 3 * 4 * 3000);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), 12);
  EXPECT_EQ(Metric("sockeye_backend_resets_sent_total", a), 3);
}

// A listener on 127.0.0.4 that the test accepts from by hand, or never: the
// kernel completes handshakes and acknowledges FINs without it. *bound gets
// its address; invalid if it could not be set up.
UniqueFd BareListener(sockaddr_in* bound) {
  UniqueFd listener(socket(AF_INET, SOCK_STREAM, 0));
  *bound = {};
  bound->sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.4", &bound->sin_addr);
  socklen_t length = sizeof(*bound);
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(bound), sizeof(*bound)) != 0 ||
      listen(listener.get(), 8) != 0 ||
      getsockname(listener.get(), reinterpret_cast<sockaddr*>(bound), &length) != 0)
    return UniqueFd();
  return listener;
}

// Waits up to a second for the socket to reach a TCP state (TCP_INFO).
bool ReachesTcpState(int fd, uint8_t state) {
  for (int i = 0; i < 1000; ++i) {
    tcp_info info{};
    socklen_t length = sizeof(info);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return false;
    if (info.tcpi_state == state) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

// The backend closes first (its FIN: CLOSE_WAIT, which the state hook does
// not run for): a proxy that then closes normally goes through LAST_ACK, one
// that aborts (SO_LINGER 0, as HAProxy closes) goes straight to CLOSE. Both
// are closed by the remote side.
TEST_F(LoopbackTraffic, ABackendThatClosesFirstIsTheRemoteSide) {
  StartAgent();
  if (!agent_) return;
  sockaddr_in addr;
  UniqueFd listener = BareListener(&addr);
  ASSERT_TRUE(listener.valid());
  const std::string backend = "127.0.0.4:" + std::to_string(ntohs(addr.sin_port));

  for (bool abortive : {false, true}) {
    UniqueFd client(socket(AF_INET, SOCK_STREAM, 0));
    ASSERT_EQ(connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    {
      UniqueFd accepted(accept(listener.get(), nullptr, nullptr));
      ASSERT_TRUE(accepted.valid());
    }  // the backend's FIN
    ASSERT_TRUE(ReachesTcpState(client.get(), TCP_CLOSE_WAIT));
    if (abortive) {
      linger hard{1, 0};
      ASSERT_EQ(setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof(hard)), 0);
    }
  }
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_closed_total",
                          {{"backend", backend}, {"closed_by", "remote"}}, 2),
            2);
  EXPECT_EQ(Metric("sockeye_backend_connections_closed_total",
                   {{"backend", backend}, {"closed_by", "local"}}),
            0);
  EXPECT_EQ(Metric("sockeye_backend_resets_sent_total", {{"backend", backend}}), 1);
}

// A socket the application has closed can still send a reset after its
// CLOSE transition: close() in FIN_WAIT2 with TCP_LINGER2 < 0 moves it to
// CLOSE, then resets. Its close record is final, so the agent has forgotten
// the connection by then: the reset comes in a record of its own and must
// still count for the backend.
TEST_F(LoopbackTraffic, AResetAfterAFinalCloseIsCounted) {
  StartAgent();
  if (!agent_) return;
  // Never accepted: nothing closes the backend's side.
  sockaddr_in addr;
  UniqueFd listener = BareListener(&addr);
  ASSERT_TRUE(listener.valid());
  const std::map<std::string, std::string> a{
      {"backend", "127.0.0.4:" + std::to_string(ntohs(addr.sin_port))}};

  {
    UniqueFd client(socket(AF_INET, SOCK_STREAM, 0));
    const int fd = client.get();
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
    ASSERT_TRUE(ReachesTcpState(fd, TCP_FIN_WAIT2));
    int no_fin_wait2 = -1;
    ASSERT_EQ(setsockopt(fd, IPPROTO_TCP, TCP_LINGER2, &no_fin_wait2, sizeof(no_fin_wait2)), 0);
  }  // close(): CLOSE, then the reset

  EXPECT_EQ(WaitForMetric("sockeye_backend_resets_sent_total", a, 1), 1);
  auto closed_locally = a;
  closed_locally["closed_by"] = "local";
  EXPECT_EQ(Metric("sockeye_backend_connections_closed_total", closed_locally), 1);
  EXPECT_EQ(Metric("sockeye_backend_connections_active", a), 0);
  EXPECT_EQ(Metric("sockeye_events_total", {{"kind", "reset_after_close"}}), 1);
  EXPECT_EQ(Metric("sockeye_connections_remembered", {}), 0);  // the close was final
}

}  // namespace
}  // namespace sockeye
