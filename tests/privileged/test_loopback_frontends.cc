// LoopbackTraffic, the client side: connections a listener of the test's
// own accepts are followed per listener, with exact counts of connections,
// bytes each way, requests and response statuses, and response times bounded
// by the server's own delay and the client's wait.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "agent/listeners.h"
#include "http_test_server.h"
#include "loopback_fixture.h"

namespace sockeye {
namespace {

using namespace std::chrono_literals;
using testing::ClientWait;
using testing::HttpClient;
using testing::HttpServer;
using testing::kClockSlack;
using testing::kFrontendAddress;
using testing::LoopbackTraffic;

// The response HttpServer sends for "S <code> ...": headers, then a 5-byte body.
size_t ResponseBytes() {
  return std::string("HTTP/1.1 200 X\r\nContent-Length: 5\r\n\r\nhello").size();
}

// The agent learns the listeners from socket diagnostics, which need
// tcp_diag (a module on most distributions; the kernel matrix's Ubuntu guests
// boot without their modules): without it no frontend is followed.
#define REQUIRE_TCP_DIAG()                                                             \
  do {                                                                                 \
    std::vector<Listener> probe;                                                       \
    std::string why;                                                                   \
    if (!ReadListeners(&probe, &why) && why.find("No such file") != std::string::npos) \
      GTEST_SKIP() << "no TCP socket diagnostics in this kernel (tcp_diag): " << why;  \
  } while (0)

bool StatusProgramAttached(Agent& agent, const std::string& direction) {
  for (const auto& p : agent.probes().probes())
    if (p.hook == "http_status" && p.target.find(direction) != std::string::npos) return true;
  return false;
}

// Makes attaching these programs fail while it lives (SOCKEYE_TEST_REFUSE_ATTACH).
class RefuseAttach {
 public:
  explicit RefuseAttach(const std::string& programs) {
    const char* was = std::getenv("SOCKEYE_TEST_REFUSE_ATTACH");
    had_ = was != nullptr;
    if (had_) previous_ = was;
    setenv("SOCKEYE_TEST_REFUSE_ATTACH", ((had_ ? previous_ + "," : "") + programs).c_str(), 1);
  }
  ~RefuseAttach() {
    if (had_)
      setenv("SOCKEYE_TEST_REFUSE_ATTACH", previous_.c_str(), 1);
    else
      unsetenv("SOCKEYE_TEST_REFUSE_ATTACH");
  }

