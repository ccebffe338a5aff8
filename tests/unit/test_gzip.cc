#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exporters/gzip.h"
#include "tests/unit/gunzip.h"

namespace sockeye::metrics {
namespace {

using test_util::Gunzip;

// Metrics-like text: repetitive, as real pages are.
std::string Lines(int count) {
  std::string text;
  for (int i = 0; i < count; ++i) {
    text += "sockeye_backend_requests_total{backend=\"10.0." + std::to_string(i / 256) + "." +
            std::to_string(i % 256) + ":8080\"} " + std::to_string(i * 7) + "\n";
  }
  return text;
}

// Bytes a simple LCG makes up: deflate cannot shrink them, so the output is
// larger than any fixed output buffer and has to be drained in rounds.
std::string Incompressible(size_t size) {
  std::string data(size, '\0');
  uint32_t state = 12345;
  for (char& c : data) {
    state = state * 1103515245u + 12345u;
    c = static_cast<char>(state >> 24);
  }
  return data;
}

bool IsGzipMagic(std::string_view data) {
  return data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f &&
         static_cast<unsigned char>(data[1]) == 0x8b;
}

TEST(GzipTest, RoundTrips) {
  EXPECT_EQ(Gunzip(GzipCompress("")), "");
  std::string big;
  for (int i = 0; i < 100000; ++i) big += "line " + std::to_string(i) + "\n";
  const std::string compressed = GzipCompress(big);
  EXPECT_LT(compressed.size(), big.size() / 4);
  EXPECT_TRUE(IsGzipMagic(compressed));
  EXPECT_EQ(Gunzip(compressed), big);
}

TEST(GzipStreamerTest, EmptyInputIsAValidEmptyMember) {
  GzipStreamer finish_only;
  std::string out;
  finish_only.Finish(out);
  EXPECT_TRUE(finish_only.finished());
  EXPECT_TRUE(IsGzipMagic(out));
  EXPECT_EQ(Gunzip(out), "");

  GzipStreamer empty_writes;
  std::string out2;
  empty_writes.Write("", out2);
  empty_writes.Write(std::string_view(), out2);
  EXPECT_EQ(out2, "");  // nothing to release yet, not even the header
  empty_writes.Finish(out2);
  EXPECT_EQ(Gunzip(out2), "");
}

TEST(GzipStreamerTest, MultiChunkInputRoundTrips) {
  const std::string text = Lines(60000);  // ~3.6 MB
  // Piece sizes from a single byte to more than deflate's window, so pieces
  // end inside lines, inside deflate blocks and across them.
  const std::vector<size_t> piece_sizes = {1, 7, 100, 4096, 65536, 300000, 1 << 20};
  for (size_t piece_size : piece_sizes) {
    GzipStreamer gzip;
    std::string out;
    size_t writes_with_output = 0;
    for (size_t offset = 0; offset < text.size(); offset += piece_size) {
      const size_t before = out.size();
      gzip.Write(std::string_view(text).substr(offset, piece_size), out);
      if (out.size() > before) ++writes_with_output;
    }
    // Streaming, not buffering: output is released long before Finish.
    EXPECT_GT(writes_with_output, 0u) << piece_size;
    gzip.Finish(out);
    EXPECT_LT(out.size(), text.size() / 10) << piece_size;
    EXPECT_EQ(Gunzip(out), text) << piece_size;
  }
}

TEST(GzipStreamerTest, CallerCanDrainOutputBetweenWrites) {
  // What a scrape does: send and clear the output after every piece.
  const std::string text = Lines(30000);
  GzipStreamer gzip;
  std::string out;
  std::string sent;
  constexpr size_t kPiece = 256 * 1024;
  for (size_t offset = 0; offset < text.size(); offset += kPiece) {
    gzip.Write(std::string_view(text).substr(offset, kPiece), out);
    sent += out;
    out.clear();
  }
  gzip.Finish(out);
  sent += out;
  EXPECT_EQ(Gunzip(sent), text);
}

TEST(GzipStreamerTest, AppendsToExistingOutput) {
  std::string out = "prefix";
  GzipStreamer gzip;
  gzip.Write("hello\n", out);
  gzip.Finish(out);
  ASSERT_EQ(out.substr(0, 6), "prefix");
  EXPECT_EQ(Gunzip(std::string_view(out).substr(6)), "hello\n");
}

TEST(GzipStreamerTest, IncompressibleInputNeedsSeveralOutputRounds) {
  const std::string data = Incompressible(3 << 20);
  GzipStreamer gzip;
  std::string out;
  gzip.Write(data, out);
  gzip.Finish(out);
  EXPECT_GE(out.size(), data.size());  // stored blocks plus framing
  EXPECT_EQ(Gunzip(out), data);
}

TEST(GzipStreamerTest, UseAfterFinishThrows) {
  GzipStreamer gzip;
  std::string out;
  gzip.Finish(out);
  EXPECT_THROW(gzip.Write("x", out), std::logic_error);
  EXPECT_THROW(gzip.Finish(out), std::logic_error);

  GzipStreamer moved_from;
  GzipStreamer owner(std::move(moved_from));
  owner.Write("x", out);
  EXPECT_THROW(moved_from.Write("x", out), std::logic_error);  // NOLINT(bugprone-use-after-move)
}

}  // namespace
}  // namespace sockeye::metrics
