#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exporters/page_stream.h"
#include "exporters/text_format.h"
#include "tests/unit/gunzip.h"
#include "tests/unit/vector_source.h"

namespace sockeye::metrics {
namespace {

using test_util::Gunzip;
using test_util::VectorSource;

// Two families per backend, one of them a histogram: ~1.5 KB of text each.
std::vector<MetricFamily> Backends(int count) {
  MetricFamily requests;
  requests.name = "sockeye_backend_requests_total";
  requests.help = "Requests.";
  requests.type = MetricType::kCounter;
  MetricFamily rtt;
  rtt.name = "sockeye_backend_rtt_seconds";
  rtt.help = "RTT.";
  rtt.type = MetricType::kHistogram;
  for (int i = 0; i < count; ++i) {
    Labels labels = {{"backend", "10.1.0." + std::to_string(i) + ":443"}};
    requests.samples.push_back({labels, static_cast<double>(i)});
    rtt.histograms.push_back({labels,
                              {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1},
                              {1, 1, 2, 3, 5, 8, 13, 21, static_cast<uint64_t>(i)},
                              0.5 * i,
                              60});
  }
  return {requests, rtt};
}

struct Drained {
  std::string body;
  size_t pieces = 0;
  size_t largest_piece = 0;
};

Drained Drain(PageStream& stream) {
  Drained out;
  while (!stream.done()) {
    const std::string_view piece = stream.Next();
    if (!stream.done()) {
      EXPECT_FALSE(piece.empty()) << "an empty piece before the end";
    }
    out.body += piece;
    out.largest_piece = std::max(out.largest_piece, piece.size());
    ++out.pieces;
  }
  EXPECT_EQ(stream.Next(), "") << "a finished stream has nothing more";
  return out;
}

TEST(PageStreamTest, IdentityPiecesAreTheSerializedPage) {
  const auto families = Backends(2000);
  for (Format format : {Format::kPrometheusText004, Format::kOpenMetrics100}) {
    const std::string whole = Serialize(families, format);
    ASSERT_GT(whole.size(), 1u << 20);
    constexpr size_t kChunk = 64 * 1024;
    PageStream stream(families, format, /*gzip=*/false, kChunk);
    const Drained drained = Drain(stream);
    EXPECT_EQ(drained.body, whole);
    EXPECT_GE(drained.pieces, whole.size() / (kChunk + 4096));
    EXPECT_LT(drained.largest_piece, kChunk + 4096) << "pieces stay bounded";
  }
}

TEST(PageStreamTest, GzipPiecesDecodeToTheSerializedPage) {
  const auto families = Backends(2000);
  for (Format format : {Format::kPrometheusText004, Format::kOpenMetrics100}) {
    const std::string whole = Serialize(families, format);
    PageStream stream(families, format, /*gzip=*/true, 64 * 1024);
    const Drained drained = Drain(stream);
    EXPECT_GT(drained.pieces, 1u) << "compressed output is released while rendering";
    EXPECT_LT(drained.body.size(), whole.size() / 5);
    EXPECT_EQ(Gunzip(drained.body), whole);
  }
}

TEST(PageStreamTest, SmallPageIsOnePiece) {
  const auto families = Backends(3);
  PageStream stream(families, Format::kPrometheusText004, /*gzip=*/false);
  EXPECT_FALSE(stream.done());
  EXPECT_EQ(stream.Next(), Serialize(families, Format::kPrometheusText004));
  EXPECT_TRUE(stream.done());

  PageStream gzip(families, Format::kPrometheusText004, /*gzip=*/true);
  EXPECT_EQ(Gunzip(gzip.Next()), Serialize(families, Format::kPrometheusText004));
  EXPECT_TRUE(gzip.done());
}

TEST(PageStreamTest, LetsGoOfTheFamiliesOnceRendered) {
  for (bool gzip : {false, true}) {
    auto families = Backends(2000);
    const std::string whole = Serialize(families, Format::kPrometheusText004);
    auto source = std::make_shared<VectorSource<Sample>>(std::move(families[0].samples));
    families[0].samples.clear();
    families[0].sample_sources.push_back(source);
    const std::weak_ptr<VectorSource<Sample>> watch = source;
    source.reset();

    PageStream stream(std::move(families), Format::kPrometheusText004, gzip, 64 * 1024);
    std::string body;
    while (!stream.done()) {
      EXPECT_FALSE(watch.expired()) << "released before the page was rendered";
      body += stream.Next();
    }
    // The last piece is still there to send, the source is gone: a scrape
    // writing its last piece to a slow client holds no collector's data.
    EXPECT_TRUE(watch.expired());
    EXPECT_EQ(gzip ? Gunzip(body) : body, whole);
  }
}

TEST(PageStreamTest, EmptyPage) {
  PageStream identity({}, Format::kPrometheusText004, /*gzip=*/false);
  EXPECT_EQ(identity.Next(), "");
  EXPECT_TRUE(identity.done());

  PageStream open_metrics({}, Format::kOpenMetrics100, /*gzip=*/false);
  EXPECT_EQ(open_metrics.Next(), "# EOF\n");
  EXPECT_TRUE(open_metrics.done());

  // An empty body still gets a complete (empty) gzip member.
  PageStream gzip({}, Format::kPrometheusText004, /*gzip=*/true);
  const std::string member(gzip.Next());
  EXPECT_TRUE(gzip.done());
  EXPECT_FALSE(member.empty());
  EXPECT_EQ(Gunzip(member), "");
}

}  // namespace
}  // namespace sockeye::metrics
