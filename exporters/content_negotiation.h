// Reading a scrape's Accept and Accept-Encoding headers: which exposition
// format and whether gzip. Plain functions of the header values, so they are
// tested without a server.
#pragma once

#include <string_view>

#include "exporters/text_format.h"

namespace sockeye::metrics {

// OpenMetrics when the Accept header lists application/openmetrics-text with
// q > 0 and no other media range has a higher q; the 0.0.4 text otherwise.
Format NegotiateFormat(std::string_view accept);

// True when Accept-Encoding allows gzip (explicitly, or via "*") with q > 0.
bool AcceptsGzip(std::string_view accept_encoding);

}  // namespace sockeye::metrics
