#include "exporters/number_format.h"

#include <cassert>
#include <charconv>
#include <cmath>
#include <string>
#include <string_view>
#include <system_error>

namespace sockeye::metrics {
namespace {

// Integral values below this print as plain digits. Every integer up to 2^53
// is exact and the plain form stays short; beyond 1e17 the shortest form
// ("1e+20") is both shorter and just as exact.
constexpr double kPlainIntegerLimit = 1e17;

// Go's %g switches to an exponent when the decimal exponent is < -4 or >= 6
// for shortest formatting; the OpenMetrics canonical numbers follow Go.
constexpr int kMinFixedExponent = -4;
constexpr int kMaxFixedExponentExclusive = 6;

bool AppendNonFinite(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    return false;
  }
  return true;
}

}  // namespace

void AppendValue(std::string& out, double value) {
  if (AppendNonFinite(out, value)) return;
  char buf[64];
  std::to_chars_result result;
  if (value == 0) {
    out += '0';  // also folds -0 into 0
    return;
  }
  if (std::fabs(value) < kPlainIntegerLimit && std::trunc(value) == value) {
    result = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::fixed);
  } else {
    result = std::to_chars(buf, buf + sizeof(buf), value);
  }
  assert(result.ec == std::errc());
  out.append(buf, result.ptr);
}

void AppendBucketBound(std::string& out, double bound, Format format) {
  if (AppendNonFinite(out, bound)) return;
  char buf[64];
  auto sci = std::to_chars(buf, buf + sizeof(buf), bound, std::chars_format::scientific);
  assert(sci.ec == std::errc());
  std::string_view sci_text(buf, static_cast<size_t>(sci.ptr - buf));
  // to_chars writes the exponent like printf: 'e', a sign, at least 2 digits.
  size_t e = sci_text.find('e');
  assert(e != std::string_view::npos && e + 2 < sci_text.size());
  int exponent = 0;
  std::from_chars(sci_text.data() + e + 2, sci_text.data() + sci_text.size(), exponent);
  if (sci_text[e + 1] == '-') exponent = -exponent;
  if (exponent < kMinFixedExponent || exponent >= kMaxFixedExponentExclusive) {
    out += sci_text;  // has an exponent, so it is already a canonical float
    return;
  }
  auto fixed = std::to_chars(buf, buf + sizeof(buf), bound, std::chars_format::fixed);
  assert(fixed.ec == std::errc());
  std::string_view fixed_text(buf, static_cast<size_t>(fixed.ptr - buf));
  out += fixed_text;
  if (format == Format::kOpenMetrics100 && fixed_text.find('.') == std::string_view::npos) {
    out += ".0";
  }
}

std::string FormatValue(double value) {
  std::string out;
  AppendValue(out, value);
  return out;
}

std::string FormatBucketBound(double bound, Format format) {
  std::string out;
  AppendBucketBound(out, bound, format);
  return out;
}

}  // namespace sockeye::metrics
