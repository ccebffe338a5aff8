// Scrape cost benchmark. Why this file is long (~440 lines): it is one
// driver whose six paths share the population, gathering and memory helpers
// and are measured and printed by one function (ScrapeCost); split apart,
// each piece would need that state passed around. It reads top to bottom.
//
// Scrape cost and aggregation memory with synthetic backends: for 1,000 to
// 10,000 backends, the time to gather and render /metrics (text 0.0.4, and
// gzipped), the response size and a scrape's memory (peak RSS growth while
// scraping), along six paths:
//
//   streamed      what the server does: PageStream renders and compresses a
//                 piece (64 KiB of text) at a time, pieces are dropped; the
//                 per-backend series come from the aggregator's snapshot, a
//                 batch at a time
//   listed        the same with every series listed in the gathered families
//                 first (metrics::Materialize), i.e. the metric model as it
//                 was before series sources: strings, vectors and bounds per
//                 series, 4.3 MB per 1,000 backends
//   http          the real MetricsHttpServer on loopback, scraped by a client
//                 that reads and discards (wall time, the server's own
//                 sockeye_scrape_duration_seconds, bytes on the wire)
//   http-1-arena  the same with glibc limited to one malloc arena
//                 (mallopt M_ARENA_MAX): by default each server worker thread
//                 gets an arena of its own, and each keeps its largest
//                 scrape's transient memory (a gathered metric model's worth
//                 before series sources)
//   http-trim     http with the agent's after_scrape, malloc_trim(0) after
//                 each scrape: the scrape cost as the agent pays it
//   whole-string  the path before streaming, for comparison: Serialize()
//                 into one string, then GzipCompress() it
//
// then churn: 100,000 distinct short-lived backends through an aggregator
// capped at --max-backends, showing memory stays bounded and overflow is
// counted.
//
//   ./build/bench/scrape_cost                   # all sizes and paths, each in a fresh process
//   ./build/bench/scrape_cost 1000 [streamed|listed|http|http-1-arena|http-trim|whole-string]
//   ./build/bench/scrape_cost churn
//
// glibc's MALLOC_MMAP_THRESHOLD_ changes the whole-string figures a lot
// (bench/README.md#scrape-memory-and-linearity); the first line printed says
// whether it was set.
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "agent/aggregator.h"
#include "bench/bench_util.h"
#include "exporters/gzip.h"
#include "exporters/http_server.h"
#include "exporters/page_stream.h"
#include "exporters/text_format.h"

namespace {

using Clock = std::chrono::steady_clock;

namespace bench = sockeye::bench;

long RssKiB() { return bench::ReadMemoryStatus(bench::kSelf).rss_kib; }

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
        // A sweep's record: the totals and one turn.
        auto progress = Event(SOCKEYE_EV_PROGRESS, conn, b);
        progress.turn_count = 1;
        progress.turns[0].ttfb_us = 1000 * t;
        progress.turns[0].srtt_status = 50 + t;
        progress.totals.requests = t;
        progress.totals.bytes_sent = 100 * t;
        progress.totals.bytes_received = 1000 * t;
        agg.Handle(progress, now);
      }
    }
    auto closed = Event(SOCKEYE_EV_CLOSED, conn - 1, b);
    closed.totals.requests = 10;
    closed.duration_ns = 5'000'000'000;
    agg.Handle(closed, now);
  }
}

namespace metrics = sockeye::metrics;

constexpr int kScrapes = 15;
constexpr metrics::Format kFormat = metrics::Format::kPrometheusText004;

enum class Path { kStreamed, kListed, kHttp, kHttpOneArena, kHttpTrim, kWholeString };

const char* PathName(Path path) {
  switch (path) {
    case Path::kStreamed:
      return "streamed";
    case Path::kListed:
      return "listed";
    case Path::kHttp:
      return "http";
    case Path::kHttpOneArena:
      return "http-1-arena";
    case Path::kHttpTrim:
      return "http-trim";
    case Path::kWholeString:
      return "whole-string";
  }
  return "?";
}

// Results the timed loops would otherwise discard, so that no work can be
// optimized away.
volatile size_t g_sink = 0;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Stats {
  double median, min, max;
};
Stats Summarize(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return {values[values.size() / 2], values.front(), values.back()};
}

// So that VmHWM read after the scrapes is the peak reached during them.
void ResetPeakRss() {
  if (!bench::ResetPeakRss(bench::kSelf))
    throw std::runtime_error("cannot write /proc/self/clear_refs");
}

std::vector<metrics::MetricFamily> Gather(sockeye::Aggregator& agg) {
  std::vector<metrics::MetricFamily> families;
  agg.Collect(families);
  return families;
}

struct Drained {
  size_t bytes = 0;
  size_t pieces = 0;
};

// Every series listed in the families, as the metric model held them before
// series sources.
std::vector<metrics::MetricFamily> GatherListed(sockeye::Aggregator& agg) {
  auto families = Gather(agg);
  for (auto& family : families) metrics::Materialize(family);
  return families;
}

