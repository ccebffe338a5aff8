#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <clocale>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <locale>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "exporters/text_format.h"
#include "tests/unit/vector_source.h"

namespace sockeye::metrics {
namespace {

using test_util::VectorSource;

MetricFamily Gauge(std::string name, std::string help, std::vector<Sample> samples) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = MetricType::kGauge;
  f.samples = std::move(samples);
  return f;
}

MetricFamily Counter(std::string name, std::string help, std::vector<Sample> samples) {
  MetricFamily f = Gauge(std::move(name), std::move(help), std::move(samples));
  f.type = MetricType::kCounter;
  return f;
}

MetricFamily Histogram(std::string name, std::string help, std::vector<HistogramSample> series) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = MetricType::kHistogram;
  f.histograms = std::move(series);
  return f;
}

HistogramSample LatencySeries() {
  HistogramSample h;
  h.labels = {{"path", "/x"}};
  h.upper_bounds = {0.005, 1, 2.5};
  h.bucket_counts = {1, 2, 3};
  h.sum = 12.5;
  h.count = 10;
  return h;
}

// A representative exposition: counters with and without labels, a gauge,
// a labelled histogram.
std::vector<MetricFamily> SampleFamilies() {
  return {
      Counter("sockeye_connections_total", "Connections opened.",
              {{{{"pool", "web"}, {"result", "ok"}}, 42}, {{{"pool", "db"}, {"result", "ok"}}, 7}}),
      Gauge("sockeye_backends", "Backends tracked.", {{{}, 3}}),
      Histogram("sockeye_connect_duration_seconds", "Connect latency.", {LatencySeries()}),
      Counter("sockeye_events_lost_total", "Events dropped.", {{{}, 1e15}}),
  };
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(TextFormatTest, ContentTypes) {
  EXPECT_STREQ(ContentType(Format::kPrometheusText004), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_STREQ(ContentType(Format::kOpenMetrics100),
               "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

TEST(TextFormatTest, EscapesLabelValues) {
  auto out = Serialize(
      {Gauge("g", "h", {{{{"a", "back\\slash"}, {"b", "quo\"te"}, {"c", "new\nline"}}, 1}})},
      Format::kPrometheusText004);
  EXPECT_EQ(out,
            "# HELP g h\n"
            "# TYPE g gauge\n"
            R"(g{a="back\\slash",b="quo\"te",c="new\nline"} 1)"
            "\n");
}

TEST(TextFormatTest, EscapesHelp) {
  auto family = Gauge("g", "a\\b\nc\"d", {{{}, 1}});
  // 0.0.4 HELP knows only \\ and \n; OpenMetrics HELP also escapes quotes.
  EXPECT_EQ(Lines(Serialize({family}, Format::kPrometheusText004))[0], R"(# HELP g a\\b\nc"d)");
  EXPECT_EQ(Lines(Serialize({family}, Format::kOpenMetrics100))[1], R"(# HELP g a\\b\nc\"d)");
}

TEST(TextFormatTest, KeepsFamilyOrderWithOneHelpAndTypeEach) {
  auto out = Serialize({Gauge("zeta", "z", {{{{"i", "1"}}, 1}, {{{"i", "2"}}, 2}}),
                        Gauge("alpha", "a", {{{}, 3}}), Counter("mid_total", "m", {{{}, 4}})},
                       Format::kPrometheusText004);
  EXPECT_EQ(out,
            "# HELP zeta z\n"
            "# TYPE zeta gauge\n"
            "zeta{i=\"1\"} 1\n"
            "zeta{i=\"2\"} 2\n"
            "# HELP alpha a\n"
            "# TYPE alpha gauge\n"
            "alpha 3\n"
            "# HELP mid_total m\n"
            "# TYPE mid_total counter\n"
            "mid_total 4\n");
}

TEST(TextFormatTest, SkipsFamiliesWithoutSamples) {
  EXPECT_EQ(
      Serialize({Gauge("empty", "e", {}), Histogram("h", "h", {})}, Format::kPrometheusText004),
      "");
  EXPECT_EQ(Serialize({Gauge("empty", "e", {})}, Format::kOpenMetrics100), "# EOF\n");
}

TEST(TextFormatTest, HistogramBucketsAreCumulative) {
  auto out = Serialize({Histogram("h_seconds", "Latency.", {LatencySeries()})},
                       Format::kPrometheusText004);
  EXPECT_EQ(out,
            "# HELP h_seconds Latency.\n"
            "# TYPE h_seconds histogram\n"
            "h_seconds_bucket{path=\"/x\",le=\"0.005\"} 1\n"
            "h_seconds_bucket{path=\"/x\",le=\"1\"} 3\n"
            "h_seconds_bucket{path=\"/x\",le=\"2.5\"} 6\n"
            "h_seconds_bucket{path=\"/x\",le=\"+Inf\"} 10\n"
            "h_seconds_sum{path=\"/x\"} 12.5\n"
            "h_seconds_count{path=\"/x\"} 10\n");
}

TEST(TextFormatTest, HistogramSortsBoundsAndNeverDecreases) {
  HistogramSample h;
  h.upper_bounds = {10, 0.1, 1};
  h.bucket_counts = {4, 1, 2};
  h.sum = 3;
  h.count = 5;  // less than the bucket total (7): a torn read
  auto out = Serialize({Histogram("h", "x", {h})}, Format::kPrometheusText004);
  EXPECT_EQ(out,
            "# HELP h x\n"
            "# TYPE h histogram\n"
            "h_bucket{le=\"0.1\"} 1\n"
            "h_bucket{le=\"1\"} 3\n"
            "h_bucket{le=\"10\"} 7\n"
            "h_bucket{le=\"+Inf\"} 7\n"
            "h_sum 3\n"
            "h_count 7\n");
}

TEST(TextFormatTest, FormatsValues) {
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(-3), "-3");
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(-0.0), "0");
  EXPECT_EQ(FormatValue(1e15), "1000000000000000");
  EXPECT_EQ(FormatValue(18446744073709551616.0), "18446744073709551616");  // 2^64, exact
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(-1.5), "-1.5");
  EXPECT_EQ(FormatValue(123456789.125), "123456789.125");
  EXPECT_EQ(FormatValue(1.5e-7), "1.5e-07");
  EXPECT_EQ(FormatValue(1e300), "1e+300");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  // Shortest round trip, not %g's six digits.
  EXPECT_EQ(std::stod(FormatValue(0.1 + 0.2)), 0.1 + 0.2);
}

