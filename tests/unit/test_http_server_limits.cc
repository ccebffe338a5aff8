// The metrics server under clients that stall, hog or overflow it: honest
// scrapes are still served quickly, and every connection it refuses or
// drops is counted. Clients come from several loopback addresses
// (127.0.0.0/8 is all local on Linux) so that the per-client cap sees
// several clients.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "agent/unique_fd.h"
#include "exporters/http_server.h"
#include "exporters/http_server_limits.h"
#include "exporters/metric_model.h"
#include "tests/unit/http_server_test_util.h"

namespace sockeye::metrics {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kPartialHeader = "GET /metrics HTTP/1.1\r\nHost: x\r\n";

// A connection to 127.0.0.1:port from `source` (a loopback address).
// `receive_buffer` > 0 shrinks the socket's receive buffer first, so that a
// client that does not read soon stops the server's writes.
UniqueFd ConnectFrom(const std::string& source, int port, int receive_buffer = 0) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fd;
  if (receive_buffer > 0) {
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
  }
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<uint16_t>(port));
  remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
      connect(fd.get(), reinterpret_cast<sockaddr*>(&remote), sizeof(remote)) != 0) {
    return UniqueFd();
  }
  return fd;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until the server closes (or resets) the connection, for at most
// `timeout`; true if it did. What was received goes to *received.
bool ClosedByServerWithin(int fd, Clock::duration timeout, std::string* received = nullptr) {
  const auto deadline = Clock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd entry{.fd = fd, .events = POLLIN, .revents = 0};
    if (poll(&entry, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return true;
    if (received != nullptr) received->append(buf, static_cast<size_t>(n));
  }
}

// Open, with nothing to read: neither closed nor answered.
bool StillOpen(int fd) {
  pollfd entry{.fd = fd, .events = POLLIN, .revents = 0};
  return poll(&entry, 1, 0) == 0;
}

// Every stalled connection costs two descriptors in this process (both
// ends), and the server takes half the soft limit at most.
bool RaiseFdLimit(rlim_t wanted) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  if (limit.rlim_cur >= wanted) return true;
  limit.rlim_cur = std::min(wanted, limit.rlim_max);
  return setrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur >= wanted;
}

class HttpServerLimitsTest : public test_util::HttpServerTest {
 protected:
  double Rejected(std::string_view reason) {
    std::vector<MetricFamily> families;
    server_->stats_collector()->Collect(families);
    for (const MetricFamily& family : families) {
      if (family.name != "sockeye_http_connections_rejected_total") continue;
      for (const Sample& sample : family.samples) {
        if (sample.labels.size() == 1 && sample.labels[0].value == reason) return sample.value;
      }
    }
    return -1;
  }

  // The count is recorded just after the close the client sees.
  double RejectedSoon(std::string_view reason, double expected) {
    const auto deadline = Clock::now() + seconds(2);
    while (Rejected(reason) != expected && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    return Rejected(reason);
  }

  bool ServesHealth() {
    auto res = Get("/healthz");
    return res && res->status == 200;
  }
};

TEST_F(HttpServerLimitsTest, HonestScrapesAreServedWhileAThousandClientsStall) {
  constexpr int kStalled = 1000;
  constexpr int kStalledPerAddress = 10;
  static_assert(kStalledPerAddress < http_limits::kMaxConnectionsPerClient);
  if (!RaiseFdLimit(4 * (kStalled + 100))) GTEST_SKIP() << "RLIMIT_NOFILE too low";
  StartServer();

  const auto first_connected = Clock::now();
  std::vector<UniqueFd> stalled;
  for (int i = 0; i < kStalled; ++i) {
    const std::string source = "127.0.1." + std::to_string(1 + i / kStalledPerAddress);
    stalled.push_back(ConnectFrom(source, server_->port()));
    ASSERT_TRUE(stalled.back().valid()) << "connection " << i << ": " << strerror(errno);
    ASSERT_TRUE(SendAll(stalled.back().get(), kPartialHeader));
  }
  std::this_thread::sleep_for(milliseconds(200));  // let the server take them all in

  Clock::duration slowest{};
  for (int i = 0; i < 20; ++i) {
    const std::string path = i % 2 == 0 ? "/healthz" : "/metrics";
    const auto start = Clock::now();
    httplib::Client client("127.0.0.1", server_->port());
    client.set_connection_timeout(seconds(2));
    client.set_read_timeout(seconds(2));
    auto res = client.Get(path);
    const auto took = Clock::now() - start;
    slowest = std::max(slowest, took);
    ASSERT_TRUE(res) << path << ": " << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200) << path;
    EXPECT_LT(took, seconds(1)) << path;
  }
  RecordProperty("slowest_ms",
                 static_cast<int>(std::chrono::duration_cast<milliseconds>(slowest).count()));

  // They were held, not refused (unless this machine was so slow that their
  // header deadline has passed).
  if (Clock::now() - first_connected < http_limits::kHeaderTimeout - milliseconds(500)) {
    for (const UniqueFd& fd : stalled) EXPECT_TRUE(StillOpen(fd.get()));
  }
  EXPECT_EQ(Rejected("client_limit"), 0);
  if (http_limits::EffectiveMaxConnections() > kStalled + 1) {
    EXPECT_EQ(Rejected("server_limit"), 0);
  }
}

