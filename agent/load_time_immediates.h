// Load-time settings compiled into the BPF instructions instead of rodata
// (why: SOCKEYE_IMM() in bpf/settings.bpf.h). Each use in a program is a
// 64-bit load-immediate whose upper half is SOCKEYE_IMM_MARKER and lower half
// a sockeye_imm_id; Patch() replaces it with the value before the object is
// loaded.
//
// libbpf documents bpf_program__set_insns() for its prog_prepare_load_fn
// callback; calling it between open and load is safe here because the
// instruction count and positions never change (only the two immediates of a
// plain constant load, which carries no relocation), so the CO-RE and map
// relocations libbpf applies at load still line up. What it cannot reach are
// BPF subprograms (libbpf appends them at load): the unit test
// LoadTimeImmediates.EveryMarkerInTheObjectIsPatched counts the markers in the
// whole object against those ApplyTo() replaces.
#pragma once

#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sockeye_abi.h"

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

  // Patch() on every program of an opened (not yet loaded) object; *patched
  // (if given) counts the replaced load-immediates.
  bool ApplyTo(bpf_object* object, std::string* error, int* patched = nullptr) const;

 private:
  std::array<std::optional<uint64_t>, SOCKEYE_IMM_COUNT> values_{};
};

// True when `insns` still holds a marker.
bool HoldsImmediateMarker(const std::vector<bpf_insn>& insns);

// Number of markers anywhere in an ELF object's bytes (every instruction sits
// at an 8-byte-aligned file offset).
int CountImmediateMarkers(const void* elf, size_t size);

// After load, a second line of defence: fails, naming the program, if a
// loaded program's translated instructions still hold a marker. It sees
// nothing where the kernel blinds constants (net.core.bpf_jit_harden) or
// withholds the instructions (a zero-filled dump, without raw-address access).
bool CheckLoadedPrograms(bpf_object* object, std::string* error);

}  // namespace sockeye
