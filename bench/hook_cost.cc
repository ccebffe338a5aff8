// Hook cost benchmark. Why this file is long (~900 lines): it is one
// measurement whose phases (unfollowed, followed, frontend, unix and UDP,
// batched, the cgroup hooks) difference the same statistics snapshots in one
// loop and are
// reported side by side; split apart, each piece would need that state passed
// around. Its traffic drivers already live in bench_util.h.
//
// Hook cost: nanoseconds each sockeye BPF program adds per invocation over
// an empty tp_btf program on the same tracepoint, measured side by side in
// one run with the kernel's BPF statistics, separately for sockets sockeye
// does not follow and for sockets it follows.
//
//   sudo ./build/bench/hook_cost [--rounds N] [--connections N] [--requests N] [--cpu N]
//                                [--storage-timing 1] [--probe-mode MODE] [--hot-slots N]
//                                [--ringbuf-size BYTES] [--batch N] [--cgroup-warmup 0|1]
//                                [--http-responses 0|1] [--cgroup-split N] [--frontends 0|1]
//                                [--ready-split N]
//
// --probe-mode is the agent's (default auto: no send hook, so the
// sock_send_length row reads "not attached", and responses timed at
// sk_data_ready where the kernel has it, so the tcp_probe row reads "not
// attached" too; segment times them at tcp_probe; tracepoint attaches the
// send hook and uses tcp_probe).
// By default the client and server threads run wherever the scheduler puts
// them, so on loopback the send hook (client CPU) and tcp_probe (softirq on
// the responding server's CPU) usually run on different CPUs and every
// connection-storage line they share crosses between CPUs once per request.
// --cpu N pins the whole process to CPU N: every hook then runs on one CPU,
// as on a proxy whose NIC steers a flow's packets to the CPU of the worker
// that owns it (RSS/RFS).
//
// --hot-slots is the agent's too (default 8192; 0 keeps every followed
// connection's per-segment state in socket storage, the fallback path), so
// the two paths can be alternated in one window; so is --ringbuf-size (in
// bytes, a power of two of at least 4096). This bench drains the ring only
// between rounds, so a ring smaller than a round's records (~1 MiB at the
// defaults) measures the forced wakeups past its quarter mark instead.
//
// A third phase per round repeats the exchanges over a unix stream pair, then
// a UDP pair on loopback (a row each): sk_data_ready fires for those sockets too,
// and the cgroup_skb ingress program for the UDP pair.
//
// The HTTP status program (cgroup_skb/ingress on the cgroup v2 root) has its
// own empty and counting programs attached by hand to the same cgroup, before
// the agent, behind an unmeasured first one (--cgroup-warmup 0 leaves that
// out, to see whether it matters). Its row is per received packet; the line
// under the table gives its followed cost per response, the unit its target
// is set in. Responses start with an HTTP/1.1 status line, so that program
// reads each one (--http-responses 0: padding only, which it gives up on
// after a connection's first response). --cgroup-split N (1-7) adds one of
// that program's partial paths (bench_hooks.bpf.c) as a row of its own; it
// runs before sockeye's, so the cgroup_skb rows of that run read low. 8-12
// are the egress program's partial paths on a frontend socket, and
// --ready-split N (1-3) sk_data_ready's, read against the frontend phase.
//
// --frontends 1 adds a phase per round (F): the same exchanges with a third
// server, 127.0.0.29, whose listener is a frontend listener and whose
// clients sockeye does not follow, so the followed sockets of that phase are
// the server's accepted ones only. Its rows ("... frontend") solve for them
// as phase B does for the client's. With --frontends 0 the egress program
// still runs, following nothing (a frontend address no listener has).
//
// --batch N adds two phases per round (BatchedListener below): the same
// exchanges over N connections at a time, unfollowed then followed, with
// each step for all N in one io_uring_enter(), so N deliveries share one
// kernel entry as a NIC's batch does. The sk_data_ready xN row is their
// cost per invocation.
//
// --storage-timing 1 instead times one socket-storage lookup inside a
// program on tcp_probe for the followed client sockets: the first of the
// invocation and the same lookup repeated (bench_hooks.bpf.c). It is a run
// of its own because that program warms the lines sockeye's would read.
//
// Traffic: loopback request/response (64-byte requests, 512-byte
// responses) to two servers on the same port: 127.0.0.31 (excluded from
// sockeye by its filter, so nothing is followed) and 127.0.0.30 (followed).
// In the followed phase the server's own sockets are still not followed;
// counting programs split each hook's invocations between client and server
// sockets so the followed cost is solved for exactly:
//   followed = (time_B - calls_B_not_client * unfollowed) / calls_B_client
//
// One file past the usual ~400 lines on purpose: one benchmark driver, whose
// traffic helpers serve only main()'s phases and whose phases share one set
// of counters and sums; it reads top to bottom.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/kernel_features.h"
#include "agent/unique_fd.h"
#include "bench_hooks.skel.h"
#include "tests/privileged/loopback_server.h"

