#include "agent/capabilities.h"

#include <sys/capability.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace sockeye {
namespace {

// CAP_BPF and CAP_PERFMON exist since Linux 5.8; libcap headers older than
// that lack the names, the numbers are fixed by the kernel ABI.
constexpr cap_value_t kCapPerfmon = 38;
constexpr cap_value_t kCapBpf = 39;

struct CapDeleter {
  void operator()(void* caps) const { cap_free(caps); }
};

bool Effective(cap_t caps, cap_value_t cap) {
  cap_flag_value_t value = CAP_CLEAR;
  return cap_get_flag(caps, cap, CAP_EFFECTIVE, &value) == 0 && value == CAP_SET;
}

}  // namespace

std::vector<CapabilityStatus> AgentCapabilities(bool bpf_stats, bool process_filter) {
  std::unique_ptr<_cap_struct, CapDeleter> caps(cap_get_proc());
  auto status = [&](const char* name, cap_value_t cap, const char* why, bool required = true) {
    return CapabilityStatus{name, caps && Effective(caps.get(), cap), why, required};
  };
  std::vector<CapabilityStatus> out = {
      status("CAP_BPF", kCapBpf, "loading BPF programs and maps"),
      status("CAP_PERFMON", kCapPerfmon, "tracing programs (tp_btf, fentry, kprobe, iterators)"),
  };
  out.push_back(status("CAP_SYS_ADMIN", CAP_SYS_ADMIN,
                       bpf_stats ? "--bpf-stats; entering other network namespaces at start-up"
                                 : "entering other network namespaces (containers) at start-up "
                                   "to adopt the connections open there",
                       /*required=*/bpf_stats));
  out.push_back(status("CAP_SYS_PTRACE", CAP_SYS_PTRACE,
                       process_filter ? "reading /proc/PID/fd and /proc/PID/ns/net of --process "
                                        "processes to adopt their connections"
                                      : "reading /proc/PID/ns/net of other users' processes to "
                                        "adopt connections open in their network namespaces",
                       /*required=*/false));
  out.push_back(status("CAP_NET_ADMIN", CAP_NET_ADMIN,
                       "attaching the HTTP status program (cgroup_skb) to the cgroup hierarchy",
                       /*required=*/false));
  if (process_filter) {
    out.push_back(status("CAP_DAC_READ_SEARCH", CAP_DAC_READ_SEARCH,
                         "reading /proc/PID/fd of processes owned by other users",
                         /*required=*/false));
  }
  return out;
}

std::vector<std::string> MissingCapabilities(bool bpf_stats, bool process_filter) {
  std::vector<std::string> missing;
  std::unique_ptr<_cap_struct, CapDeleter> caps(cap_get_proc());
  // CAP_SYS_ADMIN still grants everything CAP_BPF and CAP_PERFMON do.
  if (caps && Effective(caps.get(), CAP_SYS_ADMIN)) return missing;
  for (const auto& c : AgentCapabilities(bpf_stats, process_filter)) {
    if (!c.effective && c.required) missing.push_back(c.name);
  }
  return missing;
}

bool DropAllCapabilities(std::string* error) {
  std::unique_ptr<_cap_struct, CapDeleter> none(cap_init());
  if (!none || cap_set_proc(none.get()) != 0) {
    *error = std::string("dropping capabilities failed: ") + std::strerror(errno);
    return false;
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    *error = std::string("clearing ambient capabilities failed: ") + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace sockeye
