#include "agent/hook_table.h"

#include <cstdlib>
#include <string_view>

#include "agent/kernel_features.h"
#include "agent/log.h"
#include "agent/status_cast.h"

namespace sockeye {
namespace {

using Programs = decltype(sockeye_bpf::progs);
using ProgramSlot = bpf_program* Programs::*;

// What a candidate program needs of the kernel (agent/kernel_features.h).
enum class Needs {
  kTracepoint,       // the BTF tracepoint `target`
  kFunction,         // the function `target` in the kernel BTF
  kFentryAttach,     // an fentry program on `target` loads and attaches
  kKprobes,          // a kernel built with kprobes
  kStorageIterator,  // iterators over a socket-storage map load
  kCgroup2,          // a cgroup v2 hierarchy to attach to
  kStatusCast,       // that, and the kfunc `target` (StatusCastOffered())
  kNothing,          // iter/tcp: every kernel that runs the rest has it
};

struct Candidate {
  ProgramSlot program;  // nullptr: the program of another object (agent/status_cast.h)
  const char* mode;     // as --check lists it: "tp_btf", "fentry", "kprobe" or "iter"
  const char* target;   // the tracepoint, kernel function or iterator
  Needs needs;
  const char* missing = "";  // for --check where this kernel lacks it (the send hook)
};

// How a hook's program is chosen.
enum class Choice {
  kRequired,     // its one program: the agent cannot run without it
  kOptional,     // its one program, or off; `consequence` says what is then missing
  kSendMode,     // the candidate at the SendMode's position, or off (SendMode::kNone)
  kReceiveHook,  // the candidate at the plan's ReceiveHook's position
  kSweep,        // the first (socket storage) when the plan has it, else the second
  kHttpStatus,   // when the plan has it (--http-status-codes, load fallback): the first
                 // candidate this kernel offers, the last (this object's) loaded as its fallback
};

struct Hook {
  const char* name;  // as --check and sockeye_probe_info call it
  Choice choice;
  std::vector<Candidate> candidates;  // in order of preference
  const char* consequence = "";
  bool iterator = false;  // run by read(), attached with its own options
  // Attached to a cgroup (AttachStatusProgram()), not by bpf_program__attach().
  bool cgroup = false;
  const char* off = "";  // what --check says when it is off by choice
};

// The send hook's target in --check when it is off (the default).
constexpr const char* kSendOff =
    "requests are noticed when the backend's response (or acknowledgement) arrives, timed from "
    "the request's transmit";

// Every hook, in the order --check lists them and the programs attach. A
// load attempt looks each chosen tp_btf program's tracepoint up in the BTF
// (those of the plan were already looked up when it was made).
const std::vector<Hook>& Hooks() {
  static const std::vector<Hook> hooks = {
      {.name = "connection_state",
       .choice = Choice::kRequired,
       .candidates = {{&Programs::on_inet_sock_set_state, "tp_btf", "inet_sock_set_state",
                       Needs::kTracepoint}}},
      // One program per send hook --probe-mode can ask for (SendMode).
      {.name = "send",
       .choice = Choice::kSendMode,
       .candidates = {{&Programs::on_sock_send_length, "tp_btf", "sock_send_length",
                       Needs::kTracepoint,
                       "tracepoint: sock:sock_send_length is not in this kernel (added in 6.3)"},
                      {&Programs::on_tcp_sendmsg_fentry, "fentry", "tcp_sendmsg", Needs::kFunction,
                       "fentry: tcp_sendmsg is not in the kernel BTF"},
                      {&Programs::on_tcp_sendmsg_kprobe, "kprobe", "tcp_sendmsg", Needs::kKprobes,
                       "kprobe: kernel built without CONFIG_KPROBES "
                       "(no /sys/bus/event_source/devices/kprobe)"}}},
      // Where responses are timed (ReceiveHook): sock:sk_data_ready (data
      // and FINs only, and no clock read: see conn_data.bpf.c), the same at
      // fentry on sock_def_readable() where fentry is allowed, or
      // tcp:tcp_probe (every segment; Linux 4.16+, so every kernel that can
      // run the rest).
      {.name = "receive",
       .choice = Choice::kReceiveHook,
       .candidates = {{&Programs::on_sk_data_ready, "tp_btf", "sk_data_ready", Needs::kTracepoint},
                      {&Programs::on_sock_def_readable_fentry, "fentry", "sock_def_readable",
                       Needs::kFentryAttach},
                      {&Programs::on_tcp_probe, "tp_btf", "tcp_probe", Needs::kTracepoint}}},
      {.name = "socket_destroy",
       .choice = Choice::kOptional,
       .candidates = {{&Programs::on_tcp_destroy_sock, "tp_btf", "tcp_destroy_sock",
                       Needs::kTracepoint}},
       .consequence =
           "bytes an application reads after a reset already closed its socket are not counted"},
      {.name = "reset_sent",
       .choice = Choice::kOptional,
       .candidates = {{&Programs::on_tcp_send_reset, "tp_btf", "tcp_send_reset",
                       Needs::kTracepoint}},
       .consequence = "sockeye_backend_resets_sent_total stays 0"},
      {.name = "reset_received",
       .choice = Choice::kOptional,
       .candidates = {{&Programs::on_tcp_receive_reset, "tp_btf", "tcp_receive_reset",
                       Needs::kTracepoint}},
       .consequence = "sockeye_backend_resets_received_total stays 0"},
      // Adoption of the connections open at start-up.
      {.name = "adopt",
       .choice = Choice::kRequired,
       .candidates = {{&Programs::adopt_open_connections, "iter", "tcp", Needs::kNothing}},
       .iterator = true},
      // The periodic sweep: only the followed sockets, or every socket in
      // TCP's hash tables of the agent's network namespace.
      {.name = "sweep",
       .choice = Choice::kSweep,
       .candidates = {{&Programs::sweep_connections, "iter", "bpf_sk_storage_map",
                       Needs::kStorageIterator},
                      {&Programs::sweep_tcp_connections, "iter", "tcp", Needs::kNothing}},
       .iterator = true},
      // HTTP/1.x status of responses, read from their first segment as it
      // enters the host (bpf/http_status.bpf.c). Optional: without it the
      // rest runs and no responses_total series appear. Two builds that
      // differ in how they test each packet's socket: bpf_rdonly_cast() (no
      // helper call), in an object of its own, and bpf_skc_to_tcp_sock() in
      // this one. The target is what --check shows after the cgroup.
      {.name = "http_status",
       .choice = Choice::kHttpStatus,
       .candidates = {{nullptr, "cgroup_skb", kStatusCastKfunc, Needs::kStatusCast},
                      {&Programs::on_cgroup_ingress, "cgroup_skb", "bpf_skc_to_tcp_sock",
                       Needs::kCgroup2}},
       .consequence = "no sockeye_backend_responses_total (HTTP status classes); everything else "
                      "is counted",
       .cgroup = true,
       .off = "--http-status-codes off, or the kernel refused the program: no "
              "sockeye_backend_responses_total"},
  };
  return hooks;
}

// Main program and standby of each guarded hook, in sockeye_guarded_hook order.
constexpr std::array<std::pair<ProgramSlot, ProgramSlot>, SOCKEYE_GUARD_COUNT> kGuardedHooks = {{
    {&Programs::on_inet_sock_set_state, &Programs::on_inet_sock_set_state_standby},
    {&Programs::on_tcp_destroy_sock, &Programs::on_tcp_destroy_sock_standby},
    {&Programs::on_tcp_send_reset, &Programs::on_tcp_send_reset_standby},
    {&Programs::on_tcp_receive_reset, &Programs::on_tcp_receive_reset_standby},
}};

const Hook& HookNamed(std::string_view name) {
  for (const Hook& hook : Hooks()) {
    if (name == hook.name) return hook;
  }
  std::abort();  // only this file asks, for names in the table
}

// Whether this kernel offers what `candidate` needs; *why may say why not.
// `custom_btf`: `vmlinux` is a --btf-path file, not the kernel's own BTF.
bool Offers(const btf* vmlinux, const Candidate& candidate, std::string* why,
            bool custom_btf = false) {
  switch (candidate.needs) {
    case Needs::kTracepoint:
      return HasTracepoint(vmlinux, candidate.target);
    case Needs::kFunction:
      return HasFunction(vmlinux, candidate.target);
    case Needs::kFentryAttach:
      return FentryAllowed(vmlinux, candidate.target, why);
    case Needs::kKprobes:
      return KernelHasKprobes();
    case Needs::kStorageIterator:
      return StorageIteratorAllowed(vmlinux, why);
    case Needs::kCgroup2:
    case Needs::kStatusCast:
      if (Cgroup2MountPoint().empty()) {
        *why = "no cgroup v2 hierarchy is mounted";
        return false;
      }
      if (candidate.needs == Needs::kStatusCast) return StatusCastOffered(vmlinux, custom_btf, why);
      return true;
    case Needs::kNothing:
      break;
  }
  return true;
}

// The candidate a load attempt runs the hook with, or nullptr (off by choice).
const Candidate* Chosen(const Hook& hook, SendMode send_mode, const LoadPlan& plan) {
  switch (hook.choice) {
    case Choice::kRequired:
    case Choice::kOptional:
      break;
    case Choice::kSendMode:
      if (send_mode == SendMode::kNone) return nullptr;
      return &hook.candidates.at(static_cast<size_t>(send_mode));
    case Choice::kReceiveHook:
      return &hook.candidates.at(static_cast<size_t>(plan.receive));
    case Choice::kSweep:
      return &hook.candidates.at(plan.storage_sweep ? 0 : 1);
    case Choice::kHttpStatus:
      if (!plan.http_status) return nullptr;
      break;
  }
  return &hook.candidates.front();
}

}  // namespace

const char* SendModeName(SendMode mode) {
  if (mode == SendMode::kNone) return "off";
  return HookNamed("send").candidates.at(static_cast<size_t>(mode)).mode;
}

std::optional<SendMode> ChooseSendMode(ProbeMode mode, const btf* vmlinux,
                                       std::vector<std::string>* unavailable) {
  std::vector<bool> offered;
  for (const Candidate& candidate : HookNamed("send").candidates) {
    std::string why;
    offered.push_back(Offers(vmlinux, candidate, &why));
    if (!offered.back()) unavailable->push_back(candidate.missing);
  }
  auto if_offered = [&offered](SendMode send) -> std::optional<SendMode> {
    if (offered.at(static_cast<size_t>(send))) return send;
    return std::nullopt;
  };
  switch (mode) {
    case ProbeMode::kTracepoint:
      return if_offered(SendMode::kTracepoint);
    case ProbeMode::kFentry:
      return if_offered(SendMode::kFentry);
    case ProbeMode::kKprobe:
      return if_offered(SendMode::kKprobe);
    // No send hook by default: tcp_probe notices the request at the
    // backend's next segment and times it from tcp_clock_cache, which is
    // also all that the tp_btf send hook can read (sock_send_length fires
    // after the send). A send hook runs on every send of every socket on the
    // host; what it adds is first-write timing for requests written in
    // pieces with no segment from the backend in between. Its cost:
    // bench/HISTORY.md, 2026-11-23 ("no send hook by default"), and
    // bench/README.md#current-results.
    case ProbeMode::kAuto:
    case ProbeMode::kSegment:
      return SendMode::kNone;
  }
  return std::nullopt;
}

ReceiveHook ChooseReceiveHook(bool agent_chooses, const btf* vmlinux, std::string* fallback) {
  const std::vector<Candidate>& candidates = HookNamed("receive").candidates;
  const size_t last = candidates.size() - 1;  // tcp_probe, which every kernel has
  if (!agent_chooses) return static_cast<ReceiveHook>(last);
  std::string why;
  for (size_t i = 0; i < last; ++i) {
    if (Offers(vmlinux, candidates[i], &why)) return static_cast<ReceiveHook>(i);
  }
  *fallback = "receive at " + ReceiveHookText(static_cast<ReceiveHook>(last - 1)) + ": " + why +
              "; responses are timed at tcp:tcp_probe (every segment, with a clock read)";
  return static_cast<ReceiveHook>(last);
}

bool StorageSweepAllowed(const btf* vmlinux, std::string* why) {
  return Offers(vmlinux, HookNamed("sweep").candidates.front(), why);
}

std::string ReceiveHookText(ReceiveHook hook) {
  const Candidate& candidate = HookNamed("receive").candidates.at(static_cast<size_t>(hook));
  return std::string(candidate.mode) + " " + candidate.target;
}

bpf_program* ReceiveProgram(const sockeye_bpf* skel, ReceiveHook hook) {
  return skel->progs.*HookNamed("receive").candidates.at(static_cast<size_t>(hook)).program;
}

bpf_program* SweepProgram(const sockeye_bpf* skel, bool storage_sweep) {
  return skel->progs.*HookNamed("sweep").candidates.at(storage_sweep ? 0 : 1).program;
}

const char* SweepTarget(bool storage_sweep) {
  return HookNamed("sweep").candidates.at(storage_sweep ? 0 : 1).target;
}

bool ChoosePrograms(sockeye_bpf* skel, const btf* vmlinux, SendMode send_mode, const LoadPlan& plan,
                    bool custom_btf, std::vector<ProbeChoice>* probes, StatusChoice* status,
                    std::string* error) {
  *status = {};
  for (const Hook& hook : Hooks()) {
    const Candidate* chosen = Chosen(hook, send_mode, plan);
    for (const Candidate& candidate : hook.candidates) {
      if (candidate.program != nullptr)
        bpf_program__set_autoload(skel->progs.*candidate.program, &candidate == chosen);
    }
    if (chosen == nullptr) {
      probes->push_back({hook.name, "off", *hook.off ? hook.off : kSendOff});
      continue;
    }
    if (hook.choice == Choice::kHttpStatus) {
      // This object's program (the last candidate) wherever there is a
      // cgroup v2 hierarchy: it runs where the other is not offered, and is
      // its fallback where it is.
      const Candidate& own = hook.candidates.back();
      std::string why;
      const bool offered = Offers(vmlinux, own, &why);
      bpf_program__set_autoload(skel->progs.*own.program, offered);
      if (!offered) {
        probes->push_back({hook.name, "off", why + ": " + hook.consequence, true});
        LogWarn(std::string(hook.name) + ": " + why + ": " + hook.consequence);
        continue;
      }
      const Candidate& cast = hook.candidates.front();
      status->cast = Offers(vmlinux, cast, &status->why_not_cast, custom_btf);
      status->cast_target = cast.target;
      status->own_target = own.target;
      probes->push_back({hook.name, own.mode, "ingress"});
      continue;
    }
    if (chosen->needs == Needs::kTracepoint && !HasTracepoint(vmlinux, chosen->target)) {
      bpf_program__set_autoload(skel->progs.*chosen->program, false);
      if (hook.choice != Choice::kOptional) {
        *error = std::string("kernel lacks the tracepoint ") + chosen->target + " needed for " +
                 hook.name;
        return false;
      }
      probes->push_back(
          {hook.name, "off", std::string(chosen->target) + " missing: " + hook.consequence, true});
      LogWarn(std::string("tracepoint ") + chosen->target +
              " not in this kernel: " + hook.consequence);
      continue;
    }
    probes->push_back({hook.name, chosen->mode, chosen->target});
  }
  // Each guarded hook's standby goes wherever its main program goes.
  for (const auto& [main, standby] : GuardedPrograms(skel))
    bpf_program__set_autoload(standby, bpf_program__autoload(main));
  return true;
}

std::vector<bpf_program*> TracingPrograms(const sockeye_bpf* skel) {
  std::vector<bpf_program*> programs;
  for (const Hook& hook : Hooks()) {
    if (hook.iterator || hook.cgroup) continue;
    for (const Candidate& candidate : hook.candidates) {
      programs.push_back(skel->progs.*candidate.program);
      for (const auto& [main, standby] : kGuardedHooks) {
        if (main == candidate.program) programs.push_back(skel->progs.*standby);
      }
    }
  }
  return programs;
}

std::array<std::pair<bpf_program*, bpf_program*>, SOCKEYE_GUARD_COUNT> GuardedPrograms(
    const sockeye_bpf* skel) {
  std::array<std::pair<bpf_program*, bpf_program*>, SOCKEYE_GUARD_COUNT> programs;
  for (size_t hook = 0; hook < kGuardedHooks.size(); ++hook)
    programs[hook] = {skel->progs.*kGuardedHooks[hook].first,
                      skel->progs.*kGuardedHooks[hook].second};
  return programs;
}

}  // namespace sockeye
