#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/churn/agent_process.h"
#include "bench/churn/load.h"
#include "bench/churn/phases.h"
#include "bench/churn/scrape.h"

namespace sockeye::bench::churn {

// --- live phase: 1,000 backends with open keep-alive connections -----------------

void RunLive(const Options& o, uint16_t base_port, StorageCounter& counter, const StorageCost& cost,
             const std::string& workdir, Checks& checks) {
  Out("\n== live: %d backends (%s, port %u), one keep-alive connection each ==\n", o.live_backends,
      kLiveNet, base_port);
  const uint16_t port = FreeLoopbackPort();
  AgentProcess agent(o.agent, workdir + "/agent-live.log");
  std::string error;
  if (!agent.Start(
          {"--web.listen-address", "127.0.0.1:" + std::to_string(port), "--include", kLiveNet},
          &error) ||
      !WaitReady(agent, port, 30)) {
    checks.Add(false, "live: agent started (" + error + ")\n" + agent.LogTail(20));
    return;
  }
  Out("agent: %s (pid %d)\n", agent.command().c_str(), agent.pid());
  const ProcStatus boot = ReadProc(agent.pid());
  Out("after start-up: VmRSS %.1f MiB, VmHWM %.1f MiB (the start-up peak: BTF, loading); VmHWM "
      "reset now\n",
      boot.rss_mb, boot.hwm_mb);
  const bool reset = bench::ResetPeakRss(agent.pid());
  if (reset)
    Out("  VmHWM after the reset: %.1f MiB\n", ReadProc(agent.pid()).hwm_mb);
  else
    Out("  (could not reset VmHWM through clear_refs; the peak includes start-up)\n");

  std::vector<int> fds;
  uint64_t connect_failures = 0;
  for (int i = 0; i < o.live_backends; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in sa = Loopback(BackendAddress(kLiveSecondOctet, i), base_port);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      ++connect_failures;
      close(fd);
      continue;
    }
    fds.push_back(fd);
  }
  uint64_t requests = 0, request_errors = 0;
  // One request on every connection: all sent, then all answers read.
  auto round = [&] {
    char request[kRequestBytes];
    std::memset(request, 'q', sizeof(request));
    char buf[kResponseBytes];
    for (int fd : fds)
      if (send(fd, request, sizeof(request), MSG_NOSIGNAL) != ssize_t(sizeof(request)))
        ++request_errors;
    for (int fd : fds) {
      size_t got = 0;
      while (got < kResponseBytes) {
        ssize_t n = recv(fd, buf, kResponseBytes - got, 0);
        if (n <= 0) break;
        got += size_t(n);
      }
      if (got == kResponseBytes)
        ++requests;
      else
        ++request_errors;
    }
  };
  const auto t0 = Clock::now();
  for (int r = 0; r < o.live_rounds; ++r) round();
  Out("opened %zu connections (%llu failed), %llu requests (%llu errors) in %.2f s\n", fds.size(),
      static_cast<unsigned long long>(connect_failures), static_cast<unsigned long long>(requests),
      static_cast<unsigned long long>(request_errors), SecondsSince(t0));
  const size_t live = fds.size();
  // Requests on open connections reach the agent's counters with a sweep.
  auto settled = [&](const Metrics& m) {
    return m.Sum("sockeye_backend_requests_total") == double(requests) &&
           m.Sum("sockeye_backend_connections_established_total") == double(live) &&
           m.Sum("sockeye_backend_connections_active") == double(live) &&
           m.Sum("sockeye_backends") == double(live);
  };

