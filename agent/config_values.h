// Parsers and formatters for the text of single settings: numbers,
// durations, sizes, pool names, and the quoting used in error messages.
// They report failure as an empty optional; the callers word the errors.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sockeye {

// `text` in double quotes, as error messages show values.
std::string Quote(std::string_view text);
// `text` without leading and trailing blanks (space, tab, CR, LF).
std::string_view Trim(std::string_view text);
// ASCII lower case.
std::string ToLower(std::string_view text);

// Bucket bounds in fixed notation, comma-separated, as help shows them.
std::string FormatNumber(double value);
std::string JoinNumbers(const std::vector<double>& values);

// A decimal number, nothing before or after it.
std::optional<double> ParseDouble(std::string_view text);
// Decimal digits only.
std::optional<uint64_t> ParseUnsigned(std::string_view text);

// "500ms", "30s", "5m", "1h", compounds such as "1h30m", or plain seconds.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);
// The largest unit that divides it: "10m", "1500ms".
std::string FormatDuration(std::chrono::milliseconds d);

// Bytes, or a K/KiB/M/MiB/G/GiB suffix (case-insensitive, powers of 1024).
std::optional<uint64_t> ParseSize(std::string_view text);
// The largest whole binary unit ("4MiB", "1GiB"), else plain bytes.
std::string FormatSize(uint64_t bytes);

// [a-zA-Z_][a-zA-Z0-9_.-]*, what a pool label may hold.
bool ValidPoolName(std::string_view name);

}  // namespace sockeye
