// Load-time settings compiled into the BPF instructions instead of rodata
// (why: SOCKEYE_IMM() in bpf/sockeye.bpf.h). Each use in a program is a
// 64-bit load-immediate whose upper half is SOCKEYE_IMM_MARKER and lower half
// a sockeye_imm_id; Patch() replaces it with the value before the object is
// loaded. The instruction count and positions never change, so libbpf's
// CO-RE and map relocations, applied at load, still line up.
#pragma once

#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bpf/sockeye_abi.h"

namespace sockeye {

class LoadTimeImmediates {
 public:
  void Set(sockeye_imm_id id, uint64_t value) { values_.at(id) = value; }

  // Replaces every marker in `insns`. Fails, naming `program` and the id,
  // on a marker whose id this build does not know or whose value was never
  // set: loading the marker itself would run the program on a nonsense
  // setting. *patched counts the replaced load-immediates.
  bool Patch(std::vector<bpf_insn>& insns, const std::string& program, int* patched,
             std::string* error) const;

  // Patch() on every program of an opened (not yet loaded) object.
  bool ApplyTo(bpf_object* object, std::string* error) const;

 private:
  std::array<std::optional<uint64_t>, SOCKEYE_IMM_COUNT> values_{};
};

// True when `insns` still holds a marker.
bool HoldsImmediateMarker(const std::vector<bpf_insn>& insns);

// After load: fails, naming the program, if a loaded program's translated
// instructions still hold a marker (libbpf appends BPF subprograms at load,
// after ApplyTo(), so a setting used in a non-inlined function would reach
// the kernel unreplaced). Programs whose instructions the kernel does not
// hand out (no CAP_BPF) are not checked.
bool CheckLoadedPrograms(bpf_object* object, std::string* error);

}  // namespace sockeye