TEST(TextFormatTest, FormatsBucketBounds) {
  const Format prom = Format::kPrometheusText004;
  EXPECT_EQ(FormatBucketBound(0.005, prom), "0.005");
  EXPECT_EQ(FormatBucketBound(1, prom), "1");
  EXPECT_EQ(FormatBucketBound(2.5, prom), "2.5");
  EXPECT_EQ(FormatBucketBound(100000, prom), "100000");
  EXPECT_EQ(FormatBucketBound(1e6, prom), "1e+06");
  EXPECT_EQ(FormatBucketBound(std::numeric_limits<double>::infinity(), prom), "+Inf");

  // The OpenMetrics spec's canonical-number examples.
  const Format om = Format::kOpenMetrics100;
  const std::vector<std::pair<double, std::string>> canonical = {
      {0.0, "0.0"},       {0.001, "0.001"},  {0.002, "0.002"}, {0.01, "0.01"},   {0.1, "0.1"},
      {0.9, "0.9"},       {0.95, "0.95"},    {0.99, "0.99"},   {0.999, "0.999"}, {1.0, "1.0"},
      {1.7, "1.7"},       {10.0, "10.0"},    {1e-10, "1e-10"}, {1e-9, "1e-09"},  {1e-5, "1e-05"},
      {1e-4, "0.0001"},   {1e5, "100000.0"}, {1e6, "1e+06"},   {1e10, "1e+10"},  {1e23, "1e+23"},
      {1.1e23, "1.1e+23"}};
  for (const auto& [value, text] : canonical) {
    EXPECT_EQ(FormatBucketBound(value, om), text) << value;
  }
}

