#include "agent/config_validate.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "agent/address.h"
#include "agent/config_values.h"

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

// A directory of a cgroup v2 hierarchy: a cgroup_skb program attaches to
// nothing else.
bool CheckCgroup(const std::string& path, Errors* errors) {
  struct statfs fs {};
  if (path.front() != '/')
    return errors->Fail("cgroup", Quote(path) +
                                      " is not an absolute path (e.g. "
                                      "/sys/fs/cgroup/system.slice/nginx.service)");
  if (statfs(path.c_str(), &fs) != 0)
    return errors->Fail("cgroup", Quote(path) + ": " + std::strerror(errno));
  if (fs.f_type != CGROUP2_SUPER_MAGIC)
    return errors->Fail("cgroup", Quote(path) + " is not in a cgroup v2 hierarchy");
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return errors->Fail("cgroup", Quote(path) + " is not a cgroup (a directory)");
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

bool CheckPools(const std::string& key, const std::vector<std::string>& texts, Errors* errors,
                std::vector<PoolMapping>* out) {
  for (const std::string& text : texts) {
    const std::string where = errors->Where(key) + " " + Quote(text) + ": ";
    const size_t eq = text.find('=');
    if (eq == std::string::npos) return errors->FailRaw(where + "expected NAME=CIDR[:PORT]");
    const std::string name = text.substr(0, eq);
    if (name.empty()) return errors->FailRaw(where + key + " name is empty");
    if (!ValidPoolName(name)) {
      return errors->FailRaw(where + key + " name " + Quote(name) +
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

bool CheckHttpStatusCodes(const std::string& text, Errors* errors, HttpStatusCodes* out) {
  if (const auto codes = HttpStatusCodesFromName(text)) {
    *out = *codes;
    return true;
  }
  return errors->Fail("http-status-codes", Quote(text) + " is not one of class, exact, off");
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

}  // namespace

std::optional<Config> Validate(const RawFlags& raw, Errors* errors) {
  Config config;
  bool ok =
      CheckListenAddress(raw.listen_address, errors, &config.listen_address) &&
      CheckTelemetryPath(raw.telemetry_path, errors, &config.telemetry_path) &&
      CheckProcesses(raw.processes, errors, &config.processes) &&
      CheckFilters("include", raw.include, errors, &config.include) &&
      CheckFilters("exclude", raw.exclude, errors, &config.exclude) &&
      CheckFilters("frontend-include", raw.frontend_include, errors, &config.frontend_include) &&
      CheckFilters("frontend-exclude", raw.frontend_exclude, errors, &config.frontend_exclude);
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
  ok = ok && CheckPools("pool", raw.pools, errors, &config.pools) &&
       CheckPools("frontend", raw.frontend_names, errors, &config.frontend_names) &&
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
       CheckHttpStatusCodes(raw.http_status_codes, errors, &config.http_status_codes) &&
       CheckLogLevel(raw.log_level, errors, &config.log_level) &&
       CheckBuckets("buckets.connect-duration", raw.buckets_connect_duration, errors,
                    &config.buckets.connect_duration) &&
       CheckBuckets("buckets.connection-duration", raw.buckets_connection_duration, errors,
                    &config.buckets.connection_duration) &&
       CheckBuckets("buckets.time-to-first-byte", raw.buckets_time_to_first_byte, errors,
                    &config.buckets.time_to_first_byte) &&
       CheckBuckets("buckets.response-duration", raw.buckets_response_duration, errors,
                    &config.buckets.response_duration) &&
       CheckBuckets("buckets.rtt", raw.buckets_rtt, errors, &config.buckets.rtt) &&
       CheckBuckets("buckets.requests-per-connection", raw.buckets_requests_per_connection, errors,
                    &config.buckets.requests_per_connection);
  if (ok && !raw.btf_path.empty() && access(raw.btf_path.c_str(), R_OK) != 0) {
    ok = errors->Fail("btf-path", Quote(raw.btf_path) + ": " + std::strerror(errno));
  }
  if (ok && !raw.cgroup.empty()) ok = CheckCgroup(raw.cgroup, errors);
  // Read in full when the server starts (and on SIGHUP), where a broken file
  // is reported by file and key; here only whether it can be read at all.
  if (ok && !raw.web_config_file.empty() && access(raw.web_config_file.c_str(), R_OK) != 0) {
    ok = errors->Fail("web.config.file", Quote(raw.web_config_file) + ": " + std::strerror(errno));
  }
  if (!ok) return std::nullopt;
  config.web_config_file = raw.web_config_file;
  config.bpf_stats = raw.bpf_stats;
  config.check_only = raw.check_only;
  config.keep_capabilities = raw.keep_capabilities;
  config.frontends = raw.frontends;
  config.btf_path = raw.btf_path;
  config.cgroup = raw.cgroup;
  return config;
}

}  // namespace sockeye
