// What every outcome of ParseCommandLine must satisfy, whatever the flags or
// config file said; shared by fuzz_flags and fuzz_config_file. A violation
// aborts, which libFuzzer reports as a crash with the input that caused it.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "agent/command_line.h"
#include "agent/config.h"

namespace sockeye::fuzz {

inline void Violation(const char* what, const std::string& detail) {
  std::fprintf(stderr, "property violated: %s\n%s\n", what, detail.c_str());
  std::abort();
}

inline bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

inline void CheckBounds(const std::vector<double>& bounds, const std::string& message) {
  if (bounds.empty() || bounds.size() > 64) Violation("bucket count out of range", message);
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || bounds[i] <= 0) Violation("bucket bound not > 0", message);
    if (i > 0 && bounds[i] <= bounds[i - 1]) Violation("buckets not increasing", message);
  }
}

// `help_or_version` is false when the arguments cannot ask for help or the
// version (a config file cannot), so exit 0 must then come with a Config.
inline void CheckOutcome(const ParseOutcome& outcome, bool help_or_version) {
  const std::string& message = outcome.message;
  if (outcome.config) {
    const Config& c = *outcome.config;
    if (outcome.exit_code != 0 || !message.empty()) Violation("config with an error", message);
    if (c.ringbuf_bytes < 4096 || !IsPowerOfTwo(c.ringbuf_bytes)) {
      Violation("ring buffer size not a power of two >= 4096", std::to_string(c.ringbuf_bytes));
    }
    if (c.hot_slots != 0 && !IsPowerOfTwo(c.hot_slots)) {
      Violation("hot slots not a power of two", std::to_string(c.hot_slots));
    }
    if (c.processes.size() > 8) Violation("more than 8 processes", "");
    for (const std::string& p : c.processes) {
      if (p.empty() || p.size() > 15) Violation("process name length", p);
    }
    if (c.max_backends == 0) Violation("max-backends 0", "");
    if (c.telemetry_path.empty() || c.telemetry_path.front() != '/') {
      Violation("telemetry path", c.telemetry_path);
    }
    CheckBounds(c.buckets.connect_duration, "connect-duration");
    CheckBounds(c.buckets.connection_duration, "connection-duration");
    CheckBounds(c.buckets.time_to_first_byte, "time-to-first-byte");
    CheckBounds(c.buckets.rtt, "rtt");
    CheckBounds(c.buckets.requests_per_connection, "requests-per-connection");
    return;
  }
  // Exit 1 is what ParseCommandLine returns when an exception escaped.
  if (outcome.exit_code == 0) {
    if (!help_or_version) Violation("exit 0 without a config", message);
    return;
  }
  if (outcome.exit_code != 2) Violation("exit code other than 0 or 2", message);
  if (message.rfind("sockeye: ", 0) != 0)
    Violation("error not starting with \"sockeye: \"", message);
  if (message.find('\n') != std::string::npos) Violation("error of more than one line", message);
}

}  // namespace sockeye::fuzz
