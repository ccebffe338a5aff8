// LoopbackTraffic: HTTP/1.x status classes, response durations and requests
// left unanswered, against a small HTTP server the test runs on loopback.
// Every count is exact; the duration is checked against the server's own
// timing.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "agent/kernel_features.h"
#include "http_test_server.h"
#include "loopback_fixture.h"

namespace sockeye {
namespace {

using namespace std::chrono_literals;
using testing::ClientWait;
using testing::HttpClient;
using testing::HttpServer;
using testing::kClockSlack;
using testing::LoopbackTraffic;

// Whether the agent attached its status program. Where the kernel refused it
// (it loads without it, and says so in --check) the status tests skip with
// that reason; the host's CI kernel always attaches it.
bool StatusProgramAttached(Agent& agent) {
  return testing::Value(agent.Gather(), "sockeye_probe_info",
                        {{"hook", "http_status"}, {"mode", "cgroup_skb"}})
      .has_value();
}

#define REQUIRE_STATUS_PROGRAM()                                                        \
  do {                                                                                  \
    if (!agent_) return;                                                                \
    if (!StatusProgramAttached(*agent_))                                                \
      GTEST_SKIP() << "the HTTP status program is off here (sockeye --check says why)"; \
  } while (0)

TEST_F(LoopbackTraffic, HttpStatusClassesAreCountedExactly) {
  StartAgent();
  REQUIRE_STATUS_PROGRAM();
  HttpServer server("127.0.0.3");
  const std::map<std::string, int> expected = {{"1xx", 1}, {"2xx", 5}, {"3xx", 2},
                                               {"4xx", 3}, {"5xx", 4}, {"other", 1}};
  {
    HttpClient client(server);
    ASSERT_TRUE(client.connected());
    for (int code : {200, 204, 301, 304, 404, 404, 499, 500, 502, 503, 503, 200, 200, 200, 101})
      ASSERT_TRUE(client.Ask("S " + std::to_string(code) + " 0 0", "hello"));
    // An HTTP/1.x connection that answers with something else: "other".
    ASSERT_TRUE(client.Ask("P", "+OK\r\n"));
  }
  // A connection whose first response is not HTTP/1.x is never counted.
  {
    HttpClient client(server);
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.Ask("P", "+OK\r\n"));
    ASSERT_TRUE(client.Ask("S 500 0 0", "hello"));
  }
  const std::string b = server.backend();
  EXPECT_EQ(WaitForMetric("sockeye_backend_requests_total", {{"backend", b}}, 18), 18);
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_closed_total",
                          {{"backend", b}, {"closed_by", "local"}}, 2),
            2);
  for (const auto& [code, count] : expected) {
    EXPECT_EQ(Metric("sockeye_backend_responses_total", {{"backend", b}, {"code", code}}), count)
        << code;
  }
  EXPECT_EQ(Metric("sockeye_http_status_unread_total", {}), 0);
}

// 100 Continue is not final: the status after it counts, whether it comes
// in the same segment or a later one, and the turn ends at the final one.
TEST_F(LoopbackTraffic, InterimResponsesCountTheFinalStatus) {
  StartAgent();
  REQUIRE_STATUS_PROGRAM();
  HttpServer server("127.0.0.3");
  {
    HttpClient client(server);
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.Ask("I 201", "hello"));
    ASSERT_TRUE(client.Ask("J 404", "hello"));
    ASSERT_TRUE(client.Ask("I 503", "hello"));
  }
  const std::string b = server.backend();
  EXPECT_EQ(WaitForMetric("sockeye_backend_requests_total", {{"backend", b}}, 3), 3);
  EXPECT_EQ(WaitForMetric("sockeye_backend_responses_total", {{"backend", b}, {"code", "5xx"}}, 1),
            1);
  EXPECT_EQ(Metric("sockeye_backend_responses_total", {{"backend", b}, {"code", "2xx"}}), 1);
  EXPECT_EQ(Metric("sockeye_backend_responses_total", {{"backend", b}, {"code", "4xx"}}), 1);
  EXPECT_EQ(Metric("sockeye_backend_responses_total", {{"backend", b}, {"code", "1xx"}}), -1);
  // The turn of "I" ends at the final status, 20 ms after the interim one.
  EXPECT_GE(Metric("sockeye_backend_time_to_first_byte_seconds_sum", {{"backend", b}}), 0.040);
}

TEST_F(LoopbackTraffic, ExactStatusCodes) {
  StartAgent([](Config& config) { config.http_status_codes = HttpStatusCodes::kExact; });
  REQUIRE_STATUS_PROGRAM();
  HttpServer server("127.0.0.3");
  {
    HttpClient client(server);
    ASSERT_TRUE(client.connected());
    for (int code : {418, 418, 503})
      ASSERT_TRUE(client.Ask("S " + std::to_string(code) + " 0 0", "hello"));
  }
  const std::string b = server.backend();
  EXPECT_EQ(WaitForMetric("sockeye_backend_responses_total", {{"backend", b}, {"code", "418"}}, 2),
            2);
  EXPECT_EQ(Metric("sockeye_backend_responses_total", {{"backend", b}, {"code", "503"}}), 1);
}

