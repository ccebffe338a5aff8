// Settings from a --config file: keys, sections, arrays, and errors that name
// the file and the key.
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
using config_test_util::TempDir;
using config_test_util::Texts;
using std::chrono::seconds;

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
