// Kernel-side churn and live-backend memory of the real agent binary.
//
//   sudo build/bench/churn --agent build/sockeye [--phase both|live|churn]
//   sudo build/bench/churn --phase load [...]   (no agent: the churn load alone)
//        [--connections 100000] [--addresses 10000] [--ports 10] [--rate 1000]
//        [--live-backends 1000] [--sample-interval 5] [--scrape-interval S|0]
//        [--settle 65] [--concurrency 256] [--load-limit 200] [--base-port 21000]
//
// The bench starts the agent it is given with its default settings, except
// the listen address (a free loopback port) and one --include filter, so
// that other loopback traffic on the host (tests, other benches) cannot
// disturb the counts. All traffic stays on 127.0.0.0/8; the listeners are
// bound to the loopback device.
//
// live phase: a fresh agent; --live-backends (1,000) distinct backends
//   127.202.x.y:P, one keep-alive connection each, a few request/response
//   turns on every connection between scrapes (text, then gzip +
//   OpenMetrics as Prometheus asks). Reports the agent's peak RSS while it
//   holds that many live backends (VmHWM, reset with clear_refs after
//   start-up, and the lifetime one) and checks the counts.
//
// churn phase: a fresh agent; --connections (100,000) short connections
//   to distinct backends: --addresses (10,000) addresses 127.201.x.y times
//   --ports (10) ports, each connection connect, one 16-byte request, one
//   64-byte response, close (the client closes first), paced at --rate per
//   second. Listeners on 0.0.0.0:port bound to lo accept for every
//   127.201.x.y. Every --sample-interval the bench records the agent's RSS
//   and CPU, the memlock of each of its BPF maps (fdinfo), the live entries
//   of its socket-storage map (an iterator, churn_count.bpf.c) and the
//   agent's own metrics (scraped with gzip, as Prometheus does; with
//   --scrape-interval only that often, 0 = only for the checks, to see the
//   agent's memory without scrape buffers). After the load it checks that
//   the agent counted exactly the connections, requests and bytes made,
//   that (overflow) holds everything beyond --max-backends, that memory
//   stopped growing, and that the agent still serves and exits cleanly.

#include <bpf/libbpf.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "bench/churn/common.h"
#include "bench/churn/kernel_view.h"
#include "bench/churn/load.h"
#include "bench/churn/phases.h"
#include "bench/churn/server.h"