// Request start to the last byte: the body follows the headers by 200 ms.
TEST_F(LoopbackTraffic, ResponseDurationEndsAtTheLastByte) {
  StartAgent();
  REQUIRE_STATUS_PROGRAM();
  HttpServer server("127.0.0.3");
  const std::string b = server.backend();
  std::chrono::duration<double> waited{0};
  {
    HttpClient client(server);
    ASSERT_TRUE(client.connected());
    for (int i = 0; i < 3; ++i) {
      const ClientWait wait(waited);
      ASSERT_TRUE(client.Ask("S 200 10 200", "hello"));
    }
    // Two completed at the next request; the last one completes at close.
    EXPECT_EQ(WaitForMetric("sockeye_backend_response_duration_seconds_count", {{"backend", b}}, 2),
              2);
  }
  EXPECT_EQ(WaitForMetric("sockeye_backend_response_duration_seconds_count", {{"backend", b}}, 3),
            3);
  const double mean = Metric("sockeye_backend_response_duration_seconds_sum", {{"backend", b}}) / 3;
  EXPECT_GE(mean, 0.210);
  EXPECT_LE(mean, waited.count() / 3 + kClockSlack);
  // Time to first byte stops at the headers.
  const double ttfb =
      Metric("sockeye_backend_time_to_first_byte_seconds_sum", {{"backend", b}}) / 3;
  EXPECT_GE(ttfb, 0.010);
  EXPECT_LT(ttfb, 0.200);
}

// A keep-alive connection that stays idle: the sweep (over iter/tcp, which
// holds the socket lock) completes its last response without a close.
TEST_F(LoopbackTraffic, AnIdleConnectionsLastResponseCompletesAtASweep) {
  StartAgent([](Config& config) { config.sweep_iterator = SweepIterator::kTcp; });
  REQUIRE_STATUS_PROGRAM();
  HttpServer server("127.0.0.3");
  const std::string b = server.backend();
  HttpClient client(server);
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Ask("S 200 0 30", "hello"));
  EXPECT_EQ(WaitForMetric("sockeye_backend_response_duration_seconds_count", {{"backend", b}}, 1),
            1);
  EXPECT_GE(Metric("sockeye_backend_response_duration_seconds_sum", {{"backend", b}}), 0.030);
  client.Close();
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_closed_total",
                          {{"backend", b}, {"closed_by", "local"}}, 1),
            1);
  EXPECT_EQ(Metric("sockeye_backend_response_duration_seconds_count", {{"backend", b}}), 1);
}

TEST_F(LoopbackTraffic, UnansweredRequestsByWhoClosed) {
  StartAgent();
  REQUIRE_STATUS_PROGRAM();
  HttpServer server("127.0.0.3");
  const std::string b = server.backend();
  {
    // The backend hangs up on the second request (nginx's 502).
    HttpClient client(server);
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.Ask("S 200 0 0", "hello"));
    client.Send("H");
    client.WaitForClose();
  }
  {
    // The client gives up on a backend that never answers (nginx's 504).
    HttpClient client(server);
    ASSERT_TRUE(client.connected());
    client.Send("M");
    std::this_thread::sleep_for(50ms);
  }
  {
    // Answered, then closed by the client: not unanswered.
    HttpClient client(server);
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.Ask("S 200 0 0", "hello"));
  }
  EXPECT_EQ(WaitForMetric("sockeye_backend_requests_unanswered_total",
                          {{"backend", b}, {"closed_by", "local"}}, 1),
            1);
  EXPECT_EQ(WaitForMetric("sockeye_backend_requests_unanswered_total",
                          {{"backend", b}, {"closed_by", "remote"}}, 1),
            1);
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_closed_total",
                          {{"backend", b}, {"closed_by", "local"}}, 2),
            2);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", {{"backend", b}}), 4);
  EXPECT_EQ(Metric("sockeye_backend_responses_total", {{"backend", b}, {"code", "2xx"}}), 2);
}

// Moves this whole process into a cgroup v2 directory while it lives, and
// back to the hierarchy's root after.
class InCgroup {
 public:
  InCgroup(const std::string& root, const std::string& dir) : root_(root) { joined_ = Join(dir); }
  ~InCgroup() {
    if (joined_) Join(root_);
  }
  bool joined() const { return joined_; }

 private:
  static bool Join(const std::string& dir) {
    const int fd = open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const std::string pid = std::to_string(getpid());
    const bool ok = write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
    close(fd);
    return ok;
  }
  std::string root_;
  bool joined_ = false;
};

// --cgroup: the status programs read only the sockets of that cgroup, which
// a socket joins when it is created. The requests of a client created
// outside it still count, without statuses.
TEST_F(LoopbackTraffic, HttpStatusOnlyInTheGivenCgroup) {
  const std::string root = Cgroup2MountPoint();
  if (root.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy here";
  const std::string dir = root + "/sockeye-test";
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) GTEST_SKIP() << dir << ": " << errno;
  StartAgent([&dir](Config& config) { config.cgroup = dir; });
  REQUIRE_STATUS_PROGRAM();
  HttpServer server("127.0.0.3");
  {
    const InCgroup inside(root, dir);
    ASSERT_TRUE(inside.joined());
    HttpClient client(server);
    ASSERT_TRUE(client.connected());
    for (const char* command : {"S 200 0 0", "S 404 0 0", "S 503 0 0"})
      ASSERT_TRUE(client.Ask(command, "hello"));
  }
  {
    HttpClient client(server);
    ASSERT_TRUE(client.connected());
    for (const char* command : {"S 200 0 0", "S 500 0 0"})
      ASSERT_TRUE(client.Ask(command, "hello"));
  }
  const std::string b = server.backend();
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_closed_total",
                          {{"backend", b}, {"closed_by", "local"}}, 2),
            2);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", {{"backend", b}}), 5);
  for (const char* code : {"2xx", "4xx", "5xx"})
    EXPECT_EQ(Metric("sockeye_backend_responses_total", {{"backend", b}, {"code", code}}), 1)
        << code;
  agent_.reset();
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace sockeye
