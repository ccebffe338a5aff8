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

// zlib counts in uInt (32 bits); feed and drain in pieces that fit.
constexpr size_t kMaxZlibChunk = std::numeric_limits<uInt>::max();
// Output space offered to deflate when the caller's buffer has no spare
// capacity. Level 1 shrinks metrics text ~25x, so this is what a few hundred
// KiB of input compress to; a larger need just takes another round.
constexpr size_t kMinOutputRoom = 16 * 1024;

}  // namespace

class GzipStreamer::DeflateStream {
 public:
  DeflateStream() {
    // Level 1: metrics text is repetitive enough that the fastest level
    // already shrinks it ~25x; higher levels cost 3-4x the CPU per scrape.
    if (deflateInit2(&stream_, Z_BEST_SPEED, Z_DEFLATED, kWindowBits + kGzipWrapper, kMemLevel,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      throw std::runtime_error("gzip: deflateInit2 failed");
    }
  }
  ~DeflateStream() { deflateEnd(&stream_); }
  // zlib's state points back into the z_stream, so it must never move.
  DeflateStream(const DeflateStream&) = delete;
  DeflateStream& operator=(const DeflateStream&) = delete;

  z_stream* get() { return &stream_; }

 private:
  z_stream stream_{};
};

GzipStreamer::GzipStreamer() : stream_(std::make_unique<DeflateStream>()) {}
GzipStreamer::~GzipStreamer() = default;
GzipStreamer::GzipStreamer(GzipStreamer&&) noexcept = default;
GzipStreamer& GzipStreamer::operator=(GzipStreamer&&) noexcept = default;

void GzipStreamer::Write(std::string_view input, std::string& out) {
  if (finished_ || !stream_) throw std::logic_error("gzip: stream already finished");
  z_stream* zs = stream_->get();
  while (!input.empty()) {
    const size_t piece = std::min(input.size(), kMaxZlibChunk);
    zs->next_in = reinterpret_cast<const Bytef*>(input.data());
    zs->avail_in = static_cast<uInt>(piece);
    Deflate(out, Z_NO_FLUSH);
    input.remove_prefix(piece);
  }
}

void GzipStreamer::Finish(std::string& out) {
  if (finished_ || !stream_) throw std::logic_error("gzip: stream already finished");
  stream_->get()->avail_in = 0;
  Deflate(out, Z_FINISH);
  finished_ = true;
  // The z_stream's buffers (~256 KiB at these settings) are not needed any
  // more; free them now rather than when the streamer goes.
  stream_.reset();
}

// Runs deflate over the pending input, appending its output to `out`
// (grown into its spare capacity, or by kMinOutputRoom). Per zlib's
// contract deflate is called again as long as it fills all the space it was
// given, since it may have more to give; with Z_FINISH, until the stream ends.
void GzipStreamer::Deflate(std::string& out, int flush) {
  z_stream* zs = stream_->get();
  for (;;) {
    const size_t used = out.size();
    const size_t room = std::min(std::max(out.capacity() - used, kMinOutputRoom), kMaxZlibChunk);
    out.resize(used + room);
    zs->next_out = reinterpret_cast<Bytef*>(out.data() + used);
    zs->avail_out = static_cast<uInt>(room);
    const int rc = deflate(zs, flush);
    out.resize(used + (room - zs->avail_out));
    // Z_BUF_ERROR only says no progress was possible (nothing left to do
    // with Z_NO_FLUSH); it is not an error.
    if (rc == Z_STREAM_ERROR) throw std::runtime_error("gzip: deflate failed");
    if (flush == Z_FINISH) {
      if (rc == Z_STREAM_END) return;
      // Space was offered and nothing came out: looping would never end.
      if (rc == Z_BUF_ERROR && zs->avail_out == room) {
        throw std::runtime_error("gzip: deflate made no progress");
      }
    } else if (zs->avail_in == 0 && zs->avail_out != 0) {
      return;
    }
  }
}

std::string GzipCompress(std::string_view input) {
  GzipStreamer gzip;
  std::string out;
  gzip.Write(input, out);
  gzip.Finish(out);
  return out;
}

}  // namespace sockeye::metrics
