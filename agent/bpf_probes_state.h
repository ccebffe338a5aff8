// What a loaded BpfProbes holds, shared by the files that implement it
// (bpf_loader.cc, load_sequence.cc, bpf_iterators.cc, kernel_stats.cc):
// the skeleton with its links, ring buffer reader and statistics fd, each
// released by its owner, and what was chosen and counted.
#pragma once

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/bpf_loader.h"
#include "agent/status_cast.h"
#include "agent/unique_fd.h"

struct sockeye_bpf;

namespace sockeye {

struct SkeletonDeleter {
  void operator()(sockeye_bpf* skel) const;  // in load_sequence.cc, with the skeleton's code
};
struct LinkDeleter {
  void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};
struct RingBufferDeleter {
  void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};
struct BtfDeleter {
  void operator()(btf* b) const { btf__free(b); }
};
using SkeletonPtr = std::unique_ptr<sockeye_bpf, SkeletonDeleter>;
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;
using RingBufferPtr = std::unique_ptr<ring_buffer, RingBufferDeleter>;
using BtfPtr = std::unique_ptr<btf, BtfDeleter>;

// Members are destroyed last to first: the statistics fd, the reader and the
// links go before the skeleton whose programs and maps they use.
struct BpfProbes::State {
  SkeletonPtr skel;
  StatusCastPtr status_cast;  // the status program's object of its own, when it runs
  std::vector<LinkPtr> links;
  LinkPtr adopt_link;
  LinkPtr sweep_link;
  RingBufferPtr ring;
  UniqueFd stats_fd;
  std::vector<ProbeChoice> probes;
  std::vector<std::string> unavailable;
  // Why the status program runs as its main-object build, for --check; empty
  // when the other runs, or neither.
  std::string status_fallback;
  std::string btf_source;
  std::string hot_slots_summary;
  std::vector<std::string> processes;
  uint64_t adoption_sockets_skipped = 0;
  uint64_t adoption_namespaces_walked = 0;
  uint64_t adoption_namespaces_not_walked = 0;
  std::atomic<uint64_t> sweeps_succeeded{0};
  std::atomic<uint64_t> sweeps_failed{0};
  std::atomic<uint64_t> sweeps_skipped{0};
  std::atomic<uint64_t> sweep_nanoseconds{0};
  std::atomic<uint64_t> sweep_spacing_nanoseconds{0};
  const EventHandler* handler = nullptr;  // set for the duration of DrainRecords()
  int possible_cpus = 1;
};

}  // namespace sockeye