 private:
  bool had_ = false;
  std::string previous_;
};

class FrontendTraffic : public LoopbackTraffic {
 protected:
  // Starts the agent; whether the egress program reads the responses.
  bool StartWithResponsesRead() {
    StartAgent();
    if (!agent_) return false;
    // Both status directions attach to the same cgroup: where the kernel
    // takes the ingress program it must take the egress one.
    if (!StatusProgramAttached(*agent_, "egress")) {
      if (testing::BpfRequired() && StatusProgramAttached(*agent_, "ingress"))
        ADD_FAILURE() << "SOCKEYE_REQUIRE_BPF=1 but the egress status program is off beside the "
                         "ingress one";
      return false;
    }
    return true;
  }
};

TEST_F(FrontendTraffic, FrontendConnectionsBytesRequestsAndStatusesAreExact) {
  // The listener exists before the agent starts: its port is handed to the
  // kernel at start-up.
  REQUIRE_TCP_DIAG();
  HttpServer server(kFrontendAddress);
  const bool responses_read = StartWithResponsesRead();
  if (!agent_ || HasFailure()) return;
  const std::string listener = server.backend();
  const std::map<std::string, int> expected = {{"2xx", 5}, {"3xx", 1}, {"4xx", 2}, {"5xx", 3}};
  size_t sent = 0, received = 0;
  int requests = 0;
  std::chrono::duration<double> waited{0};
  // "W": the response in one writev(), as nginx sends it.
  for (const auto& commands :
       {std::vector<std::string>{"S 200 20 0", "S 200 20 0", "S 404 20 0", "S 503 20 0"},
        std::vector<std::string>{"S 301 20 0", "S 500 20 0", "W 200"},
        std::vector<std::string>{"S 204 20 0", "S 404 20 0", "S 502 20 0", "S 200 20 0"}}) {
    HttpClient client(server);
    ASSERT_TRUE(client.connected());
    for (const std::string& command : commands) {
      const ClientWait wait(waited);
      ASSERT_TRUE(client.Ask(command, "hello"));
      received += command.size() + 1;
      sent += ResponseBytes();
      ++requests;
    }
  }
  const std::map<std::string, std::string> l = {{"listener", listener}};
  EXPECT_EQ(WaitForMetric("sockeye_frontend_connections_closed_total",
                          {{"listener", listener}, {"closed_by", "remote"}}, 3),
            3);
  EXPECT_EQ(Metric("sockeye_frontend_connections_accepted_total", l), 3);
  EXPECT_EQ(Metric("sockeye_frontend_connections_active", l), 0);
  EXPECT_EQ(Metric("sockeye_frontend_requests_total", l), requests);
  EXPECT_EQ(Metric("sockeye_frontend_received_bytes_total", l), static_cast<double>(received));
  EXPECT_EQ(Metric("sockeye_frontend_sent_bytes_total", l), static_cast<double>(sent));
  EXPECT_EQ(Metric("sockeye_frontend_connection_duration_seconds_count", l), 3);
  EXPECT_EQ(Metric("sockeye_frontend_requests_unanswered_total",
                   {{"listener", listener}, {"closed_by", "remote"}}),
            0);
  if (!responses_read) GTEST_SKIP() << "frontend responses are not read here (sockeye --check)";
  for (const auto& [code, count] : expected)
    EXPECT_EQ(Metric("sockeye_frontend_responses_total", {{"listener", listener}, {"code", code}}),
              count)
        << code;
  EXPECT_EQ(Metric("sockeye_http_status_unread_total", {}), 0);
  // Each "S" response waited 20 ms in the server: the mean response time
  // is at least that over all but the "W" one, and no longer than what
  // the client waited.
  EXPECT_EQ(Metric("sockeye_frontend_response_time_seconds_count", l), requests);
  const double sum = Metric("sockeye_frontend_response_time_seconds_sum", l);
  EXPECT_GE(sum, 0.020 * (requests - 1));
  EXPECT_LE(sum / requests, waited.count() / requests + kClockSlack);
  EXPECT_GE(Metric("sockeye_frontend_rtt_seconds_count", l), 3);
}

// 100 Continue is not final: the status after it counts, whether it is sent
// later, in the same send(), or in the next buffer of one writev().
TEST_F(FrontendTraffic, FrontendInterimResponsesCountTheFinalStatus) {
  REQUIRE_TCP_DIAG();
  HttpServer server(kFrontendAddress);
  const bool responses_read = StartWithResponsesRead();
  if (!agent_ || HasFailure()) return;
  {
    HttpClient client(server);
    ASSERT_TRUE(client.connected());
    for (const char* command : {"I 201", "J 404", "V 503", "I 200"})
      ASSERT_TRUE(client.Ask(command, "hello"));
  }
  const std::string listener = server.backend();
  EXPECT_EQ(WaitForMetric("sockeye_frontend_connections_closed_total",
                          {{"listener", listener}, {"closed_by", "remote"}}, 1),
            1);
  const std::map<std::string, std::string> l = {{"listener", listener}};
  EXPECT_EQ(Metric("sockeye_frontend_requests_total", l), 4);
  if (!responses_read) GTEST_SKIP() << "frontend responses are not read here (sockeye --check)";
  auto responses = [&](const char* code) {
    return Metric("sockeye_frontend_responses_total", {{"listener", listener}, {"code", code}});
  };
  EXPECT_EQ(responses("2xx"), 2);
  EXPECT_EQ(responses("4xx"), 1);
  EXPECT_EQ(responses("5xx"), 1);
  EXPECT_EQ(responses("1xx"), -1);
  EXPECT_EQ(Metric("sockeye_http_status_unread_total", {}), 0);
  // Each "I" turn ends at its final status, 20 ms after the interim one.
  EXPECT_EQ(Metric("sockeye_frontend_response_time_seconds_count", l), 4);
  EXPECT_GE(Metric("sockeye_frontend_response_time_seconds_sum", l), 0.040);
}

// Where the kernel refuses the egress program, no response is seen: a request
// that arrives while the last one waits is a new one once the server wrote
// anything since. Every request still counts, and none is unanswered.
TEST_F(FrontendTraffic, FrontendRequestsCountWithoutTheEgressProgram) {
  REQUIRE_TCP_DIAG();
  HttpServer server(kFrontendAddress);
  {
    const RefuseAttach refuse("on_cgroup_egress,on_cgroup_egress_cast");
    StartAgent();
  }
  if (!agent_) return;
  ASSERT_FALSE(StatusProgramAttached(*agent_, "egress"));
  const std::string listener = server.backend();
  size_t received = 0;
  int requests = 0;
  for (int connection = 0; connection < 2; ++connection) {
    HttpClient client(server);
    ASSERT_TRUE(client.connected());
    for (int i = 0; i < 3; ++i) {
      const std::string command = "S 200 0 0";
      ASSERT_TRUE(client.Ask(command, "hello"));
      received += command.size() + 1;
      ++requests;
    }
  }
  const std::map<std::string, std::string> l = {{"listener", listener}};
  EXPECT_EQ(WaitForMetric("sockeye_frontend_connections_closed_total",
                          {{"listener", listener}, {"closed_by", "remote"}}, 2),
            2);
  EXPECT_EQ(Metric("sockeye_frontend_requests_total", l), requests);
  EXPECT_EQ(Metric("sockeye_frontend_received_bytes_total", l), static_cast<double>(received));
  EXPECT_EQ(Metric("sockeye_frontend_sent_bytes_total", l),
            static_cast<double>(requests * ResponseBytes()));
  EXPECT_EQ(Metric("sockeye_frontend_requests_unanswered_total", l), 0);
  EXPECT_EQ(Metric("sockeye_frontend_response_time_seconds_count", l), 0);
}

// A client that gives up on a request the server never answers (nginx's
// 499): unanswered, closed by the client.
TEST_F(LoopbackTraffic, FrontendRequestsUnansweredAndResets) {
  REQUIRE_TCP_DIAG();
  HttpServer server(kFrontendAddress);
  StartAgent();
  if (!agent_) return;
  const std::string listener = server.backend();
  {
    HttpClient client(server);
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.Ask("S 200 0 0", "hello"));
    client.Send("M");
    std::this_thread::sleep_for(50ms);
  }
  {
    // Answered, then the client resets the connection (SO_LINGER 0).
    HttpClient client(server);
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.Ask("S 200 0 0", "hello"));
    client.Reset();
  }
  EXPECT_EQ(WaitForMetric("sockeye_frontend_requests_unanswered_total",
                          {{"listener", listener}, {"closed_by", "remote"}}, 1),
            1);
  EXPECT_EQ(WaitForMetric("sockeye_frontend_resets_received_total", {{"listener", listener}}, 1),
            1);
  EXPECT_EQ(WaitForMetric("sockeye_frontend_connections_closed_total",
                          {{"listener", listener}, {"closed_by", "remote"}}, 2),
            2);
  EXPECT_EQ(Metric("sockeye_frontend_requests_total", {{"listener", listener}}), 3);
}

