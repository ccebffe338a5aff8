#include "agent/probes_collector.h"

#include "agent/aggregator.h"
#include "agent/version.h"

namespace sockeye {

using metrics::MetricFamily;
using metrics::MetricType;

void ProbesCollector::Collect(std::vector<MetricFamily>& out) {
  MetricFamily info{"sockeye_probe_info",
                    "The kernel program attached for each hook and where (target: the "
                    "tracepoint, function or iterator; mode off: none, for send that is the "
                    "default, for the others the kernel lacks the hook).",
                    MetricType::kGauge,
                    {},
                    {}};
  for (const auto& p : probes_.probes()) {
    // An off hook's target is an explanation, not a name.
    const std::string target = p.mode == "off" ? "" : p.target;
    info.samples.push_back({{{"hook", p.hook}, {"mode", p.mode}, {"target", target}}, 1});
  }
  out.push_back(std::move(info));

  // Skipped runs are read before the kernel counters that hold how many
  // were recovered (MissedRunsCounter::Update).
  const std::vector<ProgramStats> programs = probes_.ProgramStatistics();
  auto counters = probes_.KernelCounters();
  std::vector<SkippedRuns> skipped;
  for (const auto& p : programs) {
    // A standby's own skipped runs lose nothing (bpf/sockeye.bpf.h).
    if (p.standby || p.iterator) continue;
    SkippedRuns s{p.name, p.recursion_misses, std::nullopt};
    if (p.guarded_hook)
      s.recovered = counters[SOCKEYE_KC_NESTED_RECOVERED + static_cast<size_t>(*p.guarded_hook)];
    skipped.push_back(std::move(s));
  }
  MetricFamily missed{
      "sockeye_bpf_program_missed_runs_total",
      "Runs of each sockeye BPF program that the kernel skipped because the program was "
      "already running on that CPU (an interrupt arriving while it ran in process context; "
      "the kernel's recursion_misses, counted where the kernel counts them). "
      "recovered=\"true\": runs a standby program on the same hook did instead, nothing lost; "
      "recovered=\"false\": runs not redone, many of them for sockets sockeye does not "
      "follow; a followed connection's missed open or close is reported late "
      "(sockeye_transitions_seen_late_total), a missed response loses its "
      "time-to-first-byte sample.",
      MetricType::kCounter,
      {},
      {}};
  for (const auto& m : missed_runs_.Update(skipped)) {
    missed.samples.push_back(
        {{{"program", m.program}, {"recovered", "false"}}, static_cast<double>(m.lost)});
    if (m.recovered)
      missed.samples.push_back(
          {{{"program", m.program}, {"recovered", "true"}}, static_cast<double>(*m.recovered)});
  }
  out.push_back(std::move(missed));

  MetricFamily lost{"sockeye_events_lost_total",
                    "Kernel records dropped because the ring buffer was full, by kind "
                    "(raise --ringbuf-size).",
                    MetricType::kCounter,
                    {},
                    {}};
  for (size_t kind = 1; kind < SOCKEYE_EV_KIND_COUNT; ++kind)
    lost.samples.push_back({{{"kind", EventKindName(kind)}},
                            static_cast<double>(counters[SOCKEYE_KC_RINGBUF_FULL + kind])});
  out.push_back(std::move(lost));
  out.push_back(MetricFamily{"sockeye_connections_unfollowed_total",
                             "Connects not followed because socket storage could not be allocated.",
                             MetricType::kCounter,
                             {{{}, static_cast<double>(counters[SOCKEYE_KC_STORAGE_FAILED])}},
                             {}});
  out.push_back(MetricFamily{"sockeye_send_marks_full_total",
                             "kprobe mode: followed connections that got no send-mark slot; their "
                             "requests are noticed at the next received segment instead.",
                             MetricType::kCounter,
                             {{{}, static_cast<double>(counters[SOCKEYE_KC_SEND_MARKS_FULL])}},
                             {}});
  out.push_back(MetricFamily{"sockeye_turns_lost_total",
                             "Completed requests whose time-to-first-byte sample never reached "
                             "the agent (its batch record found the ring buffer full).",
                             MetricType::kCounter,
                             {{{}, static_cast<double>(counters[SOCKEYE_KC_TURNS_LOST])}},
                             {}});
  out.push_back(MetricFamily{"sockeye_adoption_sockets_skipped_total",
                             "Sockets of the --process processes found at start-up that could not "
                             "be marked for adoption (more than the adoption map holds): "
                             "connections open on them before start-up are not followed.",
                             MetricType::kCounter,
                             {{{}, static_cast<double>(probes_.adoption_sockets_skipped())}},
                             {}});
  out.push_back(MetricFamily{
      "sockeye_adoption_network_namespaces",
      "Network namespaces searched at start-up for connections that were already open (the "
      "agent's own and those of the processes it follows: containers), and those it could not "
      "enter (entering needs CAP_SYS_ADMIN); connections open there before start-up are not "
      "followed.",
      MetricType::kGauge,
      {{{{"result", "walked"}}, static_cast<double>(probes_.adoption_namespaces_walked())},
       {{{"result", "not_walked"}}, static_cast<double>(probes_.adoption_namespaces_not_walked())}},
      {}});
  out.push_back(MetricFamily{"sockeye_hot_slot_fallbacks_total",
                             "Connections that opened while the hot slot their socket cookie maps "
                             "to was taken: their per-segment state stays in socket storage, which "
                             "costs tcp_probe more per segment. Nothing is lost.",
                             MetricType::kCounter,
                             {{{}, static_cast<double>(counters[SOCKEYE_KC_HOT_SLOT_TAKEN])}},
                             {}});
  out.push_back(MetricFamily{"sockeye_iterator_records_lost_total",
                             "Adoption or sweep records the kernel could not write.",
                             MetricType::kCounter,
                             {{{}, static_cast<double>(counters[SOCKEYE_KC_SEQ_WRITE_FAILED])}},
                             {}});

  const SweepStats sweeps = probes_.sweep_stats();
  out.push_back(MetricFamily{"sockeye_sweeps_total",
                             "Sweeps of the live connections by result; a failed one may have "
                             "reported part of them, retires nothing, and the next one catches "
                             "up (the log says why); one is skipped when no connection open "
                             "now was already open at the previous one (their own records "
                             "carried everything).",
                             MetricType::kCounter,
                             {{{{"result", "ok"}}, static_cast<double>(sweeps.succeeded)},
                              {{{"result", "failed"}}, static_cast<double>(sweeps.failed)},
                              {{{"result", "skipped"}}, static_cast<double>(sweeps.skipped)}},
                             {}});
  out.push_back(MetricFamily{"sockeye_sweep_duration_seconds_total",
                             "Wall time spent in sweeps. Over iter/tcp (sockeye_probe_info "
                             "hook=\"sweep\") it grows with every TCP socket in the agent's "
                             "network namespace.",
                             MetricType::kCounter,
                             {{{}, static_cast<double>(sweeps.nanoseconds) / 1e9}},
                             {}});

  if (!probes_.bpf_stats_enabled()) return;
  MetricFamily run_time{"sockeye_bpf_program_run_time_seconds_total",
                        "Kernel time spent in each sockeye BPF program (BPF stats, --bpf-stats).",
                        MetricType::kCounter,
                        {},
                        {}};
  MetricFamily run_count{"sockeye_bpf_program_runs_total",
                         "Invocations of each sockeye BPF program (BPF stats, --bpf-stats).",
                         MetricType::kCounter,
                         {},
                         {}};
  for (const auto& s : programs) {
    run_time.samples.push_back({{{"program", s.name}}, static_cast<double>(s.run_time_ns) / 1e9});
    run_count.samples.push_back({{{"program", s.name}}, static_cast<double>(s.run_count)});
  }
  out.push_back(std::move(run_time));
  out.push_back(std::move(run_count));
}

void BuildInfoCollector::Collect(std::vector<MetricFamily>& out) {
  out.push_back(MetricFamily{"sockeye_build_info",
                             "Build of the running agent; always 1.",
                             MetricType::kGauge,
                             {{{{"version", SOCKEYE_VERSION}, {"revision", SOCKEYE_REVISION}}, 1}},
                             {}});
}

}  // namespace sockeye
