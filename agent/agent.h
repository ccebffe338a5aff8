// The running agent: kernel probes feeding the aggregator on the event
// thread, the registry of collectors, and the HTTP endpoint.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agent/aggregator.h"
#include "agent/bpf_loader.h"
#include "agent/config.h"
#include "agent/listener_selection.h"
#include "exporters/http_server.h"
#include "exporters/registry.h"

namespace sockeye {

// The time from one sweep's start to the next: --sweep-interval, or, while
// sweeps are slow, long enough that they take at most 1/kSweepBudget of one
// CPU, and never more than kMaxSweepSpacing.
inline constexpr int kSweepBudget = 200;
inline constexpr std::chrono::seconds kMaxSweepSpacing{60};
std::chrono::nanoseconds SweepSpacing(std::chrono::nanoseconds configured,
                                      std::chrono::nanoseconds took);

class Agent {
  // Only Start() makes an Agent: a key nobody else can name, so that it can
  // still use std::make_unique.
  struct Key {
    explicit Key() = default;
  };

 public:
  // Loads and attaches the probes, adopts open connections and starts
  // serving. Returns nullptr with a one-line reason on failure.
  static std::unique_ptr<Agent> Start(const Config& config, std::string* error);
  explicit Agent(Key) {}
  ~Agent();

  // One turn of the event loop: waits up to timeout_ms for kernel records,
  // then runs the sweep and housekeeping that are due.
  void Tick(int timeout_ms);

  // Drains the ring buffer and sweeps now (tests; shutdown).
  void Flush(bool full_sweep);

  // Applies what can change without reloading probes (pools).
  void Reload(const Config& config);

  int http_port() const;
  Aggregator& aggregator() { return *aggregator_; }
  const BpfProbes& probes() const { return *probes_; }
  // Every family with all its series listed (metrics::Materialize), for
  // tests and tools; /metrics streams them from their sources instead.
  std::vector<metrics::MetricFamily> Gather() {
    auto families = registry_->Gather();
    for (auto& family : families) metrics::Materialize(family);
    return families;
  }

 private:
  void Sweep(bool full);
  // Hands the frontend listeners' ports to the kernel and their addresses
  // to the aggregator (listeners come and go: every sweep interval).
  void RefreshFrontends();
  // Hands the ring buffer's records to the aggregator, stamped with now.
  int DrainRecords();

  Config config_;
  std::unique_ptr<BpfProbes> probes_;
  std::shared_ptr<Aggregator> aggregator_;
  std::shared_ptr<ListenerSelection> listeners_;  // null with --frontends=false
  bool warned_listeners_ = false;
  std::shared_ptr<metrics::Registry> registry_;
  std::unique_ptr<metrics::MetricsHttpServer> server_;
  EventHandler handler_;
  std::chrono::steady_clock::time_point records_read_at_;
  std::chrono::steady_clock::time_point next_sweep_;
  std::chrono::steady_clock::time_point next_maintenance_;
  std::chrono::steady_clock::time_point last_full_sweep_;
  bool sweeps_stretched_ = false;  // the last sweep's spacing exceeded --sweep-interval
  std::atomic<int64_t> last_tick_ns_{0};
};

}  // namespace sockeye
