// What the kernel counts about sockeye's programs: BPF run-time statistics
// (BpfProbes::ProgramStatistics(), kernel_stats.cc, with the verifier's
// instruction counts and the skipped runs) and the programs' own per-CPU
// counters (BpfProbes::KernelCounters()).
#pragma once

#include <string>

#include "agent/unique_fd.h"

namespace sockeye {

// Turns on the kernel's BPF run-time statistics for as long as the returned
// fd is open; invalid, with the reason in *error, if the kernel refuses.
UniqueFd EnableBpfStats(std::string* error);

}  // namespace sockeye
