#include "agent/listener_collector.h"

#include <map>
#include <stdexcept>
#include <string>
#include <utility>

#include "agent/listeners.h"
#include "agent/metric_descriptors.h"

namespace sockeye {
namespace {

struct Totals {
  double queue = 0, limit = 0, drops = 0;
};

}  // namespace

ListenerCollector::ListenerCollector(std::shared_ptr<ListenerSelection> selection)
    : selection_(std::move(selection)) {}

void ListenerCollector::Collect(std::vector<metrics::MetricFamily>& out) {
  std::vector<Listener> listeners;
  std::string error;
  if (!selection_->Select(&listeners, &error)) throw std::runtime_error("listeners: " + error);

  // Sockets bound to the same address and port with SO_REUSEPORT (nginx's
  // reuseport, HAProxy's per-thread listeners) are one listener to the
  // operator: their queues, limits and drops add up.
  std::map<std::string, Totals> by_label;
  std::map<uint64_t, std::pair<std::string, uint64_t>> drops_by_inode;
  for (const Listener& l : listeners) {
    const std::string label = ListenerLabel(l.local);
    Totals& t = by_label[label];
    t.queue += l.accept_queue;
    t.limit += l.accept_limit;
    t.drops += static_cast<double>(l.drops);
    drops_by_inode[l.inode] = {label, l.drops};
  }
  {
    std::lock_guard lock(mutex_);
    for (const auto& [inode, last] : drops_by_inode_)
      if (!drops_by_inode.contains(inode)) closed_drops_[last.first] += last.second;
    drops_by_inode_ = std::move(drops_by_inode);
    // A listener whose sockets have all closed is gone, series and all; a
    // new one at its address starts afresh, as after a restart.
    std::erase_if(closed_drops_,
                  [&](const auto& entry) { return !by_label.contains(entry.first); });
    for (const auto& [label, drops] : closed_drops_)
      by_label[label].drops += static_cast<double>(drops);
  }

  namespace f = families;
  auto queue = metrics::MakeFamily(f::kFrontendAcceptQueueLength);
  auto limit = metrics::MakeFamily(f::kFrontendAcceptQueueLimit);
  auto drops = metrics::MakeFamily(f::kFrontendListenDrops);
  for (const auto& [label, t] : by_label) {
    const metrics::Labels labels{{"listener", label}};
    queue.samples.push_back({labels, t.queue});
    limit.samples.push_back({labels, t.limit});
    drops.samples.push_back({labels, t.drops});
  }
  out.push_back(std::move(queue));
  out.push_back(std::move(limit));
  out.push_back(std::move(drops));
}

}  // namespace sockeye
