#include "agent/missed_runs.h"

#include <algorithm>

namespace sockeye {

std::vector<MissedRuns> MissedRunsCounter::Update(const std::vector<SkippedRuns>& programs) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<MissedRuns> out;
  out.reserve(programs.size());
  for (const auto& p : programs) {
    const uint64_t recovered = p.recovered.value_or(0);
    // On kernels that do not count skipped runs (recursion_misses stays 0)
    // the standby still recovers them: nothing is known lost there.
    const uint64_t now_lost = p.skipped > recovered ? p.skipped - recovered : 0;
    uint64_t& lost = lost_[p.program];
    lost = std::max(lost, now_lost);
    out.push_back({p.program, lost, p.recovered});
  }
  return out;
}

}  // namespace sockeye
