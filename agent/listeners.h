// The host's TCP listeners as the kernel's socket diagnostics report them
// (NETLINK_SOCK_DIAG, the interface `ss -ltn` uses): for each listening
// socket its bound address, accept queue and the connections it dropped.
// One dump per address family; listeners are few, so reading them at every
// scrape costs microseconds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/address.h"

namespace sockeye {

struct Listener {
  Endpoint local;              // as bound: 0.0.0.0 / :: for wildcards
  uint32_t accept_queue = 0;   // connections completed and not yet accepted
  uint32_t accept_limit = 0;   // the backlog listen() was given (after the somaxconn cap)
  uint64_t drops = 0;          // sk_drops: SYNs and handshakes dropped (queue full)
  uint64_t inode = 0;          // socket:[N], to tell whose it is
};

// The listeners of the calling thread's network namespace, or false and
// *error naming the step that failed.
bool ReadListeners(std::vector<Listener>* out, std::string* error);

// The label value of a listener: "0.0.0.0:80", "127.0.0.1:8080",
// "[::]:443", "[2001:db8::1]:443".
std::string ListenerLabel(const Endpoint& local);

}  // namespace sockeye