namespace {

using namespace sockeye::bench::churn;

std::string AgentVersion(const std::string& agent) {
  std::string cmd = "'" + agent + "' --version 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "?";
  char buf[256] = {};
  std::string out;
  while (std::fgets(buf, sizeof(buf), p)) out += buf;
  pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

int Usage() {
  std::fprintf(
      stderr,
      "usage: churn (--agent PATH [--phase both|live|churn] | --phase load) [--connections N] "
      "[--addresses N] [--ports N] [--rate PER_S] [--concurrency N] "
      "[--live-backends N] [--live-rounds N] [--live-scrapes N] "
      "[--sample-interval S] [--scrape-interval S|0] [--settle S] [--load-limit S] "
      "[--base-port P]\n");
  return 2;
}

// The server on the first free block of --ports ports from --base-port on,
// in steps of 100; 0 if none.
uint16_t ListenFrom(Server& server, uint16_t base, int ports) {
  std::string error;
  for (int attempt = 0; attempt < 20; ++attempt) {
    error.clear();
    if (server.Listen(base, ports, &error)) return base;
    base = static_cast<uint16_t>(base + 100);
  }
  std::fprintf(stderr, "churn: cannot listen: %s\n", error.c_str());
  return 0;
}

int RunLoadOnly(const Options& o) {
  Server server;
  const uint16_t base = ListenFrom(server, o.base_port, o.ports);
  if (base == 0) return 1;
  Out("churn load: %d connections to %s (%d addresses x %d ports from %u), %.1f/s, at most %d in "
      "flight, no new connections after %.0f s\n",
      o.connections, kChurnNet, o.addresses, o.ports, base, o.rate, o.concurrency, o.load_limit);
  ChurnProgress progress;
  const ChurnResult r = DriveChurn(o, base, &progress);
  server.Stop();
  for (const auto& [what, count] : r.errors)
    Out("  error %-40s %llu\n", what.c_str(), static_cast<unsigned long long>(count));
  const auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  Out("churn-load: seconds=%.1f started=%llu established=%llu completed=%llu failed_at_once=%llu "
      "failed_later=%llu protocol_errors=%llu abandoned=%llu bytes_sent=%llu bytes_received=%llu "
      "server_accepted=%llu base_port=%u\n",
      r.seconds, u(r.started), u(r.established), u(r.completed), u(r.failed_at_once),
      u(r.failed_later), u(r.protocol_errors), u(r.abandoned), u(r.bytes_sent), u(r.bytes_received),
      u(server.accepted.load()), base);
  const bool clean = r.completed == r.started && r.failed_at_once == 0 && r.failed_later == 0 &&
                     r.protocol_errors == 0 && r.abandoned == 0;
  return clean ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return Usage();
    const char* v = argv[++i];
    if (flag == "--agent")
      o.agent = v;
    else if (flag == "--phase")
      o.phase = v;
    else if (flag == "--connections")
      o.connections = std::atoi(v);
    else if (flag == "--addresses")
      o.addresses = std::atoi(v);
    else if (flag == "--ports")
      o.ports = std::atoi(v);
    else if (flag == "--rate")
      o.rate = std::atof(v);
    else if (flag == "--concurrency")
      o.concurrency = std::atoi(v);
    else if (flag == "--live-backends")
      o.live_backends = std::atoi(v);
    else if (flag == "--live-rounds")
      o.live_rounds = std::atoi(v);
    else if (flag == "--live-scrapes")
      o.live_scrapes = std::atoi(v);
    else if (flag == "--sample-interval")
      o.sample_interval = std::atof(v);
    else if (flag == "--settle")
      o.settle = std::atof(v);
    else if (flag == "--scrape-interval")
      o.scrape_interval = std::atof(v);
    else if (flag == "--load-limit")
      o.load_limit = std::atof(v);
    else if (flag == "--base-port")
      o.base_port = static_cast<uint16_t>(std::atoi(v));
    else
      return Usage();
  }
  const bool load_only = o.phase == "load";
  if ((o.agent.empty() && !load_only) ||
      (o.phase != "both" && o.phase != "live" && o.phase != "churn" && !load_only))
    return Usage();
  const int max_addresses = 256 * kHostsPerThirdOctet;
  if (o.connections < 1 || o.addresses < 1 || o.addresses > max_addresses || o.ports < 1 ||
      o.ports > 100 || o.rate <= 0 || o.concurrency < 1 || o.live_backends < 1 ||
      o.live_backends > max_addresses || o.live_scrapes < 1 || o.sample_interval <= 0) {
    std::fprintf(stderr, "churn: a value is out of range (at most %d addresses, 100 ports)\n",
                 max_addresses);
    return 2;
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "churn: needs root (runs the agent, reads its BPF maps, binds to lo)\n");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  if (load_only) return RunLoadOnly(o);
  char resolved[PATH_MAX];
  if (!realpath(o.agent.c_str(), resolved) || access(resolved, X_OK) != 0) {
    std::fprintf(stderr, "churn: %s is not an executable\n", o.agent.c_str());
    return 1;
  }
  o.agent = resolved;
  libbpf_set_print(nullptr);

  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  utsname un{};
  uname(&un);
  const time_t now = time(nullptr);
  char date[64];
  std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  Out("# command: %s\n", command.c_str());
  Out("# %s; %ld CPUs, Linux %s; agent %s = %s\n", date, sysconf(_SC_NPROCESSORS_ONLN), un.release,
      o.agent.c_str(), AgentVersion(o.agent).c_str());
  Out("# requests %zu B, responses %zu B; all traffic on 127.0.0.0/8\n", kRequestBytes,
      kResponseBytes);

  char dir_template[] = "/tmp/sockeye-churn.XXXXXX";
  const char* dir = mkdtemp(dir_template);
  if (!dir) {
    std::perror("churn: mkdtemp");
    return 1;
  }
  const std::string workdir = dir;

  StorageCounter counter;
  std::string error;
  const StorageCost cost = ReadStorageCost();

  // --ports consecutive free ports, from --base-port on in steps of 100.
  Server server;
  const uint16_t base = ListenFrom(server, o.base_port, o.ports);
  if (base == 0) return 1;

  Checks checks;
  const auto t0 = Clock::now();
  if (o.phase == "both" || o.phase == "live") RunLive(o, base, counter, cost, workdir, checks);
  if (o.phase == "both" || o.phase == "churn") RunChurn(o, base, counter, cost, workdir, checks);
  server.Stop();
  Out("\nserver: accepted %llu, answered %llu requests, closed %llu, errors %llu\n",
      static_cast<unsigned long long>(server.accepted.load()),
      static_cast<unsigned long long>(server.served.load()),
      static_cast<unsigned long long>(server.closed.load()),
      static_cast<unsigned long long>(server.errors.load()));
  Out("total %.0f s\n", SecondsSince(t0));
  checks.Summary();
  const bool ok = checks.AllPassed();
  if (ok) {
    std::remove((workdir + "/agent-live.log").c_str());
    std::remove((workdir + "/agent-churn.log").c_str());
    rmdir(workdir.c_str());
  } else {
    Out("agent logs kept in %s\n", workdir.c_str());
  }
  return ok ? 0 : 1;
}
