// One load attempt, top to bottom: open, choose, set, load, check, filters,
// attach (BpfProbes::LoadWith() at the end, one comment per step, as in
// libbpf-bootstrap's bootstrap.c), with the helpers each step calls. Why this
// file is long (~430 lines): the steps and their helpers read in the order
// they run; the program table is in hook_table.cc, the status program's second
// object in status_cast.cc.
#include "agent/load_sequence.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

#include "agent/bpf_probes_state.h"
#include "agent/capabilities.h"
#include "agent/errno_text.h"
#include "agent/hook_table.h"
#include "agent/kernel_features.h"
#include "agent/kernel_stats.h"
#include "agent/load_time_immediates.h"
#include "agent/log.h"
#include "agent/status_cast.h"
#include "agent/unique_fd.h"
#include "sockeye.skel.h"

namespace sockeye {

void SkeletonDeleter::operator()(sockeye_bpf* skel) const { sockeye_bpf__destroy(skel); }

namespace {

// While LoadObject() loads: the first thing libbpf says the kernel refused
// (libbpf's print callback takes no context of its own).
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

// Which step a failed load was, from what libbpf said it refused.
LoadStep LoadStepOf(const std::optional<LoadRefusal>& refusal, const sockeye_bpf* skel,
                    const LoadPlan& plan) {
  if (!refusal) return LoadStep::kLoad;
  if (refusal->is_map) return LoadStep::kOtherLoad;
  if (refusal->name == bpf_program__name(ReceiveProgram(skel, plan.receive)))
    return LoadStep::kReceiveLoad;
  if (refusal->name == bpf_program__name(SweepProgram(skel, plan.storage_sweep)))
    return LoadStep::kSweepLoad;
  if (plan.http_status && (refusal->name == bpf_program__name(skel->progs.on_cgroup_ingress) ||
                           refusal->name == bpf_program__name(skel->progs.on_cgroup_egress)))
    return LoadStep::kStatusLoad;
  return LoadStep::kOtherLoad;
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

// Opens the object, with the --btf-path BTF for CO-RE relocations if given.
SkeletonPtr OpenObject(const LoaderSettings& settings, std::string* error) {
  bpf_object_open_opts open_opts = {};
  open_opts.sz = sizeof(open_opts);
  if (!settings.btf_path.empty()) open_opts.btf_custom_path = settings.btf_path.c_str();
  SkeletonPtr skel(sockeye_bpf__open_opts(&open_opts));
  if (!skel) *error = "opening the BPF object failed: " + ErrnoText(errno);
  return skel;
}

// Sets what the programs read as constants (rodata and the load-time
// immediates, patched into the instructions; kept in *immediates for the
// status program's object of its own) and sizes the maps.
bool SetLoadTimeSettings(sockeye_bpf* skel, const LoaderSettings& settings, SendMode send_mode,
                         const LoadPlan& plan, LoadTimeImmediates* out, std::string* error) {
  LoadTimeImmediates& immediates = *out;
  // Send marks are for the kprobe send hook only, which cannot use socket
  // storage (send_marks in bpf/maps.bpf.h); otherwise the map is minimal.
  immediates.Set(SOCKEYE_IMM_SEND_MARKS_ENABLED, send_mode == SendMode::kKprobe ? 1 : 0);
  if (send_mode != SendMode::kKprobe) bpf_map__set_max_entries(skel->maps.send_marks, 1);

  skel->rodata->follow_frontends = settings.frontends ? 1 : 0;
  if (settings.frontends) {
    struct stat netns {};
    if (stat("/proc/self/ns/net", &netns) == 0)
      skel->rodata->frontend_netns_inum = static_cast<__u32>(netns.st_ino);
  }

  if (!plan.storage_sweep) {
    struct stat netns {};
    if (stat("/proc/self/ns/net", &netns) == 0) {
      skel->rodata->sweep_netns_inum = static_cast<__u32>(netns.st_ino);
    } else {
      LogWarn("cannot read /proc/self/ns/net (" + ErrnoText(errno) +
              "): connections in other network namespaces may be retired by full sweeps");
    }
  }

  immediates.Set(SOCKEYE_IMM_RINGBUF_WAKEUP_BYTES, settings.ringbuf_bytes / 4);
  if (bpf_map__set_max_entries(skel->maps.events, static_cast<__u32>(settings.ringbuf_bytes)) !=
      0) {
    *error = "cannot size the ring buffer to " + std::to_string(settings.ringbuf_bytes) + " bytes";
    return false;
  }

  immediates.Set(SOCKEYE_IMM_HOT_SLOTS_ENABLED, settings.hot_slots != 0 ? 1 : 0);
  immediates.Set(SOCKEYE_IMM_HOT_SLOT_MASK, settings.hot_slots != 0 ? settings.hot_slots - 1 : 0);
  if (bpf_map__set_max_entries(skel->maps.hot_slots, std::max<uint32_t>(settings.hot_slots, 1)) !=
      0) {
    *error = "cannot size the hot slots to " + std::to_string(settings.hot_slots);
    return false;
  }
  return immediates.ApplyTo(skel->obj, error);
}

// Loads the chosen programs and creates the maps. On failure, *failed_step
// and the error name what the kernel refused, if libbpf said.
bool LoadObject(sockeye_bpf* skel, SendMode send_mode, const LoadPlan& plan, std::string* error,
                LoadStep* failed_step) {
  std::optional<LoadRefusal> refusal;
  load_refusal = &refusal;
  const int load_err = sockeye_bpf__load(skel);
  load_refusal = nullptr;
  if (load_err == 0) return true;
  *failed_step = LoadStepOf(refusal, skel, plan);
  *error = "loading BPF programs failed: " + ErrnoText(load_err);
  if (refusal)
    *error += std::string(" (") + (refusal->is_map ? "map " : "program ") + refusal->name + ")";
  if (send_mode == SendMode::kFentry || send_mode == SendMode::kKprobe) {
    *error += std::string(" (with the send hook as ") + SendModeName(send_mode) +
              " on tcp_sendmsg; a refusal before verification means this kernel does not "
              "allow that program type here)";
  }
  if (plan.receive == ReceiveHook::kDataReadyFentry) {
    *error += " (with responses timed at fentry on sock_def_readable)";
  }
  *error += LoadFailureHint(load_err);
  return false;
}

// Attaches every loaded tracing program, in TracingPrograms() order.
bool AttachHooks(sockeye_bpf* skel, const LoadPlan& plan, std::vector<LinkPtr>* links,
                 std::string* error, LoadStep* failed_step) {
  for (bpf_program* prog : TracingPrograms(skel)) {
    if (!bpf_program__autoload(prog)) continue;
    LinkPtr link = AttachProgram(prog);
    if (!link) {
      int err = errno;
      *error = std::string("attaching ") + bpf_program__name(prog) + " failed: " + ErrnoText(err) +
               LoadFailureHint(-err);
      if (prog == ReceiveProgram(skel, plan.receive)) *failed_step = LoadStep::kReceiveAttach;
      return false;
    }
    links->push_back(std::move(link));
  }
  return true;
}

// Attaches the HTTP status program, when loaded, to the cgroup v2 root (or
// --cgroup) with a link: link-based cgroup attachments run beside whatever
// else is attached there (BPF_F_ALLOW_MULTI semantics) and go away with the
// agent's process. At the root every socket in the hierarchy is seen, so
// proxies in any service's cgroup are; --cgroup spares every other
// process's packets the programs (~0.2-0.35 us per proxied request on
// loopback, bench/cgroup_scope_cost.sh). The build in an object of its own
// first, when loaded; if it will not attach, the main object's, and
// *fallback says why. Once one is attached
// the other is unloaded. Optional: when neither attaches, the hook's
// --check entry says so and the agent runs without it. Returns whether the
// main object's build is the one attached.
bool AttachStatusProgram(sockeye_bpf* skel, StatusCastPtr* cast, const StatusChoice& status,
                         const std::string& cgroup_path, std::vector<LinkPtr>* links,
                         std::vector<ProbeChoice>* probes, std::string* fallback) {
  bpf_program* own = skel->progs.on_cgroup_ingress;
  if (!bpf_program__autoload(own)) return false;
  const std::string root = cgroup_path.empty() ? Cgroup2MountPoint() : cgroup_path;
  std::string failure;
  UniqueFd cgroup(root.empty() ? -1 : open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto attach = [&cgroup](bpf_program* prog) {
    return LinkPtr(AttachRefusedForTest(prog) ? nullptr
                                              : bpf_program__attach_cgroup(prog, cgroup.get()));
  };
  // The frontend side (bpf/http_status.bpf.c, on_cgroup_egress()) goes with
  // the ingress build that attached, falling back to the main object's:
  // without it frontend requests and bytes still count.
  auto attach_egress = [&](bpf_program* preferred, bpf_program* own_egress) -> std::string {
    if (!bpf_program__autoload(own_egress)) return "";
    for (bpf_program* prog : {preferred, own_egress}) {
      if (prog == nullptr) continue;
      if (LinkPtr link = attach(prog)) {
        links->push_back(std::move(link));
        if (prog != own_egress) bpf_program__unload(own_egress);
        skel->bss->frontend_responses_read = 1;
        return " and egress";
      }
    }
    LogWarn("http_status: attaching the egress program to " + root +
            " failed: " + ErrnoText(errno) + "; no frontend response times or statuses");
    return "";
  };
  auto attached = [&](LinkPtr link, const std::string& build, bpf_program* cast_egress) {
    links->push_back(std::move(link));
    const std::string sides = "ingress" + attach_egress(cast_egress, skel->progs.on_cgroup_egress);
    for (ProbeChoice& p : *probes)
      if (p.hook == "http_status") p.target = sides + " (" + root + ", " + build + ")";
  };
  if (!cgroup.valid()) {
    failure = root.empty() ? "no cgroup v2 hierarchy is mounted"
                           : "opening " + root + " failed: " + ErrnoText(errno);
  } else {
    if (*cast) {
      if (LinkPtr link = attach(StatusCastProgram(cast->get()))) {
        attached(std::move(link), status.cast_target, StatusCastEgressProgram(cast->get()));
        bpf_program__unload(own);
        return false;
      }
      *fallback = "attaching it to " + root + " failed: " + ErrnoText(errno);
      cast->reset();
    }
    if (LinkPtr link = attach(own)) {
      attached(std::move(link), status.own_target, nullptr);
      return true;
    }
    failure = "attaching to " + root + " failed: " + ErrnoText(errno);
  }
  cast->reset();
  for (ProbeChoice& p : *probes) {
    if (p.hook != "http_status") continue;
    p.mode = "off";
    p.target = failure + ": no sockeye_backend_responses_total";
    p.reduced_coverage = true;
  }
  LogWarn("http_status: " + failure + "; no HTTP status classes are counted");
  return false;
}

// Attaches the adoption iterator and the plan's sweep iterator.
bool AttachIterators(sockeye_bpf* skel, const LoadPlan& plan, LinkPtr* adopt_link,
                     LinkPtr* sweep_link, std::string* error, LoadStep* failed_step) {
  *adopt_link = AttachIterator(skel->progs.adopt_open_connections, nullptr);
  if (!*adopt_link) {
    *error = "attaching the iter/tcp adoption iterator failed: " + ErrnoText(errno);
    return false;
  }
  if (plan.storage_sweep) {
    // The storage sweep walks the conns map.
    union bpf_iter_link_info link_info = {};
    link_info.map.map_fd = static_cast<__u32>(bpf_map__fd(skel->maps.conns));
    bpf_iter_attach_opts iter_opts = {};
    iter_opts.sz = sizeof(iter_opts);
    iter_opts.link_info = &link_info;
    iter_opts.link_info_len = sizeof(link_info);
    *sweep_link = AttachIterator(SweepProgram(skel, true), &iter_opts);
  } else {
    *sweep_link = AttachIterator(SweepProgram(skel, false), nullptr);
  }
  if (!*sweep_link) {
    *failed_step = LoadStep::kSweepAttach;
    *error = std::string("attaching the sweep iterator (iter/") + SweepTarget(plan.storage_sweep) +
             ") failed: " + ErrnoText(errno);
    return false;
  }
  return true;
}

// A reader of the events ring buffer that hands each record to *handler
// (none while *handler is null).
RingBufferPtr OpenRingBuffer(const sockeye_bpf* skel, const EventHandler** handler,
                             std::string* error) {
  RingBufferPtr ring(ring_buffer__new(
      bpf_map__fd(skel->maps.events),
      [](void* ctx, void* data, size_t size) -> int {
        const EventHandler* current = *static_cast<const EventHandler* const*>(ctx);
        if (!current) return 0;
        // A short record (never written by this build's programs) reaches
        // the aggregator as kind 0, which it counts as malformed.
        sockeye_event event{};
        if (size >= sizeof(event)) std::memcpy(&event, data, sizeof(event));
        (*current)(event);
        return 0;
      },
      handler, nullptr));
  if (!ring) *error = "creating the ring buffer reader failed: " + ErrnoText(errno);
  return ring;
}

}  // namespace

void RouteLibbpfLogs() { libbpf_set_print(RouteLibbpfLog); }

std::unique_ptr<BpfProbes::State> BpfProbes::LoadWith(const LoaderSettings& settings,
                                                      const btf* vmlinux, SendMode send_mode,
                                                      const LoadPlan& plan, std::string* error,
                                                      LoadStep* failed_step) {
  *failed_step = LoadStep::kOther;
  auto state = std::make_unique<State>();
  state->processes = settings.processes;
  // Per-CPU maps are read with one value per possible CPU.
  state->possible_cpus = libbpf_num_possible_cpus();
  if (state->possible_cpus <= 0) {
    *error = "cannot read the number of possible CPUs: " + ErrnoText(state->possible_cpus);
    return nullptr;
  }

  // 1. Open the object: programs and maps described, nothing in the kernel yet.
  state->skel = OpenObject(settings, error);
  if (!state->skel) return nullptr;
  sockeye_bpf* skel = state->skel.get();

  // 2. Choose one program per hook (agent/hook_table.h); the others are not loaded.
  StatusChoice status;
  if (!ChoosePrograms(skel, vmlinux, send_mode, plan, !settings.btf_path.empty(), &state->probes,
                      &status, error))
    return nullptr;
  // The frontend side of the status program (responses leave the host) runs
  // on every packet sent: only when frontends are followed.
  const bool egress = settings.frontends && bpf_program__autoload(skel->progs.on_cgroup_ingress);
  bpf_program__set_autoload(skel->progs.on_cgroup_egress, egress);

  // 3. Set rodata, the map sizes and the load-time immediates.
  LoadTimeImmediates immediates;
  if (!SetLoadTimeSettings(skel, settings, send_mode, plan, &immediates, error)) return nullptr;

  // 4. Load: the kernel verifies each chosen program and creates the maps.
  if (!LoadObject(skel, send_mode, plan, error, failed_step)) return nullptr;

  // 5. Check that no load-time immediate reached the kernel unpatched.
  if (!CheckLoadedPrograms(skel->obj, error)) return nullptr;

  // 5b. The status program's object of its own (agent/status_cast.h) on the
  // maps just created, where chosen; if it fails, the main object's build runs.
  std::string cast_failure;
  if (status.cast) state->status_cast = LoadStatusCast(skel, immediates, egress, &cast_failure);

  // 6. Write the filters (a map, so that SIGHUP can change them) before attaching.
  if (!WriteFilters(skel, settings, error)) return nullptr;

  // 7. Attach the hooks, then the adoption and sweep iterators.
  if (!AttachHooks(skel, plan, &state->links, error, failed_step)) return nullptr;
  if (AttachStatusProgram(skel, &state->status_cast, status, settings.cgroup, &state->links,
                          &state->probes, &cast_failure)) {
    const std::string why =
        status.cast ? "starting with it failed: " + cast_failure : status.why_not_cast;
    state->status_fallback = "HTTP status through " + status.cast_target + "(): " + why +
                             "; the status program tests each received packet's socket with " +
                             status.own_target + "() instead (a helper call per packet)";
    if (status.cast) LogWarn("http_status: " + state->status_fallback);
  }
  if (!AttachIterators(skel, plan, &state->adopt_link, &state->sweep_link, error, failed_step))
    return nullptr;

  // 8. Read the ring buffer, handing records to DrainRecords()'s handler.
  state->ring = OpenRingBuffer(skel, &state->handler, error);
  if (!state->ring) return nullptr;

  // 9. Kernel BPF run-time statistics, with --bpf-stats.
  if (settings.bpf_stats) {
    state->stats_fd = EnableBpfStats(error);
    if (!state->stats_fd.valid()) return nullptr;
  }
  return state;
}

}  // namespace sockeye
