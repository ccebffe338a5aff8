#include "agent/config.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>

#include "agent/version.h"

// CMake passes both; the fallbacks keep ad-hoc builds of this file working.

namespace sockeye {
namespace {

constexpr size_t kMaxProcesses = 8;
// TASK_COMM_LEN is 16 including the NUL; longer names never match a task.
constexpr size_t kMaxProcessNameLen = 15;
constexpr size_t kMaxFilters = 32;
constexpr size_t kMaxBuckets = 64;
constexpr uint64_t kMinBackends = 1;
constexpr uint64_t kMaxBackends = 1000000;
constexpr std::chrono::milliseconds kMinSweep{100};
constexpr std::chrono::milliseconds kMaxSweep{60000};
constexpr std::chrono::milliseconds kMinIdle{1000};
constexpr std::chrono::milliseconds kMaxIdle{7LL * 24 * 3600 * 1000};
constexpr uint64_t kMinRingbuf = 4096;  // one page: the kernel's minimum
constexpr uint64_t kMaxRingbuf = uint64_t{1} << 30;
constexpr uint64_t kMaxHotSlots = uint64_t{1} << 20;  // 192 MiB of slots

constexpr const char* kProgram = "sockeye";

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

// What the config file contributed, collected while CLI11 reads it.
struct FileReport {
  std::set<std::string> keys;  // options whose value came from the file
  std::string error;           // first problem, naming the key; empty if none
};

// CLI11 2.1.2 splits every key on '.' and treats the pieces as subcommand
// names, so neither "web.listen-address = ..." nor "[web] listen-address =
// ..." would reach the option "--web.listen-address". This reader glues the
// section path and the key back into the flat option name, which makes both
// spellings work, and also records which options the file set (for error
// messages) and rejects unknown keys with the key named.
class FlatTomlConfig : public CLI::ConfigTOML {
 public:
  FlatTomlConfig(const CLI::App* app, FileReport* report) : app_(app), report_(report) {
    // Comments are removed by Normalize, which knows about quotes; CLI11's
    // own stripping would cut values such as "a#b" short.
    comment('\0');
  }

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::istringstream normalized(Normalize(input));
    std::vector<CLI::ConfigItem> merged;
    std::map<std::string, size_t> index;
    for (const CLI::ConfigItem& item : CLI::ConfigTOML::from_config(normalized)) {
      // "++"/"--" mark section starts and ends for subcommands; there are none.
      if (item.name == "++" || item.name == "--") continue;
      std::string key;
      for (const std::string& parent : item.parents) key += parent + ".";
      key += item.name;
      // CLI11 splits a quoted key such as "web.listen-address" inside the
      // quotes; joined again, only the quotes need to go.
      if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'') &&
          key.back() == key.front()) {
        key = key.substr(1, key.size() - 2);
      }
      auto [it, inserted] = index.emplace(key, merged.size());
      if (inserted) {
        CLI::ConfigItem flat;
        flat.name = key;
        flat.inputs = item.inputs;
        merged.push_back(std::move(flat));
      } else {
        // A repeated key extends a list option; for a single-value option
        // the check below reports it.
        auto& inputs = merged[it->second].inputs;
        inputs.insert(inputs.end(), item.inputs.begin(), item.inputs.end());
      }
    }

