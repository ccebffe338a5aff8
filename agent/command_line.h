// The agent's entry to its settings: flags, then the optional --config file
// (flags win over the file), then validation into a Config.
#pragma once

#include <optional>
#include <string>

#include "agent/config.h"

namespace sockeye {

struct ParseOutcome {
  std::optional<Config> config;  // set when the agent should run
  int exit_code = 0;             // meaningful when config is empty
  std::string message;           // help/version text (stdout) or a one-line error (stderr),
                                 // without a trailing newline
};

// Parses flags and the optional --config file (flags win over the file).
// Never throws and never exits.
ParseOutcome ParseCommandLine(int argc, const char* const* argv);

}  // namespace sockeye
