#include "exporters/registry.h"

#include <cstddef>
#include <iterator>
#include <string>
#include <unordered_map>
#include <utility>

#include "exporters/text_format.h"

namespace sockeye::metrics {
namespace {

template <typename T>
void AppendMoved(std::vector<T>& to, std::vector<T>& from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

}  // namespace

void Registry::Register(std::shared_ptr<Collector> collector) {
  if (!collector) return;
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::vector<MetricFamily> Registry::Gather() {
  // Collectors run outside the lock so a slow one never blocks Register and
  // concurrent scrapes do not serialize on each other.
  std::vector<std::shared_ptr<Collector>> collectors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    collectors = collectors_;
  }

  std::vector<MetricFamily> out;
  std::unordered_map<std::string, size_t> index_by_name;
  for (const auto& collector : collectors) {
    // Each collector fills its own vector so a failure half-way through
    // leaves no partial output behind.
    std::vector<MetricFamily> families;
    try {
      collector->Collect(families);
    } catch (...) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    for (MetricFamily& family : families) {
      auto [it, inserted] = index_by_name.try_emplace(family.name, out.size());
      if (inserted) {
        out.push_back(std::move(family));
        continue;
      }
      MetricFamily& existing = out[it->second];
      if (existing.type != family.type) {
        errors_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      AppendMoved(existing.samples, family.samples);
      AppendMoved(existing.histograms, family.histograms);
      AppendMoved(existing.sample_sources, family.sample_sources);
      AppendMoved(existing.histogram_sources, family.histogram_sources);
    }
  }

  MetricFamily errors = MakeFamily(kCollectorErrors);
  errors.samples.push_back(
      {{}, static_cast<double>(errors_.load(std::memory_order_relaxed) + SeriesSourceFailures())});
  out.push_back(std::move(errors));
  return out;
}

}  // namespace sockeye::metrics
