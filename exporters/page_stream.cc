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
  if (!gzip_) {
    text_.clear();
    serializer_.AppendTo(text_, chunk_bytes_);
    done_ = serializer_.done();
    return text_;
  }
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
  return compressed_;
}

}  // namespace sockeye::metrics
