// How far apart sweeps are: --sweep-interval while sweeps are cheap, and
// spaced to stay within their CPU budget when they are not.
#include <gtest/gtest.h>

#include <chrono>

#include "agent/agent.h"

namespace sockeye {
namespace {

using namespace std::chrono_literals;

TEST(SweepSpacing, CheapSweepsKeepTheConfiguredInterval) {
  EXPECT_EQ(SweepSpacing(1s, 0ns), 1s);
  EXPECT_EQ(SweepSpacing(1s, 2ms), 1s);
  EXPECT_EQ(SweepSpacing(1s, 5ms), 1s);  // exactly the budget: 1/200 of the interval
}

TEST(SweepSpacing, SlowSweepsAreSpacedToTheirBudget) {
  EXPECT_EQ(SweepSpacing(1s, 12ms), 2400ms);
  EXPECT_EQ(SweepSpacing(100ms, 1ms), 200ms);
  // A longer configured interval than the budget asks for wins.
  EXPECT_EQ(SweepSpacing(10s, 12ms), 10s);
}

TEST(SweepSpacing, NeverMoreThanAMinuteUnlessConfigured) {
  EXPECT_EQ(SweepSpacing(1s, 2s), kMaxSweepSpacing);
  EXPECT_EQ(SweepSpacing(1s, 400ms), kMaxSweepSpacing);
  EXPECT_EQ(SweepSpacing(60s, 2s), 60s);
}

}  // namespace
}  // namespace sockeye