namespace {

using sockeye::testing::Client;
using sockeye::testing::LoopbackServer;

struct LinkDeleter {
  void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

// Attaches the bench's cgroup_skb/ingress programs to the cgroup v2 root, in
// the order they run: the kernel runs a cgroup's multi-attached programs in
// attach order, and the agent attaches its own after these. Returns the root,
// or "" (and no links) where there is none or attaching fails.
std::string AttachCgroupIngress(bench_hooks_bpf* bench, bool warmup, bpf_program* split,
                                std::vector<LinkPtr>* links) {
  const std::string root = sockeye::Cgroup2MountPoint();
  if (root.empty()) return "";
  sockeye::UniqueFd cgroup(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroup.valid()) return "";
  std::vector<bpf_program*> progs;
  if (warmup) progs.push_back(bench->progs.warm_cgroup_ingress);
  progs.push_back(bench->progs.empty_cgroup_ingress);
  progs.push_back(bench->progs.count_cgroup_ingress);
  if (warmup) progs.push_back(bench->progs.warm_cgroup_egress);
  progs.push_back(bench->progs.empty_cgroup_egress);
  progs.push_back(bench->progs.count_cgroup_egress);
  if (split) progs.push_back(split);
  for (bpf_program* prog : progs) {
    LinkPtr link(bpf_program__attach_cgroup(prog, cgroup.get()));
    if (!link) {
      std::fprintf(stderr, "hook_cost: attaching %s to %s: %s\n", bpf_program__name(prog),
                   root.c_str(), std::strerror(errno));
      links->clear();
      return "";
    }
    links->push_back(std::move(link));
  }
  return root;
}

struct Stat {
  uint64_t ns = 0;
  uint64_t calls = 0;
};
using Stats = std::map<std::string, Stat>;

Stat ProgStat(bpf_program* prog) {
  bpf_prog_info info = {};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) != 0) return {};
  return {info.run_time_ns, info.run_cnt};
}

Stats Snapshot(const sockeye::Agent& agent, bench_hooks_bpf* bench) {
  Stats s;
  for (const auto& p : agent.probes().ProgramStatistics()) {
    // The status program runs as one of two builds (agent/status_cast.h);
    // the agent's "probe http_status" line says which. One row for either.
    std::string name = p.name;
    if (name.ends_with("_cast")) name.resize(name.size() - 5);
    s[name] = {p.run_time_ns, p.run_count};
  }
  bpf_program* prog;
  bpf_object__for_each_program(prog, bench->obj) s[bpf_program__name(prog)] = ProgStat(prog);
  return s;
}

Stat Delta(const Stats& before, const Stats& after, const std::string& name) {
  auto b = before.count(name) ? before.at(name) : Stat{};
  auto a = after.count(name) ? after.at(name) : Stat{};
  return {a.ns - b.ns, a.calls - b.calls};
}

// The host's TCP segments sent so far (Tcp: OutSegs in /proc/net/snmp), 0
// if unreadable.
uint64_t TcpOutSegments() {
  FILE* f = std::fopen("/proc/net/snmp", "r");
  if (!f) return 0;
  char header[1024], values[1024];
  uint64_t result = 0;
  while (std::fgets(header, sizeof(header), f) && std::fgets(values, sizeof(values), f)) {
    if (std::strncmp(header, "Tcp:", 4) != 0) continue;
    // Same field order on both lines: find OutSegs' column in the header.
    int column = -1, i = 0;
    for (char* tok = std::strtok(header, " \n"); tok; tok = std::strtok(nullptr, " \n"), ++i)
      if (std::strcmp(tok, "OutSegs") == 0) column = i;
    i = 0;
    for (char* tok = std::strtok(values, " \n"); tok; tok = std::strtok(nullptr, " \n"), ++i)
      if (i == column) result = std::strtoull(tok, nullptr, 10);
    break;
  }
  std::fclose(f);
  return result;
}

void Drive(const std::string& address, uint16_t port, int connections, int requests) {
  for (int c = 0; c < connections; ++c) {
    Client client(address, port);
    for (int r = 0; r < requests; ++r) client.Request(64, 512);
  }
}

// Phase C: the same request/response exchanges over sockets that are not
// TCP at all, which sk_data_ready also fires for: a unix stream socket pair
// (what nginx uses to reach php-fpm, for one) and a UDP pair on loopback.
// sockeye leaves them at its first test, like an unfollowed TCP socket.
bool ExchangeOver(int a, int b, int exchanges, bool datagram) {
  // A lost datagram or a failed echo ends the phase in 5 s rather than never.
  const timeval timeout{5, 0};
  for (int fd : {a, b}) {
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) != 0) return false;
  }
  std::thread echo([=] {
    char buf[512] = {};
    for (int i = 0; i < exchanges; ++i) {
      if (recv(b, buf, 64, MSG_WAITALL) != 64) return;
      if (send(b, buf, 512, 0) != 512) return;
    }
  });
  char buf[512] = {};
  bool ok = true;
  for (int i = 0; i < exchanges && ok; ++i) {
    ok = send(a, buf, 64, 0) == 64 && recv(a, buf, 512, datagram ? 0 : MSG_WAITALL) == 512;
  }
  echo.join();
  return ok;
}

bool DriveUnixPair(int exchanges) {
  int unix_pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, unix_pair) != 0) return false;
  sockeye::UniqueFd ua(unix_pair[0]), ub(unix_pair[1]);
  return ExchangeOver(ua.get(), ub.get(), exchanges, false);
}

