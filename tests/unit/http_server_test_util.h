// Test helpers for the HTTP server tests: the pages it serves, a body
// comparison that stays short on a mismatch, and the server fixture.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "exporters/http_server.h"
#include "exporters/text_format.h"

namespace sockeye::metrics::test_util {

inline std::vector<MetricFamily> FixedFamilies() {
  MetricFamily counter;
  counter.name = "test_requests_total";
  counter.help = "Requests.";
  counter.type = MetricType::kCounter;
  counter.samples = {{{{"code", "200"}}, 5}, {{{"code", "500"}}, 1}};

  MetricFamily histogram;
  histogram.name = "test_latency_seconds";
  histogram.help = "Latency.";
  histogram.type = MetricType::kHistogram;
  histogram.histograms.push_back({{{"pool", "a"}}, {0.1, 1}, {2, 3}, 2.25, 6});

  // Large enough that gzip clearly pays off.
  MetricFamily gauge;
  gauge.name = "test_backend_up";
  gauge.help = "Backend state.";
  gauge.type = MetricType::kGauge;
  for (int i = 0; i < 200; ++i)
    gauge.samples.push_back({{{"backend", "10.0.0." + std::to_string(i)}}, 1});
  return {counter, histogram, gauge};
}

// FixedFamilies plus 4,000 histogram series: ~2.7 MB of text, many times
// the size of one rendered piece, so the page is streamed in HTTP chunks.
inline std::vector<MetricFamily> LargeFamilies() {
  std::vector<MetricFamily> families = FixedFamilies();
  MetricFamily ttfb;
  ttfb.name = "test_backend_ttfb_seconds";
  ttfb.help = "Time to first byte.";
  ttfb.type = MetricType::kHistogram;
  for (int i = 0; i < 4000; ++i) {
    ttfb.histograms.push_back(
        {{{"backend", "10.2." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ":80"}},
         {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5},
         {1, 2, 3, 4, 5, 6, 7, static_cast<uint64_t>(i)},
         0.125 * i,
         100});
  }
  families.push_back(std::move(ttfb));
  return families;
}

// EXPECT_EQ on megabytes would print all of them on a mismatch.
inline ::testing::AssertionResult SameBody(const std::string& actual, const std::string& expected) {
  if (actual == expected) return ::testing::AssertionSuccess();
  size_t at = 0;
  while (at < actual.size() && at < expected.size() && actual[at] == expected[at]) ++at;
  return ::testing::AssertionFailure()
         << "bodies differ: " << actual.size() << " vs " << expected.size()
         << " bytes, first difference at " << at << ": \"" << actual.substr(at, 40) << "\" vs \""
         << expected.substr(at, 40) << "\"";
}

// A server on 127.0.0.1 with an ephemeral port, serving FixedFamilies().
class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions options = {}) {
    if (options.listen_address == HttpServerOptions().listen_address) {
      options.listen_address = "127.0.0.1:0";
    }
    if (options.version.empty()) options.version = "1.2.3-test";
    server_ = std::make_unique<MetricsHttpServer>(
        options, [this] { return gather_(); }, [this] { return health_reason_; });
    std::string error;
    ASSERT_TRUE(server_->Start(&error)) << error;
    ASSERT_GT(server_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_decompress(false);  // see the bytes on the wire
  }

  httplib::Result Get(const std::string& path, httplib::Headers headers = {}) {
    return client_->Get(path, headers);
  }

  std::function<std::vector<MetricFamily>()> gather_ = FixedFamilies;
  std::string health_reason_;
  std::unique_ptr<MetricsHttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};
}  // namespace sockeye::metrics::test_util
