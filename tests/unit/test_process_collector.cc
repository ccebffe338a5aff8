#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "exporters/process_collector.h"

namespace sockeye::metrics {
namespace {

namespace fs = std::filesystem;

// A throwaway directory laid out like /proc: <root>/self/{stat,limits,fd/}
// and <root>/stat.
class FakeProc {
 public:
  FakeProc() {
    std::string pattern = (fs::temp_directory_path() / "sockeye_proc_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = pattern;
    fs::create_directories(root_ / "self" / "fd");
  }
  ~FakeProc() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  FakeProc(const FakeProc&) = delete;
  FakeProc& operator=(const FakeProc&) = delete;

  void Write(const std::string& relative, const std::string& content) {
    std::ofstream(root_ / relative) << content;
  }
  void AddFds(int n) {
    for (int i = 0; i < n; ++i) std::ofstream(root_ / "self" / "fd" / std::to_string(i)) << "";
  }
  std::string self() const { return (root_ / "self").string(); }
  std::string stat() const { return (root_ / "stat").string(); }

 private:
  fs::path root_;
};

// Fields 3..24 of /proc/<pid>/stat with utime=250, stime=150,
// num_threads=7, starttime=12345, vsize=104857600, rss=2560.
constexpr char kStatTail[] =
    "S 1 100 100 0 -1 4194560 500 0 0 0 250 150 0 0 20 0 7 0 12345 104857600 2560 "
    "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n";

constexpr char kLimits[] =
    "Limit                     Soft Limit           Hard Limit           Units     \n"
    "Max cpu time              unlimited            unlimited            seconds   \n"
    "Max open files            1024                 524288               files     \n"
    "Max processes             63459                63459                processes \n";

constexpr char kProcStat[] =
    "cpu  1 2 3 4 5 6 7 0 0 0\n"
    "intr 0\n"
    "btime 1700000000\n"
    "processes 100\n";

double Value(const std::vector<MetricFamily>& families, const std::string& name, MetricType type) {
  for (const auto& f : families) {
    if (f.name != name) continue;
    EXPECT_EQ(f.type, type) << name;
    EXPECT_FALSE(f.help.empty()) << name;
    EXPECT_EQ(f.samples.size(), 1u) << name;
    return f.samples.empty() ? -1 : f.samples[0].value;
  }
  ADD_FAILURE() << "no family " << name;
  return -1;
}

TEST(ProcessCollectorTest, ParsesFakeProc) {
  FakeProc proc;
  proc.Write("self/stat", std::string("4242 (sockeye) ") + kStatTail);
  proc.Write("self/limits", kLimits);
  proc.Write("stat", kProcStat);
  proc.AddFds(5);

  ProcessCollector collector(proc.self(), proc.stat());
  std::vector<MetricFamily> out;
  collector.Collect(out);

  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  EXPECT_EQ(out.size(), 7u);
  EXPECT_DOUBLE_EQ(Value(out, "process_cpu_seconds_total", MetricType::kCounter), 400 / ticks);
  EXPECT_DOUBLE_EQ(Value(out, "process_resident_memory_bytes", MetricType::kGauge), 2560 * page);
  EXPECT_EQ(Value(out, "process_virtual_memory_bytes", MetricType::kGauge), 104857600);
  EXPECT_DOUBLE_EQ(Value(out, "process_start_time_seconds", MetricType::kGauge),
                   1700000000 + 12345 / ticks);
  EXPECT_EQ(Value(out, "process_open_fds", MetricType::kGauge), 5);
  EXPECT_EQ(Value(out, "process_max_fds", MetricType::kGauge), 1024);
  EXPECT_EQ(Value(out, "process_threads", MetricType::kGauge), 7);
}

TEST(ProcessCollectorTest, CommWithSpacesAndParentheses) {
  FakeProc proc;
  proc.Write("self/stat", std::string("4242 (a) b (c) d) ") + kStatTail);
  proc.Write("self/limits", kLimits);
  proc.Write("stat", kProcStat);
  ProcessCollector collector(proc.self(), proc.stat());
  std::vector<MetricFamily> out;
  collector.Collect(out);
  EXPECT_EQ(Value(out, "process_threads", MetricType::kGauge), 7);
  EXPECT_EQ(Value(out, "process_virtual_memory_bytes", MetricType::kGauge), 104857600);
}

TEST(ProcessCollectorTest, UnlimitedOpenFiles) {
  FakeProc proc;
  proc.Write("self/stat", std::string("1 (x) ") + kStatTail);
  proc.Write("self/limits",
             "Max open files            unlimited            unlimited            files\n");
  proc.Write("stat", kProcStat);
  ProcessCollector collector(proc.self(), proc.stat());
  std::vector<MetricFamily> out;
  collector.Collect(out);
  EXPECT_EQ(Value(out, "process_max_fds", MetricType::kGauge),
            std::numeric_limits<double>::infinity());
}

void ExpectThrowsNaming(ProcessCollector& collector, const std::string& needle) {
  std::vector<MetricFamily> out;
  try {
    collector.Collect(out);
    ADD_FAILURE() << "expected an exception naming " << needle;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
  EXPECT_TRUE(out.empty()) << "no partial output on failure";
}

TEST(ProcessCollectorTest, MissingFilesThrowNamingThem) {
  FakeProc proc;
  ProcessCollector collector(proc.self(), proc.stat());
  ExpectThrowsNaming(collector, proc.self() + "/stat");

  proc.Write("self/stat", std::string("1 (x) ") + kStatTail);
  ExpectThrowsNaming(collector, proc.self() + "/limits");

  proc.Write("self/limits", kLimits);
  ExpectThrowsNaming(collector, proc.stat());

  ProcessCollector no_fd_dir(proc.self() + "/nonexistent", proc.stat());
  ExpectThrowsNaming(no_fd_dir, proc.self() + "/nonexistent/stat");
}

TEST(ProcessCollectorTest, MalformedFilesThrowNamingThem) {
  FakeProc proc;
  proc.Write("self/limits", kLimits);
  proc.Write("stat", kProcStat);
  ProcessCollector collector(proc.self(), proc.stat());

  proc.Write("self/stat", "1 (x) S 1 2 3\n");  // truncated
  ExpectThrowsNaming(collector, proc.self() + "/stat");
  proc.Write("self/stat", "no parenthesis at all\n");
  ExpectThrowsNaming(collector, proc.self() + "/stat");
  std::string bad_utime = std::string("1 (x) ") + kStatTail;
  bad_utime.replace(bad_utime.find(" 250 "), 5, " 2x0 ");
  proc.Write("self/stat", bad_utime);
  ExpectThrowsNaming(collector, proc.self() + "/stat");

  proc.Write("self/stat", std::string("1 (x) ") + kStatTail);
  proc.Write("stat", "cpu 1 2 3\n");  // no btime
  ExpectThrowsNaming(collector, proc.stat());
}

TEST(ProcessCollectorTest, ReadsRealProcSelf) {
  if (!fs::exists("/proc/self/stat")) GTEST_SKIP() << "no procfs";
  ProcessCollector collector;
  std::vector<MetricFamily> out;
  collector.Collect(out);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_GT(Value(out, "process_resident_memory_bytes", MetricType::kGauge), 0);
  EXPECT_GT(Value(out, "process_virtual_memory_bytes", MetricType::kGauge), 0);
  EXPECT_GE(Value(out, "process_cpu_seconds_total", MetricType::kCounter), 0);
  const double start = Value(out, "process_start_time_seconds", MetricType::kGauge);
  EXPECT_LE(start, now + 2);
  EXPECT_GT(start, now - 24 * 3600);  // this test process started recently
  EXPECT_GE(Value(out, "process_open_fds", MetricType::kGauge), 3);
  EXPECT_GE(Value(out, "process_max_fds", MetricType::kGauge),
            Value(out, "process_open_fds", MetricType::kGauge));
  EXPECT_GE(Value(out, "process_threads", MetricType::kGauge), 1);
}

}  // namespace
}  // namespace sockeye::metrics