    std::vector<CLI::ConfigItem> accepted;
    for (CLI::ConfigItem& item : merged) {
      const CLI::Option* option = app_->get_option_no_throw("--" + item.name);
      // "key = []" leaves the default (every process, no pools, default
      // buckets); CLI11 itself would fail to convert the empty list.
      if (option != nullptr && option->get_expected_max() > 1 && item.inputs.empty()) continue;
      const std::string problem = Check(&item);
      if (!problem.empty()) {
        if (report_->error.empty()) report_->error = problem;
        continue;
      }
      // CLI11 applies a file value only when the flag was not given.
      if (option->count() == 0) report_->keys.insert(item.name);
      accepted.push_back(std::move(item));
    }
    return accepted;
  }

 private:
  // CLI11 2.1.2 only continues an array onto the next line when the '[' has
  // a value after it on the same line, and keeps an empty element for a
  // trailing comma. Both are common TOML style, so arrays are put back on
  // one line, without comments and trailing commas, before CLI11 sees them.
  static std::string Normalize(std::istream& input) {
    std::string out;
    std::string line;
    while (std::getline(input, line)) {
      std::string text = StripComment(line);
      const size_t eq = text.find('=');
      if (eq != std::string::npos) {
        int depth = BracketDepth(std::string_view(text).substr(eq + 1));
        std::string more;
        while (depth > 0 && std::getline(input, more)) {
          const std::string next = StripComment(more);
          text += " " + std::string(Trim(next));
          depth += BracketDepth(next);
        }
        std::string_view value = Trim(std::string_view(text).substr(eq + 1));
        if (value.size() >= 2 && value.front() == '[' && value.back() == ']') {
          std::string_view body = Trim(value.substr(1, value.size() - 2));
          if (!body.empty() && body.back() == ',') body.remove_suffix(1);
          text = text.substr(0, eq + 1) + " [" + std::string(Trim(body)) + "]";
        }
      }
      out += text + "\n";
    }
    return out;
  }

  // The line up to a '#' that is outside quotes.
  static std::string StripComment(const std::string& line) {
    char quote = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (quote != 0) {
        if (c == '\\' && quote == '"') {
          ++i;
        } else if (c == quote) {
          quote = 0;
        }
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '#') {
        return line.substr(0, i);
      }
    }
    return line;
  }

  // '[' minus ']' outside quotes.
  static int BracketDepth(std::string_view text) {
    int depth = 0;
    char quote = 0;
    for (char c : text) {
      if (quote != 0) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '[') {
        ++depth;
      } else if (c == ']') {
        --depth;
      }
    }
    return depth;
  }

  // Returns what is wrong with one key, or "" when CLI11 may apply it.
  std::string Check(CLI::ConfigItem* item) const {
    const CLI::Option* option = app_->get_option_no_throw("--" + item->name);
    if (option == nullptr) return "unknown key " + Quote(item->name);
    const std::string where = "key " + item->name + ": ";
    if (!option->get_configurable()) return where + "cannot be set in a config file";
    const bool is_list = option->get_expected_max() > 1;
    if (option->get_expected_min() == 0) {
      if (item->inputs.size() != 1) return where + "expects true or false";
      const std::string value = ToLower(item->inputs.front());
      if (value == "true" || value == "1" || value == "yes" || value == "on") {
        item->inputs = {"true"};
      } else if (value == "false" || value == "0" || value == "no" || value == "off") {
        item->inputs = {"false"};
      } else {
        return where + Quote(item->inputs.front()) + " is not true or false";
      }
    } else if (!is_list && item->inputs.size() != 1) {
      return where + "expects a single value, got " + std::to_string(item->inputs.size());
    }
    return "";
  }

  const CLI::App* app_;
  FileReport* report_;
};

// Every setting as text, exactly as given, so that the checks below can
// name the offending flag or key in their own words.
struct RawFlags {
  std::string listen_address;
  std::string telemetry_path;
  std::vector<std::string> processes;
  std::vector<std::string> include;
  std::vector<std::string> exclude;
  std::vector<std::string> pools;
  std::string max_backends;
  std::string backend_idle_timeout;
  std::string sweep_interval;
  std::string ringbuf_size;
  std::string hot_slots;
  bool bpf_stats = false;
  bool check_only = false;
  bool keep_capabilities = false;
  std::string btf_path;
  std::string probe_mode = "auto";
  std::string sweep_iterator = "auto";
  std::string log_level = "info";
  std::vector<std::string> buckets_connect_duration;
  std::vector<std::string> buckets_connection_duration;
  std::vector<std::string> buckets_time_to_first_byte;
  std::vector<std::string> buckets_rtt;
  std::vector<std::string> buckets_requests_per_connection;
};

// Builds one-line errors that say where the bad value came from.
class Errors {
 public:
  Errors(std::string file, const std::set<std::string>* file_keys)
      : file_(std::move(file)), file_keys_(file_keys) {}

  // "--max-backends" or "/etc/sockeye.toml: key max-backends".
  std::string Where(const std::string& key) const {
    if (file_keys_->count(key) != 0) return file_ + ": key " + key;
    return "--" + key;
  }

  bool Fail(const std::string& key, const std::string& problem) {
    return FailRaw(Where(key) + ": " + problem);
  }
  bool FailRaw(const std::string& text) {
    if (message_.empty()) message_ = std::string(kProgram) + ": " + text;
    return false;
  }

  const std::string& message() const { return message_; }

 private:
  std::string file_;
  const std::set<std::string>* file_keys_;
  std::string message_;
};

