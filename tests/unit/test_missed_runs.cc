#include <gtest/gtest.h>

#include "agent/missed_runs.h"

namespace sockeye {
namespace {

TEST(MissedRunsCounter, GuardedProgramsSplitSkippedRunsIntoRecoveredAndLost) {
  MissedRunsCounter counter;
  auto out = counter.Update({{"on_inet_sock_set_state", 10, 7}, {"on_sk_data_ready", 3, {}}});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].program, "on_inet_sock_set_state");
  EXPECT_EQ(out[0].lost, 3u);
  EXPECT_EQ(out[0].recovered, 7u);
  // Without a standby every skipped run is lost.
  EXPECT_EQ(out[1].lost, 3u);
  EXPECT_FALSE(out[1].recovered.has_value());
}

TEST(MissedRunsCounter, LostNeverGoesDownAndCatchesUp) {
  MissedRunsCounter counter;
  EXPECT_EQ(counter.Update({{"p", 5, 2}})[0].lost, 3u);
  // Skipped runs read before their standby's recoveries: the difference may
  // be low for a moment (here below the last value); the counter holds.
  EXPECT_EQ(counter.Update({{"p", 6, 4}})[0].lost, 3u);
  EXPECT_EQ(counter.Update({{"p", 9, 4}})[0].lost, 5u);
}

TEST(MissedRunsCounter, KernelsThatDoNotCountSkippedRunsLoseNothingKnown) {
  // recursion_misses stays 0 where the kernel does not count; the standby
  // still recovers runs.
  MissedRunsCounter counter;
  auto out = counter.Update({{"p", 0, 12}});
  EXPECT_EQ(out[0].lost, 0u);
  EXPECT_EQ(out[0].recovered, 12u);
}

}  // namespace
}  // namespace sockeye
