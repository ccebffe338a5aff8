// The HTTP status program built to test each packet's socket with
// bpf_rdonly_cast() (bpf/http_status.bpf.c with SOCKEYE_STATUS_CAST), in a BPF
// object of its own. Where it runs, a packet of a socket sockeye does not
// follow costs no helper call (bench/README.md#current-results).
//
// Why an object of its own: the kfunc's extern makes libbpf (1.1, Debian 12)
// look for it in the module BTFs when the kernel lacks it (before 6.2), and
// listing them needs CAP_SYS_ADMIN, so the whole object failed to load where
// the packaged unit runs. This object is therefore opened only where the
// kernel's own BTF has the kfunc; the main object keeps the helper build of
// the program (on_cgroup_ingress), loaded beside it as its fallback when this
// one fails to load or attach (AttachStatusProgram() in load_sequence.cc).
//
// Its maps are the main object's: each is handed over with
// bpf_map__reuse_fd() before the load, so both programs see the same
// connections.
#pragma once

#include <memory>
#include <string>

struct bpf_object;
struct bpf_program;
struct btf;
struct sockeye_bpf;
struct sockeye_status_cast_bpf;

namespace sockeye {

class LoadTimeImmediates;

struct StatusCastDeleter {
  void operator()(sockeye_status_cast_bpf* skel) const;
};
using StatusCastPtr = std::unique_ptr<sockeye_status_cast_bpf, StatusCastDeleter>;

// The kfunc the program calls: it must be in the kernel's BTF.
inline constexpr const char* kStatusCastKfunc = "bpf_rdonly_cast";

// Whether this kernel can run the program: the kfunc is in `vmlinux` (the
// kernel's own BTF: the type ids the program hands the kfunc are relocated
// against the BTF CO-RE reads, so with --btf-path they would be that
// file's, not the kernel's). Otherwise *why says what is missing.
bool StatusCastOffered(const btf* vmlinux, bool custom_btf, std::string* why);

// Opens the object, hands it every map of `main` (already loaded), patches
// the load-time immediates and loads it, with its egress program when
// `egress` (frontends). nullptr and *error on failure.
StatusCastPtr LoadStatusCast(const sockeye_bpf* main, const LoadTimeImmediates& immediates,
                             bool egress, std::string* error);

bpf_program* StatusCastProgram(const sockeye_status_cast_bpf* skel);
// Its egress program, or nullptr when it was not loaded.
bpf_program* StatusCastEgressProgram(const sockeye_status_cast_bpf* skel);
bpf_object* StatusCastObject(const sockeye_status_cast_bpf* skel);

}  // namespace sockeye
