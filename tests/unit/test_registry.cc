#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "exporters/registry.h"
#include "exporters/text_format.h"
#include "tests/unit/vector_source.h"

namespace sockeye::metrics {
namespace {

using test_util::VectorSource;

class FakeCollector : public Collector {
 public:
  explicit FakeCollector(std::function<void(std::vector<MetricFamily>&)> fn) : fn_(std::move(fn)) {}
  void Collect(std::vector<MetricFamily>& out) override { fn_(out); }

 private:
  std::function<void(std::vector<MetricFamily>&)> fn_;
};

std::shared_ptr<Collector> Emitting(std::vector<MetricFamily> families) {
  return std::make_shared<FakeCollector>([families](std::vector<MetricFamily>& out) {
    out.insert(out.end(), families.begin(), families.end());
  });
}

MetricFamily Gauge(std::string name, double value, Labels labels = {}) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = "help of " + f.name;
  f.type = MetricType::kGauge;
  f.samples.push_back({std::move(labels), value});
  return f;
}

const MetricFamily* Find(const std::vector<MetricFamily>& families, const std::string& name) {
  for (const auto& f : families) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// The registry's own errors: the counter also holds the process-wide count
// of failed series sources, which other tests in this binary move.
double Errors(const std::vector<MetricFamily>& families) {
  const MetricFamily* f = Find(families, kCollectorErrorsMetric);
  EXPECT_NE(f, nullptr);
  if (f == nullptr || f->samples.size() != 1) return -1;
  EXPECT_EQ(f->type, MetricType::kCounter);
  EXPECT_TRUE(f->samples[0].labels.empty());
  return f->samples[0].value - static_cast<double>(SeriesSourceFailures());
}

// The errors family as a registry without errors of its own renders it.
std::string NoErrorsText() {
  return "# HELP sockeye_collector_errors_total Collector failures during scrapes (a collector "
         "that threw, a family whose type clashed with another's, a series source that failed "
         "half-way through a page); the failed part's metrics are missing from that scrape.\n"
         "# TYPE sockeye_collector_errors_total counter\n"
         "sockeye_collector_errors_total " +
         std::to_string(SeriesSourceFailures()) + "\n";
}

TEST(RegistryTest, EmptyRegistryReportsOnlyErrorCounter) {
  Registry registry;
  auto families = registry.Gather();
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].name, kCollectorErrorsMetric);
  EXPECT_EQ(Errors(families), 0);
  EXPECT_EQ(Serialize(families, Format::kPrometheusText004), NoErrorsText());
}

TEST(RegistryTest, KeepsRegistrationOrder) {
  Registry registry;
  registry.Register(Emitting({Gauge("b", 1), Gauge("a", 2)}));
  registry.Register(Emitting({Gauge("c", 3)}));
  registry.Register(nullptr);  // ignored
  auto families = registry.Gather();
  ASSERT_EQ(families.size(), 4u);
  EXPECT_EQ(families[0].name, "b");
  EXPECT_EQ(families[1].name, "a");
  EXPECT_EQ(families[2].name, "c");
  EXPECT_EQ(families[3].name, kCollectorErrorsMetric);
}

TEST(RegistryTest, ThrowingCollectorDoesNotBreakOthers) {
  Registry registry;
  registry.Register(Emitting({Gauge("before", 1)}));
  registry.Register(std::make_shared<FakeCollector>([](std::vector<MetricFamily>& out) {
    out.push_back(Gauge("partial", 9));  // must not leak into the output
    throw std::runtime_error("boom");
  }));
  registry.Register(std::make_shared<FakeCollector>([](std::vector<MetricFamily>&) { throw 42; }));
  registry.Register(Emitting({Gauge("after", 2)}));

  auto families = registry.Gather();
  ASSERT_NE(Find(families, "before"), nullptr);
  ASSERT_NE(Find(families, "after"), nullptr);
  EXPECT_EQ(Find(families, "partial"), nullptr);
  EXPECT_EQ(Errors(families), 2);
  // A counter: failures accumulate across scrapes.
  EXPECT_EQ(Errors(registry.Gather()), 4);
}

TEST(RegistryTest, MergesSameNamedFamilies) {
  Registry registry;
  registry.Register(Emitting({Gauge("shared", 1, {{"src", "one"}}), Gauge("only_one", 5)}));
  registry.Register(Emitting({Gauge("shared", 2, {{"src", "two"}})}));
  auto families = registry.Gather();
  ASSERT_EQ(families.size(), 3u);
  EXPECT_EQ(Serialize(families, Format::kPrometheusText004),
            "# HELP shared help of shared\n"
            "# TYPE shared gauge\n"
            "shared{src=\"one\"} 1\n"
            "shared{src=\"two\"} 2\n"
            "# HELP only_one help of only_one\n"
            "# TYPE only_one gauge\n"
            "only_one 5\n" +
                NoErrorsText());
}