bool CheckListenAddress(const std::string& text, Errors* errors, std::string* out) {
  const std::string key = "web.listen-address";
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    return errors->Fail(key, Quote(text) + " is not HOST:PORT (e.g. :19480 or 127.0.0.1:19480)");
  }
  const std::string host = text.substr(0, colon);
  const auto port = ParseUnsigned(std::string_view(text).substr(colon + 1));
  if (!port || *port > 65535) {
    return errors->Fail(key, Quote(text) + ": port must be a number 0-65535");
  }
  if (!host.empty() && host.front() == '[') {
    // Port 0 stands in for the real one: only the bracketed address matters.
    if (!ParseEndpoint(host + ":0")) {
      return errors->Fail(key, Quote(text) + ": bad IPv6 address in brackets");
    }
  } else if (host.find_first_of(":[] \t") != std::string::npos) {
    return errors->Fail(key, Quote(text) + ": an IPv6 host must be in brackets, e.g. [::1]:19480");
  }
  *out = text;
  return true;
}

bool CheckTelemetryPath(const std::string& path, Errors* errors, std::string* out) {
  const std::string key = "web.telemetry-path";
  if (path.empty() || path.front() != '/') {
    return errors->Fail(key, Quote(path) + " must start with '/'");
  }
  if (path == "/") return errors->Fail(key, "\"/\" is reserved for the landing page");
  if (path == "/healthz") return errors->Fail(key, "\"/healthz\" is reserved for the health check");
  if (path.find_first_of("?# \t\r\n") != std::string::npos) {
    return errors->Fail(key, Quote(path) + " must not contain '?', '#' or whitespace");
  }
  *out = path;
  return true;
}

bool CheckProcesses(const std::vector<std::string>& names, Errors* errors,
                    std::vector<std::string>* out) {
  const std::string key = "process";
  if (names.size() > kMaxProcesses) {
    return errors->Fail(key, std::to_string(names.size()) + " names given; at most " +
                                 std::to_string(kMaxProcesses) + " are allowed");
  }
  for (const std::string& name : names) {
    if (name.empty()) return errors->Fail(key, "process name is empty");
    if (name.size() > kMaxProcessNameLen) {
      return errors->Fail(key, Quote(name) + " is " + std::to_string(name.size()) +
                                   " characters; the kernel keeps at most " +
                                   std::to_string(kMaxProcessNameLen) + " of a process name");
    }
  }
  *out = names;
  return true;
}

bool CheckFilters(const std::string& key, const std::vector<std::string>& texts, Errors* errors,
                  std::vector<CidrMatch>* out) {
  for (const std::string& text : texts) {
    std::string error;
    const auto match = ParseCidrMatch(text, &error);
    if (!match) return errors->Fail(key, error);
    out->push_back(*match);
  }
  return true;
}

bool CheckPools(const std::vector<std::string>& texts, Errors* errors,
                std::vector<PoolMapping>* out) {
  const std::string key = "pool";
  for (const std::string& text : texts) {
    const std::string where = errors->Where(key) + " " + Quote(text) + ": ";
    const size_t eq = text.find('=');
    if (eq == std::string::npos) return errors->FailRaw(where + "expected NAME=CIDR[:PORT]");
    const std::string name = text.substr(0, eq);
    if (name.empty()) return errors->FailRaw(where + "pool name is empty");
    if (!ValidPoolName(name)) {
      return errors->FailRaw(where + "pool name " + Quote(name) +
                             " must match [a-zA-Z_][a-zA-Z0-9_.-]*");
    }
    std::string error;
    const auto match = ParseCidrMatch(std::string_view(text).substr(eq + 1), &error);
    if (!match) return errors->FailRaw(where + error);
    out->push_back(PoolMapping{name, *match});
  }
  return true;
}

bool CheckMaxBackends(const std::string& text, Errors* errors, size_t* out) {
  const std::string key = "max-backends";
  const auto value = ParseUnsigned(text);
  if (!value) return errors->Fail(key, Quote(text) + " is not a number");
  if (*value < kMinBackends || *value > kMaxBackends) {
    return errors->Fail(key, text + " is out of range (" + std::to_string(kMinBackends) + "-" +
                                 std::to_string(kMaxBackends) + ")");
  }
  *out = static_cast<size_t>(*value);
  return true;
}

bool CheckDuration(const std::string& key, const std::string& text, std::chrono::milliseconds min,
                   std::chrono::milliseconds max, Errors* errors, std::chrono::milliseconds* out) {
  const auto value = ParseDuration(text);
  if (!value) {
    return errors->Fail(key,
                        Quote(text) + " is not a duration (e.g. 500ms, 30s, 5m, 1h, or seconds)");
  }
  if (*value < min || *value > max) {
    return errors->Fail(key, Quote(text) + " is out of range (" + FormatDuration(min) + " to " +
                                 FormatDuration(max) + ")");
  }
  *out = *value;
  return true;
}

