#include "agent/status_cast.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <string>

#include "agent/errno_text.h"
#include "agent/kernel_features.h"
#include "agent/load_time_immediates.h"
#include "sockeye.skel.h"
#include "status_cast.skel.h"

namespace sockeye {

void StatusCastDeleter::operator()(sockeye_status_cast_bpf* skel) const {
  sockeye_status_cast_bpf__destroy(skel);
}

bool StatusCastOffered(const btf* vmlinux, bool custom_btf, std::string* why) {
  if (custom_btf) {
    *why = std::string("--btf-path is given: ") + kStatusCastKfunc +
           "() takes type ids of the kernel's own BTF";
    return false;
  }
  if (!HasFunction(vmlinux, kStatusCastKfunc)) {
    *why = std::string("no kfunc ") + kStatusCastKfunc + " in the kernel BTF (Linux 6.2+)";
    return false;
  }
  return true;
}

namespace {

// Every map of `cast` becomes the main object's map of the same name. Both
// objects are built from the same headers (bpf/maps.bpf.h), so a map the
// main object lacks is a build error, reported rather than created empty.
bool ShareMaps(const sockeye_bpf* main, sockeye_status_cast_bpf* cast, std::string* error) {
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, cast->obj) {
    // Copied: a reused map takes the kernel's name for it.
    const std::string name = bpf_map__name(map);
    // Its own constants (.rodata), if clang ever leaves some: nothing to share.
    if (bpf_map__is_internal(map)) continue;
    const bpf_map* shared = bpf_object__find_map_by_name(main->obj, name.c_str());
    const int fd = shared ? bpf_map__fd(shared) : -1;
    if (fd < 0) {
      *error = "the main object has no loaded map " + name;
      return false;
    }
    if (int err = bpf_map__reuse_fd(map, fd); err != 0) {
      *error = "handing it the map " + name + " failed: " + ErrnoText(err);
      return false;
    }
  }
  return true;
}

}  // namespace

StatusCastPtr LoadStatusCast(const sockeye_bpf* main, const LoadTimeImmediates& immediates,
                             bool egress, std::string* error) {
  StatusCastPtr skel(sockeye_status_cast_bpf__open());
  if (!skel) {
    *error = "opening it failed: " + ErrnoText(errno);
    return nullptr;
  }
  bpf_program__set_autoload(skel->progs.on_cgroup_egress_cast, egress);
  if (!ShareMaps(main, skel.get(), error)) return nullptr;
  std::string patch_error;
  if (!immediates.ApplyTo(skel->obj, &patch_error)) {
    *error = "setting its load-time immediates failed: " + patch_error;
    return nullptr;
  }
  if (int err = sockeye_status_cast_bpf__load(skel.get()); err != 0) {
    *error = "loading it failed: " + ErrnoText(err) +
             " (--log.level=debug shows libbpf's and the verifier's log)";
    return nullptr;
  }
  std::string check_error;
  if (!CheckLoadedPrograms(skel->obj, &check_error)) {
    *error = check_error;
    return nullptr;
  }
  return skel;
}

bpf_program* StatusCastProgram(const sockeye_status_cast_bpf* skel) {
  return skel->progs.on_cgroup_ingress_cast;
}

bpf_program* StatusCastEgressProgram(const sockeye_status_cast_bpf* skel) {
  bpf_program* prog = skel->progs.on_cgroup_egress_cast;
  return bpf_program__autoload(prog) ? prog : nullptr;
}

bpf_object* StatusCastObject(const sockeye_status_cast_bpf* skel) { return skel->obj; }

}  // namespace sockeye
