#include "agent/config_values.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <system_error>

namespace sockeye {

std::string Quote(std::string_view text) { return "\"" + std::string(text) + "\""; }

std::string_view Trim(std::string_view text) {
  const auto not_space = [](char c) { return c != ' ' && c != '\t' && c != '\r' && c != '\n'; };
  const auto begin = std::find_if(text.begin(), text.end(), not_space);
  const auto end = std::find_if(text.rbegin(), text.rend(), not_space).base();
  return begin < end ? std::string_view(&*begin, static_cast<size_t>(end - begin)) : "";
}

std::string ToLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Fixed notation so that help shows 0.00005 rather than 5e-05.
std::string FormatNumber(double value) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::fixed);
  if (ec != std::errc()) return std::to_string(value);
  return std::string(buf, end);
}

std::string JoinNumbers(const std::vector<double>& values) {
  std::string out;
  for (double v : values) {
    if (!out.empty()) out += ',';
    out += FormatNumber(v);
  }
  return out;
}

// from_chars rather than strtod: locale-independent, and no leading blanks,
// '+' or hex forms slip through.
std::optional<double> ParseDouble(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Digits only; saturates so huge inputs read as out of range, not as junk.
std::optional<uint64_t> ParseUnsigned(std::string_view text) {
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = std::min<uint64_t>(value * 10 + static_cast<uint64_t>(c - '0'), UINT64_MAX / 16);
  }
  return value;
}

// "500ms", "30s", "5m", "1h", compounds such as "1h30m", or plain seconds.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  if (const auto seconds = ParseDouble(text)) {
    if (!std::isfinite(*seconds) || *seconds < 0 || *seconds > 1e9) return std::nullopt;
    return std::chrono::milliseconds(std::llround(*seconds * 1000));
  }
  double total_ms = 0;
  std::string_view rest = text;
  if (rest.empty()) return std::nullopt;
  while (!rest.empty()) {
    size_t number_len = 0;
    while (number_len < rest.size() &&
           ((rest[number_len] >= '0' && rest[number_len] <= '9') || rest[number_len] == '.')) {
      ++number_len;
    }
    const auto number = ParseDouble(rest.substr(0, number_len));
    if (!number) return std::nullopt;
    rest.remove_prefix(number_len);
    double unit_ms = 0;
    if (rest.substr(0, 2) == "ms") {
      unit_ms = 1;
      rest.remove_prefix(2);
    } else if (!rest.empty() && rest.front() == 's') {
      unit_ms = 1000;
      rest.remove_prefix(1);
    } else if (!rest.empty() && rest.front() == 'm') {
      unit_ms = 60 * 1000;
      rest.remove_prefix(1);
    } else if (!rest.empty() && rest.front() == 'h') {
      unit_ms = 3600 * 1000;
      rest.remove_prefix(1);
    } else {
      return std::nullopt;
    }
    total_ms += *number * unit_ms;
  }
  if (!std::isfinite(total_ms) || total_ms > 1e12) return std::nullopt;
  return std::chrono::milliseconds(std::llround(total_ms));
}

std::string FormatDuration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// Binary suffixes only: the size must be a power of two, so "K" meaning 1000
// could never be valid anyway.
std::optional<uint64_t> ParseSize(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const auto number = ParseUnsigned(text.substr(0, digits));
  if (!number) return std::nullopt;
  const std::string suffix = ToLower(text.substr(digits));
  unsigned shift = 0;
  if (suffix.empty() || suffix == "b") {
    shift = 0;
  } else if (suffix == "k" || suffix == "kib") {
    shift = 10;
  } else if (suffix == "m" || suffix == "mib") {
    shift = 20;
  } else if (suffix == "g" || suffix == "gib") {
    shift = 30;
  } else {
    return std::nullopt;
  }
  if (*number > (UINT64_MAX >> 32)) return UINT64_MAX;  // saturate, reported as too large
  return *number << shift;
}

std::string FormatSize(uint64_t bytes) {
  if (bytes != 0 && bytes % (uint64_t{1} << 30) == 0) return std::to_string(bytes >> 30) + "GiB";
  if (bytes != 0 && bytes % (uint64_t{1} << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes != 0 && bytes % (uint64_t{1} << 10) == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes);
}

bool ValidPoolName(std::string_view name) {
  const auto head = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  const auto tail = [&](char c) {
    return head(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
  };
  return !name.empty() && head(name.front()) && std::all_of(name.begin() + 1, name.end(), tail);
}

}  // namespace sockeye
