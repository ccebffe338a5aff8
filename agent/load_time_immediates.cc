#include "agent/load_time_immediates.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <cstring>

namespace sockeye {
namespace {

constexpr uint8_t kLoadImm64 = BPF_LD | BPF_IMM | BPF_DW;

// A marker is a plain 64-bit constant (src_reg 0: not a map, BTF or
// function reference) whose second half is the marker word.
bool IsMarker(const std::vector<bpf_insn>& insns, size_t i) {
  return insns[i].code == kLoadImm64 && insns[i].src_reg == 0 && i + 1 < insns.size() &&
         static_cast<uint32_t>(insns[i + 1].imm) == SOCKEYE_IMM_MARKER;
}

}  // namespace

bool LoadTimeImmediates::Patch(std::vector<bpf_insn>& insns, const std::string& program,
                               int* patched, std::string* error) const {
  *patched = 0;
  for (size_t i = 0; i < insns.size(); ++i) {
    if (insns[i].code != kLoadImm64) continue;
    if (IsMarker(insns, i)) {
      const auto id = static_cast<uint32_t>(insns[i].imm);
      if (id == 0 || id >= values_.size() || !values_[id]) {
        *error = "BPF program " + program + " uses load-time setting " + std::to_string(id) +
                 (id == 0 || id >= values_.size() ? ", which this agent does not know"
                                                  : ", which the loader did not set");
        return false;
      }
      const uint64_t value = *values_[id];
      insns[i].imm = static_cast<int32_t>(static_cast<uint32_t>(value));
      insns[i + 1].imm = static_cast<int32_t>(static_cast<uint32_t>(value >> 32));
      ++*patched;
    }
    ++i;  // a load-immediate is two instructions
  }
  return true;
}

bool LoadTimeImmediates::ApplyTo(bpf_object* object, std::string* error, int* patched_total) const {
  if (patched_total) *patched_total = 0;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, object) {
    const bpf_insn* first = bpf_program__insns(prog);
    std::vector<bpf_insn> insns(first, first + bpf_program__insn_cnt(prog));
    int patched = 0;
    if (!Patch(insns, bpf_program__name(prog), &patched, error)) return false;
    if (patched == 0) continue;
    if (patched_total) *patched_total += patched;
    if (int err = bpf_program__set_insns(prog, insns.data(), insns.size()); err != 0) {
      *error = std::string("cannot set the instructions of BPF program ") +
               bpf_program__name(prog) + ": " + std::strerror(-err);
      return false;
    }
  }
  return true;
}

bool HoldsImmediateMarker(const std::vector<bpf_insn>& insns) {
  for (size_t i = 0; i < insns.size(); ++i) {
    if (insns[i].code != kLoadImm64) continue;
    if (IsMarker(insns, i)) return true;
    ++i;
  }
  return false;
}

int CountImmediateMarkers(const void* elf, size_t size) {
  std::vector<bpf_insn> insns(size / sizeof(bpf_insn));
  std::memcpy(insns.data(), elf, insns.size() * sizeof(bpf_insn));
  int count = 0;
  for (size_t i = 0; i + 1 < insns.size(); ++i) {
    if (IsMarker(insns, i)) ++count;
  }
  return count;
}

bool CheckLoadedPrograms(bpf_object* object, std::string* error) {
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, object) {
    const int fd = bpf_program__fd(prog);
    if (fd < 0) continue;  // not loaded (autoload off)
    bpf_prog_info info = {};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0 || info.xlated_prog_len == 0) continue;
    std::vector<bpf_insn> insns(info.xlated_prog_len / sizeof(bpf_insn));
    const __u32 xlated_len = info.xlated_prog_len;
    info = {};
    info.xlated_prog_len = xlated_len;
    info.xlated_prog_insns = reinterpret_cast<__u64>(insns.data());
    len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) continue;
    const bool withheld = std::all_of(insns.begin(), insns.end(), [](const bpf_insn& insn) {
      return insn.code == 0 && insn.imm == 0 && insn.off == 0;
    });
    if (withheld) continue;
    if (HoldsImmediateMarker(insns)) {
      *error = std::string("BPF program ") + bpf_program__name(prog) +
               " was loaded with a load-time setting not replaced (used from a BPF "
               "subprogram? SOCKEYE_IMM() uses must be inlined)";
      return false;
    }
  }
  return true;
}

}  // namespace sockeye
