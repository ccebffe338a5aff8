// The Prometheus text and OpenMetrics renderings: escaping, order, values,
// bucket bounds, locales, whole pages, and promtool's verdict.
#include <gtest/gtest.h>

#include <clocale>
#include <cmath>
#include <cstdio>
#include <limits>
#include <locale>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "exporters/text_format.h"
#include "tests/unit/text_format_test_util.h"

namespace sockeye::metrics {
namespace {

using test_util::Counter;
using test_util::Gauge;
using test_util::Histogram;
using test_util::LatencySeries;
using test_util::OnPath;
using test_util::PromtoolCheck;
using test_util::SampleFamilies;

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
