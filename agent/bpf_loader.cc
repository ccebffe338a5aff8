// BpfProbes::Load() and what a loaded BpfProbes answers. The pieces live
// beside it: kernel_features.cc (what the kernel offers), hook_table.cc
// (which program runs each hook), load_sequence.cc (one load attempt, step
// by step), bpf_iterators.cc (adoption and sweep), kernel_stats.cc (program
// statistics and kernel counters).
#include "agent/bpf_loader.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "agent/bpf_probes_state.h"
#include "agent/errno_text.h"
#include "agent/hook_table.h"
#include "agent/load_plan.h"
#include "agent/load_sequence.h"
#include "agent/log.h"
#include "sockeye.skel.h"

namespace sockeye {
namespace {

constexpr const char* kVmlinuxBtfPath = "/sys/kernel/btf/vmlinux";

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

// The kernel's BTF, which says what the kernel offers.
BtfPtr ReadKernelBtf(const LoaderSettings& settings, const std::string& btf_path,
                     std::string* error) {
  if (access(btf_path.c_str(), R_OK) != 0) {
    *error = "kernel BTF not readable at " + btf_path + ": " + ErrnoText(errno) +
             (settings.btf_path.empty()
                  ? " (the kernel was built without CONFIG_DEBUG_INFO_BTF=y; pass a BTF file for "
                    "this exact kernel with --btf-path)"
                  : "");
    return nullptr;
  }
  BtfPtr vmlinux(btf__parse(btf_path.c_str(), nullptr));
  if (!vmlinux) *error = "cannot parse kernel BTF at " + btf_path + ": " + ErrnoText(errno);
  return vmlinux;
}

// Whether the filters fit the kernel's filters map.
bool FiltersFit(const LoaderSettings& settings, std::string* error) {
  if (settings.processes.size() > SOCKEYE_MAX_COMM_FILTERS) {
    *error = "at most " + std::to_string(SOCKEYE_MAX_COMM_FILTERS) + " --process filters";
    return false;
  }
  if (settings.include.size() + settings.exclude.size() > SOCKEYE_MAX_CIDR_FILTERS) {
    *error = "at most " + std::to_string(SOCKEYE_MAX_CIDR_FILTERS) + " --include/--exclude filters";
    return false;
  }
  return true;
}

// The first plan, from what the kernel offers, and what it lacks.
struct FirstChoice {
  SendMode send_mode = SendMode::kNone;
  LoadPlan plan;
  std::vector<std::string> unavailable;  // for --check
  std::string receive_fallback;          // why the agent's choice fell back to tcp_probe
};

std::optional<FirstChoice> ChooseFirstPlan(const LoaderSettings& settings, const btf* vmlinux,
                                           std::string* error) {
  FirstChoice first;
  // The send hook --probe-mode asks for.
  const std::optional<SendMode> send_mode =
      ChooseSendMode(settings.probe_mode, vmlinux, &first.unavailable);
  if (!send_mode) {
    *error = std::string("--probe-mode ") + ProbeModeName(settings.probe_mode) +
             " is not available on this kernel: ";
    for (size_t i = 0; i < first.unavailable.size(); ++i)
      *error += (i ? "; " : "") + first.unavailable[i];
    return std::nullopt;
  }
  first.send_mode = *send_mode;
  first.plan.http_status = settings.http_status;

  // The sweep over socket storage, unless --sweep-iterator tcp.
  std::string storage_refused;
  first.plan.storage_sweep = settings.sweep_iterator != SweepIterator::kTcp &&
                             StorageSweepAllowed(vmlinux, &storage_refused);
  if (!storage_refused.empty()) {
    if (settings.sweep_iterator == SweepIterator::kSocketStorage) {
      *error = "--sweep-iterator socket-storage is not available: " + storage_refused;
      return std::nullopt;
    }
    first.unavailable.push_back("sweep over socket storage: " + storage_refused +
                                "; the sweep walks TCP's hash tables of the agent's network "
                                "namespace instead (connections in other namespaces report at "
                                "state changes and close)");
    LogWarn("sweep: " + storage_refused +
            "; walking TCP's hash tables of this network namespace instead (more work per "
            "sweep with many sockets; connections in other namespaces report at state "
            "changes and close: sockeye_connections_not_swept)");
  }

  // The receive hook: the agent's choice in auto mode when no send hook is
  // asked for, else tcp_probe.
  const bool agent_chooses =
      settings.probe_mode == ProbeMode::kAuto && first.send_mode == SendMode::kNone;
  first.plan.receive = ChooseReceiveHook(agent_chooses, vmlinux, &first.receive_fallback);
  if (!first.receive_fallback.empty())
    LogInfo("no sock:sk_data_ready tracepoint; " + first.receive_fallback);
  return first;
}

// After `plan` failed with `error`, before trying `next`: sets why each
// fallback is used (for --check) and returns what changes (for the log).
std::string DescribeFallback(const LoadPlan& plan, const LoadPlan& next, const std::string& error,
                             std::string* receive_fallback, std::string* sweep_fallback) {
  std::vector<std::string> changes;
  if (plan.receive != ReceiveHook::kTcpProbe && next.receive == ReceiveHook::kTcpProbe) {
    *receive_fallback = "receive at " + ReceiveHookText(plan.receive) +
                        ": starting with it failed (" + error +
                        "); responses are timed at tcp:tcp_probe (every segment, with a "
                        "clock read)";
  }
  if (next.receive != plan.receive)
    changes.push_back("responses timed at " + ReceiveHookText(next.receive));
  if (plan.http_status && !next.http_status)
    changes.push_back("no HTTP status program (the kernel refused it: " + error + ")");
  if (plan.storage_sweep && !next.storage_sweep) {
    *sweep_fallback = "sweep over socket storage: starting with it failed (" + error +
                      "); the sweep walks TCP's hash tables of the agent's network namespace "
                      "instead (connections in other namespaces report at state changes and "
                      "close)";
    changes.push_back("the sweep over iter/tcp");
  }
  std::string change;
  for (const auto& c : changes) change += (change.empty() ? "" : ", ") + c;
  return change;
}

// "8192 of 280 B (2.2 MiB of kernel memory)", or "off (...)".
std::string HotSlotsSummary(uint32_t hot_slots, size_t slot_bytes) {
  if (hot_slots == 0) return "off (every connection's per-segment state in socket storage)";
  char text[96];
  std::snprintf(text, sizeof(text), "%u of %zu B (%.1f MiB of kernel memory)", hot_slots,
                slot_bytes,
                static_cast<double>(hot_slots) * static_cast<double>(slot_bytes) / (1 << 20));
  return text;
}

}  // namespace

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
  settings.http_status = config.http_status_codes != HttpStatusCodes::kOff;
  settings.frontends = config.frontends;
  settings.btf_path = config.btf_path;
  settings.cgroup = config.cgroup;
  return settings;
}

