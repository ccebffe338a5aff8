// What adoption needs to know about the host's processes at start-up: the
// sockets the --process processes hold, and the network namespaces to walk.
//
// The adoption iterator (iter/tcp) only visits sockets of the network
// namespace its creator's thread is in (bpf_iter_init_seq_net() takes
// current->nsproxy->net_ns when the iterator is created), while the
// tracepoints follow connects in every namespace. A proxy in a container has
// a namespace of its own, so the agent creates one iterator inside each
// namespace a wanted process lives in (InNetworkNamespace()).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/unique_fd.h"

namespace sockeye {

struct NetworkNamespace {
  uint64_t device = 0;  // st_dev and st_ino of /proc/PID/ns/net: the
  uint64_t inode = 0;   // namespace's identity
  UniqueFd fd;          // open, it keeps the namespace alive until walked
};

struct ProcessScan {
  // socket:[N] inodes in /proc/PID/fd of the processes whose comm is in
  // `comms`; empty when `comms` is empty (every socket is a candidate then).
  std::vector<uint64_t> socket_inodes;
  // Distinct network namespaces of those processes (of every process when
  // `comms` is empty), not counting the one identified by own_device/own_inode.
  std::vector<NetworkNamespace> other_namespaces;
  // Processes whose namespace could not be read: /proc/PID/ns/net needs
  // ptrace access (CAP_SYS_PTRACE for other users' processes, and some are
  // protected even from root, such as a sandbox's init). Processes that exit
  // during the scan are not counted.
  uint64_t namespaces_unreadable = 0;
  std::string first_unreadable;  // "/proc/1/ns/net: Permission denied"
};

// Scans `proc_root` (normally "/proc").
ProcessScan ScanProcesses(const std::vector<std::string>& comms, const std::string& proc_root,
                          uint64_t own_device, uint64_t own_inode);

// The calling thread's own network namespace, to return to; false with
// errno set when /proc/thread-self/ns/net cannot be opened.
bool OpenOwnNetworkNamespace(NetworkNamespace* own);

// setns(2) into the network namespace open as `ns_fd`; "" or why not
// (`which` starts the message: "entering", "returning to ...").
std::string SwitchNetworkNamespace(int ns_fd, const char* which);

// Moves the calling thread into `ns`, runs `inside`, and moves it back to
// `own`. Returns "" on success. Otherwise the reason, and `*entered` says
// whether the thread got in (entering needs CAP_SYS_ADMIN and is refused
// under seccomp policies such as systemd's RestrictNamespaces=). A failure
// to get back is returned with *entered true: the caller must then stop,
// because every socket the thread creates from then on would live in the
// other namespace.
template <typename Inside>
std::string InNetworkNamespace(const NetworkNamespace& ns, const NetworkNamespace& own,
                               bool* entered, Inside&& inside) {
  *entered = false;
  std::string error = SwitchNetworkNamespace(ns.fd.get(), "entering");
  if (!error.empty()) return error;
  *entered = true;
  inside();
  return SwitchNetworkNamespace(own.fd.get(), "returning to the agent's own");
}

}  // namespace sockeye
