// Loads sockeye's BPF programs: probe the kernel, choose a program for each
// hook, open -> set rodata and the load-time immediates -> load -> check no
// immediate was left -> attach (each step checked), then hand out records
// from the ring buffer and the adoption/sweep iterators. Where each part
// lives: bpf_loader.cc (Load() and the ring buffer), kernel_features.h,
// hook_table.h, load_sequence.h, bpf_iterators.cc and kernel_stats.h.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/load_plan.h"
#include "sockeye_abi.h"

struct btf;
struct sockeye_bpf;

namespace sockeye {

enum class SendMode;  // agent/hook_table.h

// What was chosen for one logical hook; exported as sockeye_probe_info.
struct ProbeChoice {
  std::string hook;    // e.g. "connection_state", "send", "receive"
  std::string mode;    // "tp_btf", "iter", or "off"
  std::string target;  // the tracepoint or iterator, or why it is off
  // Off because this kernel lacks the hook, not by choice (the send hook is
  // off by default): what it would have measured is missing.
  bool reduced_coverage = false;
};

struct ProgramStats {
  std::string name;
  uint64_t run_time_ns = 0;
  uint64_t run_count = 0;
  uint32_t verified_insns = 0;  // instructions the verifier processed (Linux 5.16+)
  // Runs the kernel skipped because the program was already running on that
  // CPU (Linux 5.12+; see agent/missed_runs.h).
  uint64_t recursion_misses = 0;
  // The main program of a guarded hook (sockeye_guarded_hook), or its
  // standby, which only ever does the main program's skipped runs.
  std::optional<int> guarded_hook;
  bool standby = false;
  bool iterator = false;  // run by read(), never skipped for recursion
};

struct LoaderSettings {
  std::vector<std::string> processes;
  std::vector<CidrMatch> include;
  std::vector<CidrMatch> exclude;
  size_t ringbuf_bytes = 4u << 20;
  uint32_t hot_slots = 8192;
  ProbeMode probe_mode = ProbeMode::kAuto;
  SweepIterator sweep_iterator = SweepIterator::kAuto;
  bool bpf_stats = false;
  bool http_status = true;  // false with --http-status-codes off
  // Follow connections accepted on the frontend listeners (SetFrontendPorts()).
  bool frontends = true;
  std::string btf_path;  // empty: /sys/kernel/btf/vmlinux
  std::string cgroup;    // the status programs' cgroup; empty: the cgroup v2 root
};

LoaderSettings LoaderSettingsFrom(const Config& config);

// Sweeps run so far and the wall time they took (read from the scrape thread).
struct SweepStats {
  uint64_t succeeded = 0;
  uint64_t failed = 0;
  uint64_t skipped = 0;
  uint64_t nanoseconds = 0;
  uint64_t spacing_nanoseconds = 0;  // from one sweep's start to the next, now
};

using EventHandler = std::function<void(const sockeye_event&)>;

class BpfProbes {
  struct State;
  // Only Load() makes one (see Agent::Key).
  struct Key {
    explicit Key() = default;
  };

 public:
  // Returns nullptr and a message naming the missing feature or capability.
  static std::unique_ptr<BpfProbes> Load(const LoaderSettings& settings, std::string* error);
  BpfProbes(Key, std::unique_ptr<State> state);
  ~BpfProbes();
  BpfProbes(const BpfProbes&) = delete;
  BpfProbes& operator=(const BpfProbes&) = delete;

  // Waits up to timeout_ms for the ring buffer to signal records: >0 when
  // it did, 0 on timeout, or a negative errno.
  int WaitForRecords(int timeout_ms);
  // Hands every record in the ring buffer to the handler. Returns the
  // number handled, or a negative errno.
  int DrainRecords(const EventHandler& handler);
  // The records the ring buffer had no room for; their number.
  int DrainDeferred(const EventHandler& handler);

  // Walks every TCP socket once and starts following the open backend
  // connections that pass the filters (one ADOPTED record each): in the
  // agent's network namespace and in every other one that a wanted process
  // (any process without --process) lives in. A namespace that cannot be
  // entered (no CAP_SYS_ADMIN) is logged, counted and skipped.
  bool AdoptOpenConnections(const EventHandler& handler, std::string* error);

  // Reports totals of followed connections (PROGRESS records): only those
  // that changed since the last sweep, or all open ones when `all`.
  bool Sweep(bool all, const EventHandler& handler, std::string* error);
  SweepStats sweep_stats() const;
  // A sweep not run because it had nothing to find (Agent::Tick()).
  void NoteSweepSkipped();
  // The time from one sweep's start to the next the agent keeps now (Agent::Sweep()).
  void NoteSweepSpacing(std::chrono::nanoseconds spacing);

  // Replaces the process and backend filters in place (SIGHUP): new
  // connects follow the new filters, connections already followed stay.
  bool UpdateFilters(const LoaderSettings& settings, std::string* error);

  // The frontend listeners' bound addresses: connections they accept from
  // now on are followed (and, before AdoptOpenConnections(), those already
  // open). Replaces the previous set.
  bool SetFrontendListeners(const std::vector<Endpoint>& listeners, std::string* error);

  // Sockets of --process processes found at start-up that could not be
  // marked for adoption (the adopt_inodes map was full): their connections
  // are not followed.
  uint64_t adoption_sockets_skipped() const;
  // Network namespaces the adoption walk searched (the agent's own
  // included), and those it could not enter.
  uint64_t adoption_namespaces_walked() const;
  uint64_t adoption_namespaces_not_walked() const;

  // Summed over CPUs, indexed by enum sockeye_kernel_counter.
  std::array<uint64_t, SOCKEYE_KC_COUNT> KernelCounters() const;

  // Kernel BPF run-time statistics per program (zero unless BPF stats are on).
  std::vector<ProgramStats> ProgramStatistics() const;
  bool bpf_stats_enabled() const;

  const std::vector<ProbeChoice>& probes() const;
  // Features this kernel lacks and what that costs, for --check.
  const std::vector<std::string>& unavailable() const;
  const std::string& btf_source() const;
  // "8192 of 280 B (2.2 MiB of kernel memory)", or "off (...)".
  const std::string& hot_slots_summary() const;

 private:
  static bool WriteFilters(struct sockeye_bpf* skel, const LoaderSettings& settings,
                           std::string* error);
  // One load attempt (load_sequence.cc): loads and attaches with the send
  // hook as `send_mode` and the sweep and receive programs of `plan`. On
  // failure, *failed_step says which step failed, for LoadFallbacks to
  // choose what to try next.
  static std::unique_ptr<State> LoadWith(const LoaderSettings& settings, const ::btf* vmlinux,
                                         SendMode send_mode, const LoadPlan& plan,
                                         std::string* error, LoadStep* failed_step);
  std::unique_ptr<State> state_;
};

}  // namespace sockeye
