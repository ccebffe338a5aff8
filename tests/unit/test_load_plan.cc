#include <gtest/gtest.h>

#include "agent/load_plan.h"

namespace sockeye {
namespace {

constexpr LoadPlan kStorageFentry{true, ReceiveHook::kDataReadyFentry};
constexpr LoadPlan kStorageTcpProbe{true, ReceiveHook::kTcpProbe};
constexpr LoadPlan kTcpFentry{false, ReceiveHook::kDataReadyFentry};
constexpr LoadPlan kTcpTcpProbe{false, ReceiveHook::kTcpProbe};

TEST(LoadFallbacksTest, AFailedLoadTriesEveryPlanInOrderOfPreference) {
  LoadFallbacks fallbacks(kStorageFentry, /*sweep_may_fall_back=*/true);
  EXPECT_EQ(fallbacks.current(), kStorageFentry);
  EXPECT_EQ(fallbacks.After(LoadStep::kLoad), kStorageTcpProbe);
  EXPECT_EQ(fallbacks.After(LoadStep::kLoad), kTcpFentry);
  EXPECT_EQ(fallbacks.After(LoadStep::kLoad), kTcpTcpProbe);
  EXPECT_EQ(fallbacks.After(LoadStep::kLoad), std::nullopt);
}

TEST(LoadFallbacksTest, AFailedReceiveAttachKeepsTheStorageSweep) {
  LoadFallbacks fallbacks(kStorageFentry, true);
  EXPECT_EQ(fallbacks.After(LoadStep::kReceiveAttach), kStorageTcpProbe);
}

TEST(LoadFallbacksTest, AFailedSweepAttachKeepsTheReceiveHookAndNeverReturnsToTheStorageSweep) {
  LoadFallbacks fallbacks(kStorageFentry, true);
  EXPECT_EQ(fallbacks.After(LoadStep::kSweepAttach), kTcpFentry);
  EXPECT_EQ(fallbacks.After(LoadStep::kReceiveAttach), kTcpTcpProbe);
  EXPECT_EQ(fallbacks.After(LoadStep::kLoad), std::nullopt);
}

TEST(LoadFallbacksTest, ARuledOutReceiveHookIsNotTriedAgainWithTheOtherSweep) {
  LoadFallbacks fallbacks(kStorageFentry, true);
  EXPECT_EQ(fallbacks.After(LoadStep::kReceiveAttach), kStorageTcpProbe);
  EXPECT_EQ(fallbacks.After(LoadStep::kSweepAttach), kTcpTcpProbe);
}

TEST(LoadFallbacksTest, FailuresWithoutAFallbackEndTheAttempts) {
  {
    LoadFallbacks fallbacks(kStorageFentry, true);
    EXPECT_EQ(fallbacks.After(LoadStep::kOther), std::nullopt);
  }
  {
    LoadFallbacks fallbacks(kTcpTcpProbe, true);
    EXPECT_EQ(fallbacks.After(LoadStep::kLoad), std::nullopt);
    EXPECT_EQ(fallbacks.After(LoadStep::kSweepAttach), std::nullopt);
    EXPECT_EQ(fallbacks.After(LoadStep::kReceiveAttach), std::nullopt);
  }
  {
    // The iter/tcp sweep and tcp_probe are what the others fall back to.
    LoadFallbacks fallbacks(kTcpFentry, true);
    EXPECT_EQ(fallbacks.After(LoadStep::kSweepAttach), std::nullopt);
  }
}

TEST(LoadFallbacksTest, AnExplicitSweepIteratorIsKept) {
  LoadFallbacks fallbacks(kStorageFentry, /*sweep_may_fall_back=*/false);
  EXPECT_EQ(fallbacks.After(LoadStep::kLoad), kStorageTcpProbe);
  EXPECT_EQ(fallbacks.After(LoadStep::kLoad), std::nullopt);
  LoadFallbacks sweep_fails(kStorageFentry, false);
  EXPECT_EQ(sweep_fails.After(LoadStep::kSweepAttach), std::nullopt);
}

TEST(LoadFallbacksTest, TheSkDataReadyTracepointFallsBackToTcpProbeToo) {
  LoadFallbacks fallbacks({false, ReceiveHook::kDataReadyTracepoint}, true);
  EXPECT_EQ(fallbacks.After(LoadStep::kLoad), kTcpTcpProbe);
}

TEST(LoadFallbacksTest, ARefusedReceiveOrSweepProgramRulesOutItsFeature) {
  LoadFallbacks fallbacks(kStorageFentry, true);
  EXPECT_EQ(fallbacks.After(LoadStep::kReceiveLoad), kStorageTcpProbe);
  EXPECT_EQ(fallbacks.After(LoadStep::kSweepLoad), kTcpTcpProbe);
  EXPECT_EQ(fallbacks.After(LoadStep::kReceiveLoad), std::nullopt);
  LoadFallbacks sweep_first(kStorageFentry, true);
  EXPECT_EQ(sweep_first.After(LoadStep::kSweepLoad), kTcpFentry);
}

// A program every plan loads (or a map every plan creates): no plan avoids
// it, so the agent stops at the first error instead of loading four times.
TEST(LoadFallbacksTest, AnyOtherRefusedProgramOrMapEndsTheAttempts) {
  LoadFallbacks fallbacks(kStorageFentry, true);
  EXPECT_EQ(fallbacks.After(LoadStep::kOtherLoad), std::nullopt);
}

TEST(ParseLoadRefusalTest, NamesTheProgramTheKernelRefused) {
  // libbpf 1.1's wording (Debian 12), after the verifier's log.
  auto refusal = ParseLoadRefusal("libbpf: prog 'on_sk_data_ready': failed to load: -13");
  ASSERT_TRUE(refusal);
  EXPECT_FALSE(refusal->is_map);
  EXPECT_EQ(refusal->name, "on_sk_data_ready");
  refusal = ParseLoadRefusal(
      "libbpf: prog 'sweep_connections': BPF program load failed: "
      "Permission denied");
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->name, "sweep_connections");
  // Later libbpf releases print the error as text.
  refusal = ParseLoadRefusal("libbpf: prog 'on_tcp_probe': failed to load: -EACCES");
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->name, "on_tcp_probe");
}

TEST(ParseLoadRefusalTest, NamesTheMapTheKernelRefused) {
  auto refusal =
      ParseLoadRefusal("libbpf: map 'events': failed to create: Operation not permitted(-1)");
  ASSERT_TRUE(refusal);
  EXPECT_TRUE(refusal->is_map);
  EXPECT_EQ(refusal->name, "events");
}

TEST(ParseLoadRefusalTest, OtherWarningsRefuseNothing) {
  for (const char* message : {
           "libbpf: prog 'on_tcp_probe': failed to attach: Permission denied",
           "libbpf: prog 'on_tcp_probe': -- BEGIN PROG LOAD LOG --",
           "libbpf: map 'events': failed to create inner map: -22",
           "libbpf: failed to load BPF skeleton 'sockeye_bpf': -13",
           "libbpf: prog '': failed to load: -13",
           "libbpf: prog 'unterminated: failed to load",
           "",
       }) {
    EXPECT_FALSE(ParseLoadRefusal(message)) << message;
  }
}

}  // namespace
}  // namespace sockeye
