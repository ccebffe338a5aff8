#include "bench/churn/kernel_view.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

#include "bench/churn/common.h"
#include "churn_count.skel.h"

namespace sockeye::bench::churn {

const char* MapTypeName(uint32_t type) {
  const char* name = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type));
  return name ? name : "?";
}

std::vector<MapInfo> AgentMaps(pid_t pid) {
  std::map<uint32_t, MapInfo> by_id;
  const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* dir = opendir(fd_dir.c_str());
  if (!dir) return {};
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    char target[256] = {};
    if (readlink((fd_dir + "/" + e->d_name).c_str(), target, sizeof(target) - 1) < 0) continue;
    if (std::strcmp(target, "anon_inode:bpf-map") != 0) continue;
    std::ifstream info("/proc/" + std::to_string(pid) + "/fdinfo/" + e->d_name);
    MapInfo m;
    std::string key;
    std::string value;
    while (info >> key >> value) {
      if (key == "map_type:") m.type = uint32_t(std::stoul(value));
      if (key == "value_size:") m.value_size = uint32_t(std::stoul(value));
      if (key == "max_entries:") m.max_entries = uint32_t(std::stoul(value));
      if (key == "memlock:") m.memlock = std::stoull(value);
      if (key == "map_id:") m.id = uint32_t(std::stoul(value));
    }
    if (m.id == 0) continue;
    int fd = bpf_map_get_fd_by_id(m.id);
    if (fd >= 0) {
      bpf_map_info mi{};
      __u32 len = sizeof(mi);
      if (bpf_obj_get_info_by_fd(fd, &mi, &len) == 0) m.name = mi.name;
      close(fd);
    }
    by_id[m.id] = m;
  }
  closedir(dir);
  std::vector<MapInfo> out;
  for (auto& [id, m] : by_id) out.push_back(m);
  return out;
}

long long StorageCounter::Count(uint32_t map_id) {
  if (map_id == 0) return -1;
  int map_fd = bpf_map_get_fd_by_id(map_id);
  if (map_fd < 0) return -1;
  long long count = -1;
  if (map_id == failed_for_ || (map_id != loaded_for_ && !LoadFor(map_id, map_fd))) {
    failed_for_ = map_id;  // neither iterator loads: do not try again at every sample
    close(map_fd);
    return -1;
  }
  bpf_link* link = nullptr;
  if (hashed_only_) {
    link = bpf_program__attach_iter(skel_->progs.count_hashed_entries, nullptr);
  } else {
    union bpf_iter_link_info linfo;
    std::memset(&linfo, 0, sizeof(linfo));
    linfo.map.map_fd = static_cast<__u32>(map_fd);
    bpf_iter_attach_opts opts;
    std::memset(&opts, 0, sizeof(opts));
    opts.sz = sizeof(opts);
    opts.link_info = &linfo;
    opts.link_info_len = sizeof(linfo);
    link = bpf_program__attach_iter(skel_->progs.count_entries, &opts);
  }
  skel_->bss->entries = 0;
  if (link) {
    int iter = bpf_iter_create(bpf_link__fd(link));
    if (iter >= 0) {
      char buf[256];
      ssize_t n;
      while ((n = read(iter, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
      }
      if (n == 0)
        count = static_cast<long long>(*static_cast<volatile __u64*>(&skel_->bss->entries));
      close(iter);
    }
    bpf_link__destroy(link);
  }
  close(map_fd);
  return count;
}

// The map iterator first; if the kernel refuses it, the iter/tcp walk
// with the agent's map in place of the object's own.
bool StorageCounter::LoadFor(uint32_t map_id, int map_fd) {
  Unload();
  for (bool hashed_only : {false, true}) {
    skel_ = churn_count_bpf__open();
    if (!skel_) return false;
    bpf_program__set_autoload(skel_->progs.count_entries, !hashed_only);
    bpf_program__set_autoload(skel_->progs.count_hashed_entries, hashed_only);
    if (bpf_map__reuse_fd(skel_->maps.conns, map_fd) == 0 && churn_count_bpf__load(skel_) == 0) {
      hashed_only_ = hashed_only;
      loaded_for_ = map_id;
      return true;
    }
    Unload();
  }
  return false;
}
void StorageCounter::Unload() {
  if (skel_) churn_count_bpf__destroy(skel_);
  skel_ = nullptr;
  loaded_for_ = 0;
}

StorageCost ReadStorageCost() {
  StorageCost cost;
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return cost;
  int id = btf__find_by_name_kind(vmlinux, "bpf_local_storage_elem", BTF_KIND_STRUCT);
  if (id > 0) cost.elem_header = long(btf__resolve_size(vmlinux, id));
  id = btf__find_by_name_kind(vmlinux, "bpf_local_storage", BTF_KIND_STRUCT);
  if (id > 0) cost.per_socket = long(btf__resolve_size(vmlinux, id));
  btf__free(vmlinux);
  return cost;
}

HostStats ReadHost() {
  HostStats h;
  std::ifstream sockstat("/proc/net/sockstat");
  std::string line;
  while (std::getline(sockstat, line))
    std::sscanf(line.c_str(), "TCP: inuse %ld orphan %*d tw %ld", &h.tcp_inuse, &h.tcp_tw);
  std::ifstream meminfo("/proc/meminfo");
  while (std::getline(meminfo, line)) {
    long kb = 0;
    if (std::sscanf(line.c_str(), "Slab: %ld kB", &kb) == 1) h.slab_mb = double(kb) / 1024;
  }
  return h;
}

const MapInfo* StorageMap(const std::vector<MapInfo>& maps) {
  const MapInfo* found = nullptr;
  for (const auto& m : maps) {
    if (m.type != BPF_MAP_TYPE_SK_STORAGE) continue;
    if (!found || m.name == "conns") found = &m;
  }
  return found;
}

KernelView ReadKernel(pid_t pid, StorageCounter& counter) {
  KernelView k;
  const auto maps = AgentMaps(pid);
  for (const auto& m : maps) k.memlock += m.memlock;
  if (const MapInfo* s = StorageMap(maps)) {
    k.storage_entries = counter.Count(s->id);
    k.storage_value_size = s->value_size;
  }
  return k;
}

void PrintMaps(pid_t pid) {
  uint64_t total = 0;
  Out("  agent's BPF maps (fdinfo memlock = the kernel's map_mem_usage):\n");
  for (const auto& m : AgentMaps(pid)) {
    Out("    %-16s %-14s value %6u B  max_entries %8u  memlock %10llu B\n", m.name.c_str(),
        MapTypeName(m.type), m.value_size, m.max_entries,
        static_cast<unsigned long long>(m.memlock));
    total += m.memlock;
  }
  Out("    total memlock %.2f MiB\n", double(total) / (1 << 20));
}

}  // namespace sockeye::bench::churn