BpfProbes::BpfProbes(Key, std::unique_ptr<State> state) : state_(std::move(state)) {}
BpfProbes::~BpfProbes() = default;

std::unique_ptr<BpfProbes> BpfProbes::Load(const LoaderSettings& settings, std::string* error) {
  RouteLibbpfLogs();

  // What the kernel offers is read from its BTF; the filters must fit.
  const std::string btf_path = settings.btf_path.empty() ? kVmlinuxBtfPath : settings.btf_path;
  const BtfPtr vmlinux = ReadKernelBtf(settings, btf_path, error);
  if (!vmlinux || !FiltersFit(settings, error)) return nullptr;

  // The first plan: the send hook asked for, the preferred receive hook and
  // sweep this kernel offers.
  std::optional<FirstChoice> first = ChooseFirstPlan(settings, vmlinux.get(), error);
  if (!first) return nullptr;

  // The feature probes only load (and attach) a two-instruction program: the
  // real programs can still be refused, by the verifier or at attach. Then
  // the agent starts with the fallbacks (LoadFallbacks) rather than not at all.
  LoadFallbacks fallbacks(first->plan, settings.sweep_iterator == SweepIterator::kAuto);
  std::unique_ptr<State> state;
  std::string receive_fallback = first->receive_fallback;
  std::string sweep_fallback;
  for (;;) {
    LoadStep failed_step = LoadStep::kOther;
    const LoadPlan plan = fallbacks.current();
    state = LoadWith(settings, vmlinux.get(), first->send_mode, plan, error, &failed_step);
    if (state) break;
    const std::optional<LoadPlan> next = fallbacks.After(failed_step);
    if (!next) return nullptr;
    const std::string change =
        DescribeFallback(plan, *next, *error, &receive_fallback, &sweep_fallback);
    LogWarn("starting failed (" + *error + "); trying again with " + change);
  }

  // What was chosen, for --check and the log.
  const LoadPlan& chosen = fallbacks.current();
  state->btf_source = btf_path;
  state->hot_slots_summary =
      HotSlotsSummary(settings.hot_slots, bpf_map__value_size(state->skel->maps.hot_slots));
  state->unavailable = first->unavailable;
  if (chosen.receive == ReceiveHook::kTcpProbe && !receive_fallback.empty())
    state->unavailable.push_back(receive_fallback);
  if (first->plan.storage_sweep && !chosen.storage_sweep)
    state->unavailable.push_back(sweep_fallback);
  if (!state->status_fallback.empty()) state->unavailable.push_back(state->status_fallback);
  for (const auto& p : state->probes) {
    LogInfo("probe " + p.hook + ": " + p.mode + (p.target.empty() ? "" : " " + p.target));
  }
  LogInfo("hot slots: " + state->hot_slots_summary);
  return std::make_unique<BpfProbes>(Key{}, std::move(state));
}

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

