// Per-listener saturation of the proxy's client side: the accept queue and
// its limit now, and the connections each listener dropped because a queue
// was full. Read from the kernel's socket diagnostics at each scrape
// (agent/listeners.h); no BPF program is involved.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/listener_selection.h"
#include "exporters/metric_model.h"

namespace sockeye {

class ListenerCollector : public metrics::Collector {
 public:
  explicit ListenerCollector(std::shared_ptr<ListenerSelection> selection);
  // Throws std::runtime_error when the kernel cannot be asked (the registry
  // counts it in sockeye_collector_errors_total and serves the rest).
  void Collect(std::vector<metrics::MetricFamily>& out) override;

 private:
  const std::shared_ptr<ListenerSelection> selection_;
  // listen_drops_total must not go down when one of several SO_REUSEPORT
  // sockets of a listener closes (a worker restart): each socket's last
  // count, and what closed sockets had counted, by label.
  std::mutex mutex_;
  std::map<uint64_t, std::pair<std::string, uint64_t>> drops_by_inode_;
  std::map<std::string, uint64_t> closed_drops_;
};

}  // namespace sockeye
