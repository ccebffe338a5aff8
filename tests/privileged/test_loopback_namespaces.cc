// LoopbackTraffic: connections of proxies in network namespaces of their own
// (containers): full sweeps, adoption, and adoption without CAP_SYS_ADMIN.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "loopback_fixture.h"

namespace sockeye {
namespace {

using testing::Client;
using testing::LoopbackTraffic;
using testing::VethNamespace;

// The sweep over iter/tcp walks only the agent's own network namespace, while
// the tracepoints follow connections in every namespace (a proxy in a
// container). A full sweep must not take such a connection for closed.
TEST_F(LoopbackTraffic, FullSweepOverTcpKeepsConnectionsInOtherNamespaces) {
  VethNamespace ns(213, VethNamespace::Peer::kBackend);
  StartAgentFollowing(ns, [](Config& config) { config.sweep_iterator = SweepIterator::kTcp; });
  if (!agent_) return;
  auto server = ns.StartServer();
  ASSERT_TRUE(server) << "cannot listen inside the test namespace";
  std::unique_ptr<Client> client;
  ASSERT_TRUE(
      ns.Inside([&] { client = std::make_unique<Client>(server->address(), server->port()); }));
  ASSERT_TRUE(client->connected());
  std::map<std::string, std::string> a = {{"backend", Backend(*server)}};
  for (int i = 0; i < 3; ++i) ASSERT_EQ(client->Request(30, 300), 300u);
  // The sweep cannot report this one's totals; its state changes still come.
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_active", a, 1), 1);
  EXPECT_EQ(Metric("sockeye_connections_not_swept", {}), 1);

  agent_->Flush(true);
  EXPECT_EQ(Metric("sockeye_backend_connections_active", a), 1);
  EXPECT_EQ(Metric("sockeye_connections_retired_total", {}), 0);

  client.reset();
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_active", a, 0), 0);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), 3);
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), 900);
  EXPECT_EQ(Metric("sockeye_backend_time_to_first_byte_seconds_count", a), 3);
  EXPECT_EQ(Metric("sockeye_connections_not_swept", {}), 0);
}

// A process named `comm` that lives in the network namespace at `netns_path`,
// as a proxy in a container does, and holds copies of every descriptor this
// process has when it is made, until destroyed. Forked from this
// multi-threaded process, the child only makes async-signal-safe calls.
class ProcessInNamespace {
 public:
  ProcessInNamespace(const char* comm, const std::string& netns_path) {
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) return;
    const char* path = netns_path.c_str();
    pid_ = fork();
    if (pid_ == 0) {
      close(ready[0]);
      prctl(PR_SET_NAME, comm);
      const int ns = open(path, O_RDONLY | O_CLOEXEC);
      const char status = ns >= 0 && setns(ns, CLONE_NEWNET) == 0 ? 1 : 0;
      if (write(ready[1], &status, 1) != 1) _exit(1);
      for (;;) pause();
    }
    close(ready[1]);
    char status = 0;
    inside_ = pid_ > 0 && read(ready[0], &status, 1) == 1 && status == 1;
    close(ready[0]);
  }
  ~ProcessInNamespace() { Stop(); }
  ProcessInNamespace(const ProcessInNamespace&) = delete;
  ProcessInNamespace& operator=(const ProcessInNamespace&) = delete;

  bool inside() const { return inside_; }
  // Its copies of the descriptors close with it.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  bool inside_ = false;
};

