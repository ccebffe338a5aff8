// gzip (RFC 1952) compression of a whole response body.
#pragma once

#include <string>
#include <string_view>

namespace sockeye::metrics {

// Returns `input` as one gzip member. Throws std::runtime_error if zlib
// fails (only on allocation failure in practice).
std::string GzipCompress(std::string_view input);

}  // namespace sockeye::metrics
