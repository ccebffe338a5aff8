// Test helpers for the aggregator tests: records as the kernel writes them,
// and a scrape flattened into a map.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "agent/aggregator.h"
#include "exporters/text_format.h"

namespace sockeye::aggregator_test_util {

using Clock = Aggregator::Clock;

inline sockeye_endpoint V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
  sockeye_endpoint e{};
  e.addr[10] = 0xff;
  e.addr[11] = 0xff;
  e.addr[12] = a;
  e.addr[13] = b;
  e.addr[14] = c;
  e.addr[15] = d;
  e.port = port;
  return e;
}

inline sockeye_event Event(uint8_t kind, uint64_t conn_id, sockeye_endpoint backend) {
  sockeye_event e{};
  e.kind = kind;
  e.conn_id = conn_id;
  e.backend = backend;
  return e;
}

// The families with their sources' series listed instead (per-backend
// series come from sources).
inline std::vector<metrics::MetricFamily> Listed(std::vector<metrics::MetricFamily> families) {
  for (auto& f : families) metrics::Materialize(f);
  return families;
}

// Flattens a scrape into "family{labels}" -> value for counters/gauges and
// "family_count{labels}" / "family_sum{labels}" for histograms.
inline std::map<std::string, double> Scrape(Aggregator& agg) {
  std::vector<metrics::MetricFamily> collected;
  agg.Collect(collected);
  const auto families = Listed(std::move(collected));
  std::map<std::string, double> out;
  auto key = [](const std::string& name, const metrics::Labels& labels) {
    std::string k = name + "{";
    for (size_t i = 0; i < labels.size(); ++i)
      k += (i ? "," : "") + labels[i].name + "=" + labels[i].value;
    return k + "}";
  };
  for (const auto& f : families) {
    for (const auto& s : f.samples) out[key(f.name, s.labels)] = s.value;
    for (const auto& h : f.histograms) {
      out[key(f.name + "_count", h.labels)] = static_cast<double>(h.count);
      out[key(f.name + "_sum", h.labels)] = h.sum;
    }
  }
  return out;
}

inline AggregatorOptions SmallOptions(size_t max_backends = 10) {
  AggregatorOptions o;
  o.max_backends = max_backends;
  o.backend_idle_timeout = std::chrono::seconds(60);
  o.closed_connection_memory = std::chrono::seconds(30);
  return o;
}
}  // namespace sockeye::aggregator_test_util
