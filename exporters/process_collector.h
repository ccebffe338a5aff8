// The standard Prometheus process_* metrics of the agent itself.
#pragma once

#include <string>
#include <vector>

#include "exporters/metric_model.h"

namespace sockeye::metrics {

// Reads, on every Collect:
//   <proc_self_dir>/stat    utime, stime, num_threads, starttime, vsize, rss
//   <proc_self_dir>/limits  "Max open files" soft limit
//   <proc_self_dir>/fd/     entries = open descriptors
//   <proc_stat_path>        btime (boot time)
// and exports process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_start_time_seconds,
// process_open_fds, process_max_fds and process_threads.
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
