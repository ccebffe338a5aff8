// Which of the host's TCP listeners are frontends: every listener, or those
// the --process processes hold, narrowed by --frontend-include and
// --frontend-exclude; never the agent's own. Shared by the saturation
// collector (agent/listener_collector.h) and the agent, which hands the
// chosen listeners' ports to the kernel so that their accepted connections
// are followed.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/address.h"
#include "agent/listeners.h"

namespace sockeye {

struct ListenerSelectionOptions {
  // Only listeners these processes hold (comm); every listener when empty.
  std::vector<std::string> processes;
  // A listener is kept when it matches an include (or there is none) and no
  // exclude. Matched on the bound address and port.
  std::vector<CidrMatch> include;
  std::vector<CidrMatch> exclude;
  std::string proc_root = "/proc";
  // Leave out the listening sockets this process holds: the agent's own
  // metrics endpoint is never a frontend (tests that listen themselves
  // turn it off).
  bool skip_own_sockets = true;
};

class ListenerSelection {
 public:
  // With --process, scans the processes' sockets once now: the agent makes
  // it before it drops its capabilities, after which other users'
  // /proc/PID/fd may no longer be readable.
  explicit ListenerSelection(ListenerSelectionOptions options);

  // The chosen listeners now. False and *error when the kernel cannot be
  // asked (agent/listeners.h). Thread-safe.
  bool Select(std::vector<Listener>* out, std::string* error);

  const ListenerSelectionOptions& options() const { return options_; }

 private:
  // Adds the --process processes' sockets to wanted_inodes_.
  void ScanWanted();

  const ListenerSelectionOptions options_;
  std::mutex mutex_;
  // The --process processes' sockets seen by any scan so far: later scans
  // without capabilities see only what they may read, and a listener seen
  // once stays wanted while it exists (inodes are not reused while the
  // socket is open).
  std::set<uint64_t> wanted_inodes_;
  // The listeners there were at the last scan, wanted or not.
  std::set<uint64_t> placed_inodes_;
};

}  // namespace sockeye
