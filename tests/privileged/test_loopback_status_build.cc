// LoopbackTraffic: which build of the HTTP status program runs. Where the
// kernel BTF has bpf_rdonly_cast, the build in an object of its own
// (agent/status_cast.h); elsewhere, or when that one will not load or attach,
// the main object's, and --check says why. The status tests themselves run
// with either (tests/CMakeLists.txt: privileged_status_helper runs them with
// the main object's build on this host).
#include <bpf/btf.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "agent/kernel_features.h"
#include "loopback_fixture.h"

namespace sockeye {
namespace {

using testing::LoopbackTraffic;
using testing::Value;

constexpr const char* kCastProgram = "on_cgroup_ingress_cast";
constexpr const char* kOwnProgram = "on_cgroup_ingress";

bool KernelHasRdonlyCast() {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return false;
  const bool found = btf__find_by_name_kind(vmlinux, "bpf_rdonly_cast", BTF_KIND_FUNC) > 0;
  btf__free(vmlinux);
  return found;
}

// Whether SOCKEYE_TEST_REFUSE_ATTACH (as ctest may set it) names `program`.
bool AttachRefused(const std::string& program) {
  const char* list = std::getenv("SOCKEYE_TEST_REFUSE_ATTACH");
  if (list == nullptr) return false;
  const std::string padded = "," + std::string(list) + ",";
  return padded.find("," + program + ",") != std::string::npos;
}

// Refuses attaching `program` for the scope, then restores the variable.
class RefuseAttach {
 public:
  explicit RefuseAttach(const std::string& program) {
    if (const char* old = std::getenv("SOCKEYE_TEST_REFUSE_ATTACH")) old_ = old;
    setenv("SOCKEYE_TEST_REFUSE_ATTACH", (old_ ? *old_ + "," : "").append(program).c_str(), 1);
  }
  ~RefuseAttach() {
    if (old_)
      setenv("SOCKEYE_TEST_REFUSE_ATTACH", old_->c_str(), 1);
    else
      unsetenv("SOCKEYE_TEST_REFUSE_ATTACH");
  }
  RefuseAttach(const RefuseAttach&) = delete;
  RefuseAttach& operator=(const RefuseAttach&) = delete;

 private:
  std::optional<std::string> old_;
};

// The --check line for the main object's build, if any.
std::string StatusFallbackLine(const BpfProbes& probes) {
  for (const std::string& line : probes.unavailable())
    if (line.find("HTTP status through bpf_rdonly_cast()") == 0) return line;
  return "";
}

// The status programs the agent holds loaded: exactly the attached one.
std::string LoadedStatusPrograms(const BpfProbes& probes) {
  std::string names;
  for (const ProgramStats& s : probes.ProgramStatistics())
    if (s.name == kCastProgram || s.name == kOwnProgram)
      names += (names.empty() ? "" : " ") + s.name;
  return names;
}

std::optional<double> StatusProbe(Agent& agent, const std::string& build) {
  return Value(agent.Gather(), "sockeye_probe_info",
               {{"hook", "http_status"},
                {"mode", "cgroup_skb"},
                // The fixture follows frontends: the egress side attaches too.
                {"target", "ingress and egress (" + Cgroup2MountPoint() + ", " + build + ")"}});
}

TEST_F(LoopbackTraffic, HttpStatusBuildFollowsTheKernelBtf) {
  StartAgent();
  if (!agent_) return;
  if (Cgroup2MountPoint().empty()) GTEST_SKIP() << "no cgroup v2 hierarchy here";
  const bool cast = KernelHasRdonlyCast() && !AttachRefused(kCastProgram);
  EXPECT_EQ(StatusProbe(*agent_, cast ? "bpf_rdonly_cast" : "bpf_skc_to_tcp_sock"), 1);
  EXPECT_EQ(LoadedStatusPrograms(agent_->probes()), cast ? kCastProgram : kOwnProgram);
  const std::string line = StatusFallbackLine(agent_->probes());
  if (cast) {
    EXPECT_EQ(line, "");
  } else {
    EXPECT_NE(line.find("bpf_skc_to_tcp_sock() instead"), std::string::npos) << line;
  }
}

// A cast build that will not attach leaves the main object's build running,
// and --check says why; SOCKEYE_TEST_REFUSE_ATTACH stands in for the kernel.
TEST_F(LoopbackTraffic, HttpStatusFallsBackToTheMainObjectsBuild) {
  if (!KernelHasRdonlyCast())
    GTEST_SKIP() << "no bpf_rdonly_cast here: the fallback is the default";
  const RefuseAttach refuse(kCastProgram);
  StartAgent();
  if (!agent_) return;
  if (Cgroup2MountPoint().empty()) GTEST_SKIP() << "no cgroup v2 hierarchy here";
  EXPECT_EQ(StatusProbe(*agent_, "bpf_skc_to_tcp_sock"), 1);
  EXPECT_EQ(LoadedStatusPrograms(agent_->probes()), kOwnProgram);
  const std::string line = StatusFallbackLine(agent_->probes());
  EXPECT_NE(line.find("starting with it failed: attaching it to " + Cgroup2MountPoint() +
                      " failed: Operation not permitted"),
            std::string::npos)
      << line;
}

}  // namespace
}  // namespace sockeye
