// The churn bench's shared pieces: where its traffic goes, its options, and
// its output (every line reaches stdout as it is made; checks decide the
// exit status).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace sockeye::bench::churn {

using Clock = std::chrono::steady_clock;

constexpr size_t kRequestBytes = 16;
constexpr size_t kResponseBytes = 64;
constexpr const char* kChurnNet = "127.201.0.0/16";
constexpr uint8_t kChurnSecondOctet = 201;
constexpr const char* kLiveNet = "127.202.0.0/16";
constexpr uint8_t kLiveSecondOctet = 202;
constexpr int kHostsPerThirdOctet = 250;   // .1 .. .250
constexpr int kMaxBackendsDefault = 5000;  // the agent's --max-backends default

inline double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Address number n in 127.<second>.0.0/16: 127.<second>.(n/250).(n%250+1).
inline in_addr_t BackendAddress(uint8_t second, int n) {
  const uint32_t host = (127u << 24) | (uint32_t{second} << 16) |
                        (static_cast<uint32_t>(n / kHostsPerThirdOctet) << 8) |
                        static_cast<uint32_t>(n % kHostsPerThirdOctet + 1);
  return htonl(host);
}

inline sockaddr_in Loopback(in_addr_t addr, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = addr;
  sa.sin_port = htons(port);
  return sa;
}

struct Options {
  std::string agent;
  std::string phase = "both";
  int connections = 100000;
  int addresses = 10000;
  int ports = 10;
  double rate = 1000;
  int concurrency = 256;
  int live_backends = 1000;
  int live_rounds = 5;   // request rounds before the first scrape
  int live_scrapes = 6;  // alternately text and gzip + OpenMetrics
  double sample_interval = 5;
  double scrape_interval = -1;  // -1: every sample; 0: only the checks' scrapes
  double settle = 65;           // after the load: closed-connection memory is 60 s
  double load_limit = 200;      // no new connections after this many seconds
  uint16_t base_port = 21000;
};

void Out(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Fmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

class Checks {
 public:
  void Add(bool ok, const std::string& what) {
    Out("  [%s] %s\n", ok ? "PASS" : "FAIL", what.c_str());
    items_.push_back({ok, what});
  }
  void Target(bool met, const std::string& what) {
    Out("  [%s] %s\n", met ? "TARGET MET" : "TARGET MISSED", what.c_str());
    targets_.push_back({met, what});
  }
  bool AllPassed() const {
    return std::all_of(items_.begin(), items_.end(), [](const auto& i) { return i.first; });
  }
  void Summary() const {
    size_t failed = 0;
    for (const auto& [ok, what] : items_) failed += ok ? 0 : 1;
    Out("checks: %zu passed, %zu failed\n", items_.size() - failed, failed);
    for (const auto& [ok, what] : items_)
      if (!ok) Out("  FAILED: %s\n", what.c_str());
    for (const auto& [met, what] : targets_)
      Out("  target %s: %s\n", met ? "met" : "MISSED", what.c_str());
  }

 private:
  std::vector<std::pair<bool, std::string>> items_;
  std::vector<std::pair<bool, std::string>> targets_;
};

}  // namespace sockeye::bench::churn
