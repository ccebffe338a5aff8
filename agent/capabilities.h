// The capabilities the agent needs, what it holds, and dropping them once
// the probes are attached.
#pragma once

#include <string>
#include <vector>

namespace sockeye {

struct CapabilityStatus {
  std::string name;  // e.g. "CAP_BPF"
  bool effective = false;
  std::string needed_for;
  // Optional ones only narrow what adoption finds at start-up.
  bool required = true;
};

// CAP_BPF and CAP_PERFMON (load and attach tracing programs, read kernel
// memory through BPF), CAP_SYS_ADMIN (for --bpf-stats, and optionally for
// setns(2) into containers' network namespaces at start-up), CAP_SYS_PTRACE
// and CAP_DAC_READ_SEARCH (read other users' /proc/PID/fd to adopt the
// connections of --process processes at start-up).
std::vector<CapabilityStatus> AgentCapabilities(bool bpf_stats, bool process_filter);

// Names of the capabilities above that are needed but not effective.
std::vector<std::string> MissingCapabilities(bool bpf_stats, bool process_filter);

// Clears the effective, permitted and inheritable sets and the ambient set.
bool DropAllCapabilities(std::string* error);

}  // namespace sockeye
