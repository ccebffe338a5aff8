// Per-listener saturation of the proxy's client side: the accept queue and
// its limit now, and the connections each listener dropped because a queue
// was full. Read from the kernel's socket diagnostics at each scrape
// (agent/listeners.h); no BPF program is involved.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/address.h"
#include "exporters/metric_model.h"

namespace sockeye {

struct ListenerCollectorOptions {
  // Only listeners these processes hold (comm); every listener when empty.
  std::vector<std::string> processes;
  // Listener filters: a listener is kept when it matches an include (or
  // there is none) and no exclude. Matched on the bound address and port.
  std::vector<CidrMatch> include;
  std::vector<CidrMatch> exclude;
  std::string proc_root = "/proc";
  // Leave out the listening sockets this process holds: the agent's own
  // metrics endpoint is never a frontend (tests that listen themselves
  // turn it off).
  bool skip_own_sockets = true;
};

class ListenerCollector : public metrics::Collector {
 public:
  // With --process, scans the processes' sockets once now: the agent calls
  // it before it drops its capabilities, after which other users'
  // /proc/PID/fd may no longer be readable.
  explicit ListenerCollector(ListenerCollectorOptions options);
  // Throws std::runtime_error when the kernel cannot be asked (the registry
  // counts it in sockeye_collector_errors_total and serves the rest).
  void Collect(std::vector<metrics::MetricFamily>& out) override;

 private:
  // The --process processes' sockets seen by any scan so far: later scans
  // without capabilities see only what they may read, and a listener seen
  // once stays wanted while it exists (inodes are not reused while the
  // socket is open).
  void ScanWanted();

  ListenerCollectorOptions options_;
  std::mutex mutex_;
  std::set<uint64_t> wanted_inodes_;
};

}  // namespace sockeye
