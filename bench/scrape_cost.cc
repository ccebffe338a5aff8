// Scrape cost and aggregation memory with synthetic backends: time to
// gather and render /metrics (text 0.0.4, and gzipped) for 1,000 and
// 10,000 backends, the response size, and the process RSS; then churn:
// 100,000 distinct short-lived backends through an aggregator capped at
// --max-backends, showing memory stays bounded and overflow is counted.
//
//   ./build/bench/scrape_cost            # all sizes, each in a fresh process
//   ./build/bench/scrape_cost 1000       # one size
//   ./build/bench/scrape_cost churn
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "agent/aggregator.h"
#include "exporters/gzip.h"
#include "exporters/text_format.h"

namespace {

using Clock = std::chrono::steady_clock;

long StatusKiB(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::string(field).size()));
  return -1;
}
long RssKiB() { return StatusKiB("VmRSS:"); }

sockeye_event Event(uint8_t kind, uint64_t conn, uint32_t backend) {
  sockeye_event e{};
  e.kind = kind;
  e.conn_id = conn;
  e.backend.addr[10] = 0xff;
  e.backend.addr[11] = 0xff;
  e.backend.addr[12] = 10;
  e.backend.addr[13] = static_cast<uint8_t>(backend >> 16);
  e.backend.addr[14] = static_cast<uint8_t>(backend >> 8);
  e.backend.addr[15] = static_cast<uint8_t>(backend);
  e.backend.port = 8080;
  return e;
}

// Each backend: two connections, ten turns, one close: every series and
// every histogram is populated.
void Populate(sockeye::Aggregator& agg, uint32_t backends) {
  auto now = Clock::now();
  uint64_t conn = 1;
  for (uint32_t b = 0; b < backends; ++b) {
    for (int c = 0; c < 2; ++c, ++conn) {
      auto e = Event(SOCKEYE_EV_CONNECTED, conn, b);
      e.duration_ns = 100'000 + b;
      agg.Handle(e, now);
      for (uint32_t t = 1; t <= 10; ++t) {
        auto turn = Event(SOCKEYE_EV_TURN, conn, b);
        turn.turn_count = 1;
        turn.turns[0].ttfb_ns = 1'000'000 * t;
        turn.turns[0].srtt_us = 50 + t;
        turn.totals.requests = t;
        turn.totals.bytes_sent = 100 * t;
        turn.totals.bytes_received = 1000 * t;
        agg.Handle(turn, now);
      }
    }
    auto closed = Event(SOCKEYE_EV_CLOSED, conn - 1, b);
    closed.totals.requests = 10;
    closed.duration_ns = 5'000'000'000;
    agg.Handle(closed, now);
  }
}

void ScrapeCost(uint32_t backends) {
  sockeye::AggregatorOptions options;
  options.max_backends = backends;
  sockeye::Aggregator agg(options);
  long rss_before = RssKiB();
  Populate(agg, backends);
  long rss_after = RssKiB();

  std::vector<double> render_ms, gzip_ms;
  size_t text_bytes = 0, gzip_bytes = 0, series = 0;
  for (int i = 0; i < 15; ++i) {
    auto t0 = Clock::now();
    std::vector<sockeye::metrics::MetricFamily> families;
    agg.Collect(families);
    std::string text =
        sockeye::metrics::Serialize(families, sockeye::metrics::Format::kPrometheusText004);
    auto t1 = Clock::now();
    std::string gz = sockeye::metrics::GzipCompress(text);
    auto t2 = Clock::now();
    render_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    gzip_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    text_bytes = text.size();
    gzip_bytes = gz.size();
    series = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  }
  std::sort(render_ms.begin(), render_ms.end());
  std::sort(gzip_ms.begin(), gzip_ms.end());
  std::printf("%8u backends: render median %7.2f ms (min %7.2f, max %7.2f), +gzip %7.2f ms, "
              "%6.2f MB text, %5.2f MB gzip, %7zu lines, aggregation memory %6.1f MB, "
              "peak RSS during scrapes %6.1f MB\n",
              backends, render_ms[render_ms.size() / 2], render_ms.front(), render_ms.back(),
              gzip_ms[gzip_ms.size() / 2], double(text_bytes) / 1e6, double(gzip_bytes) / 1e6,
              series, double(rss_after - rss_before) / 1024.0, double(StatusKiB("VmHWM:")) / 1024.0);
}

void Churn(uint32_t distinct, size_t max_backends) {
  sockeye::AggregatorOptions options;
  options.max_backends = max_backends;
  options.backend_idle_timeout = std::chrono::seconds(60);
  options.closed_connection_memory = std::chrono::seconds(5);
  sockeye::Aggregator agg(options);
  long rss0 = RssKiB();
  auto t = Clock::now();
  for (uint32_t b = 0; b < distinct; ++b) {
    agg.Handle(Event(SOCKEYE_EV_CONNECTED, b + 1, b), t);
    agg.Handle(Event(SOCKEYE_EV_CLOSED, b + 1, b), t);
    if (b % 1000 == 999) {
      t += std::chrono::seconds(1);  // 1,000 new backends per simulated second
      agg.Maintain(t);
    }
  }
  long rss1 = RssKiB();
  std::vector<sockeye::metrics::MetricFamily> families;
  agg.Collect(families);
  double overflow_conns = 0, tracked = 0;
  for (const auto& f : families) {
    if (f.name == "sockeye_backend_overflow_connections_total") overflow_conns = f.samples[0].value;
    if (f.name == "sockeye_backends") tracked = f.samples[0].value;
  }
  std::printf("churn: %u distinct backends (1,000 new per simulated second, idle timeout 60 s, "
              "max %zu): %.0f tracked at the end, %.0f connections in overflow, memory growth "
              "%.1f MB\n",
              distinct, max_backends, tracked, overflow_conns, double(rss1 - rss0) / 1024.0);
}

}  // namespace

// Memory figures are only meaningful in a process that has done nothing
// else, so each case runs in a child.
int RunChild(const std::function<void()>& body) {
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    body();
    std::fflush(stdout);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "churn") {
    Churn(100000, 5000);
    return 0;
  }
  if (argc > 1) {
    ScrapeCost(static_cast<uint32_t>(std::stoul(argv[1])));
    return 0;
  }
  for (uint32_t n : {1000u, 2000u, 5000u, 10000u}) RunChild([n] { ScrapeCost(n); });
  RunChild([] { Churn(100000, 5000); });
  return 0;
}
