#include "agent/probes_collector.h"

#include <string>
#include <utility>
#include <vector>

#include "agent/aggregator.h"
#include "agent/metric_descriptors.h"
#include "agent/version.h"

namespace sockeye {

using metrics::LabelValues;
using metrics::MakeFamily;
using metrics::MetricDescriptor;
using metrics::MetricFamily;
namespace f = families;

namespace {

// A family of one series without labels.
MetricFamily Single(const MetricDescriptor& descriptor, double value) {
  MetricFamily family = MakeFamily(descriptor);
  family.samples.push_back({{}, value});
  return family;
}

}  // namespace

void ProbesCollector::Collect(std::vector<MetricFamily>& out) {
  MetricFamily info = MakeFamily(f::kProbeInfo);
  for (const auto& p : probes_.probes()) {
    // An off hook's target is an explanation, not a name.
    const std::string target = p.mode == "off" ? "" : p.target;
    info.samples.push_back({LabelValues(f::kProbeInfo, {p.hook, p.mode, target}), 1});
  }
  out.push_back(std::move(info));

  // Skipped runs are read before the kernel counters that hold how many
  // were recovered (MissedRunsCounter::Update).
  const std::vector<ProgramStats> programs = probes_.ProgramStatistics();
  auto counters = probes_.KernelCounters();
  std::vector<SkippedRuns> skipped;
  for (const auto& p : programs) {
    // A standby's own skipped runs lose nothing (bpf/hook_guards.bpf.h).
    if (p.standby || p.iterator) continue;
    SkippedRuns s{p.name, p.recursion_misses, std::nullopt};
    if (p.guarded_hook)
      s.recovered = counters[SOCKEYE_KC_NESTED_RECOVERED + static_cast<size_t>(*p.guarded_hook)];
    skipped.push_back(std::move(s));
  }
  MetricFamily missed = MakeFamily(f::kBpfProgramMissedRuns);
  for (const auto& m : missed_runs_.Update(skipped)) {
    missed.samples.push_back(
        {LabelValues(f::kBpfProgramMissedRuns, {m.program, "false"}), static_cast<double>(m.lost)});
    if (m.recovered)
      missed.samples.push_back({LabelValues(f::kBpfProgramMissedRuns, {m.program, "true"}),
                                static_cast<double>(*m.recovered)});
  }
  out.push_back(std::move(missed));

  MetricFamily lost = MakeFamily(f::kEventsLost);
  for (size_t kind = 1; kind < SOCKEYE_EV_KIND_COUNT; ++kind)
    lost.samples.push_back({LabelValues(f::kEventsLost, {EventKindName(kind)}),
                            static_cast<double>(counters[SOCKEYE_KC_RINGBUF_FULL + kind])});
  out.push_back(std::move(lost));
  out.push_back(
      Single(f::kConnectionsUnfollowed, static_cast<double>(counters[SOCKEYE_KC_STORAGE_FAILED])));
  out.push_back(
      Single(f::kSendMarksFull, static_cast<double>(counters[SOCKEYE_KC_SEND_MARKS_FULL])));
  out.push_back(Single(f::kTurnsLost, static_cast<double>(counters[SOCKEYE_KC_TURNS_LOST])));
  out.push_back(
      Single(f::kEventsDeferred, static_cast<double>(counters[SOCKEYE_KC_RECORDS_DEFERRED])));
  out.push_back(Single(f::kStatusUnread, static_cast<double>(counters[SOCKEYE_KC_STATUS_UNREAD])));
  out.push_back(
      Single(f::kAdoptionSocketsSkipped, static_cast<double>(probes_.adoption_sockets_skipped())));
  MetricFamily namespaces = MakeFamily(f::kAdoptionNetworkNamespaces);
  namespaces.samples.push_back({LabelValues(f::kAdoptionNetworkNamespaces, {"walked"}),
                                static_cast<double>(probes_.adoption_namespaces_walked())});
  namespaces.samples.push_back({LabelValues(f::kAdoptionNetworkNamespaces, {"not_walked"}),
                                static_cast<double>(probes_.adoption_namespaces_not_walked())});
  out.push_back(std::move(namespaces));
  out.push_back(
      Single(f::kHotSlotFallbacks, static_cast<double>(counters[SOCKEYE_KC_HOT_SLOT_TAKEN])));
  out.push_back(
      Single(f::kIteratorRecordsLost, static_cast<double>(counters[SOCKEYE_KC_SEQ_WRITE_FAILED])));

  const SweepStats sweeps = probes_.sweep_stats();
  MetricFamily sweep_results = MakeFamily(f::kSweeps);
  for (const auto& [result, count] :
       {std::pair{"ok", sweeps.succeeded}, std::pair{"failed", sweeps.failed},
        std::pair{"skipped", sweeps.skipped}})
    sweep_results.samples.push_back(
        {LabelValues(f::kSweeps, {result}), static_cast<double>(count)});
  out.push_back(std::move(sweep_results));
  out.push_back(Single(f::kSweepDuration, static_cast<double>(sweeps.nanoseconds) / 1e9));
  out.push_back(Single(f::kSweepInterval, static_cast<double>(sweeps.spacing_nanoseconds) / 1e9));

  if (!probes_.bpf_stats_enabled()) return;
  MetricFamily run_time = MakeFamily(f::kBpfProgramRunTime);
  MetricFamily run_count = MakeFamily(f::kBpfProgramRuns);
  for (const auto& s : programs) {
    run_time.samples.push_back(
        {LabelValues(f::kBpfProgramRunTime, {s.name}), static_cast<double>(s.run_time_ns) / 1e9});
    run_count.samples.push_back(
        {LabelValues(f::kBpfProgramRuns, {s.name}), static_cast<double>(s.run_count)});
  }
  out.push_back(std::move(run_time));
  out.push_back(std::move(run_count));
}

void BuildInfoCollector::Collect(std::vector<MetricFamily>& out) {
  MetricFamily info = MakeFamily(f::kBuildInfo);
  info.samples.push_back({LabelValues(f::kBuildInfo, {SOCKEYE_VERSION, SOCKEYE_REVISION}), 1});
  out.push_back(std::move(info));
}

}  // namespace sockeye
