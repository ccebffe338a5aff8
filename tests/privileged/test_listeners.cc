// The listener collector against real listening sockets: the accept queue
// of a listener that never accepts, its limit, and the connections it
// drops once the queue is full; the agent's own listener left out.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/listener_collector.h"
#include "agent/listeners.h"
#include "loopback_fixture.h"

namespace sockeye {
namespace {

using namespace std::chrono_literals;

// A listening socket on 127.0.0.4 with the given backlog, never accepting.
struct StuckListener {
  explicit StuckListener(int backlog) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.4", &sa.sin_addr);
    ok = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0 && listen(fd, backlog) == 0;
    socklen_t len = sizeof(sa);
    getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    port = ntohs(sa.sin_port);
  }
  ~StuckListener() { close(fd); }
  std::string label() const { return "127.0.0.4:" + std::to_string(port); }
  int fd = -1;
  uint16_t port = 0;
  bool ok = false;
};

int ConnectNonBlocking(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.4", &sa.sin_addr);
  connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  return fd;
}

// The collector's view of the test's own listeners.
ListenerSelectionOptions Own() {
  ListenerSelectionOptions options;
  options.skip_own_sockets = false;
  return options;
}

std::map<std::string, double> Scrape(ListenerCollector& collector, const std::string& label) {
  std::vector<metrics::MetricFamily> families;
  collector.Collect(families);
  std::map<std::string, double> out;
  for (auto& f : families) {
    metrics::Materialize(f);
    for (const auto& s : f.samples)
      if (s.labels.size() == 1 && s.labels[0].value == label) out[f.name] = s.value;
  }
  return out;
}

// The kernel answers socket diagnostics for TCP only with tcp_diag, a module
// on most distributions (loaded on demand); the kernel matrix's Ubuntu guests
// boot without their modules.
#define REQUIRE_TCP_DIAG()                                                             \
  do {                                                                                 \
    std::vector<Listener> probe;                                                       \
    std::string why;                                                                   \
    if (!ReadListeners(&probe, &why) && why.find("No such file") != std::string::npos) \
      GTEST_SKIP() << "no TCP socket diagnostics in this kernel (tcp_diag): " << why;  \
  } while (0)

TEST(Listeners, AcceptQueueLimitAndDropsOfAListenerThatNeverAccepts) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for the loopback address 127.0.0.4";
  REQUIRE_TCP_DIAG();
  StuckListener listener(1);
  ASSERT_TRUE(listener.ok);
  ListenerCollector collector(std::make_shared<ListenerSelection>(Own()));
  auto before = Scrape(collector, listener.label());
  EXPECT_EQ(before["sockeye_frontend_accept_queue_length"], 0);
  EXPECT_EQ(before["sockeye_frontend_accept_queue_limit"], 1);
  EXPECT_EQ(before["sockeye_frontend_listen_drops_total"], 0);

  // With backlog 1 the queue is full at two (sk_acceptq_is_full(): more than
  // the backlog); the third SYN is dropped and counted.
  std::vector<int> clients;
  for (int i = 0; i < 2; ++i) clients.push_back(ConnectNonBlocking(listener.port));
  std::this_thread::sleep_for(100ms);
  const auto third_at = std::chrono::steady_clock::now();
  clients.push_back(ConnectNonBlocking(listener.port));
  std::this_thread::sleep_for(100ms);
  auto after = Scrape(collector, listener.label());
  const bool before_syn_retry = std::chrono::steady_clock::now() - third_at < 900ms;
  EXPECT_EQ(after["sockeye_frontend_accept_queue_length"], 2);
  EXPECT_EQ(after["sockeye_frontend_accept_queue_limit"], 1);
  // One SYN dropped; its retransmission (1 s later) would be a second drop.
  if (before_syn_retry)
    EXPECT_EQ(after["sockeye_frontend_listen_drops_total"], 1);
  else
    EXPECT_GE(after["sockeye_frontend_listen_drops_total"], 1);
  for (int fd : clients) close(fd);
}

TEST(Listeners, FiltersAndTheAgentsOwnListener) {
  REQUIRE_TCP_DIAG();
  StuckListener listener(8);
  ASSERT_TRUE(listener.ok);
  std::string error;
  ListenerSelectionOptions exclude = Own();
  exclude.exclude = {*ParseCidrMatch("127.0.0.4/32:" + std::to_string(listener.port), &error)};
  ListenerCollector excluded(std::make_shared<ListenerSelection>(exclude));
  EXPECT_TRUE(Scrape(excluded, listener.label()).empty());
  ListenerSelectionOptions include = Own();
  include.include = {*ParseCidrMatch("127.0.0.0/8", &error)};
  ListenerCollector included(std::make_shared<ListenerSelection>(include));
  EXPECT_EQ(Scrape(included, listener.label())["sockeye_frontend_accept_queue_limit"], 8);
  ListenerSelectionOptions other = Own();
  other.include = {*ParseCidrMatch("10.0.0.0/8", &error)};
  ListenerCollector elsewhere(std::make_shared<ListenerSelection>(other));
  EXPECT_TRUE(Scrape(elsewhere, listener.label()).empty());
  // By default the process's own listeners (the agent's metrics endpoint)
  // never show.
  ListenerCollector own(std::make_shared<ListenerSelection>(ListenerSelectionOptions{}));
  std::vector<metrics::MetricFamily> families;
  own.Collect(families);
  for (auto& f : families) {
    metrics::Materialize(f);
    for (const auto& s : f.samples) EXPECT_NE(s.labels[0].value, listener.label());
  }
}

}  // namespace
}  // namespace sockeye
