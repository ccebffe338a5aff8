// sockeye --check: what this kernel offers and what the agent would attach.
#pragma once

#include <cstdio>

#include "agent/config.h"

namespace sockeye {

// Probes the kernel, loads and attaches every program the agent would use,
// prints a report and returns the exit status: 0 if the agent can run.
int RunCheck(const Config& config, std::FILE* out);

}  // namespace sockeye
