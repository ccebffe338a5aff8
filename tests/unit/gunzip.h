// Test helper: decodes one gzip member with zlib's inflate, independently of
// the code under test.
#pragma once

#include <zlib.h>

#include <stdexcept>
#include <string>
#include <string_view>

namespace sockeye::metrics::test_util {

// Throws std::runtime_error unless `compressed` is exactly one complete gzip
// member (no truncation, no trailing bytes).
inline std::string Gunzip(std::string_view compressed) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) throw std::runtime_error("inflateInit2");
  std::string out;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs.avail_in = static_cast<uInt>(compressed.size());
  int rc = Z_OK;
  char buf[16384];
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - zs.avail_out);
  }
  const uInt trailing = zs.avail_in;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("gunzip failed: " + std::to_string(rc));
  if (trailing != 0) {
    throw std::runtime_error("gunzip: " + std::to_string(trailing) + " bytes after the member");
  }
  return out;
}

}  // namespace sockeye::metrics::test_util
