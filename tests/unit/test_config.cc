#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "agent/command_line.h"
#include "agent/config.h"

namespace sockeye {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// gmock is not linked, so a small stand-in for HasSubstr.
::testing::AssertionResult Contains(const std::string& text, const std::string& needle) {
  if (text.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text << "\" does not contain \"" << needle << "\"";
}

ParseOutcome Parse(std::initializer_list<std::string> args) {
  std::vector<std::string> storage = {"sockeye"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<const char*> argv;
  for (const std::string& arg : storage) argv.push_back(arg.c_str());
  argv.push_back(nullptr);
  return ParseCommandLine(static_cast<int>(storage.size()), argv.data());
}

Config MustParse(std::initializer_list<std::string> args) {
  ParseOutcome outcome = Parse(args);
  EXPECT_TRUE(outcome.config.has_value()) << outcome.message;
  return outcome.config.value_or(Config{});
}

// Expects a usage error: exit 2 and a single line that contains `needle`.
void ExpectUsageError(const ParseOutcome& outcome, const std::string& needle) {
  EXPECT_FALSE(outcome.config.has_value());
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_EQ(outcome.message.find('\n'), std::string::npos) << outcome.message;
  EXPECT_EQ(outcome.message.rfind("sockeye: ", 0), 0u) << outcome.message;
  EXPECT_TRUE(Contains(outcome.message, needle));
}

std::vector<std::string> Texts(const std::vector<CidrMatch>& matches) {
  std::vector<std::string> out;
  for (const CidrMatch& m : matches) out.push_back(m.ToString());
  return out;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "sockeye-config-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string Write(const std::string& name, const std::string& contents) const {
    const std::string file = (path_ / name).string();
    std::ofstream(file) << contents;
    return file;
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

TEST(ConfigDefaultsTest, NoFlagsGiveTheDocumentedDefaults) {
  const Config c = MustParse({});
  EXPECT_EQ(c.config_file, "");
  EXPECT_EQ(c.listen_address, ":19480");
  EXPECT_EQ(c.telemetry_path, "/metrics");
  EXPECT_TRUE(c.processes.empty());
  EXPECT_TRUE(c.include.empty());
  EXPECT_TRUE(c.exclude.empty());
  EXPECT_TRUE(c.pools.empty());
  EXPECT_EQ(c.max_backends, 5000u);
  EXPECT_EQ(c.backend_idle_timeout, seconds(600));
  EXPECT_EQ(c.sweep_interval, milliseconds(1000));
  EXPECT_EQ(c.ringbuf_bytes, 4u << 20);
  EXPECT_EQ(c.hot_slots, 8192u);
  EXPECT_FALSE(c.bpf_stats);
  EXPECT_EQ(c.probe_mode, ProbeMode::kAuto);
  EXPECT_EQ(c.log_level, LogLevel::kInfo);
  const HistogramBuckets d = DefaultHistogramBuckets();
  EXPECT_EQ(c.buckets.connect_duration, d.connect_duration);
  EXPECT_EQ(c.buckets.connection_duration, d.connection_duration);
  EXPECT_EQ(c.buckets.time_to_first_byte, d.time_to_first_byte);
  EXPECT_EQ(c.buckets.rtt, d.rtt);
  EXPECT_EQ(c.buckets.requests_per_connection, d.requests_per_connection);
}

TEST(ConfigDefaultsTest, DefaultBucketsAreValidAndSpanTheirRanges) {
  const HistogramBuckets d = DefaultHistogramBuckets();
  for (const std::vector<double>* bounds :
       {&d.connect_duration, &d.connection_duration, &d.time_to_first_byte, &d.rtt,
        &d.requests_per_connection}) {
    ASSERT_FALSE(bounds->empty());
    EXPECT_LE(bounds->size(), 64u);
    EXPECT_GT(bounds->front(), 0);
    for (size_t i = 1; i < bounds->size(); ++i) EXPECT_LT((*bounds)[i - 1], (*bounds)[i]);
  }
  EXPECT_DOUBLE_EQ(d.connect_duration.front(), 0.00005);
  EXPECT_DOUBLE_EQ(d.connect_duration.back(), 10);
  EXPECT_GE(d.time_to_first_byte.back(), 30);
  EXPECT_DOUBLE_EQ(d.connection_duration.front(), 0.001);
  EXPECT_DOUBLE_EQ(d.connection_duration.back(), 3600);
  EXPECT_DOUBLE_EQ(d.rtt.front(), 0.00001);
  EXPECT_DOUBLE_EQ(d.rtt.back(), 1);
  EXPECT_DOUBLE_EQ(d.requests_per_connection.front(), 1);
  EXPECT_GE(d.requests_per_connection.back(), 1000);
}

TEST(ConfigDefaultsTest, ProbeModeNames) {
  EXPECT_STREQ(ProbeModeName(ProbeMode::kAuto), "auto");
  EXPECT_STREQ(ProbeModeName(ProbeMode::kTracepoint), "tracepoint");
  EXPECT_STREQ(ProbeModeName(ProbeMode::kFentry), "fentry");
  EXPECT_STREQ(ProbeModeName(ProbeMode::kKprobe), "kprobe");
}

TEST(ConfigFlagsTest, EveryFlagIsParsed) {
  const Config c = MustParse({"--web.listen-address",
                              "127.0.0.1:9100",
                              "--web.telemetry-path=/stats",
                              "--process",
                              "nginx",
                              "--include",
                              "10.0.0.0/8",
                              "--exclude",
                              "10.9.0.0/16:22",
                              "--pool",
                              "api=10.1.0.0/24:8080",
                              "--max-backends",
                              "1000000",
                              "--backend-idle-timeout",
                              "1h30m",
                              "--sweep-interval",
                              "250ms",
                              "--ringbuf-size",
                              "16MiB",
                              "--bpf-stats",
                              "--probe-mode",
                              "fentry",
                              "--log.level",
                              "debug",
                              "--buckets.connect-duration",
                              "0.001,0.01",
                              "--buckets.connection-duration",
                              "1,10,100",
                              "--buckets.time-to-first-byte",
                              "0.5",
                              "--buckets.rtt",
                              "1e-5,1e-4",
                              "--buckets.requests-per-connection",
                              "1,10"});
  EXPECT_EQ(c.listen_address, "127.0.0.1:9100");
  EXPECT_EQ(c.telemetry_path, "/stats");
  EXPECT_EQ(c.processes, std::vector<std::string>{"nginx"});
  EXPECT_EQ(Texts(c.include), std::vector<std::string>{"10.0.0.0/8"});
  EXPECT_EQ(Texts(c.exclude), std::vector<std::string>{"10.9.0.0/16:22"});
  ASSERT_EQ(c.pools.size(), 1u);
  EXPECT_EQ(c.pools[0].name, "api");
  EXPECT_EQ(c.pools[0].match.ToString(), "10.1.0.0/24:8080");
  EXPECT_EQ(c.max_backends, 1000000u);
  EXPECT_EQ(c.backend_idle_timeout, seconds(5400));
  EXPECT_EQ(c.sweep_interval, milliseconds(250));
  EXPECT_EQ(c.ringbuf_bytes, 16u << 20);
  EXPECT_TRUE(c.bpf_stats);
  EXPECT_EQ(c.probe_mode, ProbeMode::kFentry);
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
  EXPECT_EQ(c.buckets.connect_duration, (std::vector<double>{0.001, 0.01}));
  EXPECT_EQ(c.buckets.connection_duration, (std::vector<double>{1, 10, 100}));
  EXPECT_EQ(c.buckets.time_to_first_byte, (std::vector<double>{0.5}));
  EXPECT_EQ(c.buckets.rtt, (std::vector<double>{1e-5, 1e-4}));
  EXPECT_EQ(c.buckets.requests_per_connection, (std::vector<double>{1, 10}));
  // Buckets not given keep their defaults.
  EXPECT_EQ(MustParse({"--buckets.rtt", "1"}).buckets.connect_duration,
            DefaultHistogramBuckets().connect_duration);
}

TEST(ConfigFlagsTest, EnumValues) {
  EXPECT_EQ(MustParse({"--probe-mode", "auto"}).probe_mode, ProbeMode::kAuto);
  EXPECT_EQ(MustParse({"--probe-mode", "tracepoint"}).probe_mode, ProbeMode::kTracepoint);
  EXPECT_EQ(MustParse({"--probe-mode", "kprobe"}).probe_mode, ProbeMode::kKprobe);
  EXPECT_EQ(MustParse({"--probe-mode", "segment"}).probe_mode, ProbeMode::kSegment);
  EXPECT_EQ(MustParse({}).sweep_iterator, SweepIterator::kAuto);
  EXPECT_EQ(MustParse({"--sweep-iterator", "tcp"}).sweep_iterator, SweepIterator::kTcp);
  EXPECT_EQ(MustParse({"--sweep-iterator", "socket-storage"}).sweep_iterator,
            SweepIterator::kSocketStorage);
  EXPECT_EQ(MustParse({"--log.level", "info"}).log_level, LogLevel::kInfo);
  EXPECT_EQ(MustParse({"--log.level", "warn"}).log_level, LogLevel::kWarn);
  EXPECT_EQ(MustParse({"--log.level", "error"}).log_level, LogLevel::kError);
}

TEST(ConfigFlagsTest, RepeatableFlagsAccumulateInOrder) {
  const Config c = MustParse({"--process", "nginx", "--process", "haproxy", "--include",
                              "10.0.0.0/8", "--include", "[2001:db8::/32]:443", "--exclude",
                              "10.9.0.0/16", "--exclude", "::1", "--pool", "api=10.1.0.0/24",
                              "--pool", "db.main-1=10.2.0.0/24:5432", "--pool", "api=10.3.0.0/24"});
  EXPECT_EQ(c.processes, (std::vector<std::string>{"nginx", "haproxy"}));
  EXPECT_EQ(Texts(c.include), (std::vector<std::string>{"10.0.0.0/8", "[2001:db8::/32]:443"}));
  EXPECT_EQ(Texts(c.exclude), (std::vector<std::string>{"10.9.0.0/16", "::1/128"}));
  ASSERT_EQ(c.pools.size(), 3u);
  EXPECT_EQ(c.pools[0].name, "api");
  EXPECT_EQ(c.pools[1].name, "db.main-1");
  EXPECT_EQ(c.pools[1].match.ToString(), "10.2.0.0/24:5432");
  EXPECT_EQ(c.pools[2].name, "api");  // names may repeat
}

TEST(ConfigFlagsTest, ListLimitsAreInclusive) {
  EXPECT_EQ(MustParse({"--process", "a", "--process", "b", "--process", "c", "--process", "d",
                       "--process", "e", "--process", "f", "--process", "g", "--process",
                       "fifteen_chars__"})
                .processes.size(),
            8u);
  std::vector<std::string> args;
  for (int i = 0; i < 16; ++i) {
    args.push_back("--include");
    args.push_back("10.0." + std::to_string(i) + ".0/24");
    args.push_back("--exclude");
    args.push_back("10.1." + std::to_string(i) + ".0/24");
  }
  std::vector<const char*> argv = {"sockeye"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  const ParseOutcome ok = ParseCommandLine(static_cast<int>(argv.size()), argv.data());
  ASSERT_TRUE(ok.config.has_value()) << ok.message;
  EXPECT_EQ(ok.config->include.size() + ok.config->exclude.size(), 32u);

  argv.push_back("--include");
  argv.push_back("192.0.2.0/24");
  ExpectUsageError(ParseCommandLine(static_cast<int>(argv.size()), argv.data()),
                   "--include/--exclude: 33 filters given; at most 32");
}

TEST(ConfigFlagsTest, LastScalarWins) {
  EXPECT_EQ(MustParse({"--max-backends", "1", "--max-backends", "7"}).max_backends, 7u);
}

TEST(ConfigFlagsTest, DurationAndSizeForms) {
  EXPECT_EQ(MustParse({"--sweep-interval", "100ms"}).sweep_interval, milliseconds(100));
  EXPECT_EQ(MustParse({"--sweep-interval", "60s"}).sweep_interval, milliseconds(60000));
  EXPECT_EQ(MustParse({"--sweep-interval", "1m"}).sweep_interval, milliseconds(60000));
  EXPECT_EQ(MustParse({"--sweep-interval", "2.5"}).sweep_interval, milliseconds(2500));
  EXPECT_EQ(MustParse({"--backend-idle-timeout", "30"}).backend_idle_timeout, seconds(30));
  EXPECT_EQ(MustParse({"--backend-idle-timeout", "5m"}).backend_idle_timeout, seconds(300));
  EXPECT_EQ(MustParse({"--backend-idle-timeout", "1h"}).backend_idle_timeout, seconds(3600));
  EXPECT_EQ(MustParse({"--backend-idle-timeout", "2000ms"}).backend_idle_timeout, seconds(2));
  EXPECT_EQ(MustParse({"--ringbuf-size", "4096"}).ringbuf_bytes, 4096u);
  EXPECT_EQ(MustParse({"--ringbuf-size", "64K"}).ringbuf_bytes, 64u << 10);
  EXPECT_EQ(MustParse({"--ringbuf-size", "64KiB"}).ringbuf_bytes, 64u << 10);
  EXPECT_EQ(MustParse({"--ringbuf-size", "2M"}).ringbuf_bytes, 2u << 20);
  EXPECT_EQ(MustParse({"--ringbuf-size", "1GiB"}).ringbuf_bytes, 1u << 30);
  EXPECT_EQ(MustParse({"--hot-slots", "0"}).hot_slots, 0u);
  EXPECT_EQ(MustParse({"--hot-slots", "1"}).hot_slots, 1u);
  EXPECT_EQ(MustParse({"--hot-slots", "65536"}).hot_slots, 65536u);
  EXPECT_EQ(MustParse({"--hot-slots", "1048576"}).hot_slots, 1u << 20);
}

TEST(ConfigFlagsTest, ListenAddressForms) {
  EXPECT_EQ(MustParse({"--web.listen-address", "[::1]:19480"}).listen_address, "[::1]:19480");
  EXPECT_EQ(MustParse({"--web.listen-address", "localhost:9100"}).listen_address, "localhost:9100");
  ExpectUsageError(Parse({"--web.listen-address", "19480"}), "--web.listen-address: \"19480\"");
  ExpectUsageError(Parse({"--web.listen-address", "::1:80"}), "must be in brackets");
  ExpectUsageError(Parse({"--web.listen-address", ":99999"}), "port must be");
}

TEST(ConfigErrorsTest, UnknownFlagIsNamed) {
  const ParseOutcome outcome = Parse({"--max-backend", "5"});
  ExpectUsageError(outcome, "--max-backend\"");
  EXPECT_TRUE(Contains(outcome.message, "unknown flag"));
  ExpectUsageError(Parse({"--frobnicate=yes"}), "unknown flag \"--frobnicate\"");
}

TEST(ConfigErrorsTest, StrayArgumentsAreErrors) {
  ExpectUsageError(Parse({"nginx"}), "unexpected argument \"nginx\"");
  // One value per occurrence: the second word is not another process.
  ExpectUsageError(Parse({"--process", "nginx", "haproxy"}), "unexpected argument \"haproxy\"");
}

TEST(ConfigErrorsTest, MissingValueNamesTheFlag) {
  ExpectUsageError(Parse({"--max-backends"}), "--max-backends");
}

TEST(ConfigErrorsTest, NotANumber) {
  EXPECT_EQ(Parse({"--max-backends", "abc"}).message,
            "sockeye: --max-backends: \"abc\" is not a number");
  ExpectUsageError(Parse({"--max-backends", "-5"}), "--max-backends");
  ExpectUsageError(Parse({"--max-backends", "5x"}), "--max-backends: \"5x\" is not a number");
  ExpectUsageError(Parse({"--buckets.rtt", "0.1,fast"}), "--buckets.rtt: \"fast\" is not a number");
}

TEST(ConfigErrorsTest, OutOfRange) {
  ExpectUsageError(Parse({"--max-backends", "0"}), "--max-backends: 0 is out of range (1-1000000)");
  ExpectUsageError(Parse({"--max-backends", "1000001"}), "--max-backends: 1000001 is out of range");
  ExpectUsageError(Parse({"--max-backends", "99999999999999999999999"}), "is out of range");
  ExpectUsageError(Parse({"--sweep-interval", "99ms"}),
                   "--sweep-interval: \"99ms\" is out of range");
  ExpectUsageError(Parse({"--sweep-interval", "61s"}), "--sweep-interval: \"61s\" is out of range");
  ExpectUsageError(Parse({"--backend-idle-timeout", "0"}), "--backend-idle-timeout");
  ExpectUsageError(Parse({"--ringbuf-size", "2K"}), "--ringbuf-size: \"2K\" is out of range");
  ExpectUsageError(Parse({"--ringbuf-size", "2GiB"}), "--ringbuf-size: \"2GiB\" is out of range");
}

TEST(ConfigErrorsTest, BadCidr) {
  ExpectUsageError(Parse({"--include", "10.0.0.0/33"}),
                   "--include: invalid CIDR \"10.0.0.0/33\": prefix length must be 0-32 for IPv4");
  ExpectUsageError(Parse({"--exclude", "10.0.0.1:0"}),
                   "--exclude: invalid CIDR \"10.0.0.1:0\": port must be 1-65535");
  EXPECT_EQ(Parse({"--pool", "api=10.0.0.0/40"}).message,
            "sockeye: --pool \"api=10.0.0.0/40\": invalid CIDR \"10.0.0.0/40\": prefix length "
            "must be 0-32 for IPv4");
}

TEST(ConfigErrorsTest, BadPoolName) {
  ExpectUsageError(Parse({"--pool", "1api=10.0.0.0/8"}),
                   "--pool \"1api=10.0.0.0/8\": pool name \"1api\" must match");
  ExpectUsageError(Parse({"--pool", "a b=10.0.0.0/8"}), "--pool \"a b=10.0.0.0/8\": pool name");
  ExpectUsageError(Parse({"--pool", "=10.0.0.0/8"}), "--pool \"=10.0.0.0/8\": pool name is empty");
  ExpectUsageError(Parse({"--pool", "10.0.0.0/8"}), "--pool \"10.0.0.0/8\": expected NAME=CIDR");
  EXPECT_EQ(MustParse({"--pool", "_a.b-c9=10.0.0.0/8"}).pools.at(0).name, "_a.b-c9");
}

TEST(ConfigErrorsTest, TooManyProcesses) {
  ExpectUsageError(
      Parse({"--process", "a", "--process", "b", "--process", "c", "--process", "d", "--process",
             "e", "--process", "f", "--process", "g", "--process", "h", "--process", "i"}),
      "--process: 9 names given; at most 8 are allowed");
}

TEST(ConfigErrorsTest, ProcessNameLength) {
  ExpectUsageError(Parse({"--process", "sixteen_chars___"}),
                   "--process: \"sixteen_chars___\" is 16 characters");
  ExpectUsageError(Parse({"--process", ""}), "--process: process name is empty");
}

TEST(ConfigErrorsTest, BucketsMustBeIncreasingPositiveAndFew) {
  ExpectUsageError(
      Parse({"--buckets.rtt", "0.1,0.1"}),
      "--buckets.rtt: bounds must be strictly increasing, but \"0.1\" follows \"0.1\"");
  ExpectUsageError(Parse({"--buckets.connect-duration", "1,0.5"}),
                   "--buckets.connect-duration: bounds must be strictly increasing");
  ExpectUsageError(Parse({"--buckets.time-to-first-byte", "0,1"}),
                   "--buckets.time-to-first-byte: \"0\": bounds must be finite and greater than 0");
  ExpectUsageError(Parse({"--buckets.connection-duration", "1,inf"}),
                   "--buckets.connection-duration: \"inf\": bounds must be finite");
  ExpectUsageError(Parse({"--buckets.requests-per-connection", "nan"}),
                   "--buckets.requests-per-connection: \"nan\"");
  std::string many;
  for (int i = 1; i <= 65; ++i) many += (i > 1 ? "," : "") + std::to_string(i);
  ExpectUsageError(Parse({"--buckets.rtt", many}), "--buckets.rtt: 65 bounds given; at most 64");
}

TEST(ConfigErrorsTest, HotSlotsMustBeAPowerOfTwoOrZero) {
  ExpectUsageError(Parse({"--hot-slots", "1000"}), "--hot-slots: 1000 is not a power of two");
  ExpectUsageError(Parse({"--hot-slots", "2097152"}), "--hot-slots: 2097152 is out of range");
  ExpectUsageError(Parse({"--hot-slots", "-1"}), "--hot-slots: \"-1\" is not a number");
  ExpectUsageError(Parse({"--hot-slots", "8k"}), "--hot-slots: \"8k\" is not a number");
}

TEST(ConfigErrorsTest, RingbufMustBeAPowerOfTwo) {
  ExpectUsageError(Parse({"--ringbuf-size", "5000"}),
                   "--ringbuf-size: \"5000\" is not a power of two");
  ExpectUsageError(Parse({"--ringbuf-size", "12MiB"}), "is not a power of two");
  ExpectUsageError(Parse({"--ringbuf-size", "8MB"}), "--ringbuf-size: \"8MB\" is not a size");
}

TEST(ConfigErrorsTest, BadDuration) {
  ExpectUsageError(Parse({"--backend-idle-timeout", "10x"}),
                   "--backend-idle-timeout: \"10x\" is not a duration");
  ExpectUsageError(Parse({"--sweep-interval", "1s500"}), "--sweep-interval: \"1s500\"");
  ExpectUsageError(Parse({"--sweep-interval", "-1s"}), "--sweep-interval: \"-1s\"");
  ExpectUsageError(Parse({"--sweep-interval", ""}), "--sweep-interval: \"\"");
  ExpectUsageError(Parse({"--backend-idle-timeout", "1500ms"}), "not a whole number of seconds");
}

TEST(ConfigErrorsTest, TelemetryPath) {
  ExpectUsageError(Parse({"--web.telemetry-path", "metrics"}),
                   "--web.telemetry-path: \"metrics\" must start with '/'");
  ExpectUsageError(Parse({"--web.telemetry-path", "/"}), "--web.telemetry-path");
  ExpectUsageError(Parse({"--web.telemetry-path", "/healthz"}), "--web.telemetry-path");
  ExpectUsageError(Parse({"--web.telemetry-path", "/a b"}), "--web.telemetry-path");
}

TEST(ConfigErrorsTest, BadEnums) {
  ExpectUsageError(Parse({"--probe-mode", "uprobe"}), "--probe-mode: \"uprobe\" is not one of");
  ExpectUsageError(Parse({"--sweep-iterator", "udp"}),
                   "--sweep-iterator: \"udp\" is not one of auto, socket-storage, tcp");
  ExpectUsageError(Parse({"--log.level", "verbose"}), "--log.level: \"verbose\" is not one of");
}

TEST(ConfigHelpTest, HelpExitsZeroAndMentionsEveryFlag) {
  for (const char* flag : {"--help", "-h"}) {
    const ParseOutcome outcome = Parse({flag});
    EXPECT_FALSE(outcome.config.has_value());
    EXPECT_EQ(outcome.exit_code, 0);
    for (const char* name : {"--config",
                             "--web.listen-address",
                             "--web.telemetry-path",
                             "--process",
                             "--include",
                             "--exclude",
                             "--pool",
                             "--max-backends",
                             "--backend-idle-timeout",
                             "--sweep-interval",
                             "--ringbuf-size",
                             "--bpf-stats",
                             "--probe-mode",
                             "--log.level",
                             "--buckets.connect-duration",
                             "--buckets.connection-duration",
                             "--buckets.time-to-first-byte",
                             "--buckets.rtt",
                             "--buckets.requests-per-connection",
                             "--version",
                             "--help"}) {
      EXPECT_TRUE(Contains(outcome.message, name)) << flag;
    }
    // Defaults are shown.
    EXPECT_TRUE(Contains(outcome.message, ":19480"));
    EXPECT_TRUE(Contains(outcome.message, "5000"));
    EXPECT_TRUE(Contains(outcome.message, "10m"));
    EXPECT_TRUE(Contains(outcome.message, "SIZE=4MiB"));
    EXPECT_TRUE(Contains(outcome.message, "0.00005,0.0001"));
    EXPECT_TRUE(Contains(outcome.message, "eBPF"));
    EXPECT_TRUE(Contains(outcome.message, "Example"));
  }
}

TEST(ConfigHelpTest, HelpWinsOverBadValues) {
  EXPECT_EQ(Parse({"--max-backends", "abc", "--help"}).exit_code, 0);
}

TEST(ConfigHelpTest, Version) {
  const ParseOutcome outcome = Parse({"--version"});
  EXPECT_FALSE(outcome.config.has_value());
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(outcome.message.rfind("sockeye ", 0), 0u) << outcome.message;
  EXPECT_TRUE(Contains(outcome.message, " ("));
  EXPECT_EQ(outcome.message.back(), ')');
  EXPECT_EQ(outcome.message.find('\n'), std::string::npos);
}

TEST(ConfigHelpTest, NoArgvAtAllIsDefaults) {
  const ParseOutcome outcome = ParseCommandLine(0, nullptr);
  ASSERT_TRUE(outcome.config.has_value()) << outcome.message;
  EXPECT_EQ(outcome.config->max_backends, 5000u);
}

TEST(ConfigFileTest, ReadsFlatKeysSectionsAndArrays) {
  TempDir dir;
  const std::string file = dir.Write("sockeye.toml", R"(# sockeye settings
process = ["nginx", "haproxy"]
pool = ["api=10.1.0.0/24:8080", "db=[2001:db8::/32]:5432"]
include = [
  "10.0.0.0/8",
  "[::1]:80",
]
max-backends = 123
bpf-stats = true
ringbuf-size = "16MiB"
hot-slots = 16384
backend-idle-timeout = "5m"
web.listen-address = "127.0.0.1:19480"
"web.telemetry-path" = "/m"
buckets.rtt = [0.001, 0.01, 0.1]   # seconds

[log]
level = "warn"

[buckets]
requests-per-connection = [1, 2, 3]
)");
  const Config c = MustParse({"--config", file});
  EXPECT_EQ(c.config_file, file);
  EXPECT_EQ(c.processes, (std::vector<std::string>{"nginx", "haproxy"}));
  ASSERT_EQ(c.pools.size(), 2u);
  EXPECT_EQ(c.pools[0].name, "api");
  EXPECT_EQ(c.pools[0].match.ToString(), "10.1.0.0/24:8080");
  EXPECT_EQ(c.pools[1].name, "db");
  EXPECT_EQ(c.pools[1].match.ToString(), "[2001:db8::/32]:5432");
  EXPECT_EQ(Texts(c.include), (std::vector<std::string>{"10.0.0.0/8", "[::1/128]:80"}));
  EXPECT_EQ(c.max_backends, 123u);
  EXPECT_TRUE(c.bpf_stats);
  EXPECT_EQ(c.ringbuf_bytes, 16u << 20);
  EXPECT_EQ(c.hot_slots, 16384u);
  EXPECT_EQ(c.backend_idle_timeout, seconds(300));
  EXPECT_EQ(c.listen_address, "127.0.0.1:19480");
  EXPECT_EQ(c.telemetry_path, "/m");
  EXPECT_EQ(c.buckets.rtt, (std::vector<double>{0.001, 0.01, 0.1}));
  EXPECT_EQ(c.log_level, LogLevel::kWarn);
  EXPECT_EQ(c.buckets.requests_per_connection, (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(c.buckets.connect_duration, DefaultHistogramBuckets().connect_duration);
}

TEST(ConfigFileTest, WebSectionEqualsDottedKeys) {
  TempDir dir;
  const std::string file = dir.Write("web.toml", R"(max-backends = 9
[web]
listen-address = "[::1]:9100"
telemetry-path = "/x"
)");
  const Config c = MustParse({"--config", file});
  EXPECT_EQ(c.listen_address, "[::1]:9100");
  EXPECT_EQ(c.telemetry_path, "/x");
  EXPECT_EQ(c.max_backends, 9u);
}

TEST(ConfigFileTest, SingleValuesForListsAndEmptyArrays) {
  TempDir dir;
  const std::string file = dir.Write("lists.toml", R"(process = "nginx"
exclude = []
buckets.rtt = []
)");
  const Config c = MustParse({"--config", file});
  EXPECT_EQ(c.processes, std::vector<std::string>{"nginx"});
  EXPECT_TRUE(c.exclude.empty());
  EXPECT_EQ(c.buckets.rtt, DefaultHistogramBuckets().rtt);
}

TEST(ConfigFileTest, CommentsRespectQuotesAndMultiLineArrays) {
  TempDir dir;
  const std::string file = dir.Write("comments.toml", R"(# top
exclude = [  # networks never tracked
  "10.0.0.0/8",  # ten
  # a whole-line comment inside the array
  "[::1]:80"
]
max-backends = 4  # trailing
[buckets]
rtt = [
  0.5,
  1,
]
)");
  const Config c = MustParse({"--config", file});
  EXPECT_EQ(Texts(c.exclude), (std::vector<std::string>{"10.0.0.0/8", "[::1/128]:80"}));
  EXPECT_EQ(c.max_backends, 4u);
  EXPECT_EQ(c.buckets.rtt, (std::vector<double>{0.5, 1}));

  // A '#' inside quotes is part of the value, so the error shows all of it.
  ExpectUsageError(
      Parse({"--config", dir.Write("hash.toml", "web.telemetry-path = \"/a#b\"  # c\n")}),
      "key web.telemetry-path: \"/a#b\"");
}

TEST(ConfigFileTest, BooleanSpellings) {
  TempDir dir;
  EXPECT_FALSE(MustParse({"--config", dir.Write("f.toml", "bpf-stats = false\n")}).bpf_stats);
  EXPECT_TRUE(MustParse({"--config", dir.Write("t.toml", "bpf-stats = on\n")}).bpf_stats);
  ExpectUsageError(Parse({"--config", dir.Write("m.toml", "bpf-stats = maybe\n")}),
                   "key bpf-stats: \"maybe\" is not true or false");
}

TEST(ConfigFileTest, FlagsOverrideTheFile) {
  TempDir dir;
  const std::string file = dir.Write("o.toml", R"(max-backends = 123
process = ["nginx"]
web.telemetry-path = "/file"
buckets.rtt = [1, 2]
log.level = "error"
)");
  const Config c = MustParse({"--max-backends", "7", "--config", file, "--process", "envoy",
                              "--buckets.rtt", "3", "--web.telemetry-path", "/flag"});
  EXPECT_EQ(c.max_backends, 7u);
  EXPECT_EQ(c.processes, std::vector<std::string>{"envoy"});  // replaced, not appended
  EXPECT_EQ(c.buckets.rtt, std::vector<double>{3});
  EXPECT_EQ(c.telemetry_path, "/flag");
  EXPECT_EQ(c.log_level, LogLevel::kError);  // not overridden
}

TEST(ConfigFileTest, FlagOverridesABadFileValue) {
  TempDir dir;
  const std::string file = dir.Write("bad.toml", "max-backends = \"lots\"\n");
  EXPECT_EQ(MustParse({"--config", file, "--max-backends", "3"}).max_backends, 3u);
}

TEST(ConfigFileTest, UnknownKeyIsNamed) {
  TempDir dir;
  const std::string file = dir.Write("u.toml", "max-backends = 5\nmax_backend = 7\n");
  const ParseOutcome outcome = Parse({"--config", file});
  ExpectUsageError(outcome, file + ": unknown key \"max_backend\"");

  const std::string section = dir.Write("s.toml", "[web]\nlisten = \":1\"\n");
  ExpectUsageError(Parse({"--config", section}), "unknown key \"web.listen\"");
}

TEST(ConfigFileTest, KeysThatAreNotSettings) {
  TempDir dir;
  ExpectUsageError(Parse({"--config", dir.Write("c.toml", "config = \"other.toml\"\n")}),
                   "key config: cannot be set in a config file");
  ExpectUsageError(Parse({"--config", dir.Write("h.toml", "help = true\n")}),
                   "key help: cannot be set in a config file");
}

TEST(ConfigFileTest, BadValuesNameTheFileAndKey) {
  TempDir dir;
  const std::string file = dir.Write("v.toml", "max-backends = \"abc\"\n");
  EXPECT_EQ(Parse({"--config", file}).message,
            "sockeye: " + file + ": key max-backends: \"abc\" is not a number");

  ExpectUsageError(Parse({"--config", dir.Write("b.toml", "buckets.rtt = [1, 0.5]\n")}),
                   "b.toml: key buckets.rtt: bounds must be strictly increasing");
  ExpectUsageError(Parse({"--config", dir.Write("p.toml", "pool = [\"api=10.0.0.0/40\"]\n")}),
                   "p.toml: key pool \"api=10.0.0.0/40\": invalid CIDR");
  ExpectUsageError(Parse({"--config", dir.Write("w.toml", "[web]\ntelemetry-path = \"m\"\n")}),
                   "w.toml: key web.telemetry-path: \"m\" must start with '/'");
  ExpectUsageError(Parse({"--config", dir.Write("a.toml", "max-backends = [1, 2]\n")}),
                   "a.toml: key max-backends: expects a single value, got 2");
}

TEST(ConfigFileTest, MissingOrUnreadableFileIsNamed) {
  TempDir dir;
  const std::string missing = dir.path() + "/nope.toml";
  const ParseOutcome outcome = Parse({"--config", missing});
  ExpectUsageError(outcome, "--config: \"" + missing + "\"");
  EXPECT_TRUE(Contains(outcome.message, "No such file"));
  ExpectUsageError(Parse({"--config", dir.path()}), "is a directory");
}

}  // namespace
}  // namespace sockeye
