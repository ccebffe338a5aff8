// Writing sample values and bucket bounds as the exposition formats spell
// them, for the serializer (text_format.cc). Appends to the caller's buffer
// so that a page's numbers cost no allocation of their own.
#pragma once

#include <cassert>
#include <charconv>
#include <string>
#include <system_error>

#include "exporters/text_format.h"

namespace sockeye::metrics {

// An integer in plain digits.
template <typename T>
void AppendToChars(std::string& out, T value) {
  char buf[32];
  auto result = std::to_chars(buf, buf + sizeof(buf), value);
  assert(result.ec == std::errc());
  out.append(buf, result.ptr);
}

// A sample value, as FormatValue (text_format.h) describes it.
void AppendValue(std::string& out, double value);

// A bucket bound's `le` value, as FormatBucketBound (text_format.h)
// describes it.
void AppendBucketBound(std::string& out, double bound, Format format);

}  // namespace sockeye::metrics