bool CheckRingbuf(const std::string& text, Errors* errors, size_t* out) {
  const std::string key = "ringbuf-size";
  const auto value = ParseSize(text);
  if (!value) {
    return errors->Fail(key, Quote(text) + " is not a size (bytes, or a K/KiB/M/MiB/G/GiB suffix)");
  }
  if (*value < kMinRingbuf || *value > kMaxRingbuf) {
    return errors->Fail(key, Quote(text) + " is out of range (" + FormatSize(kMinRingbuf) + " to " +
                                 FormatSize(kMaxRingbuf) + ")");
  }
  if ((*value & (*value - 1)) != 0) {
    return errors->Fail(key, Quote(text) + " is not a power of two (e.g. 4MiB, 8MiB, 16MiB)");
  }
  *out = static_cast<size_t>(*value);
  return true;
}

bool CheckHotSlots(const std::string& text, Errors* errors, uint32_t* out) {
  const std::string key = "hot-slots";
  const auto value = ParseUnsigned(text);
  if (!value) return errors->Fail(key, Quote(text) + " is not a number");
  if (*value > kMaxHotSlots) {
    return errors->Fail(key, text + " is out of range (0-" + std::to_string(kMaxHotSlots) + ")");
  }
  if ((*value & (*value - 1)) != 0) {
    return errors->Fail(key, text + " is not a power of two (or 0, off), e.g. 8192, 65536");
  }
  *out = static_cast<uint32_t>(*value);
  return true;
}

bool CheckProbeMode(const std::string& text, Errors* errors, ProbeMode* out) {
  if (const auto mode = ProbeModeFromName(text)) {
    *out = *mode;
    return true;
  }
  return errors->Fail("probe-mode",
                      Quote(text) + " is not one of auto, tracepoint, fentry, kprobe, segment");
}

bool CheckSweepIterator(const std::string& text, Errors* errors, SweepIterator* out) {
  if (const auto iterator = SweepIteratorFromName(text)) {
    *out = *iterator;
    return true;
  }
  return errors->Fail("sweep-iterator", Quote(text) + " is not one of auto, socket-storage, tcp");
}

bool CheckLogLevel(const std::string& text, Errors* errors, LogLevel* out) {
  static const std::pair<const char*, LogLevel> kLevels[] = {{"debug", LogLevel::kDebug},
                                                             {"info", LogLevel::kInfo},
                                                             {"warn", LogLevel::kWarn},
                                                             {"error", LogLevel::kError}};
  for (const auto& [name, level] : kLevels) {
    if (text == name) {
      *out = level;
      return true;
    }
  }
  return errors->Fail("log.level", Quote(text) + " is not one of debug, info, warn, error");
}

// An empty list means "not given": the defaults stay.
bool CheckBuckets(const std::string& key, const std::vector<std::string>& texts, Errors* errors,
                  std::vector<double>* out) {
  if (texts.empty()) return true;
  if (texts.size() > kMaxBuckets) {
    return errors->Fail(key, std::to_string(texts.size()) + " bounds given; at most " +
                                 std::to_string(kMaxBuckets) + " are allowed");
  }
  std::vector<double> bounds;
  std::string previous;
  for (const std::string& raw : texts) {
    const std::string_view text = Trim(raw);
    const auto value = ParseDouble(text);
    if (!value) return errors->Fail(key, Quote(text) + " is not a number");
    if (!std::isfinite(*value) || *value <= 0) {
      return errors->Fail(key, Quote(text) + ": bounds must be finite and greater than 0");
    }
    if (!bounds.empty() && *value <= bounds.back()) {
      return errors->Fail(key, "bounds must be strictly increasing, but " + Quote(text) +
                                   " follows " + Quote(previous));
    }
    bounds.push_back(*value);
    previous = std::string(text);
  }
  *out = std::move(bounds);
  return true;
}

std::string VersionLine() {
  return std::string(kProgram) + " " + SOCKEYE_VERSION + " (" + SOCKEYE_REVISION + ")";
}

constexpr const char* kDescription =
    "sockeye traces the TCP connections that local processes open to their backends "
    "(upstream servers, databases, caches) with eBPF, without touching the processes or "
    "the traffic, and serves per-backend metrics to Prometheus: connects and their "
    "failures, connect time, time to first byte, round-trip time, requests per connection "
    "and connection lifetimes, labelled by backend address and optional pool name. Every "
    "setting can also be given in a TOML file passed with --config; flags on the command "
    "line win over the file.";

