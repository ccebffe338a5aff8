// The build's version and revision (set by CMake; fallbacks for other builds).
#pragma once

#ifndef SOCKEYE_VERSION
#define SOCKEYE_VERSION "dev"
#endif
#ifndef SOCKEYE_REVISION
#define SOCKEYE_REVISION "unknown"
#endif
