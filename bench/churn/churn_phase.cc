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

// --- churn phase ----------------------------------------------------------------

namespace {

struct Sample {
  double t = 0;
  uint64_t completed = 0;
  ProcStatus proc;
  double rss_after_scrape = 0;  // 0: no scrape with this sample
  ThreadCpu threads;
  KernelView kernel;
  HostStats host;
  Metrics metrics;
};

void PrintSampleHeader() {
  Out("%6s %8s | %7s %7s %7s %6s | %8s %7s %8s | %7s %8s %8s %6s %8s %5s %5s | %7s %7s %6s | %6s "
      "%6s %7s\n",
      "t_s", "conns", "RSS", "RSS_scr", "HWM", "cpu_s", "maps_KiB", "storage", "stor_KiB", "series",
      "ovf_addr", "ovf_conn", "follow", "estab", "lost", "unfol", "scr_ms", "text_MB", "gz_MB",
      "tcp", "tw", "slab_MB");
}

void PrintSample(const Sample& s, const StorageCost& cost) {
  const Metrics& m = s.metrics;
  Out("%6.1f %8llu | %7.1f %7s %7.1f %6.2f | %8.1f %7lld %8.1f | %7s %8s %8s %6s %8s %5s %5s | "
      "%7.0f "
      "%7.1f %6.2f | %6ld %6ld %7.1f\n",
      s.t, static_cast<unsigned long long>(s.completed), s.proc.rss_mb,
      s.rss_after_scrape > 0 ? Fmt("%.1f", s.rss_after_scrape).c_str() : "-", s.proc.hwm_mb,
      s.proc.cpu_s, double(s.kernel.memlock) / 1024, s.kernel.storage_entries,
      double(std::max(0LL, s.kernel.storage_entries)) *
          double(cost.Bytes(s.kernel.storage_value_size)) / 1024,
      m.ok ? Fmt("%.0f", m.Sum("sockeye_backends")).c_str() : "-",
      m.ok ? Fmt("%.0f", m.Sum("sockeye_backends_overflow")).c_str() : "-",
      m.ok ? Fmt("%.0f", m.Sum("sockeye_backend_overflow_connections_total")).c_str() : "-",
      m.ok ? Fmt("%.0f", m.Sum("sockeye_connections_followed")).c_str() : "-",
      m.ok ? Fmt("%.0f", m.Sum("sockeye_backend_connections_established_total")).c_str() : "-",
      m.ok ? Fmt("%.0f", LostTotal(m)).c_str() : "-",
      m.ok ? Fmt("%.0f", m.Sum("sockeye_connections_unfollowed_total")).c_str() : "-", m.scrape_ms,
      m.text_mb, m.wire_mb, s.host.tcp_inuse, s.host.tcp_tw, s.host.slab_mb);
}

}  // namespace