constexpr const char* kFooter =
    "Example:\n"
    "  sockeye --process nginx --pool api=10.1.0.0/24:8080 --exclude 127.0.0.0/8 \\\n"
    "          --web.listen-address 127.0.0.1:19480\n"
    "\n"
    "Config file example (keys are the long flag names; \"web.listen-address\" may also\n"
    "be written as listen-address inside a [web] section):\n"
    "  process = [\"nginx\", \"haproxy\"]\n"
    "  pool = [\"api=10.1.0.0/24:8080\"]\n"
    "  web.listen-address = \"127.0.0.1:19480\"\n"
    "  buckets.rtt = [0.0001, 0.001, 0.01, 0.1]";

void DefineFlags(CLI::App* app, RawFlags* raw) {
  const Config defaults;
  raw->listen_address = defaults.listen_address;
  raw->telemetry_path = defaults.telemetry_path;
  raw->max_backends = std::to_string(defaults.max_backends);
  raw->backend_idle_timeout = FormatDuration(defaults.backend_idle_timeout);
  raw->sweep_interval = FormatDuration(defaults.sweep_interval);
  raw->ringbuf_size = FormatSize(defaults.ringbuf_bytes);
  raw->hot_slots = std::to_string(defaults.hot_slots);

  // Scalars: the last occurrence wins, as with most Unix tools, so wrappers
  // can append overrides. Lists take exactly one value per occurrence so a
  // stray word is reported instead of being swallowed as another entry.
  const auto scalar = [](CLI::Option* option) {
    return option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)->capture_default_str();
  };
  // option_text replaces CLI11's "TYPE ..." label, which would suggest that
  // one flag takes several words.
  const auto list = [](CLI::Option* option, const std::string& label) {
    return option->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->option_text(label);
  };

  app->set_config("--config", "",
                  "Read settings from this TOML file (default: none). Keys are the long "
                  "flag names without dashes, e.g. max-backends = 100 or "
                  "web.listen-address = \":9100\"; dotted names may also be split into a "
                  "section, e.g. [web] then listen-address = \":9100\". Lists are arrays. "
                  "Unknown keys are errors.")
      ->type_name("FILE");

  const std::string web = "Web";
  scalar(app->add_option("--web.listen-address", raw->listen_address,
                         "Address to serve metrics on, HOST:PORT; an empty host means all "
                         "interfaces, IPv6 hosts go in brackets ([::1]:19480)"))
      ->type_name("ADDR")
      ->group(web);
  scalar(app->add_option("--web.telemetry-path", raw->telemetry_path,
                         "HTTP path that serves the metrics; must start with '/' and cannot be "
                         "\"/\" or \"/healthz\""))
      ->type_name("PATH")
      ->group(web);

  const std::string selection = "Selection";
  list(app->add_option("--process", raw->processes,
                       "Only trace connections made by processes with this command name "
                       "(comm, 1-15 characters); repeatable, at most 8 (default: every process)"),
       "NAME")
      ->group(selection);
  list(app->add_option("--include", raw->include,
                       "Only track backends in this network, e.g. 10.0.0.0/8 or "
                       "[2001:db8::/32]:443; repeatable (default: every backend)"),
       "CIDR[:PORT]")
      ->group(selection);
  list(app->add_option("--exclude", raw->exclude,
                       "Never track backends in this network, even if included; repeatable. "
                       "At most 32 --include and --exclude in total (default: none)"),
       "CIDR[:PORT]")
      ->group(selection);
  list(app->add_option("--pool", raw->pools,
                       "Label backends in this network with pool=NAME; NAME matches "
                       "[a-zA-Z_][a-zA-Z0-9_.-]*, several networks may share a NAME, and the "
                       "first match wins; repeatable (default: none)"),
       "NAME=CIDR[:PORT]")
      ->group(selection);

  const std::string tracking = "Tracking";
  scalar(app->add_option("--max-backends", raw->max_backends,
                         "Most backends tracked at once (1-1000000)"))
      ->type_name("N")
      ->group(tracking);
  scalar(app->add_option("--backend-idle-timeout", raw->backend_idle_timeout,
                         "Forget a backend (and its series) after it has seen no connection for "
                         "this long, 1s to 168h; e.g. 500ms, 30s, 5m, 1h, or plain seconds"))
      ->type_name("DURATION")
      ->group(tracking);
  scalar(app->add_option("--sweep-interval", raw->sweep_interval,
                         "How often to drain kernel state and expire idle backends, 100ms to 60s"))
      ->type_name("DURATION")
      ->group(tracking);
  scalar(app->add_option("--ringbuf-size", raw->ringbuf_size,
                         "Size of the kernel-to-agent event ring buffer: bytes or a "
                         "K/KiB/M/MiB/G/GiB suffix, a power of two from 4KiB to 1GiB"))
      ->type_name("SIZE")
      ->group(tracking);
  scalar(app->add_option("--hot-slots", raw->hot_slots,
                         "Open backend connections whose per-segment state sits in a kernel array "
                         "slot (192 bytes each) instead of socket storage, the cheaper path per "
                         "received segment; the rest fall back, counted in "
                         "sockeye_hot_slot_fallbacks_total. A power of two up to 1048576, 0 = off"))
      ->type_name("N")
      ->group(tracking);
  app->add_flag("--bpf-stats", raw->bpf_stats,
                "Enable kernel BPF run-time statistics and export them (default: off)")
      ->group(tracking);
  app->add_flag("--check", raw->check_only,
                "Probe the kernel, load and attach every program the agent would use, print a "
                "report (kernel, BTF, each hook and its mode, what is missing and what that "
                "costs, capabilities) and exit: 0 if the agent can run here")
      ->group(tracking);
  scalar(app->add_option("--btf-path", raw->btf_path,
                         "Kernel BTF file to use when the kernel has no /sys/kernel/btf/vmlinux "
                         "(e.g. from btfhub or the distribution's debug packages)"))
      ->type_name("FILE")
      ->group(tracking);
  app->add_flag("--keep-capabilities", raw->keep_capabilities,
                "Keep capabilities after the probes are attached (default: drop them all, "
                "nothing later needs them)")
      ->group(tracking);
  scalar(app->add_option("--probe-mode", raw->probe_mode,
                         "auto (the cheapest: no send hook; responses timed at sk_data_ready "
                         "where the kernel has it, else at fentry sock_def_readable where "
                         "fentry is allowed, else tcp_probe), segment (no send "
                         "hook, tcp_probe), or a send hook to time requests written in "
                         "pieces from their first write: tracepoint, fentry, kprobe"))
      ->type_name("MODE")
      ->group(tracking);
  scalar(app->add_option("--sweep-iterator", raw->sweep_iterator,
                         "What the periodic sweep walks: socket-storage (only followed "
                         "sockets), tcp (every socket in TCP's hash tables of the agent's network "
                         "namespace, for kernels that refuse map-element iterators), or auto "
                         "(the first this kernel allows)"))
      ->type_name("ITERATOR")
      ->group(tracking);
  scalar(app->add_option("--log.level", raw->log_level,
                         "Least severe log messages to print: debug, info, warn or error"))
      ->type_name("LEVEL")
      ->group(tracking);

  // The defaults only appear in the label: the bound vectors stay empty
  // unless the operator sets them, which is how "not given" is recognised.
  const std::string histograms =
      "Histograms (bucket upper bounds, comma-separated, "
      "finite, > 0, strictly increasing, at most 64)";
  const auto buckets = [&](const std::string& name, std::vector<std::string>* values,
                           const std::string& help, const std::vector<double>& default_bounds) {
    list(app->add_option(name, *values, help), "LIST=" + JoinNumbers(default_bounds))
        ->delimiter(',')
        ->group(histograms);
  };
  buckets("--buckets.connect-duration", &raw->buckets_connect_duration, "Connect duration, seconds",
          defaults.buckets.connect_duration);
  buckets("--buckets.connection-duration", &raw->buckets_connection_duration,
          "Connection lifetime, seconds", defaults.buckets.connection_duration);
  buckets("--buckets.time-to-first-byte", &raw->buckets_time_to_first_byte,
          "Time from the start of a request to the first byte of its response, seconds",
          defaults.buckets.time_to_first_byte);
  buckets("--buckets.rtt", &raw->buckets_rtt, "Smoothed round-trip time, seconds",
          defaults.buckets.rtt);
  buckets("--buckets.requests-per-connection", &raw->buckets_requests_per_connection,
          "Requests per connection, a count", defaults.buckets.requests_per_connection);

  app->set_version_flag("--version", VersionLine(), "Print the version and exit");
  app->get_help_ptr()->description("Print this help and exit")->configurable(false);
}

