// docs/metrics.md against the code: every family the agent serves has one
// row there with the code's type and label names, and every row names a
// family the agent serves. The families come from their declarations
// (agent/metric_descriptors.h, exporters/process_collector.h,
// exporters/registry.h), and those are checked against what each collector
// really produces; the metrics server's own families are collected from
// it. Every metric name the README, the docs and --help mention is served.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "agent/aggregator.h"
#include "agent/config_flags.h"
#include "agent/metric_descriptors.h"
#include "agent/probes_collector.h"
#include "exporters/http_server.h"
#include "exporters/process_collector.h"
#include "exporters/registry.h"

#ifndef SOCKEYE_METRICS_DOC
#error "SOCKEYE_METRICS_DOC must name docs/metrics.md (tests/CMakeLists.txt)"
#endif

namespace sockeye {
namespace {

using metrics::MetricDescriptor;
using metrics::MetricFamily;
using metrics::MetricType;

// What the doc and the code must agree on.
struct FamilyShape {
  std::string type;
  std::vector<std::string> labels;
  bool operator==(const FamilyShape&) const = default;
};

std::ostream& operator<<(std::ostream& os, const FamilyShape& shape) {
  os << shape.type << " {";
  for (size_t i = 0; i < shape.labels.size(); ++i) os << (i ? ", " : "") << shape.labels[i];
  return os << "}";
}

std::string TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "?";
}

FamilyShape ShapeOf(const MetricDescriptor& descriptor) {
  FamilyShape shape{TypeName(descriptor.type), {}};
  for (std::string_view label : descriptor.labels)
    if (!label.empty()) shape.labels.emplace_back(label);
  return shape;
}

// The label names a collected family's series carry, in the order they
// first appear; a name missing from some series (pool) still counts.
std::vector<std::string> LabelNamesOf(MetricFamily family) {
  metrics::Materialize(family);
  std::vector<std::string> names;
  auto add = [&names](const metrics::Labels& labels) {
    for (size_t i = 0; i < labels.size(); ++i) {
      auto it = std::find(names.begin(), names.end(), labels[i].name);
      if (it != names.end()) continue;
      // Keep the series' order: insert after the label before it.
      auto after =
          i == 0 ? names.begin() : std::find(names.begin(), names.end(), labels[i - 1].name) + 1;
      names.insert(after, labels[i].name);
    }
  };
  for (const auto& sample : family.samples) add(sample.labels);
  for (const auto& histogram : family.histograms) add(histogram.labels);
  return names;
}

std::string_view Trim(std::string_view text) {
  const size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
}

std::vector<std::string> Cells(std::string_view row) {
  std::vector<std::string> cells;
  row = Trim(row);
  if (row.size() < 2 || row.front() != '|' || row.back() != '|') return cells;
  row = row.substr(1, row.size() - 2);
  size_t start = 0;
  for (size_t i = 0; i <= row.size(); ++i) {
    if (i == row.size() || row[i] == '|') {
      cells.emplace_back(Trim(row.substr(start, i - start)));
      start = i + 1;
    }
  }
  return cells;
}

// `text` without its backticks.
std::string Unquoted(std::string_view text) {
  std::string out;
  for (char c : text)
    if (c != '`') out += c;
  return out;
}

// The rows of every table whose columns start with name, type and labels.
// Duplicated rows are reported in `duplicates`.
std::map<std::string, FamilyShape> ParseDoc(const std::string& text,
                                            std::vector<std::string>* duplicates) {
  std::map<std::string, FamilyShape> rows;
  std::istringstream in(text);
  std::string line;
  bool in_family_table = false;
  while (std::getline(in, line)) {
    const std::vector<std::string> cells = Cells(line);
    if (cells.empty()) {
      in_family_table = false;
      continue;
    }
    if (cells.size() >= 3 && cells[0] == "name" && cells[1] == "type" && cells[2] == "labels") {
      in_family_table = true;
      continue;
    }
    if (!in_family_table || cells[0].starts_with("---")) continue;
    FamilyShape shape{cells[1], {}};
    std::istringstream labels(cells[2]);
    std::string label;
    while (std::getline(labels, label, ','))
      if (!Trim(label).empty()) shape.labels.push_back(Unquoted(Trim(label)));
    const std::string name = Unquoted(cells[0]);
    if (!rows.emplace(name, shape).second) duplicates->push_back(name);
  }
  return rows;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ReadDoc() { return ReadFile(SOCKEYE_METRICS_DOC); }

// Every family declared in the code, by name.
std::map<std::string, FamilyShape> DeclaredFamilies() {
  std::vector<const MetricDescriptor*> declared(families::kAggregatorFamilies.begin(),
                                                families::kAggregatorFamilies.end());
  declared.insert(declared.end(), families::kProbesFamilies.begin(),
                  families::kProbesFamilies.end());
  declared.insert(declared.end(), families::kListenerFamilies.begin(),
                  families::kListenerFamilies.end());
  declared.push_back(&families::kBuildInfo);
  declared.insert(declared.end(), metrics::kProcessFamilies.begin(),
                  metrics::kProcessFamilies.end());
  declared.push_back(&metrics::kCollectorErrors);
  std::map<std::string, FamilyShape> out;
  for (const MetricDescriptor* descriptor : declared) {
    EXPECT_TRUE(out.emplace(descriptor->name, ShapeOf(*descriptor)).second)
        << descriptor->name << " is declared twice";
  }
  return out;
}

// The metrics server's families, with a scrape and a response recorded so
// that their labelled series exist.
std::vector<MetricFamily> ScrapeStatsFamilies() {
  metrics::ScrapeStatsCollector stats;
  stats.RecordScrape(metrics::Format::kPrometheusText004, std::chrono::milliseconds(1));
  stats.RecordResponse(200);
  std::vector<MetricFamily> families;
  stats.Collect(families);
  return families;
}

// Checks that a collector's families are the declared ones, in order, with
// the declared help, type and label names.
void ExpectDeclared(const std::vector<MetricFamily>& collected,
                    const std::vector<const MetricDescriptor*>& declared) {
  ASSERT_EQ(collected.size(), declared.size());
  for (size_t i = 0; i < collected.size(); ++i) {
    const MetricDescriptor& descriptor = *declared[i];
    SCOPED_TRACE(std::string(descriptor.name));
    EXPECT_EQ(collected[i].name, descriptor.name);
    EXPECT_EQ(collected[i].help, descriptor.help);
    EXPECT_EQ(collected[i].type, descriptor.type);
    EXPECT_EQ(LabelNamesOf(collected[i]), ShapeOf(descriptor).labels);
  }
}

template <size_t N>
std::vector<const MetricDescriptor*> List(const std::array<const MetricDescriptor*, N>& declared) {
  return {declared.begin(), declared.end()};
}

sockeye_event Event(uint8_t kind, uint64_t conn_id, uint8_t last_octet, uint16_t port) {
  sockeye_event e{};
  e.kind = kind;
  e.conn_id = conn_id;
  e.backend.addr[10] = 0xff;
  e.backend.addr[11] = 0xff;
  e.backend.addr[12] = 10;
  e.backend.addr[15] = last_octet;
  e.backend.port = port;
  return e;
}

TEST(MetricDeclarations, AggregatorProducesItsDeclaredFamilies) {
  std::string error;
  AggregatorOptions options;
  options.pools.push_back({"api", *ParseCidrMatch("10.0.0.0/24:8080", &error)});
  Aggregator aggregator(options);
  const auto now = Aggregator::Clock::now();
  aggregator.Handle(Event(SOCKEYE_EV_CONNECTED, 1, 1, 8080), now);
  // A response with a status: responses_total has series only then.
  sockeye_event turn = Event(SOCKEYE_EV_TURN, 1, 1, 8080);
  turn.turn_count = 1;
  turn.turns[0].srtt_status = 200u << SOCKEYE_TURN_SRTT_BITS;
  aggregator.Handle(turn, now);
  aggregator.Handle(Event(SOCKEYE_EV_CLOSED, 1, 1, 8080), now);
  aggregator.Handle(Event(SOCKEYE_EV_CONNECT_FAILED, 0, 2, 80), now);
  // A frontend connection, on a listener a --frontend mapping names.
  aggregator.SetPools(options.pools, {{"web", *ParseCidrMatch("10.0.0.3/32:443", &error)}});
  sockeye_event accepted = Event(SOCKEYE_EV_CONNECTED, 2, 3, 443);
  accepted.flags = SOCKEYE_EVF_FRONTEND;
  aggregator.Handle(accepted, now);
  sockeye_event answered = Event(SOCKEYE_EV_TURN, 2, 3, 443);
  answered.turn_count = 1;
  answered.turns[0].srtt_status = 503u << SOCKEYE_TURN_SRTT_BITS;
  aggregator.Handle(answered, now);
  std::vector<MetricFamily> collected;
  aggregator.Collect(collected);
  ExpectDeclared(collected, List(families::kAggregatorFamilies));
}

TEST(MetricDeclarations, BuildInfoProcessAndRegistryProduceTheirDeclaredFamilies) {
  std::vector<MetricFamily> build;
  BuildInfoCollector().Collect(build);
  ExpectDeclared(build, {&families::kBuildInfo});

  std::vector<MetricFamily> process;
  metrics::ProcessCollector().Collect(process);
  ExpectDeclared(process, List(metrics::kProcessFamilies));

  metrics::Registry registry;
  ExpectDeclared(registry.Gather(), {&metrics::kCollectorErrors});
}

// Both directions: a family served but not documented, or documented but
// not served, and a row whose type or labels differ from the code's.
TEST(MetricsDoc, ListsEveryFamilyWithItsTypeAndLabels) {
  const std::string text = ReadDoc();
  ASSERT_FALSE(text.empty()) << "cannot read " << SOCKEYE_METRICS_DOC;
  std::vector<std::string> duplicates;
  const std::map<std::string, FamilyShape> documented = ParseDoc(text, &duplicates);
  EXPECT_TRUE(duplicates.empty()) << "documented more than once: " << duplicates.front();

  std::map<std::string, FamilyShape> served = DeclaredFamilies();
  for (const MetricFamily& family : ScrapeStatsFamilies())
    served.emplace(family.name, FamilyShape{TypeName(family.type), LabelNamesOf(family)});

  for (const auto& [name, shape] : served) {
    auto row = documented.find(name);
    if (row == documented.end()) {
      ADD_FAILURE() << name << " is served but has no row in docs/metrics.md";
      continue;
    }
    EXPECT_EQ(row->second, shape) << name << ": docs/metrics.md differs from the code";
  }
  for (const auto& [name, shape] : documented) {
    EXPECT_TRUE(served.contains(name)) << name << " has a row in docs/metrics.md but is not served";
  }
}

// Every metric name the README, a docs page or --help mentions is one the
// agent serves (a histogram's _bucket, _sum and _count lines included), so
// that renaming a family fails here until the prose follows. Recording
// rules (name:suffix), prefixes (name_*) and the C identifiers of the
// record format are not metrics.
TEST(MetricsDoc, EveryMetricNamedInTheReadmeDocsAndHelpIsServed) {
  std::map<std::string, FamilyShape> served = DeclaredFamilies();
  for (const MetricFamily& family : ScrapeStatsFamilies())
    served.emplace(family.name, FamilyShape{TypeName(family.type), LabelNamesOf(family)});
  const std::set<std::string> not_metrics = {"sockeye_abi",
                                             "sockeye_event",
                                             "sockeye_event_kind",
                                             "sockeye_turn",
                                             "sockeye_conn_totals",
                                             "sockeye_kernel_counter",
                                             "sockeye_connect_failure",
                                             "sockeye_bpf_tests",
                                             "sockeye_unit_tests"};

  const std::filesystem::path docs = std::filesystem::path(SOCKEYE_METRICS_DOC).parent_path();
  std::map<std::string, std::string> texts;  // where -> text
  texts["README.md"] = ReadFile(docs.parent_path() / "README.md");
  for (const auto& entry : std::filesystem::directory_iterator(docs)) {
    if (entry.path().extension() == ".md")
      texts["docs/" + entry.path().filename().string()] = ReadFile(entry.path());
  }
  CLI::App app;
  RawFlags raw;
  DefineFlags(&app, &raw);
  texts["--help"] = app.help();
  ASSERT_FALSE(texts["README.md"].empty());

  const std::regex name(R"(sockeye_[a-z0-9_]*[a-z0-9](:|_\*|\*)?)");
  const std::regex histogram_line(R"((.*)_(bucket|sum|count)$)");
  size_t checked = 0;
  for (const auto& [where, text] : texts) {
    for (auto it = std::sregex_iterator(text.begin(), text.end(), name);
         it != std::sregex_iterator(); ++it) {
      if ((*it)[1].length() > 0) continue;  // a recording rule, or a prefix (sockeye_backend_*)
      std::string metric = (*it)[0].str();
      if (not_metrics.contains(metric)) continue;
      std::smatch parts;
      if (!served.contains(metric) && std::regex_match(metric, parts, histogram_line) &&
          served.contains(parts[1].str()) && served.at(parts[1].str()).type == "histogram")
        metric = parts[1].str();
      EXPECT_TRUE(served.contains(metric))
          << where << " names " << metric << ", which is not served";
      ++checked;
    }
  }
  EXPECT_GT(checked, 20u) << "the README and docs name hardly any metric: is the path right?";
}

// The parser itself: a family table is one whose header starts with name,
// type, labels; other tables (labels, buckets) are not read.
TEST(MetricsDoc, ParserReadsOnlyFamilyTables) {
  const std::string doc =
      "| label | on |\n|---|---|\n| `backend` | x |\n\n"
      "| name | type | labels | meaning |\n|---|---|---|---|\n"
      "| `a_total` | counter | `x`, `y` | m |\n| `b` | gauge | | m |\n\n"
      "| family | key |\n|---|---|\n| `c` | k |\n";
  std::vector<std::string> duplicates;
  const auto rows = ParseDoc(doc, &duplicates);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows.at("a_total"), (FamilyShape{"counter", {"x", "y"}}));
  EXPECT_EQ(rows.at("b"), (FamilyShape{"gauge", {}}));
  EXPECT_TRUE(duplicates.empty());
}

}  // namespace
}  // namespace sockeye