// A proxy in a container has a network namespace of its own, and the
// adoption iterator (iter/tcp) sees only the namespace of the thread that
// creates it: the agent must walk each namespace its processes live in to
// adopt the idle keep-alive connections they held before it started. Once
// without --process (every process's namespace is walked) and once with it.
TEST_F(LoopbackTraffic, ConnectionsOpenBeforeStartInOtherNamespacesAreAdopted) {
  VethNamespace ns(214, VethNamespace::Peer::kBackend);
  ASSERT_TRUE(ns.ok()) << "cannot create the test network namespace (iproute2)";
  auto server = ns.StartServer();
  ASSERT_TRUE(server) << "cannot listen inside the test namespace";
  const std::map<std::string, std::string> a = {{"backend", Backend(*server)}};
  for (bool process_filter : {false, true}) {
    SCOPED_TRACE(process_filter ? "--process sockeye-ns-t" : "no --process");
    std::unique_ptr<Client> client;
    ASSERT_TRUE(
        ns.Inside([&] { client = std::make_unique<Client>(server->address(), server->port()); }));
    ASSERT_TRUE(client->connected());
    ProcessInNamespace proxy("sockeye-ns-t", ns.path());
    ASSERT_TRUE(proxy.inside());
    for (int i = 0; i < 2; ++i) ASSERT_EQ(client->Request(40, 400), 400u);  // before: not counted

    StartAgentFollowing(ns, [&](Config& config) {
      if (process_filter) config.processes = {"sockeye-ns-t"};
    });
    if (!agent_) return;
    EXPECT_EQ(Metric("sockeye_backend_connections_active", a), 1);
    // With --process exactly the agent's own and the test namespace; without
    // it every process's namespace on this host, at least those two.
    const double walked = Metric("sockeye_adoption_network_namespaces", {{"result", "walked"}});
    if (process_filter) {
      EXPECT_EQ(walked, 2);
    } else {
      EXPECT_GE(walked, 2);
    }
    EXPECT_EQ(Metric("sockeye_adoption_network_namespaces", {{"result", "not_walked"}}), 0);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(client->Request(40, 400), 400u);
    proxy.Stop();
    client.reset();
    EXPECT_EQ(WaitForMetric("sockeye_backend_connections_active", a, 0), 0);
    EXPECT_EQ(Metric("sockeye_backend_requests_total", a), 3);
    EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", a), 3 * 40);
    EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), 3 * 400);
    EXPECT_EQ(Metric("sockeye_backend_time_to_first_byte_seconds_count", a), 3);
    agent_.reset();
  }
}

// Entering another network namespace needs CAP_SYS_ADMIN, which the
// packaged unit does not grant: the agent still starts, and says how many
// namespaces it could not search; connections opened there afterwards are
// followed (the tracepoints see every namespace). Capabilities belong to
// each thread, so the agent starts on a thread without CAP_SYS_ADMIN.
TEST_F(LoopbackTraffic, WhatAdoptionCannotEnterInOtherNamespacesIsCounted) {
  VethNamespace ns(215, VethNamespace::Peer::kBackend);
  ASSERT_TRUE(ns.ok()) << "cannot create the test network namespace (iproute2)";
  auto server = ns.StartServer();
  ASSERT_TRUE(server) << "cannot listen inside the test namespace";
  const std::map<std::string, std::string> a = {{"backend", Backend(*server)}};
  std::unique_ptr<Client> before;
  ASSERT_TRUE(
      ns.Inside([&] { before = std::make_unique<Client>(server->address(), server->port()); }));
  ASSERT_TRUE(before->connected());
  ProcessInNamespace proxy("sockeye-ns-t", ns.path());
  ASSERT_TRUE(proxy.inside());

  std::string dropped;
  std::thread([&] {
    cap_t caps = cap_get_proc();
    const cap_value_t sys_admin = CAP_SYS_ADMIN;
    if (!caps || cap_set_flag(caps, CAP_EFFECTIVE, 1, &sys_admin, CAP_CLEAR) != 0 ||
        cap_set_proc(caps) != 0) {
      dropped = std::string("cannot drop CAP_SYS_ADMIN: ") + std::strerror(errno);
    } else {
      StartAgentFollowing(ns, [](Config& config) { config.processes = {"sockeye-ns-t"}; });
    }
    if (caps) cap_free(caps);
  }).join();
  ASSERT_EQ(dropped, "");
  if (!agent_) return;
  EXPECT_EQ(Metric("sockeye_adoption_network_namespaces", {{"result", "not_walked"}}), 1);
  EXPECT_EQ(Metric("sockeye_adoption_network_namespaces", {{"result", "walked"}}), 1);
  EXPECT_EQ(Metric("sockeye_backend_connections_active", a), -1);  // not adopted

  // The kernel filters connects by the calling thread's comm.
  std::string made;
  std::thread([&] {
    prctl(PR_SET_NAME, "sockeye-ns-t");
    const bool joined = ns.Inside([&] {
      Client after(server->address(), server->port());
      made = after.connected() && after.Request(50, 500) == 500u && after.Request(50, 500) == 500u
                 ? ""
                 : "a request on the new connection failed";
    });
    if (!joined) made = "cannot join the test namespace";
  }).join();
  ASSERT_EQ(made, "");
  ASSERT_EQ(before->Request(50, 500), 500u);  // on the connection that was not adopted
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_established_total", a, 1), 1);
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_active", a, 0), 0);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), 2);
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), 2 * 500);
}

}  // namespace
}  // namespace sockeye
