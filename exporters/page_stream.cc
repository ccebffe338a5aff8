#include "exporters/page_stream.h"

#include <algorithm>
#include <utility>

namespace sockeye::metrics {
namespace {

// A unit the serializer never splits (a histogram series with its labels)
// is a few hundred bytes to a few KiB; reserving this much beyond the chunk
// keeps the buffer from doubling when the last unit crosses the limit.
constexpr size_t kUnitSlack = 16 * 1024;

}  // namespace

PageStream::PageStream(std::vector<MetricFamily> families, Format format, bool gzip,
                       size_t chunk_bytes)
    : families_(std::move(families)), serializer_(families_, format), chunk_bytes_(chunk_bytes) {
  if (gzip) gzip_.emplace();
  text_.reserve(chunk_bytes_ + kUnitSlack);
}

std::string_view PageStream::Next() {
  if (done_) return {};
  std::string_view piece;
  if (!gzip_) {
    text_.clear();
    serializer_.AppendTo(text_, chunk_bytes_);
    done_ = serializer_.done();
    piece = text_;
  } else {
    compressed_.clear();
    const size_t enough = std::max<size_t>(chunk_bytes_ / 2, 1);
    while (!done_ && compressed_.size() < enough) {
      text_.clear();
      serializer_.AppendTo(text_, chunk_bytes_);
      gzip_->Write(text_, compressed_);
      if (serializer_.done()) {
        gzip_->Finish(compressed_);  // always appends at least the trailer
        done_ = true;
      }
    }
    piece = compressed_;
  }
  if (done_) {
    // Rendered: the families (and any snapshot their series sources read)
    // are let go now, not when the last piece has been sent, so that the
    // next scrape can reuse the snapshot even if it starts while this one
    // is still being written out. The serializer reads them no more.
    std::vector<MetricFamily>().swap(families_);
  }
  return piece;
}

}  // namespace sockeye::metrics
