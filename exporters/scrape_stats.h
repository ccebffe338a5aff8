// What the metrics server reports about itself: its families, declared once
// (docs/metrics.md lists them), and the collector that counts scrapes,
// responses, refused or dropped connections and failed web config reloads
// into them.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "exporters/metric_model.h"
#include "exporters/text_format.h"

namespace sockeye::metrics {

inline constexpr MetricDescriptor kScrapeDuration{
    .name = "sockeye_scrape_duration_seconds",
    .type = MetricType::kGauge,
    .help = "Time the previous scrape spent gathering, rendering and compressing metrics."};
inline constexpr MetricDescriptor kScrapes{.name = "sockeye_scrapes_total",
                                           .type = MetricType::kCounter,
                                           .labels = {"format"},
                                           .help = "Metrics pages rendered, by exposition format."};
inline constexpr MetricDescriptor kHttpRequests{
    .name = "sockeye_http_requests_total",
    .type = MetricType::kCounter,
    .labels = {"code"},
    .help = "HTTP requests answered by the metrics server, by status code."};
inline constexpr MetricDescriptor kHttpConnectionsRejected{
    .name = "sockeye_http_connections_rejected_total",
    .type = MetricType::kCounter,
    .labels = {"reason"},
    .help = "Connections the metrics server refused or dropped, by the limit they hit."};
inline constexpr MetricDescriptor kWebConfigReloadFailures{
    .name = "sockeye_web_config_reload_failures_total",
    .type = MetricType::kCounter,
    .help = "Reloads of --web.config.file (on SIGHUP) that failed and kept the running settings."};

// In the order a scrape lists them.
inline constexpr std::array kScrapeStatsFamilies = {&kScrapeDuration, &kScrapes, &kHttpRequests,
                                                    &kHttpConnectionsRejected,
                                                    &kWebConfigReloadFailures};

// Why the metrics server refused or dropped a connection (the limits are in
// exporters/http_server_limits.h).
enum class RejectReason {
  kClientLimit,     // too many open connections from the client's address
  kServerLimit,     // too many open connections in all
  kHeaderTimeout,   // the request header did not arrive in time
  kHeaderTooLarge,  // the request header was too large (answered with 431 or 414)
  kReadTimeout,     // the request body did not arrive in time
  kWriteTimeout,    // the client did not take the response in time
  kTlsHandshake,    // the TLS handshake failed (not TLS, wrong or missing client certificate)
};
inline constexpr size_t kRejectReasonCount = 7;

// Counts what the server does; register it with the Registry the server
// gathers from (see MetricsHttpServer::stats_collector). Exports
// kScrapeStatsFamilies.
class ScrapeStatsCollector : public Collector {
 public:
  void RecordScrape(Format format, std::chrono::duration<double> render_time);
  void RecordResponse(int status);
  void RecordRejection(RejectReason reason);
  void RecordWebConfigReloadFailure();
  void Collect(std::vector<MetricFamily>& out) override;

 private:
  std::mutex mu_;
  double last_scrape_seconds_ = 0;                         // guarded by mu_
  uint64_t prometheus_scrapes_ = 0;                        // guarded by mu_
  uint64_t openmetrics_scrapes_ = 0;                       // guarded by mu_
  std::map<int, uint64_t> responses_by_code_;              // guarded by mu_
  std::array<uint64_t, kRejectReasonCount> rejections_{};  // guarded by mu_
  uint64_t web_config_reload_failures_ = 0;                // guarded by mu_
};

}  // namespace sockeye::metrics
