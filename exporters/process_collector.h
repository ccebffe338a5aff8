// The standard Prometheus process_* metrics of the agent itself.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "exporters/metric_model.h"

namespace sockeye::metrics {

// The families, declared once (docs/metrics.md lists them).
inline constexpr MetricDescriptor kProcessCpuSeconds{
    .name = "process_cpu_seconds_total",
    .type = MetricType::kCounter,
    .help = "Total user and system CPU time spent in seconds."};
inline constexpr MetricDescriptor kProcessResidentMemory{.name = "process_resident_memory_bytes",
                                                         .type = MetricType::kGauge,
                                                         .help = "Resident memory size in bytes."};
inline constexpr MetricDescriptor kProcessVirtualMemory{.name = "process_virtual_memory_bytes",
                                                        .type = MetricType::kGauge,
                                                        .help = "Virtual memory size in bytes."};
inline constexpr MetricDescriptor kProcessStartTime{
    .name = "process_start_time_seconds",
    .type = MetricType::kGauge,
    .help = "Start time of the process since unix epoch in seconds."};
inline constexpr MetricDescriptor kProcessOpenFds{.name = "process_open_fds",
                                                  .type = MetricType::kGauge,
                                                  .help = "Number of open file descriptors."};
inline constexpr MetricDescriptor kProcessMaxFds{
    .name = "process_max_fds",
    .type = MetricType::kGauge,
    .help = "Maximum number of open file descriptors."};
inline constexpr MetricDescriptor kProcessThreads{.name = "process_threads",
                                                  .type = MetricType::kGauge,
                                                  .help = "Number of OS threads in the process."};

// In the order a scrape lists them.
inline constexpr std::array kProcessFamilies = {
    &kProcessCpuSeconds, &kProcessResidentMemory, &kProcessVirtualMemory, &kProcessStartTime,
    &kProcessOpenFds,    &kProcessMaxFds,         &kProcessThreads,
};

// Reads, on every Collect:
//   <proc_self_dir>/stat    utime, stime, num_threads, starttime, vsize, rss
//   <proc_self_dir>/limits  "Max open files" soft limit
//   <proc_self_dir>/fd/     entries = open descriptors
//   <proc_stat_path>        btime (boot time)
// and exports kProcessFamilies.
// A missing, unreadable or malformed file throws std::runtime_error naming
// it; the Registry counts that and the scrape goes on without these metrics.
class ProcessCollector : public Collector {
 public:
  explicit ProcessCollector(std::string proc_self_dir = "/proc/self",
                            std::string proc_stat_path = "/proc/stat");

  void Collect(std::vector<MetricFamily>& out) override;

 private:
  const std::string proc_self_dir_;
  const std::string proc_stat_path_;
  const double ticks_per_second_;
  const double page_size_bytes_;
};

}  // namespace sockeye::metrics