// Connections accepted before the agent started are adopted; a listener
// opened after it is picked up at the next sweep interval.
TEST_F(LoopbackTraffic, FrontendConnectionsOpenAtStartAreAdopted) {
  REQUIRE_TCP_DIAG();
  HttpServer server(kFrontendAddress);
  HttpClient early(server);
  ASSERT_TRUE(early.connected());
  ASSERT_TRUE(early.Ask("S 200 0 0", "hello"));
  StartAgent();
  if (!agent_) return;
  const std::string listener = server.backend();
  ASSERT_TRUE(early.Ask("S 404 0 0", "hello"));
  ASSERT_TRUE(early.Ask("S 404 0 0", "hello"));
  early.Close();
  EXPECT_EQ(WaitForMetric("sockeye_frontend_connections_closed_total",
                          {{"listener", listener}, {"closed_by", "remote"}}, 1),
            1);
  EXPECT_EQ(Metric("sockeye_frontend_requests_total", {{"listener", listener}}), 2);
  // Adopted: not accepted while the agent watched.
  EXPECT_EQ(Metric("sockeye_frontend_connections_accepted_total", {{"listener", listener}}), 0);
}

// Two listeners on one port, on different addresses: only the included one's
// connections are followed (the kernel matches address and port, not the
// port alone).
TEST_F(LoopbackTraffic, FrontendListenersAreMatchedByAddressAndPort) {
  REQUIRE_TCP_DIAG();
  HttpServer included(kFrontendAddress);
  HttpServer other("127.0.0.7", included.port());
  ASSERT_EQ(other.port(), included.port());
  StartAgent();
  if (!agent_) return;
  for (HttpServer* server : {&included, &other}) {
    HttpClient client(*server);
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.Ask("S 200 0 0", "hello"));
  }
  EXPECT_EQ(WaitForMetric("sockeye_frontend_connections_closed_total",
                          {{"listener", included.backend()}, {"closed_by", "remote"}}, 1),
            1);
  EXPECT_EQ(Metric("sockeye_frontend_connections_accepted_total", {{"listener", other.backend()}}),
            -1);
  EXPECT_EQ(Metric("sockeye_frontend_requests_total", {{"listener", included.backend()}}), 1);
}

// close() after shutdown(SHUT_WR) runs the kernel's close-state step twice
// (FIN_WAIT1 -> FIN_WAIT1, the FIN already queued): the send total stays
// frozen before the FIN, on both sides.
TEST_F(LoopbackTraffic, ShutdownThenCloseCountsNoFinByte) {
  REQUIRE_TCP_DIAG();
  HttpServer frontend(kFrontendAddress);
  HttpServer backend("127.0.0.3");
  StartAgent();
  if (!agent_) return;
  const std::string response = "HTTP/1.1 200 X\r\nContent-Length: 5\r\n\r\nhello";
  {
    // The server closes first: shutdown, then close.
    HttpClient client(frontend);
    ASSERT_TRUE(client.connected());
    client.Send("X 200");
    client.WaitForClose();
  }
  {
    // The client (a backend connection) closes first, the same way.
    HttpClient client(backend);
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.Ask("S 200 0 0", "hello"));
    client.ShutdownThenClose();
  }
  EXPECT_EQ(WaitForMetric("sockeye_frontend_connections_closed_total",
                          {{"listener", frontend.backend()}, {"closed_by", "local"}}, 1),
            1);
  EXPECT_EQ(Metric("sockeye_frontend_sent_bytes_total", {{"listener", frontend.backend()}}),
            static_cast<double>(response.size()));
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_closed_total",
                          {{"backend", backend.backend()}, {"closed_by", "local"}}, 1),
            1);
  EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", {{"backend", backend.backend()}}),
            static_cast<double>(std::string("S 200 0 0\n").size()));
}

}  // namespace
}  // namespace sockeye
