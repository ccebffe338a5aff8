// The churn load: short connections paced at --rate, each to its own
// backend, one request and one response each.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "bench/churn/common.h"

namespace sockeye::bench::churn {

struct ChurnProgress {
  std::atomic<uint64_t> completed{0};
  std::atomic<bool> done{false};
  std::atomic<bool> abort{false};
};

struct ChurnResult {
  uint64_t started = 0;         // connect() called
  uint64_t failed_at_once = 0;  // connect() returned an error other than EINPROGRESS
  uint64_t failed_later = 0;    // SO_ERROR after EPOLLOUT
  uint64_t established = 0;
  uint64_t completed = 0;  // response read in full, closed by the client
  uint64_t protocol_errors = 0;
  uint64_t abandoned = 0;  // still open at the drain deadline
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  int peak_in_flight = 0;
  double seconds = 0;
  std::map<std::string, uint64_t> errors;
};

// Connection i goes to address i % addresses on port i / addresses, so every
// connection has its own backend and the first --addresses connections all
// use the first port.
ChurnResult DriveChurn(const Options& o, uint16_t base_port, ChurnProgress* progress);

}  // namespace sockeye::bench::churn
