// The body of one metrics response, produced a piece at a time so that the
// text (46 MB at 5,000 backends) never exists in one buffer: beyond the
// gathered families it renders, a scrape holds about one chunk of text, its
// compressed form and zlib's state (~256 KiB, freed at the end of the
// stream).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exporters/gzip.h"
#include "exporters/metric_model.h"
#include "exporters/text_format.h"

namespace sockeye::metrics {

class PageStream {
 public:
  // Text rendered per piece. Large enough that per-piece costs (a deflate
  // call, an HTTP chunk header, a send) are negligible; small enough that
  // every per-piece buffer (this text, and the two copies httplib makes of
  // each chunk it sends) stays below glibc's default 128 KiB mmap and trim
  // thresholds. Above them, with 256 KiB pieces, the agent spent more time
  // page-faulting freshly trimmed or mapped buffers in than rendering
  // (a 1,000-backend scrape over loopback: 22 ms at 256 KiB, 15 ms at
  // 64 KiB; 85 vs 15 ms with one malloc arena).
  static constexpr size_t kDefaultChunkBytes = 64 * 1024;

  // Takes the gathered families; renders them in `format`, gzip-compressed
  // (one gzip member) when `gzip` is set.
  PageStream(std::vector<MetricFamily> families, Format format, bool gzip,
             size_t chunk_bytes = kDefaultChunkBytes);
  // The serializer refers to families_, so the object never moves.
  PageStream(const PageStream&) = delete;
  PageStream& operator=(const PageStream&) = delete;

  // The next piece of the body, valid until the next call. Uncompressed, a
  // piece is about chunk_bytes of text (whole lines). With gzip, text is
  // rendered and compressed chunk by chunk until at least half a chunk of
  // compressed output is ready (or the page ends): the text shrinks ~25x, so
  // one compressed chunk per piece would mean a send of 2-3 KiB at a time.
  // Empty only when there is nothing more: an empty page (no sample at all,
  // 0.0.4 format, uncompressed), or a call after done().
  std::string_view Next();

  // True once Next has returned the last piece. By then the families have
  // been released (the piece itself stays valid until the next call).
  bool done() const { return done_; }

 private:
  std::vector<MetricFamily> families_;  // emptied once the page is rendered
  Serializer serializer_;               // reads families_ until done()
  std::optional<GzipStreamer> gzip_;
  const size_t chunk_bytes_;
  std::string text_;        // reused for every piece
  std::string compressed_;  // reused for every piece
  bool done_ = false;
};

}  // namespace sockeye::metrics
