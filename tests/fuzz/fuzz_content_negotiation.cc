// Accept and Accept-Encoding negotiation fed arbitrary header values. Besides
// not crashing, the answer must not depend on the order in which a client
// lists its choices: both headers are q-weighted sets.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "exporters/content_negotiation.h"

namespace {

// The comma-separated elements of `header` in reverse order.
std::string Reversed(std::string_view header) {
  std::vector<std::string_view> elements;
  while (true) {
    const size_t comma = header.find(',');
    elements.push_back(header.substr(0, comma));
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  std::string out;
  for (auto it = elements.rbegin(); it != elements.rend(); ++it) {
    if (!out.empty()) out += ',';
    out += *it;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view header(reinterpret_cast<const char*>(data), size);
  const std::string reversed = Reversed(header);
  using sockeye::metrics::AcceptsGzip;
  using sockeye::metrics::NegotiateFormat;
  if (NegotiateFormat(header) != NegotiateFormat(reversed)) std::abort();
  if (AcceptsGzip(header) != AcceptsGzip(reversed)) std::abort();
  return 0;
}
