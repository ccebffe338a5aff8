// Scraping the agent: one HTTP GET decoded (chunks, gzip), the metrics
// summed by name, and scrapes repeated until the agent's counts arrived.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <unordered_map>

#include "bench/churn/agent_process.h"
#include "bench/churn/common.h"

namespace sockeye::bench::churn {

struct Fetched {
  bool ok = false;
  int status = 0;
  size_t wire_bytes = 0;  // body as sent (compressed when gzip)
  std::string body;       // decoded
  double ms = 0;
  std::string error;
};

// One HTTP/1.1 GET with Connection: close, from 127.0.0.1 to the agent.
Fetched Fetch(uint16_t port, const std::string& path, bool gzip, bool openmetrics);

// Sums of every metric (label sets added up), the (overflow) backend's
// values, and the number of series per metric.
struct Metrics {
  bool ok = false;
  std::string error;
  double scrape_ms = 0;
  double text_mb = 0;
  double wire_mb = 0;
  std::unordered_map<std::string, double> sum;
  std::unordered_map<std::string, double> overflow;
  std::unordered_map<std::string, size_t> series;

  double Sum(const std::string& name) const {
    auto it = sum.find(name);
    return it == sum.end() ? 0 : it->second;
  }
  double Overflow(const std::string& name) const {
    auto it = overflow.find(name);
    return it == overflow.end() ? 0 : it->second;
  }
  bool Has(const std::string& name) const { return sum.count(name) != 0; }
  size_t Series(const std::string& name) const {
    auto it = series.find(name);
    return it == series.end() ? 0 : it->second;
  }
};

Metrics Parse(const Fetched& f);
Metrics Scrape(uint16_t port, bool gzip = true, bool openmetrics = false);

// Polls /healthz until it answers 200, the agent exits or `seconds` pass.
bool WaitReady(AgentProcess& agent, uint16_t port, double seconds);

// The agent reports asynchronously (ring buffer, a sweep every second), so
// exact checks scrape until what they compare has arrived. Bounded, so that
// a count that never arrives still reaches its check and fails there.
constexpr auto kSettleTimeout = std::chrono::seconds(15);
constexpr auto kSettlePoll = std::chrono::milliseconds(200);

// Scrapes until `settled` holds for a successful scrape, the agent exits or
// kSettleTimeout passes; returns the last scrape. `scrapes` counts them.
template <typename Settled>
Metrics ScrapeUntil(AgentProcess& agent, uint16_t port, bool gzip, bool openmetrics,
                    Settled settled, int* scrapes = nullptr) {
  const auto deadline = Clock::now() + kSettleTimeout;
  for (;;) {
    Metrics m = Scrape(port, gzip, openmetrics);
    if (scrapes) ++*scrapes;
    if ((m.ok && settled(m)) || Clock::now() >= deadline || !agent.Alive()) return m;
    std::this_thread::sleep_for(kSettlePoll);
  }
}

// Events, iterator records and turns the agent lost.
double LostTotal(const Metrics& m);
void PrintAgentCounters(const Metrics& m);

}  // namespace sockeye::bench::churn