std::optional<Config> Validate(const RawFlags& raw, Errors* errors) {
  Config config;
  bool ok = CheckListenAddress(raw.listen_address, errors, &config.listen_address) &&
            CheckTelemetryPath(raw.telemetry_path, errors, &config.telemetry_path) &&
            CheckProcesses(raw.processes, errors, &config.processes) &&
            CheckFilters("include", raw.include, errors, &config.include) &&
            CheckFilters("exclude", raw.exclude, errors, &config.exclude);
  if (ok && config.include.size() + config.exclude.size() > kMaxFilters) {
    const std::string where =
        errors->Where("include") == "--include" && errors->Where("exclude") == "--exclude"
            ? "--include/--exclude"
            : errors->Where("include") + " and " + errors->Where("exclude");
    ok = errors->FailRaw(
        where + ": " + std::to_string(config.include.size() + config.exclude.size()) +
        " filters given; at most " + std::to_string(kMaxFilters) + " are allowed in total");
  }
  std::chrono::milliseconds idle{};
  ok = ok && CheckPools(raw.pools, errors, &config.pools) &&
       CheckMaxBackends(raw.max_backends, errors, &config.max_backends) &&
       CheckDuration("backend-idle-timeout", raw.backend_idle_timeout, kMinIdle, kMaxIdle, errors,
                     &idle);
  if (ok && idle.count() % 1000 != 0) {
    ok = errors->Fail("backend-idle-timeout",
                      Quote(raw.backend_idle_timeout) + " is not a whole number of seconds");
  }
  config.backend_idle_timeout = std::chrono::duration_cast<std::chrono::seconds>(idle);
  ok = ok &&
       CheckDuration("sweep-interval", raw.sweep_interval, kMinSweep, kMaxSweep, errors,
                     &config.sweep_interval) &&
       CheckRingbuf(raw.ringbuf_size, errors, &config.ringbuf_bytes) &&
       CheckHotSlots(raw.hot_slots, errors, &config.hot_slots) &&
       CheckProbeMode(raw.probe_mode, errors, &config.probe_mode) &&
       CheckSweepIterator(raw.sweep_iterator, errors, &config.sweep_iterator) &&
       CheckLogLevel(raw.log_level, errors, &config.log_level) &&
       CheckBuckets("buckets.connect-duration", raw.buckets_connect_duration, errors,
                    &config.buckets.connect_duration) &&
       CheckBuckets("buckets.connection-duration", raw.buckets_connection_duration, errors,
                    &config.buckets.connection_duration) &&
       CheckBuckets("buckets.time-to-first-byte", raw.buckets_time_to_first_byte, errors,
                    &config.buckets.time_to_first_byte) &&
       CheckBuckets("buckets.rtt", raw.buckets_rtt, errors, &config.buckets.rtt) &&
       CheckBuckets("buckets.requests-per-connection", raw.buckets_requests_per_connection, errors,
                    &config.buckets.requests_per_connection);
  if (ok && !raw.btf_path.empty() && access(raw.btf_path.c_str(), R_OK) != 0) {
    ok = errors->Fail("btf-path", Quote(raw.btf_path) + ": " + std::strerror(errno));
  }
  if (!ok) return std::nullopt;
  config.bpf_stats = raw.bpf_stats;
  config.check_only = raw.check_only;
  config.keep_capabilities = raw.keep_capabilities;
  config.btf_path = raw.btf_path;
  return config;
}

