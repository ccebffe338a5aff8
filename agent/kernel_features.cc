#include "agent/kernel_features.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "agent/errno_text.h"
#include "agent/unique_fd.h"

namespace sockeye {
namespace {

// A program that returns 0 (r0 = 0; exit), for the load probes below.
UniqueFd LoadEmptyTracingProgram(bpf_attach_type attach_type, int attach_btf_id) {
  bpf_insn program[2] = {};
  program[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  program[0].dst_reg = BPF_REG_0;
  program[1].code = BPF_JMP | BPF_EXIT;
  bpf_prog_load_opts opts = {};
  opts.sz = sizeof(opts);
  opts.expected_attach_type = attach_type;
  opts.attach_btf_id = static_cast<__u32>(attach_btf_id);
  return UniqueFd(bpf_prog_load(BPF_PROG_TYPE_TRACING, "sockeye_probe", "GPL", program, 2, &opts));
}

}  // namespace

bool HasTracepoint(const btf* vmlinux, const char* name) {
  std::string type_name = std::string("btf_trace_") + name;
  return btf__find_by_name_kind(vmlinux, type_name.c_str(), BTF_KIND_TYPEDEF) > 0;
}

bool HasFunction(const btf* vmlinux, const char* name) {
  return btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC) > 0;
}

bool KernelHasKprobes() {
  // The kprobe PMU exists whenever CONFIG_KPROBES is set.
  return access("/sys/bus/event_source/devices/kprobe/type", R_OK) == 0;
}

// A kernel can describe map-element iterators in its BTF and still refuse
// them: Linux 6.18.44 has refused them (bpf_sk_storage_map and bpf_map_elem
// alike) with EPERM inside the verifier, before any instruction is checked,
// while loading iter/tcp.
bool StorageIteratorAllowed(const btf* vmlinux, std::string* why) {
  const int target = btf__find_by_name_kind(vmlinux, "bpf_iter_bpf_sk_storage_map", BTF_KIND_FUNC);
  if (target <= 0) {
    *why = "iter/bpf_sk_storage_map is not in this kernel (added in 5.9)";
    return false;
  }
  const UniqueFd fd = LoadEmptyTracingProgram(BPF_TRACE_ITER, target);
  if (!fd.valid()) {
    *why = "the kernel refuses iter/bpf_sk_storage_map programs: " + ErrnoText(errno);
    return false;
  }
  return true;
}

// Linux 6.18 has been seen refusing fentry (EPERM) where Debian 12's 6.1
// allows it, and a function without an ftrace call site loads but does not
// attach.
bool FentryAllowed(const btf* vmlinux, const char* function, std::string* why) {
  const int target = btf__find_by_name_kind(vmlinux, function, BTF_KIND_FUNC);
  if (target <= 0) {
    *why = std::string(function) + " is not in the kernel BTF";
    return false;
  }
  const UniqueFd fd = LoadEmptyTracingProgram(BPF_TRACE_FENTRY, target);
  if (!fd.valid()) {
    *why =
        std::string("the kernel refuses fentry programs on ") + function + ": " + ErrnoText(errno);
    return false;
  }
  const UniqueFd link(bpf_link_create(fd.get(), 0, BPF_TRACE_FENTRY, nullptr));
  if (!link.valid()) {
    *why = std::string("fentry on ") + function + " does not attach: " + ErrnoText(errno);
    return false;
  }
  return true;
}

std::string Cgroup2MountPoint() {
  // mountinfo: ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string id, parent, devices, root, mount_point, field;
    if (!(fields >> id >> parent >> devices >> root >> mount_point)) continue;
    while (fields >> field && field != "-") {
    }
    std::string fstype;
    if (fields >> fstype && fstype == "cgroup2" && root == "/") return mount_point;
  }
  return "";
}

}  // namespace sockeye