void RunChurn(const Options& o, uint16_t base_port, StorageCounter& counter,
              const StorageCost& cost, const std::string& workdir, Checks& checks) {
  const long long distinct = std::min<long long>(o.connections, (long long)o.addresses * o.ports);
  Out("\n== churn: %d short connections to %lld distinct backends (%d addresses in %s x %d ports "
      "from %u), %.0f/s, at most %d in flight ==\n",
      o.connections, distinct, o.addresses, kChurnNet, o.ports, base_port, o.rate, o.concurrency);
  const uint16_t port = FreeLoopbackPort();
  AgentProcess agent(o.agent, workdir + "/agent-churn.log");
  std::string error;
  if (!agent.Start(
          {"--web.listen-address", "127.0.0.1:" + std::to_string(port), "--include", kChurnNet},
          &error) ||
      !WaitReady(agent, port, 30)) {
    checks.Add(false, "churn: agent started (" + error + ")\n" + agent.LogTail(20));
    return;
  }
  Out("agent: %s (pid %d), default --max-backends %d, --backend-idle-timeout 10m\n",
      agent.command().c_str(), agent.pid(), kMaxBackendsDefault);
  PrintMaps(agent.pid());
  Out("  socket storage element: %ld B header + value, %ld B per socket (BTF); kmalloc'd per "
      "connection and charged to the socket, so not in memlock\n",
      cost.elem_header, cost.per_socket);
  Out("columns: conns = connections completed by the bench; RSS (before this sample's scrape), "
      "RSS_scr (just after it), HWM = the agent's VmRSS/VmHWM in MiB, cpu_s its CPU time; maps = "
      "sum "
      "of its maps' memlock; storage = live entries of its socket-storage map (iterator), "
      "stor_KiB = their estimated kernel memory; series..unfol = the agent's own metrics "
      "(ovf_addr = sockeye_backends_overflow, ovf_conn = "
      "sockeye_backend_overflow_connections_total, estab = established incl. (overflow), lost = "
      "events + iterator records + turns lost, unfol = unfollowed); scr_ms/text/gz = that "
      "scrape (gzip); tcp/tw/slab = host-wide TCP sockets in use, TIME_WAIT, slab\n");
  PrintSampleHeader();

  std::vector<Sample> samples;
  int scrapes = 0;
  double next_scrape = 0;
  // Scrapes with every sample unless --scrape-interval says otherwise.
  auto take = [&](double t, uint64_t completed, bool force_scrape) {
    Sample s;
    s.t = t;
    s.completed = completed;
    s.proc = ReadProc(agent.pid());  // before this sample's scrape
    s.threads = ReadThreadCpu(agent.pid());
    s.kernel = ReadKernel(agent.pid(), counter);
    s.host = ReadHost();
    const bool scrape =
        force_scrape || o.scrape_interval < 0 || (o.scrape_interval > 0 && t + 0.01 >= next_scrape);
    if (scrape) {
      s.metrics = Scrape(port, true);
      s.rss_after_scrape = ReadProc(agent.pid()).rss_mb;
      ++scrapes;
      if (o.scrape_interval > 0)
        while (next_scrape <= t + 0.01) next_scrape += o.scrape_interval;
    }
    PrintSample(s, cost);
    samples.push_back(std::move(s));
  };

  ChurnProgress progress;
  const auto t0 = Clock::now();
  take(0, 0, false);
  ChurnResult result;
  std::thread driver([&] { result = DriveChurn(o, base_port, &progress); });
  double next_sample = o.sample_interval;
  bool died = false;
  while (!progress.done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!agent.Alive()) {
      died = true;
      progress.abort = true;
      break;
    }
    if (SecondsSince(t0) >= next_sample) {
      take(SecondsSince(t0), progress.completed, false);
      next_sample += o.sample_interval;
    }
  }
  driver.join();
  const double load_end = SecondsSince(t0);
  if (died) {
    checks.Add(false,
               "churn: agent died during the load: " + agent.Stop() + "\n" + agent.LogTail(40));
    return;
  }
  Out("load: %.1f s; started %llu, established %llu, completed %llu, failed at connect() %llu, "
      "failed later %llu, protocol errors %llu, abandoned %llu, peak in flight %d\n",
      result.seconds, static_cast<unsigned long long>(result.started),
      static_cast<unsigned long long>(result.established),
      static_cast<unsigned long long>(result.completed),
      static_cast<unsigned long long>(result.failed_at_once),
      static_cast<unsigned long long>(result.failed_later),
      static_cast<unsigned long long>(result.protocol_errors),
      static_cast<unsigned long long>(result.abandoned), result.peak_in_flight);
  for (const auto& [what, count] : result.errors)
    Out("  error %-40s %llu\n", what.c_str(), static_cast<unsigned long long>(count));
  const double achieved = double(result.completed) / result.seconds;
  Out("  achieved %.0f connections/s (target %.0f/s)\n", achieved, o.rate);

  // Exactness, once the ring buffer is drained and a sweep has run. The
  // waiting scrapes ask as take() does and are counted with its scrapes, so
  // that the HTTP threads' CPU per scrape below stays right.
  ScrapeUntil(
      agent, port, true, false,
      [&result](const Metrics& m) {
        const double established = double(result.established);
        return m.Sum("sockeye_backend_connections_established_total") == established &&
               m.Sum("sockeye_backend_connections_closed_total") == established &&
               m.Sum("sockeye_backend_requests_per_connection_count") == established &&
               m.Sum("sockeye_backend_connections_active") == 0 &&
               m.Sum("sockeye_connections_followed") == 0 &&
               m.Sum("sockeye_backend_requests_total") == double(result.completed) &&
               m.Sum("sockeye_backend_time_to_first_byte_seconds_count") +
                       m.Sum("sockeye_turns_lost_total") ==
                   double(result.completed) &&
               m.Sum("sockeye_backend_sent_bytes_total") == double(result.bytes_sent) &&
               m.Sum("sockeye_backend_received_bytes_total") == double(result.bytes_received);
      },
      &scrapes);
  take(SecondsSince(t0), progress.completed, true);
  const Metrics& m = samples.back().metrics;
  Out("exactness, %.1f s after the load:\n", SecondsSince(t0) - load_end);
  const double established = m.Sum("sockeye_backend_connections_established_total");
  checks.Add(m.ok && established == double(result.established),
             Fmt("churn: established (all backends + (overflow)) %.0f == %llu made", established,
                 static_cast<unsigned long long>(result.established)));
  const double failures = m.Sum("sockeye_backend_connect_failures_total");
  checks.Add(failures == double(result.failed_later + result.failed_at_once),
             Fmt("churn: connect failures %.0f == %llu seen by the bench", failures,
                 static_cast<unsigned long long>(result.failed_later + result.failed_at_once)));
  const double tracked = std::min<double>(double(distinct), kMaxBackendsDefault);
  checks.Add(m.Sum("sockeye_backends") == tracked,
             Fmt("churn: backends with their own series %.0f == %.0f (--max-backends)",
                 m.Sum("sockeye_backends"), tracked));
  const double overflow_expected = std::max(0.0, double(result.established) - tracked);
  checks.Add(m.Sum("sockeye_backend_overflow_connections_total") == overflow_expected &&
                 m.Overflow("sockeye_backend_connections_established_total") == overflow_expected,
             Fmt("churn: overflow counted: sockeye_backend_overflow_connections_total %.0f, "
                 "(overflow) established %.0f, both == %.0f",
                 m.Sum("sockeye_backend_overflow_connections_total"),
                 m.Overflow("sockeye_backend_connections_established_total"), overflow_expected));
  Out("  (overflow): established %.0f, requests %.0f, closed %.0f, sent %.0f B, received %.0f B; "
      "sockeye_backends_overflow (distinct addresses, capped at --max-backends) %.0f\n",
      m.Overflow("sockeye_backend_connections_established_total"),
      m.Overflow("sockeye_backend_requests_total"),
      m.Overflow("sockeye_backend_connections_closed_total"),
      m.Overflow("sockeye_backend_sent_bytes_total"),
      m.Overflow("sockeye_backend_received_bytes_total"), m.Sum("sockeye_backends_overflow"));
  checks.Add(m.Sum("sockeye_backend_requests_total") == double(result.completed),
             Fmt("churn: requests %.0f == %llu answered", m.Sum("sockeye_backend_requests_total"),
                 static_cast<unsigned long long>(result.completed)));
  const double ttfb = m.Sum("sockeye_backend_time_to_first_byte_seconds_count");
  const double turns_lost = m.Sum("sockeye_turns_lost_total");
  checks.Add(ttfb + turns_lost == double(result.completed),
             Fmt("churn: time-to-first-byte observations %.0f + turns lost %.0f == %llu requests",
                 ttfb, turns_lost, static_cast<unsigned long long>(result.completed)));
  checks.Add(m.Sum("sockeye_backend_sent_bytes_total") == double(result.bytes_sent) &&
                 m.Sum("sockeye_backend_received_bytes_total") == double(result.bytes_received),
             Fmt("churn: bytes sent %.0f == %llu, received %.0f == %llu",
                 m.Sum("sockeye_backend_sent_bytes_total"),
                 static_cast<unsigned long long>(result.bytes_sent),
                 m.Sum("sockeye_backend_received_bytes_total"),
                 static_cast<unsigned long long>(result.bytes_received)));
  const double closed = m.Sum("sockeye_backend_connections_closed_total");
  checks.Add(
      closed == double(result.established) && m.Sum("sockeye_backend_connections_active") == 0 &&
          m.Sum("sockeye_connections_followed") == 0,
      Fmt("churn: closed %.0f == %llu, active %.0f == 0, followed %.0f == 0", closed,
          static_cast<unsigned long long>(result.established),
          m.Sum("sockeye_backend_connections_active"), m.Sum("sockeye_connections_followed")));
  checks.Add(m.Sum("sockeye_backend_requests_per_connection_count") == double(result.established),
             Fmt("churn: requests-per-connection observations %.0f == %llu closed connections",
                 m.Sum("sockeye_backend_requests_per_connection_count"),
                 static_cast<unsigned long long>(result.established)));
  PrintAgentCounters(m);

  // Settle: the agent keeps closed connections for 60 s; the kernel keeps
  // TIME_WAIT for 60 s.
  while (SecondsSince(t0) < load_end + o.settle) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!agent.Alive()) break;
    if (SecondsSince(t0) >= next_sample) {
      take(SecondsSince(t0), progress.completed, false);
      next_sample += o.sample_interval;
    }
  }
  const bool alive = agent.Alive();
  if (alive) take(SecondsSince(t0), progress.completed, true);

  // Memory: first (idle agent), mid-load, end of load, end of settle.
  const Sample* first = &samples.front();
  const Sample* mid = first;
  const Sample* load_last = first;
  const Sample* late = first;  // the first sample past 65 s into the load
  for (const auto& s : samples) {
    if (s.t <= load_end) {
      load_last = &s;
      if (std::fabs(s.t - load_end / 2) < std::fabs(mid->t - load_end / 2)) mid = &s;
      if (late == first && s.t >= 65) late = &s;
    }
  }
  if (late == first) late = mid;
  const Sample& end = samples.back();
  Out("memory (agent VmRSS before each sample's scrape | VmHWM | kernel):\n");
  for (const auto& [label, s] : {std::pair<const char*, const Sample*>{"first (idle)", first},
                                 {"mid-load", mid},
                                 {"late load", late},
                                 {"end of load", load_last},
                                 {"end of settle", &end}}) {
    Out("  %-14s t=%6.1f s: RSS %6.1f MiB | HWM %6.1f MiB | maps memlock %7.1f KiB, socket storage "
        "%lld entries (~%.1f KiB) | TIME_WAIT %ld\n",
        label, s->t, s->proc.rss_mb, s->proc.hwm_mb, double(s->kernel.memlock) / 1024,
        s->kernel.storage_entries,
        double(std::max(0LL, s->kernel.storage_entries)) *
            double(cost.Bytes(s->kernel.storage_value_size)) / 1024,
        s->host.tcp_tw);
  }
  long long storage_max = 0;
  uint64_t memlock_min = UINT64_MAX, memlock_max = 0;
  for (const auto& s : samples) {
    storage_max = std::max(storage_max, s.kernel.storage_entries);
    memlock_min = std::min(memlock_min, s.kernel.memlock);
    memlock_max = std::max(memlock_max, s.kernel.memlock);
  }
  // Thread times are read before a sample's scrape: the last one is not in.
  const double loop_cpu = end.threads.main_s - first->threads.main_s;
  const double http_cpu = end.threads.others_s - first->threads.others_s;
  const int scrapes_in = scrapes - (end.rss_after_scrape > 0 ? 1 : 0);
  Out("  agent CPU: event loop (main thread) %.2f s = %.1f us per connection; HTTP threads %.2f s "
      "for %d gzip scrapes = %.2f s per scrape\n",
      loop_cpu, loop_cpu / double(std::max<uint64_t>(1, result.completed)) * 1e6, http_cpu,
      scrapes_in, http_cpu / std::max(1, scrapes_in));
  // The agent remembers closed connections for 60 s, so its state grows
  // for the first minute of a steady load and is flat after that.
  if (late->t >= 65 && load_last->t - late->t >= 10) {
    const double growth = load_last->proc.rss_mb - late->proc.rss_mb;
    checks.Add(growth <= 5.0,
               Fmt("churn: agent RSS flat once the closed-connection memory (60 s) is full: "
                   "%+.1f MiB from t=%.0f s to t=%.0f s (<= 5 MiB)",
                   growth, late->t, load_last->t));
  } else {
    Out("  (load shorter than 75 s: the plateau after the 60 s closed-connection memory is not "
        "checked)\n");
  }
  double before_end_max = 0;
  for (const auto& s : samples)
    if (&s != &end) before_end_max = std::max({before_end_max, s.proc.rss_mb, s.rss_after_scrape});
  checks.Add(end.proc.rss_mb <= before_end_max + 2.0,
             Fmt("churn: no growth after the load: RSS %.1f MiB at the end of the settle <= %.1f "
                 "MiB (the most seen before, scrapes included) + 2 MiB",
                 end.proc.rss_mb, before_end_max));
  checks.Add(memlock_max == memlock_min,
             Fmt("churn: BPF map memlock constant: %.1f .. %.1f KiB", double(memlock_min) / 1024,
                 double(memlock_max) / 1024));
  checks.Add(storage_max <= o.concurrency && end.kernel.storage_entries == 0,
             Fmt("churn: socket storage bounded by connections in flight: at most %lld entries "
                 "seen (<= %d in flight), %lld at the end (counted over %s)",
                 storage_max, o.concurrency, end.kernel.storage_entries, counter.Method()));
  checks.Add(end.metrics.ok &&
                 end.metrics.Sum("sockeye_backend_connections_established_total") == established,
             Fmt("churn: counters unchanged after the settle: established %.0f",
                 end.metrics.Sum("sockeye_backend_connections_established_total")));
  // Two Prometheus servers scraping at the same moment (an HA pair): the
  // agent serves both at once (two HTTP workers).
  if (alive) {
    const ProcStatus before = ReadProc(agent.pid());
    Metrics a, b;
    std::thread second([&] { b = Scrape(port, true, true); });
    a = Scrape(port, true, true);
    second.join();
    const ProcStatus after = ReadProc(agent.pid());
    Out("two concurrent scrapes (OpenMetrics, gzip) at %.0f backends: %.0f ms and %.0f ms, %.1f MB "
        "text each; agent VmRSS %.1f -> %.1f MiB, VmHWM %.1f -> %.1f MiB\n",
        end.metrics.Sum("sockeye_backends"), a.scrape_ms, b.scrape_ms, a.text_mb, before.rss_mb,
        after.rss_mb, before.hwm_mb, after.hwm_mb);
    checks.Add(a.ok && b.ok, "churn: both concurrent scrapes served" +
                                 (a.ok && b.ok ? std::string() : ": " + a.error + " " + b.error));
  }
  Fetched health = Fetch(port, "/healthz", false, false);
  checks.Add(alive && health.status == 200, Fmt("churn: agent alive and /healthz %d after %.0f s",
                                                health.status, SecondsSince(t0)));
  const std::string exit = agent.Stop();
  checks.Add(agent.clean_exit(), "churn: agent stopped with SIGTERM: " + exit);
  if (!agent.clean_exit()) Out("%s", agent.LogTail(30).c_str());
}

}  // namespace sockeye::bench::churn