TEST_F(HttpServerLimitsTest, OneClientAddressGetsItsShareOfConnections) {
  StartServer();
  std::vector<UniqueFd> held;
  for (size_t i = 0; i < http_limits::kMaxConnectionsPerClient; ++i) {
    held.push_back(ConnectFrom("127.0.2.1", server_->port()));
    ASSERT_TRUE(held.back().valid());
    ASSERT_TRUE(SendAll(held.back().get(), kPartialHeader));
  }
  UniqueFd one_too_many = ConnectFrom("127.0.2.1", server_->port());
  ASSERT_TRUE(one_too_many.valid());
  EXPECT_TRUE(ClosedByServerWithin(one_too_many.get(), seconds(2)));
  EXPECT_EQ(RejectedSoon("client_limit", 1), 1);
  for (const UniqueFd& fd : held) EXPECT_TRUE(StillOpen(fd.get()));
  EXPECT_TRUE(ServesHealth());  // from 127.0.0.1, another client

  // Room again once one of them goes (as soon as the server has seen it go).
  held.pop_back();
  std::string response;
  const auto deadline = Clock::now() + seconds(2);
  while (response.rfind("HTTP/1.1 200", 0) != 0 && Clock::now() < deadline) {
    UniqueFd again = ConnectFrom("127.0.2.1", server_->port());
    ASSERT_TRUE(again.valid());
    response.clear();
    (void)SendAll(again.get(), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ClosedByServerWithin(again.get(), seconds(2), &response);
  }
  EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response;
}

TEST_F(HttpServerLimitsTest, OversizedHeadersAreRefused) {
  StartServer();
  std::string many_lines;
  while (many_lines.size() <= http_limits::kMaxHeaderBytes) many_lines += "X-Filler: abcdef\r\n";
  const std::string headers[] = {"X-Fill: " + std::string(1 << 20, 'a') + "\r\n", many_lines};
  double refused = 0;
  for (const std::string& header : headers) {
    UniqueFd fd = ConnectFrom("127.0.0.1", server_->port());
    ASSERT_TRUE(fd.valid());
    timeval timeout{.tv_sec = 3, .tv_usec = 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    // The server may close before taking all of it: a failed send is fine.
    SendAll(fd.get(), "GET /metrics HTTP/1.1\r\nHost: x\r\n" + header + "\r\n");
    std::string response;
    EXPECT_TRUE(ClosedByServerWithin(fd.get(), seconds(3), &response));
    // The 431 is lost when unread request bytes make the close a reset.
    EXPECT_TRUE(response.empty() || response.rfind("HTTP/1.1 431 ", 0) == 0) << response;
    EXPECT_EQ(RejectedSoon("header_too_large", ++refused), refused);
  }
  EXPECT_TRUE(ServesHealth());
}

TEST_F(HttpServerLimitsTest, StalledClientsAreDroppedAtTheirDeadlines) {
  // 5 MB: more than the server's socket send buffer can grow to (4 MiB by
  // default, net.ipv4.tcp_wmem), so the server has to wait for the client.
  gather_ = [] {
    std::vector<MetricFamily> families = test_util::LargeFamilies();
    MetricFamily copy = families.back();
    copy.name += "_copy";
    families.push_back(std::move(copy));
    return families;
  };
  StartServer();
  const auto start = Clock::now();
  UniqueFd header_staller = ConnectFrom("127.0.3.1", server_->port());
  ASSERT_TRUE(SendAll(header_staller.get(), kPartialHeader));
  UniqueFd slow_reader = ConnectFrom("127.0.3.2", server_->port(), /*receive_buffer=*/4096);
  ASSERT_TRUE(SendAll(slow_reader.get(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  // A byte every 500 ms never lets a per-recv timeout run out; the header
  // deadline is for the whole header.
  UniqueFd trickler = ConnectFrom("127.0.3.3", server_->port());
  ASSERT_TRUE(SendAll(trickler.get(), kPartialHeader));
  std::atomic<bool> trickling{true};
  std::thread trickle([&] {
    while (trickling && SendAll(trickler.get(), "a"))
      std::this_thread::sleep_for(milliseconds(500));
  });

  const auto limit = http_limits::kHeaderTimeout + seconds(2);
  EXPECT_TRUE(ClosedByServerWithin(header_staller.get(), limit));
  EXPECT_GE(Clock::now() - start, http_limits::kHeaderTimeout - milliseconds(100));
  EXPECT_TRUE(ClosedByServerWithin(trickler.get(), limit - (Clock::now() - start)));
  trickling = false;
  trickle.join();
  EXPECT_EQ(RejectedSoon("header_timeout", 2), 2);

  // The slow reader stopped taking data right away, so its wait for the
  // socket to drain ran out about as early.
  EXPECT_EQ(RejectedSoon("write_timeout", 1), 1);
  EXPECT_TRUE(ServesHealth());
}

}  // namespace
}  // namespace sockeye::metrics
