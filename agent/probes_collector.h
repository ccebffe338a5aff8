// Self-metrics of the kernel side: what was attached where, what the
// kernel could not deliver, and what the programs cost.
#pragma once

#include "agent/bpf_loader.h"
#include "agent/missed_runs.h"
#include "exporters/metric_model.h"

namespace sockeye {

class ProbesCollector : public metrics::Collector {
 public:
  explicit ProbesCollector(const BpfProbes& probes) : probes_(probes) {}
  void Collect(std::vector<metrics::MetricFamily>& out) override;

 private:
  const BpfProbes& probes_;
  MissedRunsCounter missed_runs_;
};

// sockeye_build_info{version,revision} 1
class BuildInfoCollector : public metrics::Collector {
 public:
  void Collect(std::vector<metrics::MetricFamily>& out) override;
};

}  // namespace sockeye
