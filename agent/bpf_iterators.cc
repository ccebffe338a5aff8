// BpfProbes' iterators: the adoption walk over the connections open at
// start-up (in every network namespace a wanted process lives in) and the
// periodic sweep. Both are read() to the end like a file.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "agent/bpf_probes_state.h"
#include "agent/errno_text.h"
#include "agent/log.h"
#include "agent/process_scan.h"
#include "sockeye.skel.h"

namespace sockeye {
namespace {

// Deletes every entry. The keys are listed first and deleted after: asking
// for the first key again after each delete would rescan the emptied
// buckets every time (65,536 of them here).
void ClearHashMap(int map_fd, size_t key_size) {
  std::vector<unsigned char> keys;
  std::vector<unsigned char> key(key_size);
  const void* previous = nullptr;
  while (bpf_map_get_next_key(map_fd, previous, key.data()) == 0) {
    keys.insert(keys.end(), key.begin(), key.end());
    previous = keys.data() + keys.size() - key_size;
  }
  for (size_t at = 0; at < keys.size(); at += key_size) bpf_map_delete_elem(map_fd, &keys[at]);
}

// Makes an iterator from `link`; invalid with the reason in *error.
UniqueFd CreateIterator(bpf_link* link, std::string* error) {
  UniqueFd fd(bpf_iter_create(bpf_link__fd(link)));
  if (!fd.valid()) *error = "creating an iterator failed: " + ErrnoText(errno);
  return fd;
}

// Reads an iterator to the end; records may straddle read() boundaries.
bool DrainIterator(const UniqueFd& fd, const EventHandler& handler, std::string* error) {
  std::vector<char> buffer(64 * sizeof(sockeye_event));
  size_t filled = 0;
  for (;;) {
    ssize_t n = read(fd.get(), buffer.data() + filled, buffer.size() - filled);
    if (n < 0) {
      // EAGAIN: the kernel visited a million objects (iter/tcp counts every
      // socket) without output; the next read goes on from there.
      if (errno == EINTR || errno == EAGAIN) continue;
      *error = "reading an iterator failed: " + ErrnoText(errno);
      return false;
    }
    if (n == 0) break;
    filled += static_cast<size_t>(n);
    size_t offset = 0;
    for (; offset + sizeof(sockeye_event) <= filled; offset += sizeof(sockeye_event)) {
      sockeye_event event;
      std::memcpy(&event, buffer.data() + offset, sizeof(event));
      handler(event);
    }
    std::memmove(buffer.data(), buffer.data() + offset, filled - offset);
    filled -= offset;
  }
  // Bytes that do not make a whole record (never written by this build's
  // programs) reach the aggregator as kind 0, which it counts as malformed.
  if (filled > 0) handler(sockeye_event{});
  return true;
}

bool DrainIterator(bpf_link* link, const EventHandler& handler, std::string* error) {
  const UniqueFd fd = CreateIterator(link, error);
  return fd.valid() && DrainIterator(fd, handler, error);
}

}  // namespace

bool BpfProbes::AdoptOpenConnections(const EventHandler& handler, std::string* error) {
  NetworkNamespace own;
  if (!OpenOwnNetworkNamespace(&own)) {
    *error = "opening /proc/thread-self/ns/net failed: " + ErrnoText(errno);
    return false;
  }
  ProcessScan scan = ScanProcesses(state_->processes, "/proc", own.device, own.inode);
  if (!state_->processes.empty()) {
    int map_fd = bpf_map__fd(state_->skel->maps.adopt_inodes);
    __u8 one = 1;
    for (uint64_t ino : scan.socket_inodes) {
      __u64 key = ino;
      if (bpf_map_update_elem(map_fd, &key, &one, BPF_ANY) != 0) ++state_->adoption_sockets_skipped;
    }
    if (state_->adoption_sockets_skipped > 0) {
      LogWarn(std::to_string(state_->adoption_sockets_skipped) +
              " sockets of the --process processes could not be marked for adoption (" +
              std::to_string(bpf_map__max_entries(state_->skel->maps.adopt_inodes)) +
              " at most): connections open on them before start-up are not followed");
    }
  }
  const int listen_ports_fd = bpf_map__fd(state_->skel->maps.listen_ports);
  if (!DrainIterator(state_->adopt_link.get(), handler, error)) return false;
  ++state_->adoption_namespaces_walked;
  std::string refusal;
  for (const auto& ns : scan.other_namespaces) {
    // Listening ports tell accepted connections from outgoing ones, and
    // each namespace has its own.
    ClearHashMap(listen_ports_fd, sizeof(__u16));
    UniqueFd iterator;
    bool entered = false;
    std::string failure = InNetworkNamespace(
        ns, own, &entered, [&] { iterator = CreateIterator(state_->adopt_link.get(), error); });
    if (!failure.empty() && entered) {  // in, but not back out
      *error = failure;
      return false;
    }
    if (!failure.empty()) {
      ++state_->adoption_namespaces_not_walked;
      refusal = failure;
      continue;
    }
    if (!iterator.valid() || !DrainIterator(iterator, handler, error)) return false;
    ++state_->adoption_namespaces_walked;
  }
  if (state_->adoption_namespaces_not_walked > 0) {
    LogWarn(std::to_string(state_->adoption_namespaces_not_walked) + " network namespaces of " +
            (state_->processes.empty() ? "this host's processes" : "the --process processes") +
            " (containers) were not searched for connections open before start-up: " + refusal +
            ". Those connections are not followed; new ones are.");
  }
  if (scan.namespaces_unreadable > 0) {
    LogWarn("the network namespace of " + std::to_string(scan.namespaces_unreadable) +
            " processes could not be read (" + scan.first_unreadable +
            (scan.namespaces_unreadable > 1 ? ", and others" : "") +
            "; other users' processes need CAP_SYS_PTRACE): connections open in other "
            "namespaces before start-up may not be followed");
  }
  // Needed only for this walk; emptied, they hold no kernel memory.
  ClearHashMap(listen_ports_fd, sizeof(__u16));
  ClearHashMap(bpf_map__fd(state_->skel->maps.adopt_inodes), sizeof(__u64));
  return true;
}

uint64_t BpfProbes::adoption_sockets_skipped() const { return state_->adoption_sockets_skipped; }
uint64_t BpfProbes::adoption_namespaces_walked() const {
  return state_->adoption_namespaces_walked;
}
uint64_t BpfProbes::adoption_namespaces_not_walked() const {
  return state_->adoption_namespaces_not_walked;
}

bool BpfProbes::Sweep(bool all, const EventHandler& handler, std::string* error) {
  state_->skel->bss->sweep_all = all ? 1 : 0;
  const auto start = std::chrono::steady_clock::now();
  const bool ok = DrainIterator(state_->sweep_link.get(), handler, error);
  state_->sweep_nanoseconds += static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count());
  ++(ok ? state_->sweeps_succeeded : state_->sweeps_failed);
  return ok;
}

SweepStats BpfProbes::sweep_stats() const {
  return {state_->sweeps_succeeded.load(), state_->sweeps_failed.load(),
          state_->sweeps_skipped.load(), state_->sweep_nanoseconds.load(),
          state_->sweep_spacing_nanoseconds.load()};
}

void BpfProbes::NoteSweepSkipped() { ++state_->sweeps_skipped; }

void BpfProbes::NoteSweepSpacing(std::chrono::nanoseconds spacing) {
  state_->sweep_spacing_nanoseconds = static_cast<uint64_t>(spacing.count());
}

}  // namespace sockeye
