// Bad settings: each is a usage error naming the flag and what is wrong.
#include <gtest/gtest.h>

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

// The file's contents are checked when the server starts (and on SIGHUP);
// here only that it can be read, and that the setting arrives.
TEST(ConfigErrorsTest, WebConfigFile) {
  EXPECT_EQ(Parse({"--web.config.file", "/nonexistent/web.yml"}).message,
            "sockeye: --web.config.file: \"/nonexistent/web.yml\": No such file or directory");
  EXPECT_EQ(MustParse({"--web.config.file", "/dev/null"}).web_config_file, "/dev/null");
  EXPECT_EQ(MustParse({}).web_config_file, "");
}

// A cgroup_skb program attaches only to a cgroup v2 directory. Whether the
// build machine has one is not known here: the cases that need none.
TEST(ConfigErrorsTest, CgroupMustBeACgroupV2Directory) {
  EXPECT_EQ(Parse({"--cgroup", "system.slice/nginx.service"}).message,
            "sockeye: --cgroup: \"system.slice/nginx.service\" is not an absolute path (e.g. "
            "/sys/fs/cgroup/system.slice/nginx.service)");
  EXPECT_EQ(Parse({"--cgroup", "/nonexistent/nginx.service"}).message,
            "sockeye: --cgroup: \"/nonexistent/nginx.service\": No such file or directory");
  EXPECT_EQ(Parse({"--cgroup", "/proc"}).message,
            "sockeye: --cgroup: \"/proc\" is not in a cgroup v2 hierarchy");
  EXPECT_EQ(MustParse({}).cgroup, "");
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

}  // namespace
}  // namespace sockeye