bool BpfProbes::UpdateFilters(const LoaderSettings& settings, std::string* error) {
  if (settings.processes.size() > SOCKEYE_MAX_COMM_FILTERS ||
      settings.include.size() + settings.exclude.size() > SOCKEYE_MAX_CIDR_FILTERS) {
    *error = "too many filters";
    return false;
  }
  state_->processes = settings.processes;
  return WriteFilters(state_->skel.get(), settings, error);
}

bool BpfProbes::SetFrontendListeners(const std::vector<Endpoint>& listeners, std::string* error) {
  const int fd = bpf_map__fd(state_->skel->maps.frontend_listeners);
  auto key_of = [](const Endpoint& e) {
    sockeye_endpoint key{};
    std::copy(e.addr.begin(), e.addr.end(), key.addr);
    key.port = e.port;
    return key;
  };
  auto same = [](const sockeye_endpoint& a, const sockeye_endpoint& b) {
    return std::memcmp(&a, &b, sizeof(a)) == 0;
  };
  std::vector<sockeye_endpoint> wanted;
  for (const Endpoint& e : listeners) wanted.push_back(key_of(e));
  // Listeners no longer wanted go first, so that the map never holds more
  // than the old and new sets' union.
  std::vector<sockeye_endpoint> stale;
  sockeye_endpoint key{}, next{};
  const sockeye_endpoint* previous = nullptr;
  while (bpf_map_get_next_key(fd, previous, &next) == 0) {
    if (std::none_of(wanted.begin(), wanted.end(), [&](const auto& w) { return same(w, next); }))
      stale.push_back(next);
    key = next;
    previous = &key;
  }
  for (const sockeye_endpoint& e : stale) bpf_map_delete_elem(fd, &e);
  const uint8_t one = 1;
  for (const sockeye_endpoint& e : wanted) {
    if (bpf_map_update_elem(fd, &e, &one, BPF_ANY) != 0) {
      *error = "writing frontend listener port " + std::to_string(e.port) +
               " failed: " + ErrnoText(errno);
      return false;
    }
  }
  // The ports' bits, written after the listeners: the kernel looks a port's
  // listeners up only once its bit is set (bpf/filters.bpf.h, frontend_port()).
  sockeye_frontend_ports ports{};
  for (const sockeye_endpoint& e : wanted) ports.bits[e.port / 8] |= uint8_t(1U << (e.port % 8));
  const uint32_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(state_->skel->maps.frontend_ports), &zero, &ports, BPF_ANY) !=
      0) {
    *error = "writing the frontend listeners' ports failed: " + ErrnoText(errno);
    return false;
  }
  return true;
}

int BpfProbes::WaitForRecords(int timeout_ms) {
  // Records are submitted without a wakeup unless the ring is filling up
  // (see emit() in bpf/records.bpf.h), so this mostly ends by timeout with
  // records pending: DrainRecords() reads them whatever it returns.
  epoll_event ready{};
  int n = epoll_wait(ring_buffer__epoll_fd(state_->ring.get()), &ready, 1, timeout_ms);
  return n < 0 ? -errno : n;
}

static_assert(offsetof(sockeye_event, turns) == sizeof(sockeye_event_head),
              "struct sockeye_event starts with struct sockeye_event_head");

// The records the ring buffer had no room for (unsent_records, see
// bpf/maps.bpf.h), before the ring's own: a connection's deferred opening
// record then comes before its close, which found room later. Each is taken
// out of the map as it is read.
int BpfProbes::DrainDeferred(const EventHandler& handler) {
  const int fd = bpf_map__fd(state_->skel->maps.unsent_records);
  int n = 0;
  sockeye_unsent_key key{};
  sockeye_event_head head{};
  // Bounded by the map's size: records added meanwhile wait for the next tick.
  for (uint32_t i = 0; i < bpf_map__max_entries(state_->skel->maps.unsent_records); ++i) {
    if (bpf_map_get_next_key(fd, nullptr, &key) != 0) break;
    // lookup_and_delete for hash maps came in 5.14; before, two calls.
    if (bpf_map_lookup_and_delete_elem(fd, &key, &head) != 0) {
      if (bpf_map_lookup_elem(fd, &key, &head) != 0) break;
      bpf_map_delete_elem(fd, &key);
    }
    sockeye_event event{};
    std::memcpy(&event, &head, sizeof(head));
    event.turn_count = 0;
    handler(event);
    ++n;
  }
  return n;
}

int BpfProbes::DrainRecords(const EventHandler& handler) {
  int n = DrainDeferred(handler);
  state_->handler = &handler;
  n += ring_buffer__consume(state_->ring.get());
  state_->handler = nullptr;
  return n;
}

const std::vector<ProbeChoice>& BpfProbes::probes() const { return state_->probes; }
const std::vector<std::string>& BpfProbes::unavailable() const { return state_->unavailable; }
const std::string& BpfProbes::btf_source() const { return state_->btf_source; }
const std::string& BpfProbes::hot_slots_summary() const { return state_->hot_slots_summary; }

}  // namespace sockeye
