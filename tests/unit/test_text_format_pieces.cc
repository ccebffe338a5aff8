// Pages rendered in pieces (Serializer) and from series sources: the pieces
// join to the whole page, sources are asked in batches, failures stay local.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "exporters/text_format.h"
#include "tests/unit/text_format_test_util.h"
#include "tests/unit/vector_source.h"

namespace sockeye::metrics {
namespace {

using test_util::Counter;
using test_util::Gauge;
using test_util::Histogram;
using test_util::LatencySeries;
using test_util::OnPath;
using test_util::PromtoolCheck;
using test_util::SampleFamilies;
using test_util::VectorSource;

// A page shaped like a real one, large enough that small limits give many
// pieces: every family type, labels that need escaping, empty families at
// the start, in the middle and at the end.
std::vector<MetricFamily> ManyBackends(int backends) {
  std::vector<MetricFamily> families = {Gauge("empty_first", "e", {})};
  MetricFamily requests = Counter("sockeye_backend_requests_total", "Requests \\ \"sent\".", {});
  MetricFamily active = Gauge("sockeye_backend_connections_active", "Open.", {});
  MetricFamily ttfb = Histogram("sockeye_backend_ttfb_seconds", "TTFB.", {});
  for (int i = 0; i < backends; ++i) {
    Labels labels = {
        {"backend", "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ":8080"},
        {"pool", i % 3 == 0 ? "api \"v2\"\n" : "web"}};
    requests.samples.push_back({labels, i * 1000.5});
    active.samples.push_back({labels, static_cast<double>(i % 7)});
    HistogramSample h;
    h.labels = labels;
    h.upper_bounds = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};
    h.bucket_counts = {1, 2, 3, 4, static_cast<uint64_t>(i), 0, 0, 1, 2};
    h.sum = i * 0.25;
    h.count = 20 + static_cast<uint64_t>(i);
    ttfb.histograms.push_back(h);
  }
  families.push_back(requests);
  families.push_back(Histogram("empty_middle", "e", {}));
  families.push_back(active);
  families.push_back(ttfb);
  families.push_back(Counter("empty_last_total", "e", {}));
  return families;
}

// Renders with Serializer into fresh buffers of at most ~`limit` bytes and
// returns the pieces.
std::vector<std::string> RenderInPieces(const std::vector<MetricFamily>& families, Format format,
                                        size_t limit) {
  Serializer serializer(families, format);
  std::vector<std::string> pieces;
  while (!serializer.done()) {
    std::string piece;
    const bool more = serializer.AppendTo(piece, limit);
    EXPECT_EQ(more, !serializer.done());
    pieces.push_back(std::move(piece));
  }
  return pieces;
}

TEST(SerializerTest, PiecesConcatenateToSerializeOutput) {
  const std::vector<std::vector<MetricFamily>> pages = {SampleFamilies(), ManyBackends(600)};
  // Large enough for any unit of these pages (a histogram series is ~1.6 KB).
  constexpr size_t kMaxUnit = 4096;
  for (Format format : {Format::kPrometheusText004, Format::kOpenMetrics100}) {
    for (const auto& families : pages) {
      const std::string whole = Serialize(families, format);
      for (size_t limit : {size_t{0}, size_t{1}, size_t{100}, size_t{4096}, size_t{65536},
                           std::numeric_limits<size_t>::max()}) {
        const auto pieces = RenderInPieces(families, format, limit);
        std::string joined;
        for (size_t i = 0; i < pieces.size(); ++i) {
          const std::string& piece = pieces[i];
          ASSERT_FALSE(piece.empty()) << "limit " << limit << " piece " << i;
          EXPECT_EQ(piece.back(), '\n') << "pieces end on a line boundary";
          if (i + 1 < pieces.size()) {
            EXPECT_GE(piece.size(), limit) << "stopped early";
          }
          if (limit < kMaxUnit) {
            EXPECT_LT(piece.size(), limit + kMaxUnit) << "unbounded piece";
          }
          joined += piece;
        }
        EXPECT_EQ(joined, whole) << "limit " << limit;
      }
    }
  }
  EXPECT_GT(Serialize(pages[1], Format::kPrometheusText004).size(), 300000u);
}

TEST(SerializerTest, ZeroLimitAppendsOneUnitPerCall) {
  const auto pieces = RenderInPieces(SampleFamilies(), Format::kOpenMetrics100, 0);
  ASSERT_EQ(pieces.size(), 10u);
  EXPECT_EQ(pieces[0],
            "# TYPE sockeye_connections counter\n"
            "# HELP sockeye_connections Connections opened.\n");
  EXPECT_EQ(pieces[1], "sockeye_connections_total{pool=\"web\",result=\"ok\"} 42\n");
  EXPECT_EQ(pieces[6],  // a whole histogram series is one unit
            "sockeye_connect_duration_seconds_bucket{path=\"/x\",le=\"0.005\"} 1\n"
            "sockeye_connect_duration_seconds_bucket{path=\"/x\",le=\"1.0\"} 3\n"
            "sockeye_connect_duration_seconds_bucket{path=\"/x\",le=\"2.5\"} 6\n"
            "sockeye_connect_duration_seconds_bucket{path=\"/x\",le=\"+Inf\"} 10\n"
            "sockeye_connect_duration_seconds_sum{path=\"/x\"} 12.5\n"
            "sockeye_connect_duration_seconds_count{path=\"/x\"} 10\n");
  EXPECT_EQ(pieces[9], "# EOF\n");
}

TEST(SerializerTest, AppendsToTheCallersBufferAndAlwaysProgresses) {
  const std::vector<MetricFamily> families = {Gauge("empty", "e", {}), Gauge("g", "x", {{{}, 1}})};
  Serializer serializer(families, Format::kPrometheusText004);
  std::string out = "already here\n";
  // The buffer is over the limit from the start: one unit is still added,
  // and the empty family before it does not count as one.
  EXPECT_TRUE(serializer.AppendTo(out, 1));
  EXPECT_EQ(out, "already here\n# HELP g x\n# TYPE g gauge\n");
  EXPECT_FALSE(serializer.AppendTo(out, 1));
  EXPECT_EQ(out, "already here\n# HELP g x\n# TYPE g gauge\ng 1\n");
  EXPECT_TRUE(serializer.done());
  // Finished: further calls add nothing.
  EXPECT_FALSE(serializer.AppendTo(out, 1000));
  EXPECT_EQ(out, "already here\n# HELP g x\n# TYPE g gauge\ng 1\n");
}

TEST(SerializerTest, EmptyPages) {
  const std::vector<MetricFamily> none;
  const std::vector<MetricFamily> only_empty = {Gauge("e", "e", {}), Histogram("h", "h", {})};
  for (const auto* families : {&none, &only_empty}) {
    Serializer prom(*families, Format::kPrometheusText004);
    std::string out;
    EXPECT_FALSE(prom.AppendTo(out, 0));
    EXPECT_TRUE(prom.done());
    EXPECT_EQ(out, "");

    Serializer om(*families, Format::kOpenMetrics100);
    EXPECT_FALSE(om.AppendTo(out, 0));
    EXPECT_EQ(out, "# EOF\n");
  }
}

// Moves each family's series into sources of the given sizes (what is left
// over stays listed, ahead of them), so that the page should not change.
std::vector<MetricFamily> SplitIntoSources(std::vector<MetricFamily> families,
                                           const std::vector<size_t>& source_sizes) {
  auto split = [&](auto& listed, auto& sources) {
    using Series = typename std::remove_reference_t<decltype(listed)>::value_type;
    size_t total = 0;
    for (size_t n : source_sizes) total += n;
    const size_t keep = listed.size() > total ? listed.size() - total : 0;
    auto next = listed.begin() + static_cast<std::ptrdiff_t>(keep);
    for (size_t n : source_sizes) {
      const auto take = static_cast<std::ptrdiff_t>(
          std::min<size_t>(n, static_cast<size_t>(listed.end() - next)));
      sources.push_back(
          std::make_shared<VectorSource<Series>>(std::vector<Series>(next, next + take)));
      next += take;
    }
    listed.resize(keep);
  };
  for (MetricFamily& family : families) {
    split(family.samples, family.sample_sources);
    split(family.histograms, family.histogram_sources);
  }
  return families;
}

TEST(SeriesSourceTest, SourcedSeriesRenderLikeListedOnes) {
  constexpr size_t kBatch = Serializer::kSourceBatchSeries;
  const auto listed = ManyBackends(300);
  // Sources empty, of one series, around the batch size, several batches.
  const std::vector<std::vector<size_t>> layouts = {
      {0}, {1}, {kBatch - 1, kBatch, kBatch + 1}, {0, 200, 0}, {1000}};
  for (Format format : {Format::kPrometheusText004, Format::kOpenMetrics100}) {
    const std::string expected = Serialize(listed, format);
    for (const auto& layout : layouts) {
      const auto sourced = SplitIntoSources(listed, layout);
      EXPECT_EQ(Serialize(sourced, format), expected);
      for (size_t limit : {size_t{0}, size_t{1000}, size_t{65536}}) {
        std::string joined;
        for (const auto& piece : RenderInPieces(sourced, format, limit)) joined += piece;
        EXPECT_EQ(joined, expected) << "limit " << limit;
      }
    }
  }
}

TEST(SeriesSourceTest, AsksForBatchesInOrderAndHandsBackTheLastOne) {
  std::vector<HistogramSample> series(150, LatencySeries());
  auto source = std::make_shared<VectorSource<HistogramSample>>(series);
  MetricFamily family = Histogram("lat_seconds", "Latency.", {});
  family.histogram_sources.push_back(source);
  const std::vector<MetricFamily> families = {family};
  // Rendered one unit per call: a batch is produced only when it is needed.
  const auto pieces = RenderInPieces(families, Format::kPrometheusText004, 0);
  EXPECT_EQ(pieces.size(), 151u);  // metadata, then one histogram series per piece
  ASSERT_EQ(source->calls.size(), 3u);
  constexpr size_t kBatch = Serializer::kSourceBatchSeries;
  EXPECT_EQ(source->calls[0].begin, 0u);
  EXPECT_EQ(source->calls[0].end, kBatch);
  EXPECT_EQ(source->calls[0].size_on_entry, 0u);
  EXPECT_EQ(source->calls[1].begin, kBatch);
  EXPECT_EQ(source->calls[1].end, 2 * kBatch);
  EXPECT_EQ(source->calls[1].size_on_entry, kBatch) << "the previous batch, for reuse";
  EXPECT_EQ(source->calls[2].begin, 2 * kBatch);
  EXPECT_EQ(source->calls[2].end, 150u);
}

TEST(SeriesSourceTest, FamiliesWhoseSourcesAreEmptyAreSkipped) {
  MetricFamily empty = Gauge("empty", "e", {});
  empty.sample_sources.push_back(std::make_shared<VectorSource<Sample>>(std::vector<Sample>{}));
  MetricFamily empty_histogram = Histogram("empty_h", "e", {});
  empty_histogram.histogram_sources.push_back(
      std::make_shared<VectorSource<HistogramSample>>(std::vector<HistogramSample>{}));
  // A counter or gauge family ignores histogram sources, and the reverse.
  empty.histogram_sources = empty_histogram.histogram_sources;
  const std::vector<MetricFamily> families = {empty, empty_histogram};
  EXPECT_EQ(SeriesCount(families[0]), 0u);
  EXPECT_EQ(SeriesCount(families[1]), 0u);
  Serializer serializer(families, Format::kPrometheusText004);
  EXPECT_TRUE(serializer.done());
  EXPECT_EQ(Serialize(families, Format::kOpenMetrics100), "# EOF\n");
}

TEST(SeriesSourceTest, MaterializeListsTheSourcedSeriesAfterTheListedOnes) {
  MetricFamily family = Gauge("g", "x", {{{{"n", "listed"}}, 1}});
  family.sample_sources.push_back(std::make_shared<VectorSource<Sample>>(
      std::vector<Sample>{{{{"n", "a"}}, 2}, {{{"n", "b"}}, 3}}));
  family.sample_sources.push_back(std::make_shared<VectorSource<Sample>>(std::vector<Sample>{}));
  family.sample_sources.push_back(
      std::make_shared<VectorSource<Sample>>(std::vector<Sample>{{{{"n", "c"}}, 4}}));
  const std::string page = Serialize({family}, Format::kPrometheusText004);
  EXPECT_EQ(SeriesCount(family), 4u);
  Materialize(family);
  EXPECT_TRUE(family.sample_sources.empty());
  ASSERT_EQ(family.samples.size(), 4u);
  EXPECT_EQ(family.samples[1].labels[0].value, "a");
  EXPECT_EQ(family.samples[3].value, 4);
  EXPECT_EQ(Serialize({family}, Format::kPrometheusText004), page);
}

// Hands out its series like VectorSource for `good_batches` calls, then
// fails every batch: by throwing, or by producing one series too few.
class FailingSource final : public SeriesSource<Sample> {
 public:
  enum class How { kThrow, kShortBatch };
  FailingSource(std::vector<Sample> series, size_t good_batches, How how)
      : good_(std::move(series)), good_batches_(good_batches), how_(how) {}
  size_t size() const override { return good_.size(); }
  void Produce(size_t begin, size_t end, std::vector<Sample>& out) const override {
    if (calls_++ < good_batches_) return good_.Produce(begin, end, out);
    if (how_ == How::kThrow) throw std::runtime_error("batch failed");
    good_.Produce(begin, end - 1, out);
  }

