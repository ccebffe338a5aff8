// gzip (RFC 1952) compression, of a whole buffer or incrementally.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace sockeye::metrics {

// Compresses a stream piece by piece into one gzip member (deflate level 1,
// like GzipCompress), so that neither the input nor the output has to exist
// in one buffer: a scrape compresses each chunk of text as it is rendered.
// Output is appended to a buffer the caller owns and can send and clear
// between calls.
//
// zlib errors throw std::runtime_error (only allocation failures in
// practice); Write or Finish after Finish throw std::logic_error.
class GzipStreamer {
 public:
  GzipStreamer();
  ~GzipStreamer();
  GzipStreamer(GzipStreamer&&) noexcept;
  GzipStreamer& operator=(GzipStreamer&&) noexcept;
  GzipStreamer(const GzipStreamer&) = delete;
  GzipStreamer& operator=(const GzipStreamer&) = delete;

  // Compresses `input` and appends to `out` whatever deflate releases. That
  // is often nothing: deflate holds input until it has a block's worth, so
  // the output of a piece may only appear with a later Write or Finish.
  void Write(std::string_view input, std::string& out);

  // Appends the rest of the compressed data and the gzip trailer. The
  // member is complete after this; an empty stream (Finish right away) is a
  // valid gzip member of an empty body.
  void Finish(std::string& out);

  bool finished() const { return finished_; }

 private:
  class DeflateStream;  // RAII around zlib's z_stream, kept out of this header
  void Deflate(std::string& out, int flush);

  std::unique_ptr<DeflateStream> stream_;
  bool finished_ = false;
};

// Returns `input` as one gzip member. Throws std::runtime_error if zlib
// fails (only on allocation failure in practice).
std::string GzipCompress(std::string_view input);

}  // namespace sockeye::metrics