bool DriveUdpPair(int exchanges) {
  sockeye::UniqueFd udp_a(socket(AF_INET, SOCK_DGRAM, 0)), udp_b(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(0x7f000020);  // 127.0.0.32
  socklen_t len = sizeof(addr);
  sockaddr_in a_addr = addr, b_addr = addr;
  if (bind(udp_a.get(), reinterpret_cast<sockaddr*>(&a_addr), len) != 0 ||
      bind(udp_b.get(), reinterpret_cast<sockaddr*>(&b_addr), len) != 0 ||
      getsockname(udp_a.get(), reinterpret_cast<sockaddr*>(&a_addr), &len) != 0 ||
      getsockname(udp_b.get(), reinterpret_cast<sockaddr*>(&b_addr), &len) != 0 ||
      connect(udp_a.get(), reinterpret_cast<sockaddr*>(&b_addr), len) != 0 ||
      connect(udp_b.get(), reinterpret_cast<sockaddr*>(&a_addr), len) != 0)
    return false;
  return ExchangeOver(udp_a.get(), udp_b.get(), exchanges, true);
}

// Phases D and E (--batch N): request/response exchanges over N
// connections at a time, each step for all N being one io_uring_enter(), so
// the N receiving sockets' sk_data_ready run back to back in one kernel
// entry -- as a NIC's NAPI poll delivers a batch of segments for many
// sockets in one softirq, where the loopback exchanges above make every
// delivery a kernel entry of its own (and, on a VM without PCID, pay every
// first touch again after the TLB flush that entry brought).
class BatchedListener {
 public:
  // Listens on 127.0.0.30 and 127.0.0.31 (followed and not) on one port.
  bool Open() {
    for (int i = 0; i < 2; ++i) {
      fds_[i] = sockeye::UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in addr = Address(i == 0);
      const int one = 1;
      socklen_t len = sizeof(addr);
      if (!fds_[i].valid() ||
          setsockopt(fds_[i].get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
          bind(fds_[i].get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
          getsockname(fds_[i].get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
          listen(fds_[i].get(), 1024) != 0)
        return false;
      port_ = ntohs(addr.sin_port);
    }
    return true;
  }
  uint16_t port() const { return port_; }
  sockaddr_in Address(bool followed) const {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(followed ? 0x7f00001e : 0x7f00001f);  // 127.0.0.30 / .31
    addr.sin_port = htons(port_);
    return addr;
  }
  int fd(bool followed) const { return fds_[followed ? 0 : 1].get(); }

 private:
  sockeye::UniqueFd fds_[2];
  uint16_t port_ = 0;
};

struct BatchedConnections {
  std::vector<sockeye::UniqueFd> clients, servers;
};

std::optional<BatchedConnections> ConnectBatch(const BatchedListener& listener, bool followed,
                                               int width) {
  BatchedConnections c;
  const sockaddr_in addr = listener.Address(followed);
  for (int i = 0; i < width; ++i) {
    c.clients.emplace_back(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (connect(c.clients.back().get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) !=
        0)
      return std::nullopt;
    c.servers.emplace_back(accept4(listener.fd(followed), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c.servers.back().valid()) return std::nullopt;
  }
  return c;
}

// One step: `bytes` sent (or received) on every socket in one io_uring_enter().
bool BatchStep(io_uring* ring, const std::vector<sockeye::UniqueFd>& fds, bool send_step,
               size_t bytes) {
  static char buffer[512];
  for (const auto& fd : fds) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    if (!sqe) return false;
    if (send_step)
      io_uring_prep_send(sqe, fd.get(), buffer, bytes, 0);
    else
      io_uring_prep_recv(sqe, fd.get(), buffer, bytes, MSG_WAITALL);
  }
  if (io_uring_submit_and_wait(ring, static_cast<unsigned>(fds.size())) < 0) return false;
  bool ok = true;
  for (size_t i = 0; i < fds.size(); ++i) {
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe(ring, &cqe) != 0) return false;
    ok = ok && cqe->res == static_cast<int>(bytes);
    io_uring_cqe_seen(ring, cqe);
  }
  return ok;
}

bool DriveBatched(io_uring* ring, const BatchedConnections& c, int exchanges) {
  for (int i = 0; i < exchanges; ++i) {
    if (!BatchStep(ring, c.clients, true, 64) || !BatchStep(ring, c.servers, false, 64) ||
        !BatchStep(ring, c.servers, true, 512) || !BatchStep(ring, c.clients, false, 512))
      return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5, connections = 20, requests = 500, cpu = -1, storage_timing = 0;
  int hot_slots = 8192, batch = 0, cgroup_warmup = 1, http_responses = 1, cgroup_split = 0;
  int frontends = 0, ready_split = 0;
  size_t ringbuf_bytes = sockeye::Config{}.ringbuf_bytes;
  const char* probe_mode_flag = sockeye::ProbeModeName(sockeye::ProbeMode::kAuto);
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    int value = std::atoi(argv[i + 1]);
    if (flag == "--probe-mode")
      probe_mode_flag = argv[i + 1];
    else if (flag == "--rounds")
      rounds = value;
    else if (flag == "--connections")
      connections = value;
    else if (flag == "--requests")
      requests = value;
    else if (flag == "--cpu")
      cpu = value;
    else if (flag == "--storage-timing")
      storage_timing = value;
    else if (flag == "--hot-slots")
      hot_slots = value;
    else if (flag == "--batch")
      batch = value;
    else if (flag == "--cgroup-warmup")
      cgroup_warmup = value;
    else if (flag == "--http-responses")
      http_responses = value;
    else if (flag == "--cgroup-split")
      cgroup_split = value;
    else if (flag == "--frontends")
      frontends = value;
    else if (flag == "--ready-split")
      ready_split = value;
    else if (flag == "--ringbuf-size")
      ringbuf_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    else {
      std::fprintf(stderr, "hook_cost: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (ringbuf_bytes < 4096 || (ringbuf_bytes & (ringbuf_bytes - 1)) != 0) {
    std::fprintf(stderr, "hook_cost: --ringbuf-size is in bytes, a power of two >= 4096\n");
    return 2;
  }
  // The empty reference programs (bench_hooks.bpf.c) sit on the tracepoints
  // that these modes attach to.
  const std::optional<sockeye::ProbeMode> probe_mode = sockeye::ProbeModeFromName(probe_mode_flag);
  if (probe_mode != sockeye::ProbeMode::kAuto && probe_mode != sockeye::ProbeMode::kTracepoint &&
      probe_mode != sockeye::ProbeMode::kSegment) {
    std::fprintf(stderr, "hook_cost: --probe-mode is auto, segment or tracepoint on this bench\n");
    return 2;
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "hook_cost: needs root (BPF)\n");
    return 1;
  }
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
      std::perror("hook_cost: sched_setaffinity");
      return 1;
    }
  }
  int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (stats_fd < 0) {
    std::perror("hook_cost: bpf_enable_stats");
    return 1;
  }

  LoopbackServer followed("127.0.0.30");
  LoopbackServer unfollowed("127.0.0.31", sockeye::testing::Behavior::kRespond,
                            std::chrono::milliseconds(0), followed.port());
  // Phase F's (--frontends 1): its accepted sockets followed, its clients not.
  LoopbackServer frontend("127.0.0.29", sockeye::testing::Behavior::kRespond,
                          std::chrono::milliseconds(0), followed.port());
  const uint16_t port = followed.port();
  if (http_responses) {
    // What the status program reads; the other programs ignore the payload.
    for (LoopbackServer* server : {&followed, &unfollowed, &frontend})
      server->set_response_head("HTTP/1.1 200 OK\r\n");
  }
  BatchedListener batch_listener;
  io_uring ring{};
  if (batch < 0 || batch > 4096) {
    std::fprintf(stderr, "hook_cost: --batch is 0 (off) to 4096 connections\n");
    return 2;
  }
  if (batch > 0) {
    if (!batch_listener.Open()) {
      std::perror("hook_cost: batched phase listeners");
      return 1;
    }
    if (int err = io_uring_queue_init(static_cast<unsigned>(batch), &ring, 0); err < 0) {
      std::fprintf(stderr, "hook_cost: io_uring_queue_init: %s\n", std::strerror(-err));
      return 1;
    }
  }

  bench_hooks_bpf* bench = bench_hooks_bpf__open();
  if (!bench) return 1;
  bench->rodata->server_port = port;
  bench->rodata->batch_port = batch_listener.port();
  bpf_program__set_autoload(bench->progs.time_storage_lookup, storage_timing != 0);
  // --cgroup-split N (1-7): one of the status program's partial paths
  // (bench_hooks.bpf.c), a row of its own.
  bpf_program* const splits[] = {
      bench->progs.split_cgroup_sk,      bench->progs.split_cgroup_cast,
      bench->progs.split_cgroup_storage, bench->progs.split_cgroup_rdonly,
      bench->progs.split_cgroup_loads,   bench->progs.split_cgroup_headers,
      bench->progs.split_cgroup_direct,  bench->progs.split_egress_storage,
      bench->progs.split_egress_slot,    bench->progs.split_egress_headers,
      bench->progs.split_egress_payload, bench->progs.split_egress_record};
  bpf_program* const ready_splits[] = {bench->progs.split_ready_storage,
                                       bench->progs.split_ready_slot, bench->progs.split_ready_tcp};
  if (cgroup_split < 0 || cgroup_split > static_cast<int>(std::size(splits)) || ready_split < 0 ||
      ready_split > static_cast<int>(std::size(ready_splits)) || (cgroup_split && ready_split)) {
    std::fprintf(stderr,
                 "hook_cost: --cgroup-split is 0 (off) or 1 to 12, --ready-split 0 or 1 to 3, "
                 "one of them per run\n");
    return 2;
  }
  if ((cgroup_split >= 8 || ready_split) && !frontends) {
    std::fprintf(stderr, "hook_cost: the frontend partial paths need --frontends 1\n");
    return 2;
  }
  bpf_program* const split = cgroup_split ? splits[cgroup_split - 1] : nullptr;
  bpf_program* const ready = ready_split ? ready_splits[ready_split - 1] : nullptr;
  for (bpf_program* prog : splits) bpf_program__set_autoload(prog, prog == split);
  for (bpf_program* prog : ready_splits) bpf_program__set_autoload(prog, prog == ready);
  // The row a partial path is read against, and its program: the cgroup
  // ones attach by hand (AttachCgroupIngress), sk_data_ready's with the
  // skeleton, before the agent's in both cases.
  const char* const split_row = cgroup_split >= 8 ? "cgroup_skb egress"
                                : ready_split     ? "sk_data_ready"
                                                  : "cgroup_skb ingress";
  bpf_program* const variant = split ? split : ready;
  if (bench_hooks_bpf__load(bench) || bench_hooks_bpf__attach(bench)) {
    std::fprintf(stderr, "hook_cost: loading the reference programs failed\n");
    return 1;
  }
  std::vector<LinkPtr> cgroup_links;
  const std::string cgroup_root =
      AttachCgroupIngress(bench, cgroup_warmup != 0, split, &cgroup_links);

  sockeye::Config config;
  config.listen_address = "127.0.0.1:0";
  config.keep_capabilities = true;
  std::string error;
  config.include.push_back(*sockeye::ParseCidrMatch("127.0.0.30/32", &error));
  // Frontends on, so that the egress program runs: following nothing (an
  // address no listener has), or with --frontends 1 phase F's server's
  // accepted sockets (the server is this process's own).
  config.frontend_include = {
      *sockeye::ParseCidrMatch(frontends ? "127.0.0.29/32" : "192.0.2.1/32", &error)};
  config.frontends_skip_own_sockets = false;
  config.hot_slots = static_cast<uint32_t>(hot_slots);
  config.ringbuf_bytes = ringbuf_bytes;
  config.probe_mode = *probe_mode;
  auto agent = sockeye::Agent::Start(config, &error);
  if (!agent) {
    std::fprintf(stderr, "hook_cost: %s\n", error.c_str());
    return 1;
  }

  // hook, sockeye program, empty program, counter index
  constexpr size_t kBenchCounters =
      sizeof(bench->bss->invocations) / sizeof(bench->bss->invocations[0]);
  struct Hook {
    const char* name;
    const char* sockeye;
    const char* empty;
    int index;
  };
  const Hook hooks[] = {
      {"inet_sock_set_state", "on_inet_sock_set_state", "empty_inet_sock_set_state", 0},
      // Runs for every state change too, doing the work only for the ones
      // the kernel skipped in the main program (hook_guards).
      {"inet_sock_set_state sb", "on_inet_sock_set_state_standby", "empty_inet_sock_set_state", 0},
      {"sock_send_length", "on_sock_send_length", "empty_sock_send_length", 1},
      {"tcp_probe", "on_tcp_probe", "empty_tcp_probe", 2},
      {"sk_data_ready", "on_sk_data_ready", "empty_sk_data_ready", 3},
      // Every received packet of the cgroup's sockets, pure ACKs included.
      {"cgroup_skb ingress", "on_cgroup_ingress", "empty_cgroup_ingress", 4},
      // Every sent packet: the frontend side's status and response time
      // (with --frontends 1 the server's accepted sockets are followed).
      {"cgroup_skb egress", "on_cgroup_egress", "empty_cgroup_egress", 5},
  };
  std::map<std::string, Stat> unfollowed_sum, followed_sum, empty_sum;
  // --cgroup-split, --ready-split: the variant's run time in phases A, B and F.
  Stat split_sum, split_b_sum, split_f_sum;
  // Phase F (--frontends 1): sockeye's run time and calls, and the calls on
  // the server's (followed) sockets, by row.
  std::map<std::string, Stat> frontend_sum;
  std::map<std::string, uint64_t> frontend_server_calls;
  // Phase B's calls by side (client, server, other), by row; and the TCP
  // segments the host sent meanwhile (/proc/net/snmp), which on loopback it
  // also received.
  std::map<std::string, std::array<uint64_t, 3>> phase_b_sides;
  uint64_t phase_b_segments = 0;
  std::map<std::string, uint64_t> followed_client_calls;
  // sk_data_ready (and cgroup_skb ingress, UDP only) on unix and UDP sockets,
  // by row.
  struct OtherSums {
    Stat sockeye, empty;
  };
  std::map<std::string, OtherSums> other_sockets;
  const std::vector<std::pair<const char*, bool (*)(int)>> other_phases = {{"unix", DriveUnixPair},
                                                                           {"udp", DriveUdpPair}};
  // Per hook in the batched phases: D not followed, E followed.
  struct BatchedSums {
    Stat unfollowed, followed, empty;
    uint64_t client_calls = 0;
  };
  std::map<std::string, BatchedSums> batched;

  for (int round = 0; round < rounds; ++round) {
    // Phase A: nothing followed.
    Stats a0 = Snapshot(*agent, bench);
    Drive(unfollowed.address(), port, connections, requests);
    Stats a1 = Snapshot(*agent, bench);
    // Phase B: the client side followed.
    // Indexed by Hook::index, the bench program's counter.
    uint64_t sides_before[kBenchCounters][3];
    for (size_t i = 0; i < kBenchCounters; ++i)
      for (size_t side = 0; side < 3; ++side)
        sides_before[i][side] = bench->bss->invocations[i][side];
    const uint64_t segments_before = TcpOutSegments();
    Stats b0 = Snapshot(*agent, bench);
    Drive(followed.address(), port, connections, requests);
    agent->Tick(0);
    Stats b1 = Snapshot(*agent, bench);
    phase_b_segments += TcpOutSegments() - segments_before;
    uint64_t sides_after[kBenchCounters][3];
    for (size_t i = 0; i < kBenchCounters; ++i)
      for (size_t side = 0; side < 3; ++side)
        sides_after[i][side] = bench->bss->invocations[i][side];
    // Phase F: the frontend side followed (its server's accepted sockets).
    Stats f0 = Snapshot(*agent, bench), f1 = f0;
    if (frontends) {
      Drive(frontend.address(), port, connections, requests);
      agent->Tick(0);
      f1 = Snapshot(*agent, bench);
      for (const auto& h : hooks) {
        const Stat uf = Delta(f0, f1, h.sockeye), ef = Delta(f0, f1, h.empty);
        frontend_sum[h.name].ns += uf.ns;
        frontend_sum[h.name].calls += uf.calls;
        empty_sum[h.name].ns += ef.ns;
        empty_sum[h.name].calls += ef.calls;
        frontend_server_calls[h.name] +=
            bench->bss->invocations[h.index][1] - sides_after[h.index][1];
      }
    }
    if (variant) {
      const Stat sa = Delta(a0, a1, bpf_program__name(variant)),
                 sb = Delta(b0, b1, bpf_program__name(variant)),
                 sf = Delta(f0, f1, bpf_program__name(variant));
      split_sum.ns += sa.ns;
      split_sum.calls += sa.calls;
      split_b_sum.ns += sb.ns;
      split_b_sum.calls += sb.calls;
      split_f_sum.ns += sf.ns;
      split_f_sum.calls += sf.calls;
    }
    for (const auto& h : hooks) {
      Stat ua = Delta(a0, a1, h.sockeye), ub = Delta(b0, b1, h.sockeye);
      Stat ea = Delta(a0, a1, h.empty), eb = Delta(b0, b1, h.empty);
      unfollowed_sum[h.name].ns += ua.ns;
      unfollowed_sum[h.name].calls += ua.calls;
      followed_sum[h.name].ns += ub.ns;
      followed_sum[h.name].calls += ub.calls;
      empty_sum[h.name].ns += ea.ns + eb.ns;
      empty_sum[h.name].calls += ea.calls + eb.calls;
      followed_client_calls[h.name] += sides_after[h.index][0] - sides_before[h.index][0];
      for (size_t side = 0; side < 3; ++side)
        phase_b_sides[h.name][side] += sides_after[h.index][side] - sides_before[h.index][side];
    }
    agent->Tick(0);
    // Phase C: unix, then UDP sockets (sk_data_ready only).
    for (auto& [kind, drive] : other_phases) {
      Stats c0 = Snapshot(*agent, bench);
      if (!drive(connections * requests)) {
        std::fprintf(stderr, "hook_cost: %s exchanges: %s\n", kind, std::strerror(errno));
        return 1;
      }
      Stats c1 = Snapshot(*agent, bench);
      // program name suffix, row
      const std::pair<const char*, const char*> rows[] = {{"sk_data_ready", "sk_data_ready"},
                                                          {"cgroup_ingress", "cgroup_skb ingress"}};
      for (const auto& [hook, row] : rows) {
        // cgroup_skb runs for inet sockets only; what it counted during the
        // unix phase was other sockets' traffic.
        if (std::string_view(kind) == "unix" && std::string_view(hook) == "cgroup_ingress")
          continue;
        Stat uc = Delta(c0, c1, std::string("on_") + hook),
             ec = Delta(c0, c1, std::string("empty_") + hook);
        OtherSums& sums = other_sockets[std::string(row) + " " + kind];
        sums.sockeye.ns += uc.ns;
        sums.sockeye.calls += uc.calls;
        sums.empty.ns += ec.ns;
        sums.empty.calls += ec.calls;
      }
    }
    if (batch == 0) continue;
    // Phases D and E: batched exchanges, not followed then followed. The
    // connections open and close outside the measured interval.
    const int exchanges = std::max(1, connections * requests / batch);
    for (bool follow : {false, true}) {
      std::optional<BatchedConnections> conns = ConnectBatch(batch_listener, follow, batch);
      if (!conns) {
        std::perror("hook_cost: batched connections");
        return 1;
      }
      uint64_t batch_client_before[kBenchCounters];
      for (size_t i = 0; i < kBenchCounters; ++i)
        batch_client_before[i] = bench->bss->invocations[i][0];
      Stats d0 = Snapshot(*agent, bench);
      if (!DriveBatched(&ring, *conns, exchanges)) {
        std::fprintf(stderr, "hook_cost: a batched exchange failed\n");
        return 1;
      }
      Stats d1 = Snapshot(*agent, bench);
      for (const auto& h : hooks) {
        BatchedSums& sums = batched[h.name];
        const Stat run = Delta(d0, d1, h.sockeye), empty = Delta(d0, d1, h.empty);
        Stat& sum = follow ? sums.followed : sums.unfollowed;
        sum.ns += run.ns;
        sum.calls += run.calls;
        sums.empty.ns += empty.ns;
        sums.empty.calls += empty.calls;
        if (follow)
          sums.client_calls += bench->bss->invocations[h.index][0] - batch_client_before[h.index];
      }
      conns.reset();
      agent->Tick(0);
    }
  }

  std::printf(
      "hook cost, %d rounds x %d phases x %d connections x %d requests (64 B / 512 B), %s, "
      "--probe-mode %s, --hot-slots %d, --ringbuf-size %zu, --cgroup-warmup %d, --http-responses "
      "%d, --frontends %d, --cgroup-split %d, --ready-split %d\n",
      rounds, frontends ? 3 : 2, connections, requests,
      cpu >= 0 ? ("all threads on CPU " + std::to_string(cpu)).c_str() : "threads unpinned",
      sockeye::ProbeModeName(*probe_mode), hot_slots, ringbuf_bytes, cgroup_warmup, http_responses,
      frontends, cgroup_split, ready_split);
  std::printf("%-22s %12s %10s %14s %14s %12s %12s\n", "hook", "calls", "empty ns", "unfollowed ns",
              "followed ns", "+unfollowed", "+followed");
  for (const auto& h : hooks) {
    const Stat& e = empty_sum[h.name];
    const Stat& u = unfollowed_sum[h.name];
    const Stat& f = followed_sum[h.name];
    double empty_ns = e.calls ? double(e.ns) / double(e.calls) : 0;
    double unfollowed_ns = u.calls ? double(u.ns) / double(u.calls) : 0;
    uint64_t client = followed_client_calls[h.name];
    if (u.calls + f.calls == 0) {
      const bool cgroup = std::string_view(h.name) == "cgroup_skb ingress";
      std::printf(
          "%-22s %12s %10.1f   not attached (%s)\n", h.name, "0", empty_ns,
          cgroup ? (cgroup_root.empty() ? "no cgroup v2 root" : "see the agent's log")
                 : ("--probe-mode " + std::string(sockeye::ProbeModeName(*probe_mode))).c_str());
      continue;
    }
    double followed_ns =
        client ? (double(f.ns) - double(f.calls - client) * unfollowed_ns) / double(client) : 0;
    std::printf("%-22s %12llu %10.1f %14.1f %14.1f %12.1f %12.1f\n", h.name,
                static_cast<unsigned long long>(u.calls + f.calls), empty_ns, unfollowed_ns,
                followed_ns, unfollowed_ns - empty_ns, followed_ns - empty_ns);
  }
  // Phase F's rows: the server's accepted (frontend) sockets, solved for
  // as phase B's client sockets are.
  for (const auto& h : hooks) {
    const uint64_t server = frontend_server_calls[h.name];
    const Stat& f = frontend_sum[h.name];
    const Stat& u = unfollowed_sum[h.name];
    const Stat& e = empty_sum[h.name];
    if (!server || !u.calls) continue;
    const double empty_ns = e.calls ? double(e.ns) / double(e.calls) : 0;
    const double unfollowed_ns = double(u.ns) / double(u.calls);
    const double frontend_ns =
        (double(f.ns) - double(f.calls - server) * unfollowed_ns) / double(server);
    std::printf("%-22s %12llu %10.1f %14.1f %14.1f %12.1f %12.1f\n",
                (std::string(h.name) + " frontend").c_str(),
                static_cast<unsigned long long>(f.calls), empty_ns, unfollowed_ns, frontend_ns,
                unfollowed_ns - empty_ns, frontend_ns - empty_ns);
  }
  if (variant && split_sum.calls) {
    const Stat& e = empty_sum[split_row];
    const double empty_ns = e.calls ? double(e.ns) / double(e.calls) : 0;
    const double split_ns = double(split_sum.ns) / double(split_sum.calls);
    // Followed as for the table's rows: the followed phase's other calls at
    // the phase A figure, the rest over the followed sockets' calls (phase
    // B's client for the ingress paths, phase F's server for the frontend
    // ones).
    const bool frontend_path = variant != split || cgroup_split >= 8;
    const Stat& sum = frontend_path ? split_f_sum : split_b_sum;
    const uint64_t followed_calls =
        frontend_path ? frontend_server_calls[split_row] : followed_client_calls[split_row];
    const double followed_ns =
        followed_calls ? (double(sum.ns) - double(sum.calls - followed_calls) * split_ns) /
                             double(followed_calls)
                       : 0;
    std::printf("%-22s %12llu %10.1f %14.1f %14.1f %12.1f %12.1f\n", bpf_program__name(variant),
                static_cast<unsigned long long>(split_sum.calls + sum.calls), empty_ns, split_ns,
                followed_ns, split_ns - empty_ns, followed_ns - empty_ns);
    if (cgroup_split == 11)
      std::printf("(%s: %llu packets with the status line in the linear part)\n",
                  bpf_program__name(variant),
                  static_cast<unsigned long long>(bench->bss->split_followed));
  }
  for (const auto& [kind, sums] : other_sockets) {
    if (!sums.sockeye.calls) continue;
    const double sockeye_ns = double(sums.sockeye.ns) / double(sums.sockeye.calls);
    const double empty_ns = sums.empty.calls ? double(sums.empty.ns) / double(sums.empty.calls) : 0;
    std::printf("%-22s %12llu %10.1f %14.1f %14s %12.1f %12s\n", kind.c_str(),
                static_cast<unsigned long long>(sums.sockeye.calls), empty_ns, sockeye_ns, "-",
                sockeye_ns - empty_ns, "-");
  }
  for (const auto& h : hooks) {
    const BatchedSums& sums = batched[h.name];
    if (!sums.unfollowed.calls || !sums.followed.calls || !sums.client_calls) continue;
    const double empty_ns = sums.empty.calls ? double(sums.empty.ns) / double(sums.empty.calls) : 0;
    const double unfollowed_ns = double(sums.unfollowed.ns) / double(sums.unfollowed.calls);
    const double followed_ns = (double(sums.followed.ns) -
                                double(sums.followed.calls - sums.client_calls) * unfollowed_ns) /
                               double(sums.client_calls);
    std::printf("%-22s %12llu %10.1f %14.1f %14.1f %12.1f %12.1f\n",
                (std::string(h.name) + " x" + std::to_string(batch)).c_str(),
                static_cast<unsigned long long>(sums.unfollowed.calls + sums.followed.calls),
                empty_ns, unfollowed_ns, followed_ns, unfollowed_ns - empty_ns,
                followed_ns - empty_ns);
  }
  if (batch > 0) {
    std::printf(
        "(xN rows: %d connections at a time, each step one io_uring_enter(), so up to %d "
        "deliveries per kernel entry; followed sk_data_ready calls %llu)\n",
        batch, batch, static_cast<unsigned long long>(batched["sk_data_ready"].client_calls));
  }
  if (batch > 0) io_uring_queue_exit(&ring);
  {
    const Stat& e = empty_sum["sock_send_length"];
    Stat clock{};
    Stats now = Snapshot(*agent, bench);
    clock = now["clock_sock_send_length"];
    std::printf("one bpf_ktime_get_ns() on sock_send_length: %.1f ns per call (empty: %.1f)\n",
                clock.calls ? double(clock.ns) / double(clock.calls) : 0,
                e.calls ? double(e.ns) / double(e.calls) : 0);
  }
  std::printf(
      "(followed calls per hook: state %llu, send %llu, tcp_probe %llu, sk_data_ready %llu, "
      "cgroup_skb ingress %llu)\n",
      static_cast<unsigned long long>(followed_client_calls["inet_sock_set_state"]),
      static_cast<unsigned long long>(followed_client_calls["sock_send_length"]),
      static_cast<unsigned long long>(followed_client_calls["tcp_probe"]),
      static_cast<unsigned long long>(followed_client_calls["sk_data_ready"]),
      static_cast<unsigned long long>(followed_client_calls["cgroup_skb ingress"]));
  {
    // Why the cgroup rows count about two calls per request (both phases,
    // every socket): one packet each way, the request's and the response's,
    // each acknowledging the other, plus a connection's handshake and close.
    const double per = double(rounds) * double(connections) * double(requests);
    const auto& in = phase_b_sides["cgroup_skb ingress"];
    const auto& out = phase_b_sides["cgroup_skb egress"];
    std::printf(
        "phase B packets per request: ingress client %.3f server %.3f other %.3f, egress client "
        "%.3f server %.3f other %.3f; TCP segments sent (/proc/net/snmp OutSegs) %.3f\n",
        double(in[0]) / per, double(in[1]) / per, double(in[2]) / per, double(out[0]) / per,
        double(out[1]) / per, double(out[2]) / per, double(phase_b_segments) / per);
  }
  // A status program's followed work happens once per response (its first
  // segment) while it runs for every packet of the connection, so its target
  // is per response: the followed side's run time over the empty program's
  // for the same packets, per response. `side` holds the phase's runs;
  // `own` of them were on the followed side's packets, the rest are charged
  // at the unfollowed figure.
  const uint64_t responses = uint64_t(rounds) * uint64_t(connections) * uint64_t(requests);
  auto per_response = [&](const char* row, const Stat& side, uint64_t own, const char* what,
                          const char* packets) {
    const Stat& e = empty_sum[row];
    const Stat& u = unfollowed_sum[row];
    if (!own || !e.calls || !u.calls || !responses) return;
    const double empty_ns = double(e.ns) / double(e.calls);
    const double unfollowed_ns = double(u.ns) / double(u.calls);
    const double own_ns = double(side.ns) - double(side.calls - own) * unfollowed_ns;
    std::printf(
        "%s per %s: %.1f ns over the empty program (%llu responses, %.2f %s packets each; %.1f "
        "ns per packet)\n",
        row, what, (own_ns - empty_ns * double(own)) / double(responses),
        static_cast<unsigned long long>(responses), double(own) / double(responses), packets,
        own_ns / double(own) - empty_ns);
  };
  if (frontends)
    per_response("cgroup_skb egress", frontend_sum["cgroup_skb egress"],
                 frontend_server_calls["cgroup_skb egress"], "frontend response", "server");
  per_response("cgroup_skb ingress", followed_sum["cgroup_skb ingress"],
               followed_client_calls["cgroup_skb ingress"], "followed response", "followed");
  if (storage_timing) {
    double n = static_cast<double>(bench->bss->storage_samples);
    std::printf(
        "(with --storage-timing the rows above do not measure sockeye: the timing "
        "program runs first on tcp_probe and warms the lines its program reads)\n");
    std::printf(
        "one socket-storage lookup of a followed socket, timed inside a program on tcp_probe "
        "(%.0f samples): first of the invocation %.1f ns, repeated %.1f ns; an array-map slot "
        "indexed by the socket's hash, first touch: %.1f ns (a clock-read pair, %.1f ns, taken "
        "out of each)\n",
        n, n ? static_cast<double>(bench->bss->storage_first_ns) / n : 0,
        n ? static_cast<double>(bench->bss->storage_again_ns) / n : 0,
        n ? static_cast<double>(bench->bss->array_first_ns) / n : 0,
        n ? static_cast<double>(bench->bss->clock_pair_ns) / n : 0);
  }
  cgroup_links.clear();
  bench_hooks_bpf__destroy(bench);
  close(stats_fd);
  return 0;
}
