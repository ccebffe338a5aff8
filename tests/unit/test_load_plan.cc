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

}  // namespace
}  // namespace sockeye
