#include "exporters/process_collector.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <utility>

namespace sockeye::metrics {
namespace {

// /proc/<pid>/stat field numbers (1-based, as in proc(5)).
constexpr size_t kFieldState = 3;  // first field after "(comm)"
constexpr size_t kFieldUtime = 14;
constexpr size_t kFieldStime = 15;
constexpr size_t kFieldNumThreads = 20;
constexpr size_t kFieldStartTime = 22;
constexpr size_t kFieldVsize = 23;
constexpr size_t kFieldRss = 24;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot read " + path + ": " + std::generic_category().message(errno));
  }
  // procfs files report a size of 0, so read to EOF instead of by size.
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read " + path);
  return std::move(content).str();
}

std::vector<std::string_view> SplitWhitespace(std::string_view text) {
  std::vector<std::string_view> fields;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = text.find_first_not_of(" \t\n", pos);
    if (start == std::string_view::npos) break;
    size_t end = text.find_first_of(" \t\n", start);
    if (end == std::string_view::npos) end = text.size();
    fields.push_back(text.substr(start, end - start));
    pos = end;
  }
  return fields;
}

template <typename T>
T ParseNumber(std::string_view text, const std::string& path, std::string_view what) {
  T value{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    throw std::runtime_error(path + ": cannot parse " + std::string(what) + " from \"" +
                             std::string(text) + "\"");
  }
  return value;
}

std::string_view Trim(std::string_view text) {
  size_t start = text.find_first_not_of(" \t");
  if (start == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(" \t");
  return text.substr(start, end - start + 1);
}

// The line starting with `prefix`, without the prefix, or throws.
std::string_view FindLine(std::string_view content, std::string_view prefix,
                          const std::string& path) {
  size_t pos = 0;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(pos, end - pos);
    if (line.starts_with(prefix)) return line.substr(prefix.size());
    pos = end + 1;
  }
  throw std::runtime_error(path + ": no \"" + std::string(prefix) + "\" line");
}

struct StatFields {
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  int64_t num_threads = 0;
  uint64_t start_time_ticks = 0;
  uint64_t vsize_bytes = 0;
  int64_t rss_pages = 0;
};

StatFields ParseStat(const std::string& content, const std::string& path) {
  // comm (field 2) is in parentheses and may itself contain spaces and
  // parentheses; only the last ')' reliably ends it.
  size_t close = content.rfind(')');
  if (close == std::string::npos) throw std::runtime_error(path + ": no ')' after comm");
  std::vector<std::string_view> fields =
      SplitWhitespace(std::string_view(content).substr(close + 1));
  auto field = [&](size_t number) {
    size_t index = number - kFieldState;
    if (index >= fields.size()) {
      throw std::runtime_error(path + ": only " + std::to_string(fields.size() + kFieldState - 1) +
                               " fields, need " + std::to_string(number));
    }
    return fields[index];
  };
  StatFields stat;
  stat.utime_ticks = ParseNumber<uint64_t>(field(kFieldUtime), path, "utime");
  stat.stime_ticks = ParseNumber<uint64_t>(field(kFieldStime), path, "stime");
  stat.num_threads = ParseNumber<int64_t>(field(kFieldNumThreads), path, "num_threads");
  stat.start_time_ticks = ParseNumber<uint64_t>(field(kFieldStartTime), path, "starttime");
  stat.vsize_bytes = ParseNumber<uint64_t>(field(kFieldVsize), path, "vsize");
  stat.rss_pages = ParseNumber<int64_t>(field(kFieldRss), path, "rss");
  return stat;
}

double ParseMaxOpenFiles(const std::string& content, const std::string& path) {
  std::vector<std::string_view> columns =
      SplitWhitespace(FindLine(content, "Max open files", path));
  if (columns.empty()) throw std::runtime_error(path + ": empty \"Max open files\" line");
  if (columns[0] == "unlimited") return std::numeric_limits<double>::infinity();
  return static_cast<double>(ParseNumber<uint64_t>(columns[0], path, "Max open files"));
}

double ParseBootTime(const std::string& content, const std::string& path) {
  return static_cast<double>(
      ParseNumber<uint64_t>(Trim(FindLine(content, "btime ", path)), path, "btime"));
}

double CountOpenFds(const std::string& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  uint64_t count = 0;
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) ++count;
  if (ec) throw std::runtime_error("cannot list " + dir + ": " + ec.message());
  return static_cast<double>(count);
}

MetricFamily Family(const MetricDescriptor& descriptor, double value) {
  MetricFamily family = MakeFamily(descriptor);
  family.samples.push_back({{}, value});
  return family;
}

double SysconfOr(int name, double fallback) {
  long value = sysconf(name);
  return value > 0 ? static_cast<double>(value) : fallback;
}

}  // namespace

ProcessCollector::ProcessCollector(std::string proc_self_dir, std::string proc_stat_path)
    : proc_self_dir_(std::move(proc_self_dir)),
      proc_stat_path_(std::move(proc_stat_path)),
      ticks_per_second_(SysconfOr(_SC_CLK_TCK, 100)),
      page_size_bytes_(SysconfOr(_SC_PAGESIZE, 4096)) {}

void ProcessCollector::Collect(std::vector<MetricFamily>& out) {
  // Everything is read before anything is appended: a failure must not
  // leave half of the families behind.
  const std::string stat_path = proc_self_dir_ + "/stat";
  const StatFields stat = ParseStat(ReadFile(stat_path), stat_path);
  const std::string limits_path = proc_self_dir_ + "/limits";
  const double max_fds = ParseMaxOpenFiles(ReadFile(limits_path), limits_path);
  const double open_fds = CountOpenFds(proc_self_dir_ + "/fd");
  const double boot_time = ParseBootTime(ReadFile(proc_stat_path_), proc_stat_path_);

  const double cpu_seconds =
      static_cast<double>(stat.utime_ticks + stat.stime_ticks) / ticks_per_second_;
  const double start_time =
      boot_time + static_cast<double>(stat.start_time_ticks) / ticks_per_second_;

  out.push_back(Family(kProcessCpuSeconds, cpu_seconds));
  out.push_back(
      Family(kProcessResidentMemory, static_cast<double>(stat.rss_pages) * page_size_bytes_));
  out.push_back(Family(kProcessVirtualMemory, static_cast<double>(stat.vsize_bytes)));
  out.push_back(Family(kProcessStartTime, start_time));
  out.push_back(Family(kProcessOpenFds, open_fds));
  out.push_back(Family(kProcessMaxFds, max_fds));
  out.push_back(Family(kProcessThreads, static_cast<double>(stat.num_threads)));
}

}  // namespace sockeye::metrics
