// The bench's two phases. Each starts a fresh agent and records every
// failure, a phase cut short included, as a failed check: the checks alone
// decide the exit status.
#pragma once

#include <cstdint>
#include <string>

#include "bench/churn/common.h"
#include "bench/churn/kernel_view.h"

namespace sockeye::bench::churn {

// live phase: --live-backends backends with one open keep-alive connection
// each; the agent's peak RSS while it holds them, and exact counts.
void RunLive(const Options& o, uint16_t base_port, StorageCounter& counter, const StorageCost& cost,
             const std::string& workdir, Checks& checks);

// churn phase: --connections short connections to distinct backends; the
// agent's and the kernel's memory over time, and exact counts.
void RunChurn(const Options& o, uint16_t base_port, StorageCounter& counter,
              const StorageCost& cost, const std::string& workdir, Checks& checks);

}  // namespace sockeye::bench::churn
