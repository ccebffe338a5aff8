// What the running kernel offers sockeye's programs. Most is read from the
// kernel's BTF; where the BTF cannot tell (the kernel may refuse a program
// type it describes), a two-instruction program is loaded and closed again.
// Such a probe can still pass where the real program is refused, by the
// verifier or at attach: LoadFallbacks (agent/load_plan.h) handles that.
#pragma once

#include <string>

struct btf;

namespace sockeye {

// The BTF tracepoint `name` (tp_btf/<name>) is in the kernel.
bool HasTracepoint(const btf* vmlinux, const char* name);

// The function `name` is in the kernel BTF (an fentry or kprobe target).
bool HasFunction(const btf* vmlinux, const char* name);

// The kernel was built with kprobes.
bool KernelHasKprobes();

// The kernel loads an iterator over a socket-storage map (loaded, then
// closed). Otherwise *why says what is missing or what the kernel said.
bool StorageIteratorAllowed(const btf* vmlinux, std::string* why);

// The kernel loads and attaches an fentry program on `function` (attached,
// then detached). Otherwise *why says what is missing or what the kernel said.
bool FentryAllowed(const btf* vmlinux, const char* function, std::string* why);

// Where a cgroup v2 hierarchy is mounted ("/sys/fs/cgroup", or
// "/sys/fs/cgroup/unified" on hybrid hosts), from /proc/self/mountinfo;
// empty when there is none.
std::string Cgroup2MountPoint();

}  // namespace sockeye
