#include "agent/kernel_stats.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>

#include "agent/bpf_probes_state.h"
#include "agent/errno_text.h"
#include "agent/hook_table.h"
#include "sockeye.skel.h"

namespace sockeye {

UniqueFd EnableBpfStats(std::string* error) {
  UniqueFd fd(bpf_enable_stats(BPF_STATS_RUN_TIME));
  if (!fd.valid())
    *error = "--bpf-stats: enabling kernel BPF run-time statistics failed: " + ErrnoText(errno);
  return fd;
}

std::array<uint64_t, SOCKEYE_KC_COUNT> BpfProbes::KernelCounters() const {
  std::array<uint64_t, SOCKEYE_KC_COUNT> totals{};
  std::vector<uint64_t> per_cpu(static_cast<size_t>(state_->possible_cpus));
  int fd = bpf_map__fd(state_->skel->maps.kernel_counters);
  for (__u32 key = 0; key < SOCKEYE_KC_COUNT; ++key) {
    if (bpf_map_lookup_elem(fd, &key, per_cpu.data()) != 0) continue;
    for (uint64_t v : per_cpu) totals[key] += v;
  }
  return totals;
}

std::vector<ProgramStats> BpfProbes::ProgramStatistics() const {
  std::vector<ProgramStats> stats;
  const auto guarded = GuardedPrograms(state_->skel.get());
  std::vector<bpf_object*> objects = {state_->skel->obj};
  if (state_->status_cast) objects.push_back(StatusCastObject(state_->status_cast.get()));
  bpf_program* prog = nullptr;
  for (bpf_object* object : objects) {
    bpf_object__for_each_program(prog, object) {
      if (!bpf_program__autoload(prog)) continue;
      bpf_prog_info info = {};
      __u32 len = sizeof(info);
      if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) != 0) continue;
      ProgramStats s;
      s.name = bpf_program__name(prog);
      s.run_time_ns = info.run_time_ns;
      s.run_count = info.run_cnt;
      s.verified_insns = info.verified_insns;
      s.recursion_misses = info.recursion_misses;
      s.iterator = bpf_program__expected_attach_type(prog) == BPF_TRACE_ITER;
      for (size_t hook = 0; hook < guarded.size(); ++hook) {
        if (guarded[hook].first == prog) s.guarded_hook = static_cast<int>(hook);
        if (guarded[hook].second == prog) s.standby = true;
      }
      stats.push_back(std::move(s));
    }
  }
  return stats;
}

bool BpfProbes::bpf_stats_enabled() const { return state_->stats_fd.valid(); }

}  // namespace sockeye
