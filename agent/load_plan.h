// Which programs to load for the two hooks that have a fallback, and what to
// try next when loading or attaching fails. The kernel feature probes
// (FentryAllowed(), StorageIteratorAllowed()) only load a two-instruction
// program, so the real programs can still be refused: by the verifier on a
// kernel the probes pass on, or at attach. The agent then starts with the
// fallback instead of not at all, and says so (--check, the log).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sockeye {

// Where responses are timed (bpf/conn_data.bpf.c): sk_data_ready, its fentry
// twin on sock_def_readable, or tcp_probe (every segment, with a clock read),
// which every supported kernel has and which is the fallback of both others.
// In order of preference, the order of the receive hook's candidates in
// agent/hook_table.cc.
enum class ReceiveHook { kDataReadyTracepoint, kDataReadyFentry, kTcpProbe };

struct LoadPlan {
  bool storage_sweep = false;  // iter/bpf_sk_storage_map, else iter/tcp
  ReceiveHook receive = ReceiveHook::kTcpProbe;
  bool http_status = true;  // the cgroup_skb status program (bpf/http_status.bpf.c)
  bool operator==(const LoadPlan& other) const {
    return storage_sweep == other.storage_sweep && receive == other.receive &&
           http_status == other.http_status;
  }
};

// The step that failed. A failed load (bpf_object__load) names what the
// kernel refused when libbpf's warning says (ParseLoadRefusal()): the receive
// program, the sweep program, or any other program or map, which no plan
// avoids. kLoad is a failed load whose culprit is unknown.
enum class LoadStep {
  kLoad,
  kReceiveLoad,
  kSweepLoad,
  kStatusLoad,  // the HTTP status program: the same plan again without it
  kOtherLoad,
  kSweepAttach,
  kReceiveAttach,
  kOther
};

// What a libbpf warning says the kernel refused while loading an object:
// "libbpf: prog 'NAME': failed to load: ..." (or "BPF program load failed")
// and "libbpf: map 'NAME': failed to create: ..." (libbpf 1.1 and later).
struct LoadRefusal {
  bool is_map = false;
  std::string name;
};
std::optional<LoadRefusal> ParseLoadRefusal(std::string_view libbpf_message);

// Plans in order of preference: the first one, then with the receive hook at
// tcp_probe, then with the sweep over iter/tcp, then both. A receive or sweep
// program that failed to load or attach rules out its feature; any other
// program or map that failed ends the attempts (every plan has it); a failed
// load whose culprit is unknown rules out nothing and moves on to the next plan.
class LoadFallbacks {
 public:
  // `sweep_may_fall_back`: the sweep iterator was left to the agent
  // (--sweep-iterator auto).
  LoadFallbacks(LoadPlan first, bool sweep_may_fall_back);

  const LoadPlan& current() const { return plans_[current_]; }
  // The plan to try after current() failed at `step`, or nothing when no
  // untried plan avoids what failed.
  std::optional<LoadPlan> After(LoadStep step);

 private:
  std::vector<LoadPlan> plans_;
  size_t current_ = 0;
  bool storage_sweep_ruled_out_ = false;
  bool receive_ruled_out_ = false;
};

}  // namespace sockeye