 private:
  VectorSource<Sample> good_;
  size_t good_batches_;
  How how_;
  mutable size_t calls_ = 0;
};

std::vector<Sample> Numbered(size_t n) {
  std::vector<Sample> series;
  for (size_t i = 0; i < n; ++i) series.push_back({{{"n", std::to_string(i)}}, 1});
  return series;
}

// One part that fails never breaks a scrape: a source whose batch fails
// leaves the rest of its own series out, and the page goes on with the
// family's next source and the next families; the failure is counted.
TEST(SeriesSourceTest, AFailingSourceLosesOnlyItsOwnRemainingSeries) {
  constexpr size_t kBatch = Serializer::kSourceBatchSeries;
  for (auto how : {FailingSource::How::kThrow, FailingSource::How::kShortBatch}) {
    for (Format format : {Format::kPrometheusText004, Format::kOpenMetrics100}) {
      MetricFamily family = Counter("a_total", "A.", {{{{"n", "listed"}}, 1}});
      family.sample_sources.push_back(
          std::make_shared<FailingSource>(Numbered(kBatch + 10), /*good_batches=*/1, how));
      family.sample_sources.push_back(
          std::make_shared<VectorSource<Sample>>(std::vector<Sample>{{{{"n", "after"}}, 2}}));
      MetricFamily all_failing = Gauge("b", "B.", {});
      all_failing.sample_sources.push_back(
          std::make_shared<FailingSource>(Numbered(3), /*good_batches=*/0, how));
      const std::vector<MetricFamily> families = {family, all_failing, Gauge("c", "C.", {{{}, 3}})};

      const uint64_t failures_before = SeriesSourceFailures();
      std::string joined;
      for (const auto& piece : RenderInPieces(families, format, 0)) joined += piece;
      EXPECT_EQ(SeriesSourceFailures() - failures_before, 2u);

      const std::string a = "a_total";  // the sample name in both formats
      EXPECT_NE(joined.find(a + "{n=\"listed\"} 1\n"), std::string::npos);
      EXPECT_NE(joined.find(a + "{n=\"" + std::to_string(kBatch - 1) + "\"} 1\n"),
                std::string::npos);
      EXPECT_EQ(joined.find(a + "{n=\"" + std::to_string(kBatch) + "\"}"), std::string::npos);
      EXPECT_NE(joined.find(a + "{n=\"after\"} 2\n"), std::string::npos);
      EXPECT_EQ(joined.find("\nb{"), std::string::npos);
      EXPECT_NE(joined.find("\nc 3\n"), std::string::npos);
      if (format == Format::kOpenMetrics100) {
        EXPECT_TRUE(joined.ends_with("# EOF\n"));
      } else if (OnPath("promtool")) {
        std::string output;
        EXPECT_EQ(PromtoolCheck(joined, &output), 0) << output;
      }
    }
  }
}

}  // namespace
}  // namespace sockeye::metrics
