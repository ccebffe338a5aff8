#include "exporters/content_negotiation.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <system_error>
#include <vector>

namespace sockeye::metrics {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

struct QualityItem {
  std::string_view value;  // media range or content coding, trimmed
  double q = 1;
};

// Parses the comma-separated, q-weighted lists of Accept and
// Accept-Encoding. A q that does not parse counts as 0 (not acceptable).
std::vector<QualityItem> ParseQualityList(std::string_view header) {
  std::vector<QualityItem> items;
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view element = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);

    size_t semicolon = element.find(';');
    QualityItem item;
    item.value = Trim(element.substr(0, semicolon));
    if (item.value.empty()) continue;
    std::string_view params =
        semicolon == std::string_view::npos ? std::string_view() : element.substr(semicolon + 1);
    while (!params.empty()) {
      size_t next = params.find(';');
      std::string_view param = Trim(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
      if (param.size() < 2 || !IEquals(param.substr(0, 2), "q=")) continue;
      std::string_view number = Trim(param.substr(2));
      double q = 0;
      auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), q);
      item.q = (ec == std::errc() && ptr == number.data() + number.size()) ? std::clamp(q, 0.0, 1.0)
                                                                           : 0.0;
    }
    items.push_back(item);
  }
  return items;
}

}  // namespace

Format NegotiateFormat(std::string_view accept) {
  // Any openmetrics-text version counts: we only speak 1.0.0, which
  // Prometheus always lists alongside older versions.
  double openmetrics_q = -1;
  double other_q = -1;
  for (const QualityItem& item : ParseQualityList(accept)) {
    double& best = IEquals(item.value, "application/openmetrics-text") ? openmetrics_q : other_q;
    best = std::max(best, item.q);
  }
  return openmetrics_q > 0 && openmetrics_q >= other_q ? Format::kOpenMetrics100
                                                       : Format::kPrometheusText004;
}

bool AcceptsGzip(std::string_view accept_encoding) {
  double gzip_q = -1;
  double wildcard_q = -1;
  for (const QualityItem& item : ParseQualityList(accept_encoding)) {
    if (IEquals(item.value, "gzip") || IEquals(item.value, "x-gzip")) {
      gzip_q = std::max(gzip_q, item.q);
    } else if (item.value == "*") {
      wildcard_q = std::max(wildcard_q, item.q);
    }
  }
  // An explicit gzip entry wins over the wildcard, also when it says q=0.
  return gzip_q >= 0 ? gzip_q > 0 : wildcard_q > 0;
}

}  // namespace sockeye::metrics
