// The fixture of the LoopbackTraffic suite (tests/privileged/test_loopback_*.cc):
// it loads the real BPF programs and drives real TCP on loopback against
// servers the test starts itself; every expected value is exact.
//
// Needs root (or CAP_BPF+CAP_PERFMON) and kernel BTF. Without them the tests
// are skipped with the reason, unless SOCKEYE_REQUIRE_BPF=1 (set by .ci/run)
// turns the skip into a failure.
//
// The suite keeps one name across its files: the kernel matrix
// (tests/vm/run-matrix.sh) and ctest select its tests by name.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/config.h"
#include "loopback_server.h"

namespace sockeye::testing {

bool BpfRequired();

// Adds the time it lives to `total`: around one Client::Request, the time the
// client waited for the whole response. The time to first byte sockeye
// measures for that request cannot be longer (the request leaves after the
// send starts; the first byte arrives before the last read returns), however
// late the scheduler ran the client or the server, as in a starved qemu
// guest, where a fixed bound above the server's delay fails.
class ClientWait {
 public:
  explicit ClientWait(std::chrono::duration<double>& total)
      : total_(total), start_(std::chrono::steady_clock::now()) {}
  ~ClientWait() { total_ += std::chrono::steady_clock::now() - start_; }
  ClientWait(const ClientWait&) = delete;
  ClientWait& operator=(const ClientWait&) = delete;

 private:
  std::chrono::duration<double>& total_;
  std::chrono::steady_clock::time_point start_;
};
// The loopback address whose listeners the fixture's agent follows as
// frontends (no other listener of the host is).
inline constexpr const char* kFrontendAddress = "127.0.0.6";

// Rounding between the kernel's microsecond timestamps and the client's clock.
constexpr double kClockSlack = 0.0005;

// The value of the sample or histogram _count/_sum `name` whose labels
// include `labels`, if the families have one.
std::optional<double> Value(const std::vector<metrics::MetricFamily>& families,
                            const std::string& name,
                            const std::map<std::string, std::string>& labels);

// A network namespace of the test's own, joined to the host by a veth pair:
// the host side is 169.254.<subnet>.1/30, and address() (.2) is either
//  - kBackend: owned inside the namespace, where StartServer() listens, and
//    CutLink() later takes the link down, so from then on nothing sent is
//    acknowledged, as with a backend host that died; or
//  - kBlackhole: owned by nobody; the host's neighbour entry sends SYNs into
//    the namespace, which drops them without an answer.
class VethNamespace {
 public:
  enum class Peer { kBackend, kBlackhole };

  VethNamespace(int subnet, Peer peer);
  ~VethNamespace();
  VethNamespace(const VethNamespace&) = delete;
  VethNamespace& operator=(const VethNamespace&) = delete;

  bool ok() const { return ok_; }
  std::string address() const { return prefix_ + "2"; }
  std::string path() const { return "/run/netns/" + name_; }
  void CutLink();

  // Runs `make_sockets` with this thread in the namespace, so the sockets it
  // creates live there (their later use needs only the fds). False when the
  // namespace could not be joined.
  bool Inside(const std::function<void()>& make_sockets);

  // A LoopbackServer listening inside the namespace (kBackend).
  std::unique_ptr<LoopbackServer> StartServer();

 private:
  static bool Run(const std::string& command);
  const std::string name_, host_link_, ns_link_, prefix_;
  bool ok_ = false;
};

class LoopbackTraffic : public ::testing::Test {
 protected:
  void SetUp() override;

  // Follows only the test's own loopback addresses, so other traffic on the
  // machine (and scrapes of the agent on 127.0.0.1) never shows up.
  // Records a failure (or a skip) when the agent cannot start; callers
  // return when agent_ is still null. `customize` may change the config
  // (filters, processes) before the start.
  void StartAgent(const std::function<void(Config&)>& customize = {});

  // StartAgent's settings without its verdict: starts agent_ or returns why
  // not, for tests that expect a refusal.
  std::string TryStartAgent(const std::function<void(Config&)>& customize = {});

  // StartAgent following only the namespace's address; fails or skips (as
  // StartAgent does) when the namespace could not be made.
  void StartAgentFollowing(const VethNamespace& ns,
                           const std::function<void(Config&)>& customize = {});

  std::string Backend(const LoopbackServer& server) const;

  double Metric(const std::string& name, const std::map<std::string, std::string>& labels);

  // Polls the agent until the metric reaches the expected value (or 10 s
  // pass), then returns its value: conditions, not sleeps.
  double WaitForMetric(const std::string& name, const std::map<std::string, std::string>& labels,
                       double expected);

  std::unique_ptr<Agent> agent_;
};

}  // namespace sockeye::testing
