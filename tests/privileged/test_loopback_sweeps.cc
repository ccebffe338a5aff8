// LoopbackTraffic: adoption of connections open before the start, the
// sweeps that report open connections, and --process on both.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "loopback_fixture.h"

namespace sockeye {
namespace {

using namespace std::chrono_literals;
using testing::Client;
using testing::LoopbackServer;
using testing::LoopbackTraffic;
using testing::Value;

TEST_F(LoopbackTraffic, ConnectionOpenedBeforeStartIsAdopted) {
  LoopbackServer server("127.0.0.2");
  std::map<std::string, std::string> a{{"backend", Backend(server)}};
  Client client(server.address(), server.port());
  ASSERT_TRUE(client.connected());
  for (int i = 0; i < 2; ++i) ASSERT_EQ(client.Request(100, 1000), 1000u);  // before: not counted
  StartAgent();
  if (!agent_) return;
  EXPECT_EQ(Metric("sockeye_backend_connections_active", a), 1);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(client.Request(100, 1000), 1000u);
  client.Close();
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_active", a, 0), 0);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), 3);
  EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", a), 300);
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), 3000);
  EXPECT_EQ(Metric("sockeye_backend_connections_established_total", a), 0);
  EXPECT_EQ(Metric("sockeye_backend_connections_closed_total",
                   {{"backend", Backend(server)}, {"closed_by", "local"}}),
            1);
}

// The sweep that walks TCP's hash tables (for kernels that refuse
// map-element iterators, and the default on such kernels) reports an open
// connection's bytes and its turns that never filled a batch, and nothing
// twice when the connection closes.
TEST_F(LoopbackTraffic, TcpSweepReportsOpenConnections) {
  StartAgent([](Config& config) { config.sweep_iterator = SweepIterator::kTcp; });
  if (!agent_) return;
  EXPECT_EQ(Value(agent_->Gather(), "sockeye_probe_info",
                  {{"hook", "sweep"}, {"mode", "iter"}, {"target", "tcp"}}),
            1);
  LoopbackServer server("127.0.0.3");
  std::map<std::string, std::string> a{{"backend", Backend(server)}};
  constexpr int kRequests = SOCKEYE_TURN_BATCH - 1;
  Client client(server.address(), server.port());
  ASSERT_TRUE(client.connected());
  for (int i = 0; i < kRequests; ++i) ASSERT_EQ(client.Request(40, 4000), 4000u);

  EXPECT_EQ(WaitForMetric("sockeye_backend_time_to_first_byte_seconds_count", a, kRequests),
            kRequests);
  EXPECT_EQ(WaitForMetric("sockeye_backend_received_bytes_total", a, kRequests * 4000),
            kRequests * 4000);
  EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", a), kRequests * 40);
  EXPECT_EQ(Metric("sockeye_backend_connections_active", a), 1);

  client.Close();
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_active", a, 0), 0);
  EXPECT_EQ(Metric("sockeye_backend_time_to_first_byte_seconds_count", a), kRequests);
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), kRequests * 4000);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), kRequests);
  EXPECT_GE(Metric("sockeye_sweeps_total", {{"result", "ok"}}), 1);
  EXPECT_EQ(Metric("sockeye_sweeps_total", {{"result", "failed"}}), 0);
  EXPECT_GT(Metric("sockeye_sweep_duration_seconds_total", {}), 0);
}

// The agent's own loop (Tick(), not the tests' Flush()): with no connection
// open it skips the periodic sweeps, and once one has stayed open across an
// interval it sweeps again, so what the connection moved shows up long
// before the next full sweep (every 30 intervals) would bring it.
TEST_F(LoopbackTraffic, TheAgentLoopSweepsOnlyWhileAConnectionOutlivesAnInterval) {
  constexpr auto kInterval = 100ms;  // the shortest --sweep-interval
  StartAgent([&](Config& config) { config.sweep_interval = kInterval; });
  if (!agent_) return;
  auto sweeps = [&](const char* result) {
    return Metric("sockeye_sweeps_total", {{"result", result}});
  };
  auto tick_for = [&](std::chrono::milliseconds span) {
    const auto until = std::chrono::steady_clock::now() + span;
    while (std::chrono::steady_clock::now() < until) agent_->Tick(10);
  };
  const double ok_at_start = sweeps("ok");
  const double skipped_at_start = sweeps("skipped");
  tick_for(4 * kInterval + 50ms);
  EXPECT_GE(sweeps("skipped") - skipped_at_start, 3);
  EXPECT_EQ(sweeps("ok"), ok_at_start);

  LoopbackServer server("127.0.0.2");
  std::map<std::string, std::string> a{{"backend", Backend(server)}};
  Client client(server.address(), server.port());
  ASSERT_TRUE(client.connected());
  ASSERT_EQ(client.Request(50, 3000), 3000u);
  // Byte totals reach the agent only in sweep and state-change records.
  const auto deadline = std::chrono::steady_clock::now() + 10 * kInterval;
  while (Metric("sockeye_backend_received_bytes_total", a) != 3000 &&
         std::chrono::steady_clock::now() < deadline)
    tick_for(kInterval / 2);
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), 3000);
  EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", a), 50);
  EXPECT_EQ(Metric("sockeye_backend_connections_active", a), 1);
  EXPECT_GE(sweeps("ok") - ok_at_start, 1);
}

std::string OwnComm() {
  std::ifstream comm("/proc/self/comm");
  std::string name;
  std::getline(comm, name);
  return name;
}