// Switches the C and C++ global locales to ones with a decimal comma for
// the lifetime of the object. de_DE is often not installed, so a custom
// numpunct facet makes sure the C++ side is always non-"C".
class CommaLocale {
 public:
  CommaLocale() : old_cpp_(std::locale()) {
    if (const char* current = std::setlocale(LC_NUMERIC, nullptr)) old_c_ = current;
    for (const char* name : {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8"}) {
      if (std::setlocale(LC_NUMERIC, name) != nullptr) {
        c_locale_changed_ = true;
        break;
      }
    }
    // The locale takes ownership of the facet (facets are reference counted).
    std::locale::global(std::locale(std::locale::classic(), new CommaPunct()));
  }
  ~CommaLocale() {
    std::locale::global(old_cpp_);
    std::setlocale(LC_NUMERIC, old_c_.c_str());
  }
  bool c_locale_changed() const { return c_locale_changed_; }

 private:
  struct CommaPunct : std::numpunct<char> {
    char do_decimal_point() const override { return ','; }
    char do_thousands_sep() const override { return '.'; }
    std::string do_grouping() const override { return "\3"; }
  };
  std::locale old_cpp_;
  std::string old_c_ = "C";
  bool c_locale_changed_ = false;
};

TEST(TextFormatTest, NumbersIgnoreLocale) {
  CommaLocale comma;
  std::ostringstream probe;
  probe << 1.5 << ' ' << 1234567;
  ASSERT_EQ(probe.str(), "1,5 1.234.567") << "the test locale did not take effect";
  if (!comma.c_locale_changed()) std::printf("(no de_DE/fr_FR C locale; C++ locale only)\n");

  HistogramSample h;
  h.upper_bounds = {0.005, 2.5};
  h.bucket_counts = {1, 1};
  h.sum = 1234.5;
  h.count = 2;
  auto out = Serialize({Gauge("g", "x", {{{}, 1234567.25}}), Histogram("h", "y", {h})},
                       Format::kPrometheusText004);
  EXPECT_EQ(out,
            "# HELP g x\n"
            "# TYPE g gauge\n"
            "g 1234567.25\n"
            "# HELP h y\n"
            "# TYPE h histogram\n"
            "h_bucket{le=\"0.005\"} 1\n"
            "h_bucket{le=\"2.5\"} 2\n"
            "h_bucket{le=\"+Inf\"} 2\n"
            "h_sum 1234.5\n"
            "h_count 2\n");
}

TEST(TextFormatTest, NonFiniteValues) {
  auto out = Serialize({Gauge("g", "x",
                              {{{{"v", "inf"}}, std::numeric_limits<double>::infinity()},
                               {{{"v", "-inf"}}, -std::numeric_limits<double>::infinity()},
                               {{{"v", "nan"}}, std::nan("")}})},
                       Format::kPrometheusText004);
  EXPECT_EQ(out,
            "# HELP g x\n"
            "# TYPE g gauge\n"
            "g{v=\"inf\"} +Inf\n"
            "g{v=\"-inf\"} -Inf\n"
            "g{v=\"nan\"} NaN\n");
}

TEST(TextFormatTest, PrometheusTextFullOutput) {
  EXPECT_EQ(Serialize(SampleFamilies(), Format::kPrometheusText004),
            "# HELP sockeye_connections_total Connections opened.\n"
            "# TYPE sockeye_connections_total counter\n"
            "sockeye_connections_total{pool=\"web\",result=\"ok\"} 42\n"
            "sockeye_connections_total{pool=\"db\",result=\"ok\"} 7\n"
            "# HELP sockeye_backends Backends tracked.\n"
            "# TYPE sockeye_backends gauge\n"
            "sockeye_backends 3\n"
            "# HELP sockeye_connect_duration_seconds Connect latency.\n"
            "# TYPE sockeye_connect_duration_seconds histogram\n"
            "sockeye_connect_duration_seconds_bucket{path=\"/x\",le=\"0.005\"} 1\n"
            "sockeye_connect_duration_seconds_bucket{path=\"/x\",le=\"1\"} 3\n"
            "sockeye_connect_duration_seconds_bucket{path=\"/x\",le=\"2.5\"} 6\n"
            "sockeye_connect_duration_seconds_bucket{path=\"/x\",le=\"+Inf\"} 10\n"
            "sockeye_connect_duration_seconds_sum{path=\"/x\"} 12.5\n"
            "sockeye_connect_duration_seconds_count{path=\"/x\"} 10\n"
            "# HELP sockeye_events_lost_total Events dropped.\n"
            "# TYPE sockeye_events_lost_total counter\n"
            "sockeye_events_lost_total 1000000000000000\n");
}

TEST(TextFormatTest, OpenMetricsFullOutput) {
  EXPECT_EQ(Serialize(SampleFamilies(), Format::kOpenMetrics100),
            "# TYPE sockeye_connections counter\n"
            "# HELP sockeye_connections Connections opened.\n"
            "sockeye_connections_total{pool=\"web\",result=\"ok\"} 42\n"
            "sockeye_connections_total{pool=\"db\",result=\"ok\"} 7\n"
            "# TYPE sockeye_backends gauge\n"
            "# HELP sockeye_backends Backends tracked.\n"
            "sockeye_backends 3\n"
            "# TYPE sockeye_connect_duration_seconds histogram\n"
            "# HELP sockeye_connect_duration_seconds Connect latency.\n"
            "sockeye_connect_duration_seconds_bucket{path=\"/x\",le=\"0.005\"} 1\n"
            "sockeye_connect_duration_seconds_bucket{path=\"/x\",le=\"1.0\"} 3\n"
            "sockeye_connect_duration_seconds_bucket{path=\"/x\",le=\"2.5\"} 6\n"
            "sockeye_connect_duration_seconds_bucket{path=\"/x\",le=\"+Inf\"} 10\n"
            "sockeye_connect_duration_seconds_sum{path=\"/x\"} 12.5\n"
            "sockeye_connect_duration_seconds_count{path=\"/x\"} 10\n"
            "# TYPE sockeye_events_lost counter\n"
            "# HELP sockeye_events_lost Events dropped.\n"
            "sockeye_events_lost_total 1000000000000000\n"
            "# EOF\n");
}

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

bool OnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::istringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// Runs `promtool check metrics` on `text`; returns its exit status and puts
// everything it printed (lint findings go to stdout or stderr) in *output.
int PromtoolCheck(const std::string& text, std::string* output) {
  auto dir = std::filesystem::temp_directory_path();
  auto input = dir / ("sockeye_promtool_" + std::to_string(getpid()) + ".prom");
  std::ofstream(input) << text;
  std::string command = "promtool check metrics < '" + input.string() + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), pipe)) > 0;) output->append(buf, n);
  int status = pclose(pipe);
  std::filesystem::remove(input);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
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

TEST(TextFormatTest, PromtoolAcceptsOutput) {
  if (!OnPath("promtool")) GTEST_SKIP() << "promtool is not on PATH";
  auto families = SampleFamilies();
  families.push_back(Gauge("sockeye_escaped", "Help with \\ and \n and \" inside.",
                           {{{{"v", "a\\b\"c\nd"}}, 0.5}, {{{"v", "nan"}}, std::nan("")}}));
  std::string output;
  EXPECT_EQ(PromtoolCheck(Serialize(families, Format::kPrometheusText004), &output), 0) << output;
  EXPECT_EQ(output, "");
}

}  // namespace
}  // namespace sockeye::metrics
