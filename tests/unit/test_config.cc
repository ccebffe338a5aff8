// Settings from flags: defaults, every flag and its forms, help and version.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "agent/command_line.h"
#include "agent/config.h"
#include "tests/unit/config_test_util.h"

namespace sockeye {
namespace {

using config_test_util::Contains;
using config_test_util::ExpectUsageError;
using config_test_util::MustParse;
using config_test_util::Parse;
using config_test_util::Texts;
using std::chrono::milliseconds;
using std::chrono::seconds;

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

}  // namespace
}  // namespace sockeye
