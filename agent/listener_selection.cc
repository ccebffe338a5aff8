#include "agent/listener_selection.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <utility>

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

bool Wanted(const ListenerSelectionOptions& options, const Endpoint& local) {
  for (const CidrMatch& m : options.exclude)
    if (m.Contains(local)) return false;
  if (options.include.empty()) return true;
  for (const CidrMatch& m : options.include)
    if (m.Contains(local)) return true;
  return false;
}

}  // namespace

ListenerSelection::ListenerSelection(ListenerSelectionOptions options)
    : options_(std::move(options)) {
  ScanWanted();
}

void ListenerSelection::ScanWanted() {
  if (options_.processes.empty()) return;
  const ProcessScan scan = ScanProcesses(options_.processes, options_.proc_root, 0, 0);
  std::lock_guard lock(mutex_);
  wanted_inodes_.insert(scan.socket_inodes.begin(), scan.socket_inodes.end());
}

bool ListenerSelection::Select(std::vector<Listener>* out, std::string* error) {
  std::vector<Listener> listeners;
  if (!ReadListeners(&listeners, error)) return false;

  const std::set<uint64_t> own =
      options_.skip_own_sockets ? OwnSocketInodes(options_.proc_root) : std::set<uint64_t>{};
  std::set<uint64_t> wanted_inodes;
  if (!options_.processes.empty()) {
    // /proc is walked again only when a listener appeared that no scan has
    // placed yet: listeners are few and change rarely, processes' fds often.
    bool unknown = false;
    {
      std::lock_guard lock(mutex_);
      for (const Listener& l : listeners) unknown |= !placed_inodes_.contains(l.inode);
    }
    if (unknown) ScanWanted();
    std::lock_guard lock(mutex_);
    // Forget the sockets that are gone: only listeners are kept.
    std::set<uint64_t> listening;
    for (const Listener& l : listeners) listening.insert(l.inode);
    std::erase_if(wanted_inodes_, [&](uint64_t inode) { return !listening.contains(inode); });
    if (unknown)
      placed_inodes_ = listening;
    else
      std::erase_if(placed_inodes_, [&](uint64_t inode) { return !listening.contains(inode); });
    wanted_inodes = wanted_inodes_;
  }
  out->clear();
  for (const Listener& l : listeners) {
    if (own.contains(l.inode)) continue;
    if (!options_.processes.empty() && !wanted_inodes.contains(l.inode)) continue;
    if (!Wanted(options_, l.local)) continue;
    out->push_back(l);
  }
  return true;
}

}  // namespace sockeye
