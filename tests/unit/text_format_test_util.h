// Test helpers for the text format tests: families built in one call, a
// representative page, and promtool's verdict on a page.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "exporters/text_format.h"

namespace sockeye::metrics::test_util {

inline MetricFamily Gauge(std::string name, std::string help, std::vector<Sample> samples) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = MetricType::kGauge;
  f.samples = std::move(samples);
  return f;
}

inline MetricFamily Counter(std::string name, std::string help, std::vector<Sample> samples) {
  MetricFamily f = Gauge(std::move(name), std::move(help), std::move(samples));
  f.type = MetricType::kCounter;
  return f;
}

inline MetricFamily Histogram(std::string name, std::string help,
                              std::vector<HistogramSample> series) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = MetricType::kHistogram;
  f.histograms = std::move(series);
  return f;
}

inline HistogramSample LatencySeries() {
  HistogramSample h;
  h.labels = {{"path", "/x"}};
  h.upper_bounds = {0.005, 1, 2.5};
  h.bucket_counts = {1, 2, 3};
  h.sum = 12.5;
  h.count = 10;
  return h;
}

// A representative exposition: counters with and without labels, a gauge,
// a labelled histogram.
inline std::vector<MetricFamily> SampleFamilies() {
  return {
      Counter("sockeye_connections_total", "Connections opened.",
              {{{{"pool", "web"}, {"result", "ok"}}, 42}, {{{"pool", "db"}, {"result", "ok"}}, 7}}),
      Gauge("sockeye_backends", "Backends tracked.", {{{}, 3}}),
      Histogram("sockeye_connect_duration_seconds", "Connect latency.", {LatencySeries()}),
      Counter("sockeye_events_lost_total", "Events dropped.", {{{}, 1e15}}),
  };
}

inline bool OnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::istringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// Runs `promtool check metrics` on `text`; returns its exit status and puts
// everything it printed (lint findings go to stdout or stderr) in *output.
inline int PromtoolCheck(const std::string& text, std::string* output) {
  auto dir = std::filesystem::temp_directory_path();
  auto input = dir / ("sockeye_promtool_" + std::to_string(getpid()) + ".prom");
  std::ofstream(input) << text;
  std::string command = "promtool check metrics < '" + input.string() + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), pipe)) > 0;) output->append(buf, n);
  int status = pclose(pipe);
  std::filesystem::remove(input);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
}  // namespace sockeye::metrics::test_util
