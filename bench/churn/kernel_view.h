// The kernel side of the agent: its BPF maps (fdinfo), the live entries of
// its socket-storage map, and host-wide TCP and slab figures.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

struct churn_count_bpf;  // churn_count.skel.h

namespace sockeye::bench::churn {

struct MapInfo {
  uint32_t id = 0;
  uint32_t type = 0;
  std::string name;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint64_t memlock = 0;
};

const char* MapTypeName(uint32_t type);

// Every map the agent holds an fd for, from /proc/PID/fdinfo (memlock is the
// kernel's own accounting: map_mem_usage()).
std::vector<MapInfo> AgentMaps(pid_t pid);

// Live entries of a socket-storage map, by walking it with an iterator:
// the map's own where the kernel allows map-element iterators, else TCP's
// hash tables (sockets unhashed but not yet freed are then missed; Method()
// says which).
class StorageCounter {
 public:
  StorageCounter() = default;
  StorageCounter(const StorageCounter&) = delete;
  StorageCounter& operator=(const StorageCounter&) = delete;
  ~StorageCounter() { Unload(); }
  const char* Method() const { return hashed_only_ ? "iter/tcp, hashed sockets only" : "map"; }
  // Live entries of map `map_id`, or -1 when it cannot be counted.
  long long Count(uint32_t map_id);

 private:
  // The map iterator first; if the kernel refuses it, the iter/tcp walk
  // with the agent's map in place of the object's own.
  bool LoadFor(uint32_t map_id, int map_fd);
  void Unload();

  churn_count_bpf* skel_ = nullptr;
  uint32_t loaded_for_ = 0;
  uint32_t failed_for_ = 0;
  bool hashed_only_ = false;
};

// What one socket-storage element costs the kernel, from its BTF: the
// element (header + value) and, once per socket, the storage that links a
// socket's elements, each rounded up to its kmalloc size class. Charged to
// the socket (sk_omem_alloc), not to the map, so memlock leaves it out.
struct StorageCost {
  long elem_header = 0;
  long per_socket = 0;
  long Bytes(uint32_t value_size) const {
    if (elem_header <= 0) return 0;
    return KmallocClass(elem_header + long(value_size)) + KmallocClass(per_socket);
  }
  static long KmallocClass(long n) {
    if (n <= 0) return 0;
    if (n <= 8) return 8;
    if (n > 64 && n <= 96) return 96;
    if (n > 128 && n <= 192) return 192;
    long c = 8;
    while (c < n) c *= 2;
    return c;
  }
};

StorageCost ReadStorageCost();

// Host-wide context: TCP sockets (inuse, TIME_WAIT) and slab memory.
struct HostStats {
  long tcp_inuse = 0;
  long tcp_tw = 0;
  double slab_mb = 0;
};

HostStats ReadHost();

struct KernelView {
  uint64_t memlock = 0;
  long long storage_entries = -1;
  uint32_t storage_value_size = 0;
};

// The agent's socket-storage map (per-connection state).
const MapInfo* StorageMap(const std::vector<MapInfo>& maps);
KernelView ReadKernel(pid_t pid, StorageCounter& counter);
// Prints every map of the agent with its memlock, and their total.
void PrintMaps(pid_t pid);

}  // namespace sockeye::bench::churn
