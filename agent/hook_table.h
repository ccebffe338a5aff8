// Which program runs each hook. Every hook has a row in one table (Hooks()
// in hook_table.cc): its candidate programs in order of preference, each
// with the kernel feature it needs, and how one of them is chosen. Load()
// asks the table once for its first plan (the send hook by --probe-mode, the
// receive hook and the sweep iterator by preference); every load attempt then
// walks it to load only the chosen program of each hook and to list the
// choices for --check.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/bpf_loader.h"
#include "agent/config.h"
#include "agent/load_plan.h"
#include "sockeye.skel.h"

namespace sockeye {

// How the send hook is attached, in the order of its candidates in the
// table; the other hooks are tp_btf on every kernel with BPF ring buffers.
enum class SendMode { kTracepoint, kFentry, kKprobe, kNone };

// "tp_btf", "fentry", "kprobe" or "off".
const char* SendModeName(SendMode mode);

// The send hook `mode` asks for, or nothing when this kernel lacks it;
// *unavailable gets every send hook this kernel cannot offer, and why.
std::optional<SendMode> ChooseSendMode(ProbeMode mode, const btf* vmlinux,
                                       std::vector<std::string>* unavailable);

// The first receive hook this kernel offers when the agent chooses (probe
// mode auto, no send hook), else tcp_probe. When the agent chooses and
// falls back to tcp_probe, *fallback says why.
ReceiveHook ChooseReceiveHook(bool agent_chooses, const btf* vmlinux, std::string* fallback);

// Whether the sweep can walk socket storage (its preferred candidate);
// *why says why not.
bool StorageSweepAllowed(const btf* vmlinux, std::string* why);

// "tp_btf sk_data_ready", "fentry sock_def_readable" or "tp_btf tcp_probe".
std::string ReceiveHookText(ReceiveHook hook);

// The program that times responses in a plan.
bpf_program* ReceiveProgram(const sockeye_bpf* skel, ReceiveHook hook);

// The sweep iterator of a plan, and its iterator target.
bpf_program* SweepProgram(const sockeye_bpf* skel, bool storage_sweep);
const char* SweepTarget(bool storage_sweep);

// Which build of the HTTP status program runs, when it is on: the one in an
// object of its own (agent/status_cast.h) when `cast`, else this object's;
// the targets are how --check names each.
struct StatusChoice {
  bool cast = false;
  std::string why_not_cast;  // set when the hook is on and `cast` is not
  std::string cast_target;   // "bpf_rdonly_cast"
  std::string own_target;    // "bpf_skc_to_tcp_sock"
};

// Sets which programs the object loads: the send mode's, the plan's, and
// each tracepoint hook's where this kernel has the tracepoint (looked up in
// the BTF again; what needs a load probe was settled by the plan). Lists
// the choices in *probes, in the order --check shows them, and the status
// program's build in *status (`custom_btf`: `vmlinux` is a --btf-path file).
// Fails, saying which, when the kernel lacks a tracepoint the agent cannot
// run without.
bool ChoosePrograms(sockeye_bpf* skel, const btf* vmlinux, SendMode send_mode, const LoadPlan& plan,
                    bool custom_btf, std::vector<ProbeChoice>* probes, StatusChoice* status,
                    std::string* error);

// Every program attached with bpf_program__attach() (the iterators are not),
// in the order to attach them: each guarded hook's standby right after its
// main program, because on kernels that run a nested program instead of
// skipping it, the standby must run second (bpf/hook_guards.bpf.h).
std::vector<bpf_program*> TracingPrograms(const sockeye_bpf* skel);

// Main program and standby of each guarded hook (bpf/hook_guards.bpf.h), in
// sockeye_guarded_hook order.
std::array<std::pair<bpf_program*, bpf_program*>, SOCKEYE_GUARD_COUNT> GuardedPrograms(
    const sockeye_bpf* skel);

}  // namespace sockeye