TEST(RegistryTest, MergesHistograms) {
  MetricFamily h;
  h.name = "lat_seconds";
  h.type = MetricType::kHistogram;
  h.histograms.push_back({{{"src", "a"}}, {1}, {1}, 0.5, 1});
  MetricFamily h2 = h;
  h2.histograms[0].labels = {{"src", "b"}};
  Registry registry;
  registry.Register(Emitting({h}));
  registry.Register(Emitting({h2}));
  auto families = registry.Gather();
  const MetricFamily* merged = Find(families, "lat_seconds");
  ASSERT_NE(merged, nullptr);
  ASSERT_EQ(merged->histograms.size(), 2u);
  EXPECT_EQ(merged->histograms[1].labels[0].value, "b");
}

// A gauge whose one series is produced on demand.
MetricFamily SourcedGauge(std::string name, double value, Labels labels) {
  MetricFamily f = Gauge(std::move(name), 0);
  f.samples.clear();
  f.sample_sources.push_back(
      std::make_shared<VectorSource<Sample>>(std::vector<Sample>{{std::move(labels), value}}));
  return f;
}

TEST(RegistryTest, MergesSeriesSources) {
  MetricFamily first = SourcedGauge("shared", 1, {{"src", "one-sourced"}});
  first.samples.push_back({{{"src", "one-listed"}}, 10});
  Registry registry;
  registry.Register(Emitting({first}));
  registry.Register(Emitting({SourcedGauge("shared", 2, {{"src", "two-sourced"}})}));
  registry.Register(Emitting({Gauge("shared", 20, {{"src", "three-listed"}})}));
  auto families = registry.Gather();
  const MetricFamily* merged = Find(families, "shared");
  ASSERT_NE(merged, nullptr);
  EXPECT_EQ(merged->sample_sources.size(), 2u);
  EXPECT_EQ(SeriesCount(*merged), 4u);
  // Listed series first, then the sources' in collector order.
  EXPECT_EQ(Serialize({*merged}, Format::kPrometheusText004),
            "# HELP shared help of shared\n"
            "# TYPE shared gauge\n"
            "shared{src=\"one-listed\"} 10\n"
            "shared{src=\"three-listed\"} 20\n"
            "shared{src=\"one-sourced\"} 1\n"
            "shared{src=\"two-sourced\"} 2\n");
}

TEST(RegistryTest, CollectorFailingAfterMakingSourcesContributesNothing) {
  Registry registry;
  registry.Register(std::make_shared<FakeCollector>([](std::vector<MetricFamily>& out) {
    out.push_back(SourcedGauge("partial", 1, {}));
    throw std::runtime_error("half-way");
  }));
  registry.Register(Emitting({SourcedGauge("fine", 2, {})}));
  auto families = registry.Gather();
  EXPECT_EQ(Find(families, "partial"), nullptr);
  ASSERT_NE(Find(families, "fine"), nullptr);
  EXPECT_EQ(Errors(families), 1);
}

TEST(RegistryTest, DropsSameNameWithDifferentTypeAndCountsIt) {
  MetricFamily counter = Gauge("x_total", 1);
  counter.type = MetricType::kCounter;
  Registry registry;
  registry.Register(Emitting({counter}));
  registry.Register(Emitting({Gauge("x_total", 2)}));
  auto families = registry.Gather();
  const MetricFamily* x = Find(families, "x_total");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->type, MetricType::kCounter);
  ASSERT_EQ(x->samples.size(), 1u);
  EXPECT_EQ(x->samples[0].value, 1);
  EXPECT_EQ(Errors(families), 1);
}

TEST(RegistryTest, RegisterAndGatherConcurrently) {
  Registry registry;
  std::atomic<bool> done{false};
  std::thread gatherer([&] {
    while (!done.load()) {
      auto families = registry.Gather();
      EXPECT_EQ(families.back().name, kCollectorErrorsMetric);
    }
  });
  for (int i = 0; i < 200; ++i) registry.Register(Emitting({Gauge("g", i)}));
  done = true;
  gatherer.join();
  auto families = registry.Gather();
  ASSERT_EQ(families.size(), 2u);
  EXPECT_EQ(families[0].samples.size(), 200u);
}

}  // namespace
}  // namespace sockeye::metrics
