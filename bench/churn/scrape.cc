#include "bench/churn/scrape.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "bench/bench_util.h"
#include "tests/unit/gunzip.h"

namespace sockeye::bench::churn {

Fetched Fetch(uint16_t port, const std::string& path, bool gzip, bool openmetrics) {
  Fetched f;
  const auto t0 = Clock::now();
  std::string raw;
  char buf[1 << 16];
  // After a failure part way, what did arrive is still parsed; f.error
  // keeps the failure.
  if (!bench::HttpGet(
          port, path, {.gzip = gzip, .openmetrics = openmetrics}, buf,
          [&raw](std::string_view piece) { raw.append(piece); }, &f.error) &&
      raw.empty())
    return f;
  f.ms = SecondsSince(t0) * 1000;
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || std::sscanf(raw.c_str(), "HTTP/1.%*d %d", &f.status) != 1) {
    if (f.error.empty()) f.error = "no HTTP response";
    return f;
  }
  std::string head = raw.substr(0, head_end);
  std::transform(head.begin(), head.end(), head.begin(),
                 [](char c) { return char(std::tolower(c)); });
  std::string body = raw.substr(head_end + 4);
  if (head.find("transfer-encoding: chunked") != std::string::npos) {
    std::string joined;
    size_t pos = 0;
    for (;;) {
      const size_t eol = body.find("\r\n", pos);
      if (eol == std::string::npos) break;
      const size_t len = std::strtoul(body.c_str() + pos, nullptr, 16);
      if (len == 0) break;
      joined.append(body, eol + 2, len);
      pos = eol + 2 + len + 2;
    }
    body.swap(joined);
  }
  f.wire_bytes = body.size();
  if (head.find("content-encoding: gzip") != std::string::npos) {
    try {
      body = metrics::test_util::Gunzip(body);
    } catch (const std::runtime_error& e) {
      f.error = std::string("bad gzip body: ") + e.what();
      return f;
    }
  }
  f.body = std::move(body);
  f.ok = f.status == 200 && f.error.empty();
  return f;
}

Metrics Parse(const Fetched& f) {
  Metrics m;
  m.scrape_ms = f.ms;
  m.wire_mb = double(f.wire_bytes) / 1e6;
  m.text_mb = double(f.body.size()) / 1e6;
  if (!f.ok) {
    m.error = f.error.empty() ? "HTTP " + std::to_string(f.status) : f.error;
    return m;
  }
  std::string_view text(f.body);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty() || line[0] == '#') continue;
    const size_t name_end = line.find_first_of("{ ");
    const size_t value_at = line.rfind(' ');
    if (name_end == std::string_view::npos || value_at == std::string_view::npos) continue;
    std::string_view name = line.substr(0, name_end);
    if (name.size() > 7 && name.substr(name.size() - 7) == "_bucket") continue;
    std::string_view labels =
        line[name_end] == '{' ? line.substr(name_end, value_at - name_end) : std::string_view();
    const double value = std::strtod(std::string(line.substr(value_at + 1)).c_str(), nullptr);
    std::string key(name);
    m.sum[key] += value;
    m.series[key] += 1;
    if (labels.find("backend=\"(overflow)\"") != std::string_view::npos) m.overflow[key] += value;
  }
  m.ok = true;
  return m;
}

Metrics Scrape(uint16_t port, bool gzip, bool openmetrics) {
  return Parse(Fetch(port, "/metrics", gzip, openmetrics));
}

bool WaitReady(AgentProcess& agent, uint16_t port, double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    if (!agent.Alive()) return false;
    Fetched f = Fetch(port, "/healthz", false, false);
    if (f.status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

double LostTotal(const Metrics& m) {
  return m.Sum("sockeye_events_lost_total") + m.Sum("sockeye_iterator_records_lost_total") +
         m.Sum("sockeye_turns_lost_total");
}

void PrintAgentCounters(const Metrics& m) {
  Out("  agent: events lost %.0f, turns lost %s, unfollowed %.0f, iterator records lost %.0f, "
      "malformed %.0f, retired %.0f, expired backends %.0f, collector errors %.0f\n",
      m.Sum("sockeye_events_lost_total"),
      m.Has("sockeye_turns_lost_total") ? Fmt("%.0f", m.Sum("sockeye_turns_lost_total")).c_str()
                                        : "(no such metric)",
      m.Sum("sockeye_connections_unfollowed_total"), m.Sum("sockeye_iterator_records_lost_total"),
      m.Sum("sockeye_events_malformed_total"), m.Sum("sockeye_connections_retired_total"),
      m.Sum("sockeye_backends_expired_total"), m.Sum("sockeye_collector_errors_total"));
}

}  // namespace sockeye::bench::churn