// Renders one page the way the server does and drops each piece.
Drained DrainPage(sockeye::Aggregator& agg, bool gzip, bool listed = false) {
  metrics::PageStream page(listed ? GatherListed(agg) : Gather(agg), kFormat, gzip);
  Drained drained;
  while (!page.done()) {
    drained.bytes += page.Next().size();
    ++drained.pieces;
  }
  return drained;
}

// GET /metrics over loopback, as a scraper would, reading and discarding
// the response; returns the bytes received (status line, headers, chunk
// framing and body).
size_t Fetch(int port, bool gzip) {
  static char buf[256 * 1024];
  size_t total = 0;
  bool first = true, status_ok = false;
  std::string error;
  if (!bench::HttpGet(
          static_cast<uint16_t>(port), "/metrics", {.gzip = gzip}, buf,
          [&](std::string_view piece) {
            if (first) status_ok = piece.starts_with("HTTP/1.1 200");
            first = false;
            total += piece.size();
          },
          &error))
    throw std::runtime_error(error);
  if (!status_ok) throw std::runtime_error("scrape did not answer 200");
  return total;
}

// The former server's gzip step. Its GzipCompress sized the output with
// deflateBound() (slightly more than the input) through std::string::resize,
// which zero-fills, so a page's worth of output buffer was resident next to
// the text; today's GzipCompress grows its output instead. Reproduced here
// so that the comparison shows the former peak, not a better one.
std::string WholeStringGzip(const std::string& text) {
  std::string out(text.size() + text.size() / 4096 + 64, '\0');
  out.clear();  // keeps the touched capacity
  metrics::GzipStreamer gzip;
  gzip.Write(text, out);
  gzip.Finish(out);
  return out;
}

double LastScrapeMs(metrics::MetricsHttpServer& server) {
  std::vector<metrics::MetricFamily> families;
  server.stats_collector()->Collect(families);
  for (const auto& family : families) {
    if (family.name == "sockeye_scrape_duration_seconds") return family.samples.at(0).value * 1e3;
  }
  return -1;
}

// The agent's after_scrape (agent/agent.cc): every arena's free memory goes
// back to the kernel after each scrape, so whatever a scrape allocates
// afresh is page-faulted in again by the next one.
void TrimHeap() { malloc_trim(0); }

// Heap bytes in use (all arenas), for sizes that RSS would blur.
size_t HeapInUse() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