  Out("%-6s %-22s %9s %9s %8s %10s %9s %8s %9s\n", "scrape", "format", "ms", "text_MB", "wire_MB",
      "series", "RSS_MiB", "HWM_MiB", "requests");
  Metrics last;
  int scrapes = 0;
  for (int k = 0; k < o.live_scrapes; ++k) {
    if (k > 0) round();
    // Alternately as curl asks and as Prometheus asks (OpenMetrics, gzip).
    // Waiting scrapes ask the same way, so that the peak RSS is still that
    // of the scrapes shown; the row is the scrape that saw the totals.
    const bool prometheus = k % 2 == 1;
    const Metrics m = ScrapeUntil(agent, port, prometheus, prometheus, settled, &scrapes);
    const ProcStatus p = ReadProc(agent.pid());
    Out("%-6d %-22s %9.1f %9.2f %8.2f %10s %9.1f %8.1f %9s\n", k + 1,
        prometheus ? "openmetrics+gzip" : "text 0.0.4", m.scrape_ms, m.text_mb, m.wire_mb,
        m.ok ? Fmt("%zu", m.Series("sockeye_backend_connections_established_total")).c_str() : "-",
        p.rss_mb, p.hwm_mb,
        m.ok ? Fmt("%.0f", m.Sum("sockeye_backend_requests_total")).c_str() : "-");
    if (!m.ok) checks.Add(false, "live: scrape " + std::to_string(k + 1) + ": " + m.error);
    if (m.ok) last = m;
  }
  const ProcStatus peak = ReadProc(agent.pid());
  const KernelView kv = ReadKernel(agent.pid(), counter);
  PrintMaps(agent.pid());
  Out("  socket storage: %lld live entries of %u B (about %.2f MiB of kernel memory outside "
      "memlock, "
      "%ld B each by BTF sizes and kmalloc classes)\n",
      kv.storage_entries, kv.storage_value_size,
      double(kv.storage_entries) * double(cost.Bytes(kv.storage_value_size)) / (1 << 20),
      cost.Bytes(kv.storage_value_size));
  const uint64_t expected_requests = requests;
  checks.Add(
      last.ok && last.Sum("sockeye_backends") == double(live),
      Fmt("live: sockeye_backends %.0f == %zu backends", last.Sum("sockeye_backends"), live));
  checks.Add(last.Sum("sockeye_backend_connections_established_total") == double(live),
             Fmt("live: established %.0f == %zu connections",
                 last.Sum("sockeye_backend_connections_established_total"), live));
  checks.Add(last.Sum("sockeye_backend_connections_active") == double(live),
             Fmt("live: active %.0f == %zu", last.Sum("sockeye_backend_connections_active"), live));
  checks.Add(last.Sum("sockeye_backend_requests_total") == double(expected_requests),
             Fmt("live: requests %.0f == %llu made", last.Sum("sockeye_backend_requests_total"),
                 static_cast<unsigned long long>(expected_requests)));
  checks.Add(kv.storage_entries == (long long)live,
             Fmt("live: kernel socket storage holds %lld entries == %zu open connections "
                 "(counted over %s)",
                 kv.storage_entries, live, counter.Method()));
  PrintAgentCounters(last);
  Out("agent with %zu live backends: VmRSS %.1f MiB now; peak since the reset after start-up "
      "(VmHWM) %.1f MiB; start-up peak %.1f MiB\n",
      live, peak.rss_mb, peak.hwm_mb, boot.hwm_mb);
  checks.Target(reset && peak.hwm_mb <= 30.0,
                Fmt("peak RSS with %zu live backends, scraped %d times: %.1f MiB <= 30 MiB "
                    "(start-up peak %.1f MiB not included)",
                    live, scrapes, peak.hwm_mb, boot.hwm_mb));

  for (int fd : fds) close(fd);
  const Metrics after = ScrapeUntil(agent, port, false, false, [live](const Metrics& m) {
    return m.Sum("sockeye_backend_connections_active") == 0 &&
           m.Sum("sockeye_backend_connections_closed_total") == double(live);
  });
  checks.Add(after.ok && after.Sum("sockeye_backend_connections_active") == 0 &&
                 after.Sum("sockeye_backend_connections_closed_total") == double(live),
             Fmt("live: after closing all: active %.0f == 0, closed %.0f == %zu",
                 after.Sum("sockeye_backend_connections_active"),
                 after.Sum("sockeye_backend_connections_closed_total"), live));
  const bool alive = agent.Alive();
  const std::string exit = agent.Stop();
  checks.Add(alive && agent.clean_exit(), "live: agent alive until SIGTERM, then " + exit);
  if (!agent.clean_exit()) Out("%s", agent.LogTail(30).c_str());
}

}  // namespace sockeye::bench::churn
