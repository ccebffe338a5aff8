// Runs of sockeye's BPF programs that the kernel skipped because the same
// program was already running on that CPU (bpf_prog_info.recursion_misses):
// an interrupt's softirq arriving while a hook runs in process context. For
// the guarded hooks a standby program handles those runs instead
// (bpf/hook_guards.bpf.h); this splits each program's skipped
// runs into the ones recovered that way and the ones lost.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace sockeye {

struct SkippedRuns {
  std::string program;
  uint64_t skipped = 0;               // the kernel's recursion_misses
  std::optional<uint64_t> recovered;  // guarded hooks: runs the standby did
};

struct MissedRuns {
  std::string program;
  uint64_t lost = 0;
  std::optional<uint64_t> recovered;
};

class MissedRunsCounter {
 public:
  // `programs` must be read with each program's skipped count before its
  // recovered count: a run is counted as skipped before its standby runs,
  // so skipped - recovered read in that order is never above the runs
  // really lost, and it is exact once the hook is quiet. Lost never goes
  // down (a counter); a transiently low difference is caught up later.
  // Safe to call from several threads.
  std::vector<MissedRuns> Update(const std::vector<SkippedRuns>& programs);

 private:
  std::mutex mu_;
  std::map<std::string, uint64_t> lost_;
};

}  // namespace sockeye