void ScrapeCost(uint32_t backends, Path path) {
  const bool http = path == Path::kHttp || path == Path::kHttpOneArena || path == Path::kHttpTrim;
  // Before any thread exists, so that none has an arena of its own yet.
  if (path == Path::kHttpOneArena) mallopt(M_ARENA_MAX, 1);
  sockeye::AggregatorOptions options;
  options.max_backends = backends;
  sockeye::Aggregator agg(options);
  const long rss_empty = RssKiB();
  Populate(agg, backends);
  const long rss_populated = RssKiB();

  std::unique_ptr<metrics::MetricsHttpServer> server;
  if (http) {
    server = std::make_unique<metrics::MetricsHttpServer>(
        metrics::HttpServerOptions{
            "127.0.0.1:0", "/metrics", "",
            path == Path::kHttpTrim ? std::function<void()>(TrimHeap) : std::function<void()>()},
        [&agg] { return Gather(agg); }, nullptr);
    std::string error;
    if (!server->Start(&error)) throw std::runtime_error(error);
  }

  // Taken before anything was rendered: the transient below is all a
  // scrape needs, the gathered metric model included.
  const long rss_before = RssKiB();
  ResetPeakRss();

  // What the gathered families (std::vector<MetricFamily>) occupy while a
  // scrape renders them, measured on the first scrape's: the aggregator
  // keeps its snapshot for the next scrape, so later ones allocate nothing
  // new for it. For the listed path, only the listed series: they are what
  // the model held before series sources (the snapshot they are produced
  // from, which the first Gather allocates, did not exist).
  if (path == Path::kListed) Gather(agg);
  const size_t model_bytes = [&] {
    const size_t heap_without_model = HeapInUse();
    const auto families = path == Path::kListed ? GatherListed(agg) : Gather(agg);
    return HeapInUse() - heap_without_model;
  }();

  // identity and gzip: time until the whole body exists (for http: until
  // the client has read it all); server_*: the server's own render time.
  std::vector<double> identity_ms, gzip_ms, server_identity_ms, server_gzip_ms;
  size_t wire_identity = 0, wire_gzip = 0;
  for (int i = 0; i < kScrapes; ++i) {
    const auto t0 = Clock::now();
    switch (path) {
      case Path::kStreamed:
      case Path::kListed: {
        const bool listed = path == Path::kListed;
        g_sink = g_sink + DrainPage(agg, /*gzip=*/false, listed).bytes;
        const auto t1 = Clock::now();
        g_sink = g_sink + DrainPage(agg, /*gzip=*/true, listed).bytes;
        identity_ms.push_back(Ms(t1 - t0));
        gzip_ms.push_back(Ms(Clock::now() - t1));
        break;
      }
      case Path::kHttp:
      case Path::kHttpOneArena:
      case Path::kHttpTrim: {
        wire_identity = Fetch(server->port(), /*gzip=*/false);
        const auto t1 = Clock::now();
        server_identity_ms.push_back(LastScrapeMs(*server));
        const auto t2 = Clock::now();
        wire_gzip = Fetch(server->port(), /*gzip=*/true);
        identity_ms.push_back(Ms(t1 - t0));
        gzip_ms.push_back(Ms(Clock::now() - t2));
        server_gzip_ms.push_back(LastScrapeMs(*server));
        break;
      }
      case Path::kWholeString: {
        g_sink = g_sink + metrics::Serialize(Gather(agg), kFormat).size();
        const auto t1 = Clock::now();
        g_sink = g_sink + WholeStringGzip(metrics::Serialize(Gather(agg), kFormat)).size();
        identity_ms.push_back(Ms(t1 - t0));
        gzip_ms.push_back(Ms(Clock::now() - t1));
        break;
      }
    }
  }
  const long peak = bench::ReadMemoryStatus(bench::kSelf).hwm_kib;
  const long rss_after = RssKiB();

  // Page size and line count, after the measurement (counting lines costs
  // time of its own) and streamed whatever the path: one whole-page string
  // would move glibc's dynamic mmap threshold.
  size_t text_bytes = 0, lines = 0, pieces = 0;
  {
    metrics::PageStream page(Gather(agg), kFormat, /*gzip=*/false);
    while (!page.done()) {
      const std::string_view piece = page.Next();
      text_bytes += piece.size();
      lines += static_cast<size_t>(std::count(piece.begin(), piece.end(), '\n'));
      ++pieces;
    }
  }
  const size_t gzip_bytes = DrainPage(agg, /*gzip=*/true).bytes;

  const Stats id = Summarize(identity_ms);
  const Stats gz = Summarize(gzip_ms);
  std::printf(
      "%6u backends  %-12s  %s median %7.2f ms (min %7.2f, max %7.2f), gzipped %7.2f ms "
      "(min %7.2f, max %7.2f)",
      backends, PathName(path), http ? "scrape" : "render", id.median, id.min, id.max, gz.median,
      gz.min, gz.max);
  if (http) {
    std::printf(
        "; server-side render (sockeye_scrape_duration_seconds) %7.2f ms, gzipped %7.2f ms; "
        "on the wire %6.2f MB, gzipped %5.2f MB",
        Summarize(server_identity_ms).median, Summarize(server_gzip_ms).median,
        double(wire_identity) / 1e6, double(wire_gzip) / 1e6);
  }
  std::printf("; %6.2f MB text, %5.2f MB gzip, %7zu lines", double(text_bytes) / 1e6,
              double(gzip_bytes) / 1e6, lines);
  if (path != Path::kWholeString) {
    std::printf(" in %zu pieces of ~%zu KiB", pieces,
                metrics::PageStream::kDefaultChunkBytes / 1024);
  }
  std::printf(
      "; aggregation memory %5.1f MB; metric model (gathered families) %5.1f MB; RSS before "
      "scrapes %6.1f MB, peak during %6.1f MB (scrape transient +%5.1f MB), after %6.1f MB\n",
      double(rss_populated - rss_empty) / 1024.0, double(model_bytes) / 1048576.0,
      double(rss_before) / 1024.0, double(peak) / 1024.0, double(peak - rss_before) / 1024.0,
      double(rss_after) / 1024.0);
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
  std::printf(
      "churn: %u distinct backends (1,000 new per simulated second, idle timeout 60 s, "
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
  const char* mmap_threshold = std::getenv("MALLOC_MMAP_THRESHOLD_");
  std::printf("# MALLOC_MMAP_THRESHOLD_ %s%s; %d scrapes per figure, text format 0.0.4\n",
              mmap_threshold ? "= " : "unset (glibc default, dynamic up to 32 MB)",
              mmap_threshold ? mmap_threshold : "", kScrapes);
  if (argc > 1 && std::string(argv[1]) == "churn") {
    Churn(100000, 5000);
    return 0;
  }
  const std::vector<Path> paths = {Path::kStreamed,     Path::kListed,   Path::kHttp,
                                   Path::kHttpOneArena, Path::kHttpTrim, Path::kWholeString};
  if (argc > 1) {
    const auto backends = static_cast<uint32_t>(std::stoul(argv[1]));
    for (Path path : paths) {
      if (argc > 2 && argv[2] != std::string(PathName(path))) continue;
      RunChild([backends, path] { ScrapeCost(backends, path); });
    }
    return 0;
  }
  for (uint32_t n : {1000u, 2000u, 5000u, 10000u}) {
    for (Path path : paths) RunChild([n, path] { ScrapeCost(n, path); });
  }
  RunChild([] { Churn(100000, 5000); });
  return 0;
}