ParseOutcome Usage(std::string message) {
  return ParseOutcome{std::nullopt, 2, std::move(message)};
}

std::string StripTrailingNewlines(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

// CLI11 only says "was not readable (missing?)"; say why.
std::string ConfigFileError(const std::string& path) {
  std::string reason = "cannot be read";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    reason = "is a directory";
  } else if (std::FILE* file = std::fopen(path.c_str(), "r"); file == nullptr) {
    reason = std::strerror(errno);
  } else {
    std::fclose(file);
  }
  return std::string(kProgram) + ": --config: " + Quote(path) + ": " + reason;
}

std::string ExtrasMessage(const std::vector<std::string>& extras) {
  std::vector<std::string> flags;
  for (const std::string& arg : extras) {
    if (arg.size() > 1 && arg.front() == '-') flags.push_back(arg.substr(0, arg.find('=')));
  }
  const std::vector<std::string>& shown = flags.empty() ? extras : flags;
  std::string list;
  for (const std::string& arg : shown) list += (list.empty() ? "" : ", ") + Quote(arg);
  const bool plural = shown.size() > 1;
  if (flags.empty()) {
    return std::string(kProgram) + ": unexpected argument" + (plural ? "s " : " ") + list +
           " (sockeye takes no positional arguments)";
  }
  return std::string(kProgram) + ": unknown flag" + (plural ? "s " : " ") + list + " (see --help)";
}

