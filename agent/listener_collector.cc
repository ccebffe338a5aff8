#include "agent/listener_collector.h"

#include <dirent.h>
#include <unistd.h>

#include <map>
#include <set>
#include <stdexcept>

#include "agent/listeners.h"
#include "agent/metric_descriptors.h"
#include "agent/process_scan.h"

namespace sockeye {
namespace {

// socket:[N] inodes of the agent's own descriptors: its metrics listener is
// never a frontend.
std::set<uint64_t> OwnSocketInodes(const std::string& proc_root) {
  std::set<uint64_t> inodes;
  const std::string dir = proc_root + "/self/fd";
  DIR* d = opendir(dir.c_str());
  if (!d) return inodes;
  while (dirent* entry = readdir(d)) {
    char target[64];
    const std::string path = dir + "/" + entry->d_name;
    const ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    unsigned long long inode = 0;
    if (std::sscanf(target, "socket:[%llu]", &inode) == 1) inodes.insert(inode);
  }
  closedir(d);
  return inodes;
}

bool Wanted(const ListenerCollectorOptions& options, const Endpoint& local) {
  for (const CidrMatch& m : options.exclude)
    if (m.Contains(local)) return false;
  if (options.include.empty()) return true;
  for (const CidrMatch& m : options.include)
    if (m.Contains(local)) return true;
  return false;
}

struct Totals {
  double queue = 0, limit = 0, drops = 0;
};

}  // namespace

ListenerCollector::ListenerCollector(ListenerCollectorOptions options)
    : options_(std::move(options)) {
  ScanWanted();
}

void ListenerCollector::ScanWanted() {
  if (options_.processes.empty()) return;
  const ProcessScan scan = ScanProcesses(options_.processes, options_.proc_root, 0, 0);
  std::lock_guard lock(mutex_);
  wanted_inodes_.insert(scan.socket_inodes.begin(), scan.socket_inodes.end());
}

void ListenerCollector::Collect(std::vector<metrics::MetricFamily>& out) {
  std::vector<Listener> listeners;
  std::string error;
  if (!ReadListeners(&listeners, &error)) throw std::runtime_error("listeners: " + error);

  const std::set<uint64_t> own =
      options_.skip_own_sockets ? OwnSocketInodes(options_.proc_root) : std::set<uint64_t>{};
  ScanWanted();
  std::set<uint64_t> wanted_inodes;
  {
    std::lock_guard lock(mutex_);
    // Forget the sockets that are gone: only listeners are kept.
    std::set<uint64_t> listening;
    for (const Listener& l : listeners) listening.insert(l.inode);
    std::erase_if(wanted_inodes_, [&](uint64_t inode) { return !listening.contains(inode); });
    wanted_inodes = wanted_inodes_;
  }
  // Sockets bound to the same address and port with SO_REUSEPORT (nginx's
  // reuseport, HAProxy's per-thread listeners) are one listener to the
  // operator: their queues, limits and drops add up.
  std::map<std::string, Totals> by_label;
  for (const Listener& l : listeners) {
    if (own.contains(l.inode)) continue;
    if (!options_.processes.empty() && !wanted_inodes.contains(l.inode)) continue;
    if (!Wanted(options_, l.local)) continue;
    Totals& t = by_label[ListenerLabel(l.local)];
    t.queue += l.accept_queue;
    t.limit += l.accept_limit;
    t.drops += static_cast<double>(l.drops);
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
