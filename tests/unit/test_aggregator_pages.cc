// Pages from the aggregator: per-backend series from sources, snapshots
// that stay as collected, concurrent scrapes; and the histogram's buckets.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/aggregator.h"
#include "exporters/text_format.h"
#include "tests/unit/aggregator_test_util.h"

namespace sockeye {
namespace {

using aggregator_test_util::Clock;
using aggregator_test_util::Event;
using aggregator_test_util::Listed;
using aggregator_test_util::SmallOptions;
using aggregator_test_util::V4;

// Three backends with their own series (one in a pool, one IPv6) and two
// in (overflow): connections, turns, a close and a failure each.
std::unique_ptr<Aggregator> PopulatedWithPoolAndOverflow() {
  std::string error;
  auto options = SmallOptions(/*max_backends=*/3);
  options.pools.push_back({"api", *ParseCidrMatch("10.1.0.0/24:8080", &error)});
  auto agg_owner = std::make_unique<Aggregator>(options);
  Aggregator& agg = *agg_owner;
  sockeye_endpoint v6{};
  v6.addr[15] = 1;  // ::1
  v6.port = 443;
  const std::vector<sockeye_endpoint> backends = {V4(10, 1, 0, 7, 8080), v6, V4(10, 0, 0, 2, 80),
                                                  V4(10, 0, 0, 3, 80), V4(10, 0, 0, 4, 80)};
  auto now = Clock::now();
  uint64_t conn = 1;
  for (size_t b = 0; b < backends.size(); ++b, ++conn) {
    auto connected = Event(SOCKEYE_EV_CONNECTED, conn, backends[b]);
    connected.duration_ns = 200'000 * (b + 1);
    agg.Handle(connected, now);
    auto turn = Event(SOCKEYE_EV_TURN, conn, backends[b]);
    turn.turn_count = 1;
    turn.turns[0] = {.ttfb_us = static_cast<__u32>(3'000 * (b + 1)), .srtt_status = 100, .prev_response_us = 0};
    turn.totals.requests = 1;
    turn.totals.bytes_sent = 100 + b;
    agg.Handle(turn, now);
    auto closed = Event(SOCKEYE_EV_CLOSED, conn, backends[b]);
    closed.closed_by = b % 2 ? SOCKEYE_CLOSED_BY_REMOTE : 0;
    closed.duration_ns = 1'000'000'000;
    closed.totals = turn.totals;
    agg.Handle(closed, now);
    auto failed = Event(SOCKEYE_EV_CONNECT_FAILED, 0, backends[b]);
    failed.reason = static_cast<uint8_t>(b % SOCKEYE_FAIL_COUNT);
    agg.Handle(failed, now);
  }
  return agg_owner;
}

TEST(Aggregator, PerBackendSeriesComeFromSourcesInLabelOrder) {
  auto owner = PopulatedWithPoolAndOverflow();
  Aggregator& agg = *owner;
  std::vector<metrics::MetricFamily> families;
  agg.Collect(families);
  for (const auto& f : families) {
    // responses_total lists only the backends that answered HTTP/1.x.
    if (f.name.starts_with("sockeye_backend_") &&
        f.name != "sockeye_backend_overflow_connections_total" &&
        f.name != "sockeye_backend_responses_total") {
      EXPECT_TRUE(f.samples.empty() && f.histograms.empty()) << f.name;
      // Per backend label set (three backends and the overflow): one series,
      // or one per failure reason or per closed_by.
      size_t per_backend = 1;
      if (f.name.find("failures") != std::string::npos)
        per_backend = SOCKEYE_FAIL_COUNT;
      else if (f.name.find("closed") != std::string::npos ||
               f.name.find("unanswered") != std::string::npos)
        per_backend = 2;
      EXPECT_EQ(metrics::SeriesCount(f), 4 * per_backend) << f.name;
    }
  }
  for (auto format : {metrics::Format::kPrometheusText004, metrics::Format::kOpenMetrics100}) {
    EXPECT_EQ(metrics::Serialize(families, format), metrics::Serialize(Listed(families), format));
  }
  const std::string page = metrics::Serialize(families, metrics::Format::kPrometheusText004);
  // Sorted by label, the overflow series last; pool before any other label.
  EXPECT_NE(page.find("# TYPE sockeye_backend_connect_failures_total counter\n"
                      "sockeye_backend_connect_failures_total{backend=\"10.0.0.2:80\","
                      "reason=\"refused\"} 0\n"),
            std::string::npos);
  EXPECT_NE(page.find("sockeye_backend_connect_failures_total{backend=\"10.1.0.7:8080\","
                      "pool=\"api\",reason=\"other\"} 0\n"
                      "sockeye_backend_connect_failures_total{backend=\"[::1]:443\","
                      "reason=\"refused\"} 0\n"),
            std::string::npos);
  EXPECT_NE(page.find("sockeye_backend_connections_closed_total{backend=\"(overflow)\","
                      "closed_by=\"remote\"} 1\n"
                      "# HELP sockeye_backend_connect_duration_seconds "),
            std::string::npos);
  EXPECT_NE(page.find("sockeye_backend_rtt_seconds_bucket{backend=\"10.1.0.7:8080\",pool=\"api\","
                      "le=\"0.0001\"} 1\n"),
            std::string::npos);
}

TEST(Aggregator, PageShowsTheStateAtCollectWhateverHappensAfter) {
  auto owner = PopulatedWithPoolAndOverflow();
  Aggregator& agg = *owner;
  auto now = Clock::now();
  std::vector<metrics::MetricFamily> first;
  agg.Collect(first);
  const std::string first_page =
      metrics::Serialize(Listed(first), metrics::Format::kOpenMetrics100);

  // More traffic, a new backend (the overflow), and a scrape while the
  // first page is still being rendered: it must get a snapshot of its own.
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 100, V4(10, 1, 0, 7, 8080)), now);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 101, V4(192, 0, 2, 1, 80)), now);
  std::vector<metrics::MetricFamily> second;
  agg.Collect(second);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 102, V4(10, 1, 0, 7, 8080)), now);
  EXPECT_EQ(metrics::Serialize(first, metrics::Format::kOpenMetrics100), first_page);
  const std::string second_page = metrics::Serialize(second, metrics::Format::kPrometheusText004);
  EXPECT_NE(second_page.find("sockeye_backend_connections_active{backend=\"10.1.0.7:8080\","
                             "pool=\"api\"} 1\n"),
            std::string::npos);

  // With no page left, the next scrape refills the same snapshot; what the
  // event thread does next still does not show in its page.
  first.clear();
  second.clear();
  std::vector<metrics::MetricFamily> third;
  agg.Collect(third);
  const std::string third_page =
      metrics::Serialize(Listed(third), metrics::Format::kOpenMetrics100);
  EXPECT_NE(third_page.find("sockeye_backend_connections_active{backend=\"10.1.0.7:8080\","
                            "pool=\"api\"} 2\n"),
            std::string::npos);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 103, V4(10, 1, 0, 7, 8080)), now);
  agg.Maintain(now + std::chrono::hours(1));
  EXPECT_EQ(metrics::Serialize(third, metrics::Format::kOpenMetrics100), third_page);
}

