#include "agent/bpf_loader.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#include "agent/capabilities.h"
#include "agent/load_plan.h"
#include "agent/load_time_immediates.h"
#include "agent/log.h"
#include "agent/process_scan.h"
#include "agent/unique_fd.h"
#include "sockeye.skel.h"

namespace sockeye {
namespace {

constexpr const char* kVmlinuxBtfPath = "/sys/kernel/btf/vmlinux";

// While LoadWith() loads the object: the first thing libbpf says the kernel
// refused (libbpf's print callback takes no context of its own).
std::optional<LoadRefusal>* load_refusal = nullptr;

int RouteLibbpfLog(enum libbpf_print_level level, const char* format, va_list args) {
  // libbpf hands over a whole verifier log as one message: size it first.
  va_list measure;
  va_copy(measure, args);
  int n = std::vsnprintf(nullptr, 0, format, measure);
  va_end(measure);
  if (n <= 0) return 0;
  std::string buffer(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(buffer.data(), buffer.size(), format, args);
  std::string_view text(buffer.data(), static_cast<size_t>(n));
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (level == LIBBPF_WARN && load_refusal && !*load_refusal)
    *load_refusal = ParseLoadRefusal(text);
  // libbpf's INFO and DEBUG lines (including verifier logs) are for --log.level=debug.
  Log(level == LIBBPF_WARN ? LogLevel::kWarn : LogLevel::kDebug, text);
  return 0;
}

struct SkeletonDeleter {
  void operator()(sockeye_bpf* skel) const { sockeye_bpf__destroy(skel); }
};
struct LinkDeleter {
  void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};
struct RingBufferDeleter {
  void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};
struct BtfDeleter {
  void operator()(btf* b) const { btf__free(b); }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

std::string ErrnoText(int err) { return std::strerror(err < 0 ? -err : err); }

bool HasTracepoint(const btf* vmlinux, const char* name) {
  std::string type_name = std::string("btf_trace_") + name;
  return btf__find_by_name_kind(vmlinux, type_name.c_str(), BTF_KIND_TYPEDEF) > 0;
}

// Fills a v4-mapped/v6 network+mask pair in network byte order.
sockeye_cidr_filter ToKernelFilter(const CidrMatch& match, bool exclude) {
  sockeye_cidr_filter f{};
  std::array<uint8_t, 16> mask{};
  for (int bit = 0; bit < match.prefix_len; ++bit) mask[bit / 8] |= uint8_t(0x80 >> (bit % 8));
  std::memcpy(f.addr, match.addr.data(), 16);
  std::memcpy(f.mask, mask.data(), 16);
  for (int i = 0; i < 4; ++i) f.addr[i] &= f.mask[i];
  f.port = match.port;
  f.exclude = exclude ? 1 : 0;
  return f;
}

std::string LoadFailureHint(int err) {
  if (err == -EPERM || err == -EACCES) {
    std::vector<std::string> missing = MissingCapabilities(false, false);
    if (!missing.empty()) {
      std::string names;
      for (const auto& m : missing) names += (names.empty() ? "" : " and ") + m;
      return " (missing capability: " + names + ")";
    }
    return " (the kernel refused although CAP_BPF and CAP_PERFMON are held: check the lockdown "
           "mode; --log.level=debug shows libbpf's and the verifier's log)";
  }
  if (err == -ENOMEM) return " (locked memory or map memory exhausted)";
  if (err == -EINVAL) {
    // The likeliest reason on an old kernel: socket storage is usable from
    // tracing programs only since 5.11 ("bpf: Allow using bpf_sk_storage in
    // FENTRY/FEXIT/RAW_TP").
    utsname uts{};
    uname(&uts);
    int major = 0, minor = 0;
    std::sscanf(uts.release, "%d.%d", &major, &minor);
    if (major < 5 || (major == 5 && minor < 11)) {
      return std::string(
                 " (the verifier refused a program; sockeye needs Linux 5.11 or later, "
                 "this is ") +
             uts.release + "; --log.level=debug shows the verifier's log)";
    }
    return " (the verifier refused a program; --log.level=debug shows its log)";
  }
  return " (--log.level=debug shows libbpf's and the verifier's log)";
}

// The program that times responses in a plan (LoadPlan).
bpf_program* ReceiveProgram(const sockeye_bpf* skel, ReceiveHook hook) {
  switch (hook) {
    case ReceiveHook::kDataReadyTracepoint:
      return skel->progs.on_sk_data_ready;
    case ReceiveHook::kDataReadyFentry:
      return skel->progs.on_sock_def_readable_fentry;
    case ReceiveHook::kTcpProbe:
      break;
  }
  return skel->progs.on_tcp_probe;
}

// Main program and standby of each guarded hook (hook_guards in
// bpf/sockeye.bpf.h), in sockeye_guarded_hook order.
std::array<std::pair<bpf_program*, bpf_program*>, SOCKEYE_GUARD_COUNT> GuardedPrograms(
    const sockeye_bpf* skel) {
  std::array<std::pair<bpf_program*, bpf_program*>, SOCKEYE_GUARD_COUNT> programs;
  programs[SOCKEYE_GUARD_STATE] = {skel->progs.on_inet_sock_set_state,
                                   skel->progs.on_inet_sock_set_state_standby};
  programs[SOCKEYE_GUARD_DESTROY] = {skel->progs.on_tcp_destroy_sock,
                                     skel->progs.on_tcp_destroy_sock_standby};
  programs[SOCKEYE_GUARD_RESET_SENT] = {skel->progs.on_tcp_send_reset,
                                        skel->progs.on_tcp_send_reset_standby};
  programs[SOCKEYE_GUARD_RESET_RECEIVED] = {skel->progs.on_tcp_receive_reset,
                                            skel->progs.on_tcp_receive_reset_standby};
  return programs;
}

// Which step a failed load was, from what libbpf said it refused.
LoadStep LoadStepOf(const std::optional<LoadRefusal>& refusal, const sockeye_bpf* skel,
                    const LoadPlan& plan) {
  if (!refusal) return LoadStep::kLoad;
  if (refusal->is_map) return LoadStep::kOtherLoad;
  if (refusal->name == bpf_program__name(ReceiveProgram(skel, plan.receive)))
    return LoadStep::kReceiveLoad;
  const bpf_program* sweep =
      plan.storage_sweep ? skel->progs.sweep_connections : skel->progs.sweep_tcp_connections;
  if (refusal->name == bpf_program__name(sweep)) return LoadStep::kSweepLoad;
  return LoadStep::kOtherLoad;
}

}  // namespace

bool BpfProbes::WriteFilters(sockeye_bpf* skel, const LoaderSettings& settings,
                             std::string* error) {
  sockeye_filters filters{};
  filters.comm_count = static_cast<__u32>(settings.processes.size());
  for (size_t i = 0; i < settings.processes.size(); ++i) {
    std::memcpy(filters.comms[i], settings.processes[i].data(),
                std::min<size_t>(settings.processes[i].size(), SOCKEYE_COMM_LEN - 1));
  }
  size_t n = 0;
  for (const auto& inc : settings.include) filters.cidrs[n++] = ToKernelFilter(inc, false);
  for (const auto& exc : settings.exclude) filters.cidrs[n++] = ToKernelFilter(exc, true);
  filters.cidr_count = static_cast<__u32>(n);
  filters.include_count = static_cast<__u32>(settings.include.size());
  __u32 zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(skel->maps.filters), &zero, &filters, BPF_ANY) != 0) {
    *error = "writing the filters map failed: " + ErrnoText(errno);
    return false;
  }
  return true;
}

LoaderSettings LoaderSettingsFrom(const Config& config) {
  LoaderSettings settings;
  settings.processes = config.processes;
  settings.include = config.include;
  settings.exclude = config.exclude;
  settings.ringbuf_bytes = config.ringbuf_bytes;
  settings.hot_slots = config.hot_slots;
  settings.probe_mode = config.probe_mode;
  settings.sweep_iterator = config.sweep_iterator;
  settings.bpf_stats = config.bpf_stats;
  settings.btf_path = config.btf_path;
  return settings;
}

struct BpfProbes::State {
  std::unique_ptr<sockeye_bpf, SkeletonDeleter> skel;
  std::vector<LinkPtr> links;
  LinkPtr adopt_link;
  LinkPtr sweep_link;
  std::unique_ptr<ring_buffer, RingBufferDeleter> ring;
  UniqueFd stats_fd;
  std::vector<ProbeChoice> probes;
  std::vector<std::string> unavailable;
  std::string btf_source;
  std::string hot_slots_summary;
  std::vector<std::string> processes;
  uint64_t adoption_sockets_skipped = 0;
  uint64_t adoption_namespaces_walked = 0;
  uint64_t adoption_namespaces_not_walked = 0;
  std::atomic<uint64_t> sweeps_succeeded{0};
  std::atomic<uint64_t> sweeps_failed{0};
  std::atomic<uint64_t> sweeps_skipped{0};
  std::atomic<uint64_t> sweep_nanoseconds{0};
  const EventHandler* handler = nullptr;  // set for the duration of DrainRecords()
  int possible_cpus = 1;
};

BpfProbes::BpfProbes(Key, std::unique_ptr<State> state) : state_(std::move(state)) {}
BpfProbes::~BpfProbes() = default;

namespace {

// How the "send" hook is attached; the other hooks are tp_btf on every
// kernel with BPF ring buffers.
enum class SendMode { kTracepoint, kFentry, kKprobe, kNone };

const char* SendModeName(SendMode mode) {
  switch (mode) {
    case SendMode::kTracepoint:
      return "tp_btf";
    case SendMode::kFentry:
      return "fentry";
    case SendMode::kKprobe:
      return "kprobe";
    case SendMode::kNone:
      return "off";
  }
  return "?";
}

bool KernelHasKprobes() {
  // The kprobe PMU exists whenever CONFIG_KPROBES is set.
  return access("/sys/bus/event_source/devices/kprobe/type", R_OK) == 0;
}

// The send hook a probe mode asks for, or nothing when this kernel lacks it;
// `unavailable` lists the send hooks this kernel cannot offer, and why.
std::optional<SendMode> ChooseSendMode(ProbeMode mode, const btf* vmlinux,
                                       std::vector<std::string>* unavailable) {
  bool tracepoint = HasTracepoint(vmlinux, "sock_send_length");
  bool fentry_target = btf__find_by_name_kind(vmlinux, "tcp_sendmsg", BTF_KIND_FUNC) > 0;
  bool kprobes = KernelHasKprobes();
  if (!tracepoint)
    unavailable->push_back(
        "tracepoint: sock:sock_send_length is not in this kernel (added in 6.3)");
  if (!fentry_target) unavailable->push_back("fentry: tcp_sendmsg is not in the kernel BTF");
  if (!kprobes)
    unavailable->push_back(
        "kprobe: kernel built without CONFIG_KPROBES "
        "(no /sys/bus/event_source/devices/kprobe)");
  switch (mode) {
    case ProbeMode::kTracepoint:
      if (tracepoint) return SendMode::kTracepoint;
      break;
    case ProbeMode::kFentry:
      if (fentry_target) return SendMode::kFentry;
      break;
    case ProbeMode::kKprobe:
      if (kprobes) return SendMode::kKprobe;
      break;
    // No send hook by default: tcp_probe notices the request at the
    // backend's next segment and times it from tcp_clock_cache, which is
    // also all that the tp_btf send hook can read (sock_send_length fires
    // after the send). A send hook runs on every send of every socket on the
    // host; what it adds is first-write timing for requests written in
    // pieces with no segment from the backend in between (bench/README.md).
    case ProbeMode::kAuto:
    case ProbeMode::kSegment:
      return SendMode::kNone;
  }
  return std::nullopt;
}

// Whether this kernel loads an iterator over a socket-storage map, tried
// with a two-instruction program (loaded, then closed). The host VM's
// 6.18.44 refuses map-element iterators (bpf_sk_storage_map and
// bpf_map_elem alike) with EPERM inside the verifier, before any
// instruction is checked, while iter/tcp loads.
bool StorageIteratorAllowed(const btf* vmlinux, std::string* why) {
  const int target = btf__find_by_name_kind(vmlinux, "bpf_iter_bpf_sk_storage_map", BTF_KIND_FUNC);
  if (target <= 0) {
    *why = "iter/bpf_sk_storage_map is not in this kernel (added in 5.9)";
    return false;
  }
  bpf_insn program[2] = {};
  program[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  program[0].dst_reg = BPF_REG_0;
  program[1].code = BPF_JMP | BPF_EXIT;
  bpf_prog_load_opts opts = {};
  opts.sz = sizeof(opts);
  opts.expected_attach_type = BPF_TRACE_ITER;
  opts.attach_btf_id = static_cast<__u32>(target);
  UniqueFd fd(bpf_prog_load(BPF_PROG_TYPE_TRACING, "sockeye_probe", "GPL", program, 2, &opts));
  if (!fd.valid()) {
    *why = "the kernel refuses iter/bpf_sk_storage_map programs: " + ErrnoText(errno);
    return false;
  }
  return true;
}

// Whether this kernel loads and attaches an fentry program on `function`,
// tried with a two-instruction program (attached, then detached). The host
// VM's 6.18 refuses fentry (EPERM) while Debian 12's 6.1 allows it, and a
// function without an ftrace call site loads but does not attach.
bool FentryAllowed(const btf* vmlinux, const char* function, std::string* why) {
  const int target = btf__find_by_name_kind(vmlinux, function, BTF_KIND_FUNC);
  if (target <= 0) {
    *why = std::string(function) + " is not in the kernel BTF";
    return false;
  }
  bpf_insn program[2] = {};
  program[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  program[0].dst_reg = BPF_REG_0;
  program[1].code = BPF_JMP | BPF_EXIT;
  bpf_prog_load_opts opts = {};
  opts.sz = sizeof(opts);
  opts.expected_attach_type = BPF_TRACE_FENTRY;
  opts.attach_btf_id = static_cast<__u32>(target);
  UniqueFd fd(bpf_prog_load(BPF_PROG_TYPE_TRACING, "sockeye_probe", "GPL", program, 2, &opts));
  if (!fd.valid()) {
    *why =
        std::string("the kernel refuses fentry programs on ") + function + ": " + ErrnoText(errno);
    return false;
  }
  UniqueFd link(bpf_link_create(fd.get(), 0, BPF_TRACE_FENTRY, nullptr));
  if (!link.valid()) {
    *why = std::string("fentry on ") + function + " does not attach: " + ErrnoText(errno);
    return false;
  }
  return true;
}

// For tests of the fallbacks (LoadFallbacks), which no kernel at hand
// triggers: SOCKEYE_TEST_REFUSE_ATTACH=prog1,prog2 makes attaching those
// programs fail with EPERM, as a kernel that loads but will not attach them
// would. Sets errno when it refuses.
bool AttachRefusedForTest(const bpf_program* prog) {
  const char* list = std::getenv("SOCKEYE_TEST_REFUSE_ATTACH");
  if (list == nullptr) return false;
  const std::string_view name = bpf_program__name(prog);
  std::string_view rest(list);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    if (rest.substr(0, comma) == name) {
      errno = EPERM;
      return true;
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return false;
}

LinkPtr AttachProgram(bpf_program* prog) {
  return AttachRefusedForTest(prog) ? nullptr : LinkPtr(bpf_program__attach(prog));
}

LinkPtr AttachIterator(bpf_program* prog, bpf_iter_attach_opts* opts) {
  return AttachRefusedForTest(prog) ? nullptr : LinkPtr(bpf_program__attach_iter(prog, opts));
}

const char* ReceiveHookText(ReceiveHook hook) {
  switch (hook) {
    case ReceiveHook::kDataReadyTracepoint:
      return "tp_btf sk_data_ready";
    case ReceiveHook::kDataReadyFentry:
      return "fentry sock_def_readable";
    case ReceiveHook::kTcpProbe:
      return "tp_btf tcp_probe";
  }
  return "?";
}

}  // namespace

std::unique_ptr<BpfProbes> BpfProbes::Load(const LoaderSettings& settings, std::string* error) {
  libbpf_set_print(RouteLibbpfLog);

  const std::string btf_path = settings.btf_path.empty() ? kVmlinuxBtfPath : settings.btf_path;
  if (access(btf_path.c_str(), R_OK) != 0) {
    *error = "kernel BTF not readable at " + btf_path + ": " + ErrnoText(errno) +
             (settings.btf_path.empty()
                  ? " (the kernel was built without CONFIG_DEBUG_INFO_BTF=y; pass a BTF file for "
                    "this exact kernel with --btf-path)"
                  : "");
    return nullptr;
  }
  std::unique_ptr<btf, BtfDeleter> vmlinux(btf__parse(btf_path.c_str(), nullptr));
  if (!vmlinux) {
    *error = "cannot parse kernel BTF at " + btf_path + ": " + ErrnoText(errno);
    return nullptr;
  }
  if (settings.processes.size() > SOCKEYE_MAX_COMM_FILTERS) {
    *error = "at most " + std::to_string(SOCKEYE_MAX_COMM_FILTERS) + " --process filters";
    return nullptr;
  }
  if (settings.include.size() + settings.exclude.size() > SOCKEYE_MAX_CIDR_FILTERS) {
    *error = "at most " + std::to_string(SOCKEYE_MAX_CIDR_FILTERS) + " --include/--exclude filters";
    return nullptr;
  }

  std::vector<std::string> unavailable;
  std::optional<SendMode> send_mode =
      ChooseSendMode(settings.probe_mode, vmlinux.get(), &unavailable);
  if (!send_mode) {
    *error = std::string("--probe-mode ") + ProbeModeName(settings.probe_mode) +
             " is not available on this kernel: ";
    for (size_t i = 0; i < unavailable.size(); ++i) *error += (i ? "; " : "") + unavailable[i];
    return nullptr;
  }
  std::string storage_refused;
  const bool storage_sweep = settings.sweep_iterator != SweepIterator::kTcp &&
                             StorageIteratorAllowed(vmlinux.get(), &storage_refused);
  if (!storage_refused.empty()) {
    if (settings.sweep_iterator == SweepIterator::kSocketStorage) {
      *error = "--sweep-iterator socket-storage is not available: " + storage_refused;
      return nullptr;
    }
    unavailable.push_back("sweep over socket storage: " + storage_refused +
                          "; the sweep walks TCP's hash tables of the agent's network namespace "
                          "instead (connections in other namespaces report at state changes "
                          "and close)");
    LogWarn("sweep: " + storage_refused +
            "; walking TCP's hash tables of this network namespace instead (more work per "
            "sweep with many sockets; connections in other namespaces report at state "
            "changes and close: sockeye_connections_not_swept)");
  }
  // Responses are timed at sock:sk_data_ready (data and FINs only, and no
  // clock read: see conn_data.bpf.c) when the kernel has it and no send hook
  // is asked for, else the same at fentry on sock_def_readable() where fentry
  // is allowed; otherwise at tcp:tcp_probe (every segment; Linux 4.16+, so
  // every kernel that can run the rest).
  const bool auto_receive =
      settings.probe_mode == ProbeMode::kAuto && *send_mode == SendMode::kNone;
  ReceiveHook receive = ReceiveHook::kTcpProbe;
  std::string receive_fallback;  // why not at sk_data_ready or sock_def_readable, in auto mode
  if (auto_receive && HasTracepoint(vmlinux.get(), "sk_data_ready")) {
    receive = ReceiveHook::kDataReadyTracepoint;
  } else if (auto_receive) {
    std::string fentry_refused;
    if (FentryAllowed(vmlinux.get(), "sock_def_readable", &fentry_refused)) {
      receive = ReceiveHook::kDataReadyFentry;
    } else {
      receive_fallback = "receive at fentry sock_def_readable: " + fentry_refused +
                         "; responses are timed at tcp:tcp_probe (every segment, with a clock "
                         "read)";
      LogInfo("no sock:sk_data_ready tracepoint; " + receive_fallback);
    }
  }

  // The probes above only load (and attach) a two-instruction program: the
  // real programs can still be refused, by the verifier or at attach. Then
  // the agent starts with the fallbacks (LoadFallbacks) rather than not at all.
  LoadFallbacks fallbacks({storage_sweep, receive},
                          settings.sweep_iterator == SweepIterator::kAuto);
  std::unique_ptr<State> state;
  std::string sweep_fallback;
  for (;;) {
    LoadStep failed_step = LoadStep::kOther;
    const LoadPlan plan = fallbacks.current();
    state =
        LoadWith(settings, vmlinux.get(), static_cast<int>(*send_mode), plan, error, &failed_step);
    if (state) break;
    const std::optional<LoadPlan> next = fallbacks.After(failed_step);
    if (!next) return nullptr;
    std::vector<std::string> changes;
    if (plan.receive != ReceiveHook::kTcpProbe && next->receive == ReceiveHook::kTcpProbe) {
      receive_fallback = std::string("receive at ") + ReceiveHookText(plan.receive) +
                         ": starting with it failed (" + *error +
                         "); responses are timed at tcp:tcp_probe (every segment, with a "
                         "clock read)";
    }
    if (next->receive != plan.receive)
      changes.push_back(std::string("responses timed at ") + ReceiveHookText(next->receive));
    if (plan.storage_sweep && !next->storage_sweep) {
      sweep_fallback = "sweep over socket storage: starting with it failed (" + *error +
                       "); the sweep walks TCP's hash tables of the agent's network namespace "
                       "instead (connections in other namespaces report at state changes and "
                       "close)";
      changes.push_back("the sweep over iter/tcp");
    }
    std::string change;
    for (const auto& c : changes) change += (change.empty() ? "" : ", ") + c;
    LogWarn("starting failed (" + *error + "); trying again with " + change);
  }
  const LoadPlan& chosen = fallbacks.current();
  state->btf_source = btf_path;
  if (settings.hot_slots == 0) {
    state->hot_slots_summary = "off (every connection's per-segment state in socket storage)";
  } else {
    const size_t slot_bytes = bpf_map__value_size(state->skel->maps.hot_slots);
    char text[96];
    std::snprintf(
        text, sizeof(text), "%u of %zu B (%.1f MiB of kernel memory)", settings.hot_slots,
        slot_bytes,
        static_cast<double>(settings.hot_slots) * static_cast<double>(slot_bytes) / (1 << 20));
    state->hot_slots_summary = text;
  }
  state->unavailable = unavailable;
  if (chosen.receive == ReceiveHook::kTcpProbe && !receive_fallback.empty())
    state->unavailable.push_back(receive_fallback);
  if (storage_sweep && !chosen.storage_sweep) state->unavailable.push_back(sweep_fallback);
  for (const auto& p : state->probes) {
    LogInfo("probe " + p.hook + ": " + p.mode + (p.target.empty() ? "" : " " + p.target));
  }
  LogInfo("hot slots: " + state->hot_slots_summary);
  return std::make_unique<BpfProbes>(Key{}, std::move(state));
}

std::unique_ptr<BpfProbes::State> BpfProbes::LoadWith(const LoaderSettings& settings,
                                                      const btf* vmlinux, int send_mode_value,
                                                      const LoadPlan& plan, std::string* error,
                                                      LoadStep* failed_step) {
  *failed_step = LoadStep::kOther;
  const auto send_mode = static_cast<SendMode>(send_mode_value);
  const bool storage_sweep = plan.storage_sweep;
  auto state = std::make_unique<State>();
  state->processes = settings.processes;
  state->possible_cpus = libbpf_num_possible_cpus();
  if (state->possible_cpus <= 0) {
    *error = "cannot read the number of possible CPUs: " + ErrnoText(state->possible_cpus);
    return nullptr;
  }

  bpf_object_open_opts open_opts = {};
  open_opts.sz = sizeof(open_opts);
  if (!settings.btf_path.empty()) open_opts.btf_custom_path = settings.btf_path.c_str();
  state->skel.reset(sockeye_bpf__open_opts(&open_opts));
  if (!state->skel) {
    *error = "opening the BPF object failed: " + ErrnoText(errno);
    return nullptr;
  }
  sockeye_bpf* skel = state->skel.get();

  auto* rodata = skel->rodata;
  LoadTimeImmediates immediates;

  // --- choose a program per hook.
  auto choose = [&](bpf_program* prog, const char* hook, const char* tracepoint, bool required,
                    const char* consequence) -> bool {
    if (HasTracepoint(vmlinux, tracepoint)) {
      state->probes.push_back({hook, "tp_btf", tracepoint});
      return true;
    }
    bpf_program__set_autoload(prog, false);
    if (required) {
      *error = std::string("kernel lacks the tracepoint ") + tracepoint + " needed for " + hook;
      return false;
    }
    state->probes.push_back(
        {hook, "off", std::string(tracepoint) + " missing: " + consequence, true});
    LogWarn(std::string("tracepoint ") + tracepoint + " not in this kernel: " + consequence);
    return true;
  };
  if (!choose(skel->progs.on_inet_sock_set_state, "connection_state", "inet_sock_set_state", true,
              ""))
    return nullptr;
  // The receive hook was chosen by Load() (ReceiveHook).
  const bool data_ready_tracepoint = plan.receive == ReceiveHook::kDataReadyTracepoint;
  const bool data_ready_fentry = plan.receive == ReceiveHook::kDataReadyFentry;
  bpf_program__set_autoload(skel->progs.on_sk_data_ready, data_ready_tracepoint);
  bpf_program__set_autoload(skel->progs.on_sock_def_readable_fentry, data_ready_fentry);
  if (data_ready_tracepoint) {
    bpf_program__set_autoload(skel->progs.on_tcp_probe, false);
    state->probes.push_back({"receive", "tp_btf", "sk_data_ready"});
  } else if (data_ready_fentry) {
    bpf_program__set_autoload(skel->progs.on_tcp_probe, false);
    state->probes.push_back({"receive", "fentry", "sock_def_readable"});
  } else if (!choose(skel->progs.on_tcp_probe, "receive", "tcp_probe", true, "")) {
    return nullptr;
  }
  choose(skel->progs.on_tcp_destroy_sock, "socket_destroy", "tcp_destroy_sock", false,
         "bytes an application reads after a reset already closed its socket are not counted");
  choose(skel->progs.on_tcp_send_reset, "reset_sent", "tcp_send_reset", false,
         "sockeye_backend_resets_sent_total stays 0");
  choose(skel->progs.on_tcp_receive_reset, "reset_received", "tcp_receive_reset", false,
         "sockeye_backend_resets_received_total stays 0");

  // Each guarded hook's standby (hook_guards in bpf/sockeye.bpf.h) goes
  // wherever its main program goes.
  for (const auto& [main, standby] : GuardedPrograms(skel))
    bpf_program__set_autoload(standby, bpf_program__autoload(main));

  bpf_program__set_autoload(skel->progs.on_sock_send_length, send_mode == SendMode::kTracepoint);
  bpf_program__set_autoload(skel->progs.on_tcp_sendmsg_fentry, send_mode == SendMode::kFentry);
  bpf_program__set_autoload(skel->progs.on_tcp_sendmsg_kprobe, send_mode == SendMode::kKprobe);
  immediates.Set(SOCKEYE_IMM_SEND_MARKS_ENABLED, send_mode == SendMode::kKprobe ? 1 : 0);
  if (send_mode != SendMode::kKprobe) bpf_map__set_max_entries(skel->maps.send_marks, 1);
  state->probes.insert(
      state->probes.begin() + 1,
      {"send", SendModeName(send_mode),
       send_mode == SendMode::kTracepoint ? "sock_send_length"
       : send_mode == SendMode::kNone     ? "requests are noticed when the backend's response "
                                            "(or acknowledgement) arrives, timed from the "
                                            "request's transmit"
                                          : "tcp_sendmsg"});

  bpf_program__set_autoload(skel->progs.sweep_connections, storage_sweep);
  bpf_program__set_autoload(skel->progs.sweep_tcp_connections, !storage_sweep);
  if (!storage_sweep) {
    struct stat netns {};
    if (stat("/proc/self/ns/net", &netns) == 0) {
      rodata->sweep_netns_inum = static_cast<__u32>(netns.st_ino);
    } else {
      LogWarn("cannot read /proc/self/ns/net (" + ErrnoText(errno) +
              "): connections in other network namespaces may be retired by full sweeps");
    }
  }

  immediates.Set(SOCKEYE_IMM_RINGBUF_WAKEUP_BYTES, settings.ringbuf_bytes / 4);
  if (bpf_map__set_max_entries(skel->maps.events, static_cast<__u32>(settings.ringbuf_bytes)) !=
      0) {
    *error = "cannot size the ring buffer to " + std::to_string(settings.ringbuf_bytes) + " bytes";
    return nullptr;
  }

  immediates.Set(SOCKEYE_IMM_HOT_SLOTS_ENABLED, settings.hot_slots != 0 ? 1 : 0);
  immediates.Set(SOCKEYE_IMM_HOT_SLOT_MASK, settings.hot_slots != 0 ? settings.hot_slots - 1 : 0);
  if (bpf_map__set_max_entries(skel->maps.hot_slots, std::max<uint32_t>(settings.hot_slots, 1)) !=
      0) {
    *error = "cannot size the hot slots to " + std::to_string(settings.hot_slots);
    return nullptr;
  }

  // --- load.
  if (!immediates.ApplyTo(skel->obj, error)) return nullptr;
  std::optional<LoadRefusal> refusal;
  load_refusal = &refusal;
  const int load_err = sockeye_bpf__load(skel);
  load_refusal = nullptr;
  if (load_err != 0) {
    *failed_step = LoadStepOf(refusal, skel, plan);
    *error = "loading BPF programs failed: " + ErrnoText(load_err);
    if (refusal)
      *error += std::string(" (") + (refusal->is_map ? "map " : "program ") + refusal->name + ")";
    if (send_mode == SendMode::kFentry || send_mode == SendMode::kKprobe) {
      *error += std::string(" (with the send hook as ") + SendModeName(send_mode) +
                " on tcp_sendmsg; a refusal before verification means this kernel does not "
                "allow that program type here)";
    }
    if (data_ready_fentry) {
      *error += " (with responses timed at fentry on sock_def_readable)";
    }
    *error += LoadFailureHint(load_err);
    return nullptr;
  }

  if (!CheckLoadedPrograms(skel->obj, error)) return nullptr;

  // --- filters (a map, so that SIGHUP can change them), before attaching.
  if (!WriteFilters(skel, settings, error)) return nullptr;

  // --- attach.
  auto attach = [&](bpf_program* prog) -> bool {
    if (!bpf_program__autoload(prog)) return true;
    LinkPtr link = AttachProgram(prog);
    if (!link) {
      int err = errno;
      *error = std::string("attaching ") + bpf_program__name(prog) + " failed: " + ErrnoText(err) +
               LoadFailureHint(-err);
      if (prog == ReceiveProgram(skel, plan.receive)) *failed_step = LoadStep::kReceiveAttach;
      return false;
    }
    state->links.push_back(std::move(link));
    return true;
  };
  // Each standby right after its main program: on kernels that run a nested
  // program instead of skipping it, the standby must run second
  // (hook_guards in bpf/sockeye.bpf.h).
  for (bpf_program* prog :
       {skel->progs.on_inet_sock_set_state, skel->progs.on_inet_sock_set_state_standby,
        skel->progs.on_sock_send_length, skel->progs.on_tcp_sendmsg_fentry,
        skel->progs.on_tcp_sendmsg_kprobe, skel->progs.on_tcp_probe, skel->progs.on_sk_data_ready,
        skel->progs.on_sock_def_readable_fentry, skel->progs.on_tcp_destroy_sock,
        skel->progs.on_tcp_destroy_sock_standby, skel->progs.on_tcp_send_reset,
        skel->progs.on_tcp_send_reset_standby, skel->progs.on_tcp_receive_reset,
        skel->progs.on_tcp_receive_reset_standby}) {
    if (!attach(prog)) return nullptr;
  }

  state->adopt_link = AttachIterator(skel->progs.adopt_open_connections, nullptr);
  if (!state->adopt_link) {
    *error = "attaching the iter/tcp adoption iterator failed: " + ErrnoText(errno);
    return nullptr;
  }
  state->probes.push_back({"adopt", "iter", "tcp"});

  if (storage_sweep) {
    union bpf_iter_link_info link_info = {};
    link_info.map.map_fd = static_cast<__u32>(bpf_map__fd(skel->maps.conns));
    bpf_iter_attach_opts iter_opts = {};
    iter_opts.sz = sizeof(iter_opts);
    iter_opts.link_info = &link_info;
    iter_opts.link_info_len = sizeof(link_info);
    state->sweep_link = AttachIterator(skel->progs.sweep_connections, &iter_opts);
  } else {
    state->sweep_link = AttachIterator(skel->progs.sweep_tcp_connections, nullptr);
  }
  const char* sweep_target = storage_sweep ? "bpf_sk_storage_map" : "tcp";
  if (!state->sweep_link) {
    *failed_step = LoadStep::kSweepAttach;
    *error = std::string("attaching the sweep iterator (iter/") + sweep_target +
             ") failed: " + ErrnoText(errno);
    return nullptr;
  }
  state->probes.push_back({"sweep", "iter", sweep_target});

  // --- ring buffer.
  State* raw_state = state.get();
  state->ring.reset(ring_buffer__new(
      bpf_map__fd(skel->maps.events),
      [](void* ctx, void* data, size_t size) -> int {
        auto* s = static_cast<State*>(ctx);
        if (!s->handler) return 0;
        // A short record (never written by this build's programs) reaches
        // the aggregator as kind 0, which it counts as malformed.
        sockeye_event event{};
        if (size >= sizeof(event)) std::memcpy(&event, data, sizeof(event));
        (*s->handler)(event);
        return 0;
      },
      raw_state, nullptr));
  if (!state->ring) {
    *error = "creating the ring buffer reader failed: " + ErrnoText(errno);
    return nullptr;
  }

  if (settings.bpf_stats) {
    int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (fd < 0) {
      *error = "--bpf-stats: enabling kernel BPF run-time statistics failed: " + ErrnoText(errno);
      return nullptr;
    }
    state->stats_fd = UniqueFd(fd);
  }
  return state;
}

bool BpfProbes::UpdateFilters(const LoaderSettings& settings, std::string* error) {
  if (settings.processes.size() > SOCKEYE_MAX_COMM_FILTERS ||
      settings.include.size() + settings.exclude.size() > SOCKEYE_MAX_CIDR_FILTERS) {
    *error = "too many filters";
    return false;
  }
  state_->processes = settings.processes;
  return WriteFilters(state_->skel.get(), settings, error);
}

int BpfProbes::WaitForRecords(int timeout_ms) {
  // Records are submitted without a wakeup unless the ring is filling up
  // (see emit() in sockeye.bpf.h), so this mostly ends by timeout with
  // records pending: DrainRecords() reads them whatever it returns.
  epoll_event ready{};
  int n = epoll_wait(ring_buffer__epoll_fd(state_->ring.get()), &ready, 1, timeout_ms);
  return n < 0 ? -errno : n;
}

int BpfProbes::DrainRecords(const EventHandler& handler) {
  state_->handler = &handler;
  int n = ring_buffer__consume(state_->ring.get());
  state_->handler = nullptr;
  return n;
}

namespace {

// Deletes every entry. The keys are listed first and deleted after: asking
// for the first key again after each delete would rescan the emptied
// buckets every time (65,536 of them here).
void ClearHashMap(int map_fd, size_t key_size) {
  std::vector<unsigned char> keys;
  std::vector<unsigned char> key(key_size);
  const void* previous = nullptr;
  while (bpf_map_get_next_key(map_fd, previous, key.data()) == 0) {
    keys.insert(keys.end(), key.begin(), key.end());
    previous = keys.data() + keys.size() - key_size;
  }
  for (size_t at = 0; at < keys.size(); at += key_size) bpf_map_delete_elem(map_fd, &keys[at]);
}

// Makes an iterator from `link`; invalid with the reason in *error.
UniqueFd CreateIterator(bpf_link* link, std::string* error) {
  UniqueFd fd(bpf_iter_create(bpf_link__fd(link)));
  if (!fd.valid()) *error = "creating an iterator failed: " + ErrnoText(errno);
  return fd;
}

// Reads an iterator to the end; records may straddle read() boundaries.
bool DrainIterator(const UniqueFd& fd, const EventHandler& handler, std::string* error) {
  std::vector<char> buffer(64 * sizeof(sockeye_event));
  size_t filled = 0;
  for (;;) {
    ssize_t n = read(fd.get(), buffer.data() + filled, buffer.size() - filled);
    if (n < 0) {
      // EAGAIN: the kernel visited a million objects (iter/tcp counts every
      // socket) without output; the next read goes on from there.
      if (errno == EINTR || errno == EAGAIN) continue;
      *error = "reading an iterator failed: " + ErrnoText(errno);
      return false;
    }
    if (n == 0) break;
    filled += static_cast<size_t>(n);
    size_t offset = 0;
    for (; offset + sizeof(sockeye_event) <= filled; offset += sizeof(sockeye_event)) {
      sockeye_event event;
      std::memcpy(&event, buffer.data() + offset, sizeof(event));
      handler(event);
    }
    std::memmove(buffer.data(), buffer.data() + offset, filled - offset);
    filled -= offset;
  }
  // Bytes that do not make a whole record (never written by this build's
  // programs) reach the aggregator as kind 0, which it counts as malformed.
  if (filled > 0) handler(sockeye_event{});
  return true;
}

bool DrainIterator(bpf_link* link, const EventHandler& handler, std::string* error) {
  const UniqueFd fd = CreateIterator(link, error);
  return fd.valid() && DrainIterator(fd, handler, error);
}

}  // namespace

bool BpfProbes::AdoptOpenConnections(const EventHandler& handler, std::string* error) {
  NetworkNamespace own;
  if (!OpenOwnNetworkNamespace(&own)) {
    *error = "opening /proc/thread-self/ns/net failed: " + ErrnoText(errno);
    return false;
  }
  ProcessScan scan = ScanProcesses(state_->processes, "/proc", own.device, own.inode);
  if (!state_->processes.empty()) {
    int map_fd = bpf_map__fd(state_->skel->maps.adopt_inodes);
    __u8 one = 1;
    for (uint64_t ino : scan.socket_inodes) {
      __u64 key = ino;
      if (bpf_map_update_elem(map_fd, &key, &one, BPF_ANY) != 0) ++state_->adoption_sockets_skipped;
    }
    if (state_->adoption_sockets_skipped > 0) {
      LogWarn(std::to_string(state_->adoption_sockets_skipped) +
              " sockets of the --process processes could not be marked for adoption (" +
              std::to_string(bpf_map__max_entries(state_->skel->maps.adopt_inodes)) +
              " at most): connections open on them before start-up are not followed");
    }
  }
  const int listen_ports_fd = bpf_map__fd(state_->skel->maps.listen_ports);
  if (!DrainIterator(state_->adopt_link.get(), handler, error)) return false;
  ++state_->adoption_namespaces_walked;
  std::string refusal;
  for (const auto& ns : scan.other_namespaces) {
    // Listening ports tell accepted connections from outgoing ones, and
    // each namespace has its own.
    ClearHashMap(listen_ports_fd, sizeof(__u16));
    UniqueFd iterator;
    bool entered = false;
    std::string failure = InNetworkNamespace(
        ns, own, &entered, [&] { iterator = CreateIterator(state_->adopt_link.get(), error); });
    if (!failure.empty() && entered) {  // in, but not back out
      *error = failure;
      return false;
    }
    if (!failure.empty()) {
      ++state_->adoption_namespaces_not_walked;
      refusal = failure;
      continue;
    }
    if (!iterator.valid() || !DrainIterator(iterator, handler, error)) return false;
    ++state_->adoption_namespaces_walked;
  }
  if (state_->adoption_namespaces_not_walked > 0) {
    LogWarn(std::to_string(state_->adoption_namespaces_not_walked) + " network namespaces of " +
            (state_->processes.empty() ? "this host's processes" : "the --process processes") +
            " (containers) were not searched for connections open before start-up: " + refusal +
            ". Those connections are not followed; new ones are.");
  }
  if (scan.namespaces_unreadable > 0) {
    LogWarn("the network namespace of " + std::to_string(scan.namespaces_unreadable) +
            " processes could not be read (" + scan.first_unreadable +
            (scan.namespaces_unreadable > 1 ? ", and others" : "") +
            "; other users' processes need CAP_SYS_PTRACE): connections open in other "
            "namespaces before start-up may not be followed");
  }
  // Needed only for this walk; emptied, they hold no kernel memory.
  ClearHashMap(listen_ports_fd, sizeof(__u16));
  ClearHashMap(bpf_map__fd(state_->skel->maps.adopt_inodes), sizeof(__u64));
  return true;
}

bool BpfProbes::Sweep(bool all, const EventHandler& handler, std::string* error) {
  state_->skel->bss->sweep_all = all ? 1 : 0;
  const auto start = std::chrono::steady_clock::now();
  const bool ok = DrainIterator(state_->sweep_link.get(), handler, error);
  state_->sweep_nanoseconds += static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count());
  ++(ok ? state_->sweeps_succeeded : state_->sweeps_failed);
  return ok;
}

SweepStats BpfProbes::sweep_stats() const {
  return {state_->sweeps_succeeded.load(), state_->sweeps_failed.load(),
          state_->sweeps_skipped.load(), state_->sweep_nanoseconds.load()};
}

void BpfProbes::NoteSweepSkipped() { ++state_->sweeps_skipped; }

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
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, state_->skel->obj) {
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
  return stats;
}

bool BpfProbes::bpf_stats_enabled() const { return state_->stats_fd.valid(); }

const std::vector<ProbeChoice>& BpfProbes::probes() const { return state_->probes; }

const std::vector<std::string>& BpfProbes::unavailable() const { return state_->unavailable; }

const std::string& BpfProbes::btf_source() const { return state_->btf_source; }
uint64_t BpfProbes::adoption_sockets_skipped() const { return state_->adoption_sockets_skipped; }
uint64_t BpfProbes::adoption_namespaces_walked() const {
  return state_->adoption_namespaces_walked;
}
uint64_t BpfProbes::adoption_namespaces_not_walked() const {
  return state_->adoption_namespaces_not_walked;
}
const std::string& BpfProbes::hot_slots_summary() const { return state_->hot_slots_summary; }

}  // namespace sockeye
