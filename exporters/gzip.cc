// ZLIB_CONST makes z_stream::next_in a pointer to const, so the input can
// be handed to zlib without a const_cast. It must precede every include
// that might pull in zlib.h.
#define ZLIB_CONST
#include "exporters/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <stdexcept>

namespace sockeye::metrics {
namespace {

constexpr int kWindowBits = 15;
constexpr int kGzipWrapper = 16;  // added to windowBits: gzip header/trailer, not zlib
constexpr int kMemLevel = 8;

class DeflateStream {
 public:
  DeflateStream() {
    // Level 1: metrics text is repetitive enough that the fastest level
    // already shrinks it ~25x; higher levels cost 3-4x the CPU per scrape.
    if (deflateInit2(&stream_, Z_BEST_SPEED, Z_DEFLATED, kWindowBits + kGzipWrapper,
                     kMemLevel, Z_DEFAULT_STRATEGY) != Z_OK) {
      throw std::runtime_error("gzip: deflateInit2 failed");
    }
  }
  ~DeflateStream() { deflateEnd(&stream_); }
  DeflateStream(const DeflateStream&) = delete;
  DeflateStream& operator=(const DeflateStream&) = delete;

  z_stream* get() { return &stream_; }

 private:
  z_stream stream_{};
};

}  // namespace

std::string GzipCompress(std::string_view input) {
  DeflateStream deflate_stream;
  z_stream* zs = deflate_stream.get();
  // zlib counts in uInt (32 bits); feed and drain in pieces that fit.
  constexpr size_t kMaxChunk = std::numeric_limits<uInt>::max();

  std::string out;
  out.resize(deflateBound(zs, static_cast<uLong>(input.size())));
  size_t produced = 0;
  size_t consumed = 0;
  int rc = Z_OK;
  do {
    if (zs->avail_in == 0 && consumed < input.size()) {
      zs->next_in = reinterpret_cast<const Bytef*>(input.data() + consumed);
      zs->avail_in = static_cast<uInt>(std::min(input.size() - consumed, kMaxChunk));
      consumed += zs->avail_in;
    }
    if (produced == out.size()) out.resize(out.size() * 2 + 64);
    zs->next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs->avail_out = static_cast<uInt>(std::min(out.size() - produced, kMaxChunk));
    const uInt room = zs->avail_out;
    rc = deflate(zs, consumed == input.size() ? Z_FINISH : Z_NO_FLUSH);
    if (rc == Z_STREAM_ERROR) throw std::runtime_error("gzip: deflate failed");
    produced += room - zs->avail_out;
  } while (rc != Z_STREAM_END);
  out.resize(produced);
  return out;
}

}  // namespace sockeye::metrics
