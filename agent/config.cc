#include "agent/config.h"

namespace sockeye {

HistogramBuckets DefaultHistogramBuckets() {
  HistogramBuckets b;
  // 50 µs (loopback) to 10 s (SYN retries to a dead host); slower ends in +Inf.
  b.connect_duration = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                        0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
  // 1 ms to an hour: short RPCs through long-lived pooled connections.
  b.connection_duration = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5,  1,   5,
                           10,    30,    60,   300,  600, 1800, 3600};
  // Like connect, but slow queries and long polls reach a minute.
  b.time_to_first_byte = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                          0.1,     0.25,   0.5,     1,      2.5,   5,      10,    30,   60};
  // Time to first byte plus the body: up to 10 min (downloads, long polls).
  b.response_duration = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                         0.25,   0.5,     1,      2.5,   5,      10,    30,   60,    300,  600};
  // 10 µs (same host) to 1 s (intercontinental under loss).
  b.rtt = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
           0.005,   0.01,     0.025,   0.05,   0.1,     0.25,   0.5,   1};
  b.requests_per_connection = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000};
  return b;
}

std::optional<ProbeMode> ProbeModeFromName(std::string_view name) {
  for (ProbeMode mode : {ProbeMode::kAuto, ProbeMode::kTracepoint, ProbeMode::kFentry,
                         ProbeMode::kKprobe, ProbeMode::kSegment}) {
    if (name == ProbeModeName(mode)) return mode;
  }
  return std::nullopt;
}

const char* ProbeModeName(ProbeMode mode) {
  switch (mode) {
    case ProbeMode::kAuto:
      return "auto";
    case ProbeMode::kTracepoint:
      return "tracepoint";
    case ProbeMode::kFentry:
      return "fentry";
    case ProbeMode::kKprobe:
      return "kprobe";
    case ProbeMode::kSegment:
      return "segment";
  }
  return "unknown";
}

std::optional<SweepIterator> SweepIteratorFromName(std::string_view name) {
  for (SweepIterator iterator :
       {SweepIterator::kAuto, SweepIterator::kSocketStorage, SweepIterator::kTcp}) {
    if (name == SweepIteratorName(iterator)) return iterator;
  }
  return std::nullopt;
}

const char* SweepIteratorName(SweepIterator iterator) {
  switch (iterator) {
    case SweepIterator::kAuto:
      return "auto";
    case SweepIterator::kSocketStorage:
      return "socket-storage";
    case SweepIterator::kTcp:
      return "tcp";
  }
  return "unknown";
}

const char* HttpStatusCodesName(HttpStatusCodes codes) {
  switch (codes) {
    case HttpStatusCodes::kClass:
      return "class";
    case HttpStatusCodes::kExact:
      return "exact";
    case HttpStatusCodes::kOff:
      return "off";
  }
  return "unknown";
}

std::optional<HttpStatusCodes> HttpStatusCodesFromName(std::string_view name) {
  for (HttpStatusCodes codes :
       {HttpStatusCodes::kClass, HttpStatusCodes::kExact, HttpStatusCodes::kOff}) {
    if (name == HttpStatusCodesName(codes)) return codes;
  }
  return std::nullopt;
}

}  // namespace sockeye