// --process applies to adoption too: the open connection's socket inode is
// matched against the sockets of the named processes found in /proc.
TEST_F(LoopbackTraffic, ProcessFilterDecidesAdoptionAndNewConnects) {
  LoopbackServer server("127.0.0.2");
  Client before(server.address(), server.port());
  ASSERT_TRUE(before.connected());
  ASSERT_EQ(before.Request(10, 10), 10u);
  for (const std::string& process : {std::string("nginx"), OwnComm()}) {
    StartAgent([&](Config& config) { config.processes = {process}; });
    if (!agent_) return;
    bool ours = process != "nginx";
    std::map<std::string, std::string> a{{"backend", Backend(server)}};
    EXPECT_EQ(Metric("sockeye_backend_connections_active", a), ours ? 1 : -1) << process;
    {
      Client during(server.address(), server.port());
      ASSERT_EQ(during.Request(10, 10), 10u);
    }
    agent_->Flush(false);
    EXPECT_EQ(WaitForMetric("sockeye_backend_connections_established_total", a, ours ? 1 : -1),
              ours ? 1 : -1)
        << process;
    agent_.reset();
  }
}

// Processes that hold a given number of UDP sockets each, named `comm`,
// until destroyed. Forked from this multi-threaded process, each child only
// makes async-signal-safe calls before it blocks.
class SocketHoldingProcesses {
 public:
  SocketHoldingProcesses(const char* comm, size_t processes, size_t sockets_each) {
    for (size_t p = 0; p < processes; ++p) {
      int ready[2], release[2];
      if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(release, O_CLOEXEC) != 0) return;
      const pid_t pid = fork();
      if (pid == 0) {
        close(ready[0]);
        close(release[1]);  // else its own copy would keep the release pipe open
        prctl(PR_SET_NAME, comm);
        rlimit limit{};
        getrlimit(RLIMIT_NOFILE, &limit);
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
        char status = 1;
        for (size_t i = 0; i < sockets_each; ++i)
          if (socket(AF_INET, SOCK_DGRAM, 0) < 0) status = 0;
        if (write(ready[1], &status, 1) != 1) _exit(1);
        char byte;
        while (read(release[0], &byte, 1) > 0) {
        }
        _exit(0);
      }
      close(ready[1]);
      close(release[0]);
      char status = 0;
      if (pid > 0 && read(ready[0], &status, 1) == 1 && status == 1) {
        pids_.push_back(pid);
      } else if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
      close(ready[0]);
      releases_.push_back(release[1]);
    }
  }
  ~SocketHoldingProcesses() {
    for (int fd : releases_) close(fd);
    for (pid_t pid : pids_) waitpid(pid, nullptr, 0);
  }
  size_t running() const { return pids_.size(); }
  // Distinct socket inodes held by every process named `comm` (these and
  // any left over from an earlier run), as --process counts them.
  static size_t SocketInodes(const std::string& comm) {
    std::set<std::string> inodes;
    for (const auto& process : std::filesystem::directory_iterator("/proc")) {
      const std::string pid = process.path().filename().string();
      if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream comm_file(process.path() / "comm");
      std::string name;
      if (!std::getline(comm_file, name) || name != comm) continue;
      std::error_code error;
      for (const auto& fd : std::filesystem::directory_iterator(process.path() / "fd", error)) {
        const std::string target = std::filesystem::read_symlink(fd.path(), error).string();
        if (!error && target.rfind("socket:[", 0) == 0) inodes.insert(target);
      }
    }
    return inodes.size();
  }

 private:
  std::vector<pid_t> pids_;
  std::vector<int> releases_;
};

// --process processes with more sockets than adopt_inodes holds (65,536,
// bpf/maps.bpf.h): the sockets that did not fit are counted in
// sockeye_adoption_sockets_skipped_total, not dropped silently, and an open
// connection whose socket did fit is still adopted. The sockets are spread
// over several processes because a process may hold only RLIMIT_NOFILE
// descriptors (as low as 4,096 in the qemu guests), and a container may deny
// the CAP_SYS_RESOURCE that would raise it.
TEST_F(LoopbackTraffic, SocketsBeyondTheAdoptionMapAreCountedAsSkipped) {
  constexpr size_t kAdoptInodes = 65536;
  constexpr size_t kBeyond = 100;
  LoopbackServer server("127.0.0.2");
  // Inherited by every child as one of its lowest descriptors, which /proc
  // lists (and the agent marks) first.
  Client before(server.address(), server.port());
  ASSERT_TRUE(before.connected());
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  const size_t each = std::min<size_t>(limit.rlim_max, 1 << 20) - 256;
  const size_t processes = (kAdoptInodes + kBeyond + each - 1) / each;
  SocketHoldingProcesses holders("sockeye-adopt-t", processes, each);
  ASSERT_EQ(holders.running(), processes) << "a child could not open " << each << " sockets";
  const size_t inodes = SocketHoldingProcesses::SocketInodes("sockeye-adopt-t");
  ASSERT_GT(inodes, kAdoptInodes);
  StartAgent([&](Config& config) { config.processes = {"sockeye-adopt-t"}; });
  if (!agent_) return;
  EXPECT_EQ(Value(agent_->Gather(), "sockeye_adoption_sockets_skipped_total", {}),
            static_cast<double>(inodes - kAdoptInodes));
  EXPECT_EQ(Metric("sockeye_backend_connections_active", {{"backend", Backend(server)}}), 1);
}

}  // namespace
}  // namespace sockeye
