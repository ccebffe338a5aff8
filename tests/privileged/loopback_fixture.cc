#include "loopback_fixture.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "agent/address.h"
#include "agent/command_line.h"

namespace sockeye::testing {

using namespace std::chrono_literals;

bool BpfRequired() {
  const char* v = std::getenv("SOCKEYE_REQUIRE_BPF");
  return v && std::string(v) == "1";
}

std::optional<double> Value(const std::vector<metrics::MetricFamily>& families,
                            const std::string& name,
                            const std::map<std::string, std::string>& labels) {
  auto matches = [&](const metrics::Labels& have) {
    for (const auto& [k, v] : labels) {
      bool found = false;
      for (const auto& l : have) found = found || (l.name == k && l.value == v);
      if (!found) return false;
    }
    return true;
  };
  for (const auto& f : families) {
    for (const auto& s : f.samples)
      if (f.name == name && matches(s.labels)) return s.value;
    for (const auto& h : f.histograms) {
      if (!matches(h.labels)) continue;
      if (f.name + "_count" == name) return static_cast<double>(h.count);
      if (f.name + "_sum" == name) return h.sum;
    }
  }
  return std::nullopt;
}

VethNamespace::VethNamespace(int subnet, Peer peer)
    : name_("sockeye-test" + std::to_string(subnet)),
      host_link_("sk" + std::to_string(subnet) + "-h"),
      ns_link_("sk" + std::to_string(subnet) + "-n"),
      prefix_("169.254." + std::to_string(subnet) + ".") {
  const std::string in_ns = "ip netns exec " + name_ + " ";
  Run("ip netns del " + name_ + " 2>/dev/null; ip link del " + host_link_ + " 2>/dev/null; true");
  ok_ = Run("ip netns add " + name_) &&
        Run("ip link add " + host_link_ + " type veth peer name " + ns_link_ + " netns " + name_) &&
        Run("ip addr add " + prefix_ + "1/30 dev " + host_link_) &&
        Run("ip link set " + host_link_ + " up") &&
        Run(in_ns + "ip link set " + ns_link_ + " up") &&
        Run(in_ns + "ip link set lo up") &&  // a client inside reaches address() over lo
        (peer == Peer::kBackend
             ? Run(in_ns + "ip addr add " + address() + "/30 dev " + ns_link_)
             : Run("ip neigh replace " + address() + " lladdr 02:00:00:00:00:02 dev " + host_link_ +
                   " nud permanent"));
}

VethNamespace::~VethNamespace() {
  Run("ip link del " + host_link_ + " 2>/dev/null; ip netns del " + name_);
}

void VethNamespace::CutLink() {
  Run("ip netns exec " + name_ + " ip link set " + ns_link_ + " down");
}

bool VethNamespace::Inside(const std::function<void()>& make_sockets) {
  int own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  int theirs = open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
  bool joined = own >= 0 && theirs >= 0 && setns(theirs, CLONE_NEWNET) == 0;
  if (joined) {
    make_sockets();
    if (setns(own, CLONE_NEWNET) != 0) std::abort();  // the rest of the suite needs it
  }
  if (own >= 0) close(own);
  if (theirs >= 0) close(theirs);
  return joined;
}

std::unique_ptr<LoopbackServer> VethNamespace::StartServer() {
  std::unique_ptr<LoopbackServer> server;
  Inside([&] { server = std::make_unique<LoopbackServer>(address()); });
  return server;
}

bool VethNamespace::Run(const std::string& command) { return std::system(command.c_str()) == 0; }

void LoopbackTraffic::SetUp() {
  std::string reason;
  if (geteuid() != 0) reason = "not root: loading BPF programs needs CAP_BPF and CAP_PERFMON";
  if (reason.empty() && access("/sys/kernel/btf/vmlinux", R_OK) != 0)
    reason = "no kernel BTF at /sys/kernel/btf/vmlinux";
  if (!reason.empty()) {
    if (BpfRequired()) FAIL() << "SOCKEYE_REQUIRE_BPF=1 but " << reason;
    GTEST_SKIP() << reason;
  }
}

void LoopbackTraffic::StartAgent(const std::function<void(Config&)>& customize) {
  const std::string error = TryStartAgent(customize);
  if (!agent_) {
    if (BpfRequired()) FAIL() << "agent failed to start: " << error;
    GTEST_SKIP() << "BPF programs could not be loaded: " << error;
  }
}

std::string LoopbackTraffic::TryStartAgent(const std::function<void(Config&)>& customize) {
  // The reruns of this suite (CMakeLists.txt) choose the probe mode and
  // the hot slots through the environment; the agent's own parser checks
  // them, as it would the flags.
  std::vector<const char*> args = {"sockeye", "--web.listen-address", "127.0.0.1:0"};
  if (const char* mode = std::getenv("SOCKEYE_TEST_PROBE_MODE")) {
    args.insert(args.end(), {"--probe-mode", mode});
  }
  if (const char* slots = std::getenv("SOCKEYE_TEST_HOT_SLOTS")) {
    args.insert(args.end(), {"--hot-slots", slots});
  }
  ParseOutcome parsed = ParseCommandLine(static_cast<int>(args.size()), args.data());
  if (!parsed.config) {
    ADD_FAILURE() << "the test's agent settings: " << parsed.message;
    return parsed.message;
  }
  Config config = std::move(*parsed.config);
  // Several agents start in this one process; the real binary drops its
  // capabilities (covered by tests/e2e/promtool_check.sh).
  config.keep_capabilities = true;
  std::string error;
  for (const char* net : {"127.0.0.2/32", "127.0.0.3/32", "127.0.0.4/32", "::1/128"})
    config.include.push_back(*ParseCidrMatch(net, &error));
  // Frontends: only the listeners the test binds on kFrontendAddress, which
  // are this process's own sockets.
  config.frontend_include = {*ParseCidrMatch(std::string(kFrontendAddress) + "/32", &error)};
  config.frontends_skip_own_sockets = false;
  if (customize) customize(config);
  agent_ = Agent::Start(config, &error);
  return error;
}

void LoopbackTraffic::StartAgentFollowing(const VethNamespace& ns,
                                          const std::function<void(Config&)>& customize) {
  if (!ns.ok()) {
    if (BpfRequired()) FAIL() << "cannot create the test network namespace (iproute2)";
    GTEST_SKIP() << "cannot create a network namespace";
  }
  StartAgent([&](Config& config) {
    std::string error;
    config.include = {*ParseCidrMatch(ns.address() + "/32", &error)};
    if (customize) customize(config);
  });
}

std::string LoopbackTraffic::Backend(const LoopbackServer& server) const {
  return server.address().find(':') != std::string::npos
             ? "[" + server.address() + "]:" + std::to_string(server.port())
             : server.address() + ":" + std::to_string(server.port());
}

double LoopbackTraffic::Metric(const std::string& name,
                               const std::map<std::string, std::string>& labels) {
  auto v = Value(agent_->Gather(), name, labels);
  return v.value_or(-1);
}

double LoopbackTraffic::WaitForMetric(const std::string& name,
                                      const std::map<std::string, std::string>& labels,
                                      double expected) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  double v = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    agent_->Flush(false);
    v = Metric(name, labels);
    if (v == expected) return v;
    std::this_thread::sleep_for(10ms);
  }
  return v;
}

}  // namespace sockeye::testing
