#include "exporters/scrape_stats.h"

#include <string>
#include <utility>

namespace sockeye::metrics {
namespace {

// Label values of sockeye_http_connections_rejected_total, in RejectReason's
// order.
constexpr std::array<const char*, kRejectReasonCount> kRejectReasonNames = {
    "client_limit", "server_limit",  "header_timeout", "header_too_large",
    "read_timeout", "write_timeout", "tls_handshake"};

}  // namespace

void ScrapeStatsCollector::RecordScrape(Format format, std::chrono::duration<double> render_time) {
  std::lock_guard<std::mutex> lock(mu_);
  last_scrape_seconds_ = render_time.count();
  (format == Format::kOpenMetrics100 ? openmetrics_scrapes_ : prometheus_scrapes_)++;
}

void ScrapeStatsCollector::RecordResponse(int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++responses_by_code_[status];
}

void ScrapeStatsCollector::RecordRejection(RejectReason reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++rejections_[static_cast<size_t>(reason)];
}

void ScrapeStatsCollector::Collect(std::vector<MetricFamily>& out) {
  std::lock_guard<std::mutex> lock(mu_);
  MetricFamily duration = MakeFamily(kScrapeDuration);
  duration.samples.push_back({{}, last_scrape_seconds_});
  out.push_back(std::move(duration));

  MetricFamily scrapes = MakeFamily(kScrapes);
  scrapes.samples.push_back(
      {LabelValues(kScrapes, {"openmetrics"}), static_cast<double>(openmetrics_scrapes_)});
  scrapes.samples.push_back(
      {LabelValues(kScrapes, {"prometheus"}), static_cast<double>(prometheus_scrapes_)});
  out.push_back(std::move(scrapes));

  MetricFamily responses = MakeFamily(kHttpRequests);
  for (const auto& [code, count] : responses_by_code_) {
    responses.samples.push_back(
        {LabelValues(kHttpRequests, {std::to_string(code)}), static_cast<double>(count)});
  }
  out.push_back(std::move(responses));

  // Every reason is listed from the start, so a rate over it has a zero to
  // start from.
  MetricFamily rejected = MakeFamily(kHttpConnectionsRejected);
  for (size_t i = 0; i < kRejectReasonCount; ++i) {
    rejected.samples.push_back({LabelValues(kHttpConnectionsRejected, {kRejectReasonNames[i]}),
                                static_cast<double>(rejections_[i])});
  }
  out.push_back(std::move(rejected));

  MetricFamily reload_failures = MakeFamily(kWebConfigReloadFailures);
  reload_failures.samples.push_back({{}, static_cast<double>(web_config_reload_failures_)});
  out.push_back(std::move(reload_failures));
}

void ScrapeStatsCollector::RecordWebConfigReloadFailure() {
  std::lock_guard<std::mutex> lock(mu_);
  ++web_config_reload_failures_;
}

}  // namespace sockeye::metrics