ParseOutcome ParseOrThrow(int argc, const char* const* argv) {
  CLI::App app(kDescription, kProgram);
  app.footer(kFooter);
  app.get_formatter()->column_width(44);
  app.allow_config_extras(false);
  RawFlags raw;
  FileReport report;
  DefineFlags(&app, &raw);
  app.config_formatter(std::make_shared<FlatTomlConfig>(&app, &report));

  static const char* const kNoArgs[] = {kProgram, nullptr};
  if (argc < 1 || argv == nullptr) {
    argc = 1;
    argv = kNoArgs;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return ParseOutcome{std::nullopt, 0, StripTrailingNewlines(app.help())};
  } catch (const CLI::CallForVersion& e) {
    return ParseOutcome{std::nullopt, 0, StripTrailingNewlines(e.what())};
  } catch (const CLI::ExtrasError&) {
    return Usage(ExtrasMessage(app.remaining()));
  } catch (const CLI::FileError&) {
    return Usage(ConfigFileError(app.get_config_ptr()->as<std::string>()));
  } catch (const CLI::ParseError& e) {
    return Usage(std::string(kProgram) + ": " + StripTrailingNewlines(e.what()));
  }

  std::string config_file;
  if (app.get_config_ptr()->count() > 0) config_file = app.get_config_ptr()->as<std::string>();
  if (!report.error.empty()) {
    return Usage(std::string(kProgram) + ": " + config_file + ": " + report.error);
  }

  Errors errors(config_file, &report.keys);
  std::optional<Config> config = Validate(raw, &errors);
  if (!config) return Usage(errors.message());
  config->config_file = config_file;
  return ParseOutcome{std::move(config), 0, ""};
}

}  // namespace

HistogramBuckets DefaultHistogramBuckets() {
  HistogramBuckets b;
  // 50 µs (loopback) to 10 s (SYN retries to a dead host); slower ends in +Inf.
  b.connect_duration = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                        0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
  // 1 ms to an hour: short RPCs through long-lived pooled connections.
  b.connection_duration = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5,  1,   5,
                           10,    30,    60,   300,  600, 1800, 3600};
  // Like connect, but slow queries and long polls reach a minute.
  b.time_to_first_byte = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                          0.1,     0.25,   0.5,     1,      2.5,   5,      10,    30,   60};
  // 10 µs (same host) to 1 s (intercontinental under loss).
  b.rtt = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
           0.005,   0.01,     0.025,   0.05,   0.1,     0.25,   0.5,   1};
  b.requests_per_connection = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000};
  return b;
}

std::optional<ProbeMode> ProbeModeFromName(std::string_view name) {
  for (ProbeMode mode : {ProbeMode::kAuto, ProbeMode::kTracepoint, ProbeMode::kFentry,
                         ProbeMode::kKprobe, ProbeMode::kSegment}) {
    if (name == ProbeModeName(mode)) return mode;
  }
  return std::nullopt;
}

const char* ProbeModeName(ProbeMode mode) {
  switch (mode) {
    case ProbeMode::kAuto:
      return "auto";
    case ProbeMode::kTracepoint:
      return "tracepoint";
    case ProbeMode::kFentry:
      return "fentry";
    case ProbeMode::kKprobe:
      return "kprobe";
    case ProbeMode::kSegment:
      return "segment";
  }
  return "unknown";
}

std::optional<SweepIterator> SweepIteratorFromName(std::string_view name) {
  for (SweepIterator iterator :
       {SweepIterator::kAuto, SweepIterator::kSocketStorage, SweepIterator::kTcp}) {
    if (name == SweepIteratorName(iterator)) return iterator;
  }
  return std::nullopt;
}

const char* SweepIteratorName(SweepIterator iterator) {
  switch (iterator) {
    case SweepIterator::kAuto:
      return "auto";
    case SweepIterator::kSocketStorage:
      return "socket-storage";
    case SweepIterator::kTcp:
      return "tcp";
  }
  return "unknown";
}

ParseOutcome ParseCommandLine(int argc, const char* const* argv) {
  try {
    return ParseOrThrow(argc, argv);
  } catch (const std::exception& e) {
    // Only a bug or memory exhaustion gets here; still report, never throw.
    return ParseOutcome{std::nullopt, 1, std::string(kProgram) + ": " + e.what()};
  } catch (...) {
    return ParseOutcome{std::nullopt, 1, std::string(kProgram) + ": unexpected error"};
  }
}

}  // namespace sockeye
