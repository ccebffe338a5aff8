// The HTTP endpoint: serves the metrics page, a landing page and /healthz
// from a small background thread pool. A metrics page larger than one piece
// of PageStream (64 KiB of text) is streamed with chunked transfer encoding,
// rendered and gzipped piece by piece, so a scrape's memory does not grow
// with the page; smaller pages go out whole, with a Content-Length.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "exporters/metric_model.h"
#include "exporters/text_format.h"

namespace sockeye::metrics {

struct HttpServerOptions {
  // HOST:PORT. Empty host = all interfaces (IPv6 dual-stack, IPv4 if the
  // host has no IPv6); IPv6 literals in brackets. Port 0 picks a free port.
  std::string listen_address = ":19480";
  std::string telemetry_path = "/metrics";
  std::string version;  // shown on the landing page
  // Called on a server thread once a metrics page has been rendered, sent
  // and released (the agent hands the scrape's freed memory back to the
  // kernel there). Must not throw.
  std::function<void()> after_scrape;
};

// Counts what the server does; register it with the Registry the server
// gathers from (see MetricsHttpServer::stats_collector).
class ScrapeStatsCollector : public Collector {
 public:
  void RecordScrape(Format format, std::chrono::duration<double> render_time);
  void RecordResponse(int status);
  void Collect(std::vector<MetricFamily>& out) override;

 private:
  std::mutex mu_;
  double last_scrape_seconds_ = 0;             // guarded by mu_
  uint64_t prometheus_scrapes_ = 0;            // guarded by mu_
  uint64_t openmetrics_scrapes_ = 0;           // guarded by mu_
  std::map<int, uint64_t> responses_by_code_;  // guarded by mu_
};

class MetricsHttpServer {
 public:
  using GatherFn = std::function<std::vector<MetricFamily>()>;
  // Returns "" when healthy, otherwise the reason (served with 503).
  using HealthFn = std::function<std::string()>;

  MetricsHttpServer(HttpServerOptions options, GatherFn gather, HealthFn health);
  ~MetricsHttpServer();  // Stop()s
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Binds the listen address and starts serving on a background thread.
  // On failure returns false and sets *error (if non-null) to a message
  // naming the address. Calling it again while running fails.
  bool Start(std::string* error);
  // Stops serving and joins the threads; idempotent. Open keep-alive
  // connections may delay it by up to the keep-alive timeout (2 s).
  void Stop();
  // The bound port once Start succeeded (the real one when 0 was asked).
  int port() const;

  // Exports sockeye_scrape_duration_seconds, sockeye_scrapes_total{format}
  // and sockeye_http_requests_total{code}.
  std::shared_ptr<Collector> stats_collector() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Helpers, exposed for tests.

// Splits HOST:PORT as described for HttpServerOptions::listen_address.
// `host` comes back without brackets and is empty for "all interfaces".
bool ParseListenAddress(std::string_view address, std::string* host, int* port, std::string* error);

// OpenMetrics when the Accept header lists application/openmetrics-text with
// q > 0 and no other media range has a higher q; the 0.0.4 text otherwise.
Format NegotiateFormat(std::string_view accept);

// True when Accept-Encoding allows gzip (explicitly, or via "*") with q > 0.
bool AcceptsGzip(std::string_view accept_encoding);

}  // namespace sockeye::metrics
