#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "agent/load_time_immediates.h"
#include "sockeye.skel.h"
#include "status_cast.skel.h"

namespace sockeye {
namespace {

constexpr uint8_t kLoadImm64 = BPF_LD | BPF_IMM | BPF_DW;

// The two instructions clang emits for SOCKEYE_IMM(id) into register r1.
std::vector<bpf_insn> Marker(uint32_t id, bool map_reference = false) {
  bpf_insn first{};
  first.code = kLoadImm64;
  first.dst_reg = 1;
  if (map_reference) first.src_reg = BPF_PSEUDO_MAP_FD;
  first.imm = static_cast<int32_t>(id);
  bpf_insn second{};
  second.imm = static_cast<int32_t>(SOCKEYE_IMM_MARKER);
  return {first, second};
}

bpf_insn Exit() {
  bpf_insn insn{};
  insn.code = BPF_JMP | BPF_EXIT;
  return insn;
}

uint64_t Value(const std::vector<bpf_insn>& insns, size_t i) {
  return static_cast<uint32_t>(insns[i].imm) |
         static_cast<uint64_t>(static_cast<uint32_t>(insns[i + 1].imm)) << 32;
}

TEST(LoadTimeImmediates, ReplacesEveryMarkerWithItsValue) {
  LoadTimeImmediates immediates;
  immediates.Set(SOCKEYE_IMM_HOT_SLOT_MASK, 8191);
  immediates.Set(SOCKEYE_IMM_RINGBUF_WAKEUP_BYTES, 0x123456789aULL);
  std::vector<bpf_insn> insns = Marker(SOCKEYE_IMM_HOT_SLOT_MASK);
  for (const bpf_insn& insn : Marker(SOCKEYE_IMM_RINGBUF_WAKEUP_BYTES)) insns.push_back(insn);
  for (const bpf_insn& insn : Marker(SOCKEYE_IMM_HOT_SLOT_MASK)) insns.push_back(insn);
  insns.push_back(Exit());
  EXPECT_TRUE(HoldsImmediateMarker(insns));

  int patched = 0;
  std::string error;
  ASSERT_TRUE(immediates.Patch(insns, "prog", &patched, &error)) << error;
  EXPECT_EQ(patched, 3);
  EXPECT_EQ(Value(insns, 0), 8191u);
  EXPECT_EQ(Value(insns, 2), 0x123456789aULL);
  EXPECT_EQ(Value(insns, 4), 8191u);
  EXPECT_EQ(insns[0].dst_reg, 1);  // only the constant changes
  EXPECT_EQ(insns[6].code, BPF_JMP | BPF_EXIT);
  EXPECT_FALSE(HoldsImmediateMarker(insns));
}

TEST(LoadTimeImmediates, LeavesMapReferencesAndOtherConstantsAlone) {
  LoadTimeImmediates immediates;
  immediates.Set(SOCKEYE_IMM_HOT_SLOT_MASK, 7);
  // A map reference (src_reg BPF_PSEUDO_MAP_FD) whose second half happens to
  // look like the marker, and a plain constant whose first half does.
  std::vector<bpf_insn> insns = Marker(SOCKEYE_IMM_HOT_SLOT_MASK, /*map_reference=*/true);
  std::vector<bpf_insn> constant = Marker(SOCKEYE_IMM_HOT_SLOT_MASK);
  constant[1].imm = 0;
  insns.insert(insns.end(), constant.begin(), constant.end());
  const std::vector<bpf_insn> before = insns;
  int patched = -1;
  std::string error;
  ASSERT_TRUE(immediates.Patch(insns, "prog", &patched, &error)) << error;
  EXPECT_EQ(patched, 0);
  for (size_t i = 0; i < insns.size(); ++i) EXPECT_EQ(insns[i].imm, before[i].imm) << i;
}

TEST(LoadTimeImmediates, UnsetOrUnknownSettingIsAnErrorNamingTheProgram) {
  LoadTimeImmediates immediates;
  immediates.Set(SOCKEYE_IMM_HOT_SLOT_MASK, 7);
  std::vector<bpf_insn> unset = Marker(SOCKEYE_IMM_SEND_MARKS_ENABLED);
  int patched = 0;
  std::string error;
  EXPECT_FALSE(immediates.Patch(unset, "on_tcp_probe", &patched, &error));
  EXPECT_NE(error.find("on_tcp_probe"), std::string::npos) << error;
  EXPECT_NE(error.find("did not set"), std::string::npos) << error;

  std::vector<bpf_insn> unknown = Marker(SOCKEYE_IMM_COUNT + 5);
  error.clear();
  EXPECT_FALSE(immediates.Patch(unknown, "on_sk_data_ready", &patched, &error));
  EXPECT_NE(error.find("on_sk_data_ready"), std::string::npos) << error;
  EXPECT_NE(error.find("does not know"), std::string::npos) << error;
}

// Every marker in the built object sits in a program ApplyTo() reaches: a
// SOCKEYE_IMM() use in a function clang did not inline (a BPF subprogram,
// which libbpf appends only at load) would reach the kernel unreplaced.
// Opening the skeleton needs no privileges.
TEST(LoadTimeImmediates, EveryMarkerInTheObjectIsPatched) {
  size_t size = 0;
  const void* elf = sockeye_bpf__elf_bytes(&size);
  const int in_object = CountImmediateMarkers(elf, size);
  EXPECT_GE(in_object, SOCKEYE_IMM_COUNT - 1);  // each setting is used somewhere

  std::unique_ptr<sockeye_bpf, decltype(&sockeye_bpf__destroy)> skel(sockeye_bpf__open(),
                                                                     &sockeye_bpf__destroy);
  ASSERT_NE(skel, nullptr);
  LoadTimeImmediates immediates;
  for (uint32_t id = 1; id < SOCKEYE_IMM_COUNT; ++id)
    immediates.Set(static_cast<sockeye_imm_id>(id), 1);
  int patched = 0;
  std::string error;
  ASSERT_TRUE(immediates.ApplyTo(skel->obj, &error, &patched)) << error;
  EXPECT_EQ(patched, in_object);
}

// The same for the status program's object of its own (agent/status_cast.h),
// which the agent patches with the main object's values.
TEST(LoadTimeImmediates, EveryMarkerInTheStatusObjectIsPatched) {
  size_t size = 0;
  const void* elf = sockeye_status_cast_bpf__elf_bytes(&size);
  const int in_object = CountImmediateMarkers(elf, size);
  EXPECT_GE(in_object, 2);  // the hot slots' switch and mask

  std::unique_ptr<sockeye_status_cast_bpf, decltype(&sockeye_status_cast_bpf__destroy)> skel(
      sockeye_status_cast_bpf__open(), &sockeye_status_cast_bpf__destroy);
  ASSERT_NE(skel, nullptr);
  LoadTimeImmediates immediates;
  for (uint32_t id = 1; id < SOCKEYE_IMM_COUNT; ++id)
    immediates.Set(static_cast<sockeye_imm_id>(id), 1);
  int patched = 0;
  std::string error;
  ASSERT_TRUE(immediates.ApplyTo(skel->obj, &error, &patched)) << error;
  EXPECT_EQ(patched, in_object);
}

}  // namespace
}  // namespace sockeye