// Scrapes rendering on two threads while events keep arriving; meant for
// sanitizer builds (a race on the snapshot shows there), and checks every
// page is whole.
TEST(Aggregator, ConcurrentScrapesWhileEventsArrive) {
  Aggregator agg(SmallOptions(/*max_backends=*/50));
  std::atomic<bool> done{false};
  std::thread events([&] {
    auto now = Clock::now();
    for (uint64_t i = 0; i < 20000; ++i) {
      auto e = Event(i % 3 ? SOCKEYE_EV_PROGRESS : SOCKEYE_EV_CONNECTED, i % 400 + 1,
                     V4(10, 0, static_cast<uint8_t>(i % 7), static_cast<uint8_t>(i % 60), 80));
      e.totals.bytes_sent = i;
      agg.Handle(e, now);
    }
    done = true;
  });
  auto scrape = [&] {
    size_t pages = 0;
    while (!done || pages < 3) {
      std::vector<metrics::MetricFamily> families;
      agg.Collect(families);
      metrics::Serializer serializer(families, metrics::Format::kOpenMetrics100);
      std::string page;
      while (serializer.AppendTo(page, page.size() + 512)) {
      }
      EXPECT_TRUE(page.ends_with("sockeye_connections_retired_total 0\n# EOF\n"));
      ++pages;
    }
  };
  std::thread other(scrape);
  scrape();
  other.join();
  events.join();
}

TEST(Histogram, BucketsUseLessOrEqual) {
  auto bounds = std::make_shared<const std::vector<double>>(std::vector<double>{1, 2, 5});
  Histogram h(bounds);
  h.Observe(1);    // le=1
  h.Observe(1.5);  // le=2
  h.Observe(6);    // only +Inf
  EXPECT_EQ(h.bucket_counts(), (std::vector<uint64_t>{1, 1, 0}));
  EXPECT_EQ(h.count(), 3u);
  EXPECT_DOUBLE_EQ(h.sum(), 8.5);
}

}  // namespace
}  // namespace sockeye
