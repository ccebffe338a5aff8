// Kernel-side churn and live-backend memory of the real agent binary.
//
//   sudo build/bench/churn --agent build/sockeye [--phase both|live|churn]
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
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "bench/bench_util.h"
#include "churn_count.skel.h"
#include "tests/unit/gunzip.h"

namespace {

namespace bench = sockeye::bench;
namespace metrics = sockeye::metrics;
using Clock = std::chrono::steady_clock;

constexpr size_t kRequestBytes = 16;
constexpr size_t kResponseBytes = 64;
constexpr const char* kChurnNet = "127.201.0.0/16";
constexpr uint8_t kChurnSecondOctet = 201;
constexpr const char* kLiveNet = "127.202.0.0/16";
constexpr uint8_t kLiveSecondOctet = 202;
constexpr int kHostsPerThirdOctet = 250;   // .1 .. .250
constexpr int kMaxBackendsDefault = 5000;  // the agent's --max-backends default

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Address number n in 127.<second>.0.0/16: 127.<second>.(n/250).(n%250+1).
in_addr_t BackendAddress(uint8_t second, int n) {
  const uint32_t host = (127u << 24) | (uint32_t{second} << 16) |
                        (static_cast<uint32_t>(n / kHostsPerThirdOctet) << 8) |
                        static_cast<uint32_t>(n % kHostsPerThirdOctet + 1);
  return htonl(host);
}

sockaddr_in Loopback(in_addr_t addr, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = addr;
  sa.sin_port = htons(port);
  return sa;
}

struct Options {
  std::string agent;
  std::string phase = "both";
  int connections = 100000;
  int addresses = 10000;
  int ports = 10;
  double rate = 1000;
  int concurrency = 256;
  int live_backends = 1000;
  int live_rounds = 5;   // request rounds before the first scrape
  int live_scrapes = 6;  // alternately text and gzip + OpenMetrics
  double sample_interval = 5;
  double scrape_interval = -1;  // -1: every sample; 0: only the checks' scrapes
  double settle = 65;           // after the load: closed-connection memory is 60 s
  double load_limit = 200;      // no new connections after this many seconds
  uint16_t base_port = 21000;
};

// --- the agent process ------------------------------------------------------

// utime + stime of a /proc/PID/stat or /proc/PID/task/TID/stat file, in
// seconds; 0 if it cannot be read.
double StatCpuSeconds(const std::string& path) {
  std::ifstream stat(path);
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');  // comm may hold spaces and parentheses
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 2));
  std::string f;
  unsigned long long ticks = 0;
  // After "pid (comm) ": state is field 3, utime 14, stime 15 (1-based).
  for (int i = 3; i <= 15 && fields >> f; ++i)
    if (i == 14 || i == 15) ticks += std::stoull(f);
  return double(ticks) / double(sysconf(_SC_CLK_TCK));
}

struct ProcStatus {
  double rss_mb = 0;
  double hwm_mb = 0;
  double cpu_s = 0;
};

ProcStatus ReadProc(pid_t pid) {
  ProcStatus s;
  const bench::MemoryStatus memory = bench::ReadMemoryStatus(pid);
  s.rss_mb = double(memory.rss_kib) / 1024;
  s.hwm_mb = double(memory.hwm_kib) / 1024;
  s.cpu_s = StatCpuSeconds("/proc/" + std::to_string(pid) + "/stat");
  return s;
}

// CPU seconds of the agent's main thread (its event loop: ring buffer,
// sweeps, expiry; start-up too) and of all its other threads (the HTTP
// server: scrapes are gathered, rendered and compressed there).
struct ThreadCpu {
  double main_s = 0;
  double others_s = 0;
};

ThreadCpu ReadThreadCpu(pid_t pid) {
  ThreadCpu c;
  const std::string dir_path = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(dir_path.c_str());
  if (!dir) return c;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    const double s = StatCpuSeconds(dir_path + "/" + e->d_name + "/stat");
    if (std::atoi(e->d_name) == pid)
      c.main_s += s;
    else
      c.others_s += s;
  }
  closedir(dir);
  return c;
}

class AgentProcess {
 public:
  AgentProcess(std::string binary, std::string log_path)
      : binary_(std::move(binary)), log_path_(std::move(log_path)) {}
  ~AgentProcess() { Stop(); }

  bool Start(const std::vector<std::string>& args, std::string* error) {
    std::vector<std::string> argv_s{binary_};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    command_.clear();
    for (const auto& a : argv_s) command_ += (command_.empty() ? "" : " ") + a;
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) {
      *error = std::string("fork: ") + std::strerror(errno);
      return false;
    }
    if (pid_ == 0) {
      // The agent must not outlive the bench, whatever stops it.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(127);
      int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (log >= 0) {
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
      }
      std::vector<char*> argv;
      for (auto& a : argv_s) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary_.c_str(), argv.data());
      _exit(127);
    }
    return true;
  }

  // Still running? Records the exit status the first time it is seen.
  bool Alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_status_ = status;
      pid_ = -1;
      return false;
    }
    return true;
  }

  // SIGTERM, then up to 10 s for a clean exit, then SIGKILL.
  std::string Stop() {
    if (pid_ <= 0) return exit_status_ ? Describe(*exit_status_) : "not running";
    kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      if (!Alive()) return Describe(*exit_status_);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_status_ = status;
    return "did not exit within 10 s of SIGTERM, killed";
  }

  bool clean_exit() const {
    return exit_status_ && WIFEXITED(*exit_status_) && WEXITSTATUS(*exit_status_) == 0;
  }
  pid_t pid() const { return pid_; }
  const std::string& command() const { return command_; }

  std::string LogTail(size_t lines) const {
    std::ifstream in(log_path_);
    std::vector<std::string> all;
    std::string line;
    while (std::getline(in, line)) all.push_back(line);
    std::string out;
    for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
      out += "    | " + all[i] + "\n";
    return out;
  }

 private:
  static std::string Describe(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
    return "stopped";
  }

  std::string binary_;
  std::string log_path_;
  std::string command_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

// --- scraping ---------------------------------------------------------------

struct Fetched {
  bool ok = false;
  int status = 0;
  size_t wire_bytes = 0;  // body as sent (compressed when gzip)
  std::string body;       // decoded
  double ms = 0;
  std::string error;
};

// One HTTP/1.1 GET with Connection: close, from 127.0.0.1 to the agent.
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

// Sums of every metric (label sets added up), the (overflow) backend's
// values, and the number of series per metric.
struct Metrics {
  bool ok = false;
  std::string error;
  double scrape_ms = 0;
  double text_mb = 0;
  double wire_mb = 0;
  std::unordered_map<std::string, double> sum;
  std::unordered_map<std::string, double> overflow;
  std::unordered_map<std::string, size_t> series;

  double Sum(const std::string& name) const {
    auto it = sum.find(name);
    return it == sum.end() ? 0 : it->second;
  }
  double Overflow(const std::string& name) const {
    auto it = overflow.find(name);
    return it == overflow.end() ? 0 : it->second;
  }
  bool Has(const std::string& name) const { return sum.count(name) != 0; }
  size_t Series(const std::string& name) const {
    auto it = series.find(name);
    return it == series.end() ? 0 : it->second;
  }
};

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

Metrics Scrape(uint16_t port, bool gzip = true, bool openmetrics = false) {
  return Parse(Fetch(port, "/metrics", gzip, openmetrics));
}

// --- kernel side: the agent's BPF maps ---------------------------------------

struct MapInfo {
  uint32_t id = 0;
  uint32_t type = 0;
  std::string name;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint64_t memlock = 0;
};

const char* MapTypeName(uint32_t type) {
  const char* name = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type));
  return name ? name : "?";
}

// Every map the agent holds an fd for, from /proc/PID/fdinfo (memlock is the
// kernel's own accounting: map_mem_usage()).
std::vector<MapInfo> AgentMaps(pid_t pid) {
  std::map<uint32_t, MapInfo> by_id;
  const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* dir = opendir(fd_dir.c_str());
  if (!dir) return {};
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    char target[256] = {};
    if (readlink((fd_dir + "/" + e->d_name).c_str(), target, sizeof(target) - 1) < 0) continue;
    if (std::strcmp(target, "anon_inode:bpf-map") != 0) continue;
    std::ifstream info("/proc/" + std::to_string(pid) + "/fdinfo/" + e->d_name);
    MapInfo m;
    std::string key;
    std::string value;
    while (info >> key >> value) {
      if (key == "map_type:") m.type = uint32_t(std::stoul(value));
      if (key == "value_size:") m.value_size = uint32_t(std::stoul(value));
      if (key == "max_entries:") m.max_entries = uint32_t(std::stoul(value));
      if (key == "memlock:") m.memlock = std::stoull(value);
      if (key == "map_id:") m.id = uint32_t(std::stoul(value));
    }
    if (m.id == 0) continue;
    int fd = bpf_map_get_fd_by_id(m.id);
    if (fd >= 0) {
      bpf_map_info mi{};
      __u32 len = sizeof(mi);
      if (bpf_obj_get_info_by_fd(fd, &mi, &len) == 0) m.name = mi.name;
      close(fd);
    }
    by_id[m.id] = m;
  }
  closedir(dir);
  std::vector<MapInfo> out;
  for (auto& [id, m] : by_id) out.push_back(m);
  return out;
}

// Live entries of a socket-storage map, by walking it with an iterator:
// the map's own where the kernel allows map-element iterators, else TCP's
// hash tables (sockets unhashed but not yet freed are then missed; Method()
// says which).
class StorageCounter {
 public:
  ~StorageCounter() { Unload(); }
  const char* Method() const { return hashed_only_ ? "iter/tcp, hashed sockets only" : "map"; }
  long long Count(uint32_t map_id) {
    if (map_id == 0) return -1;
    int map_fd = bpf_map_get_fd_by_id(map_id);
    if (map_fd < 0) return -1;
    long long count = -1;
    if (map_id == failed_for_ || (map_id != loaded_for_ && !LoadFor(map_id, map_fd))) {
      failed_for_ = map_id;  // neither iterator loads: do not try again at every sample
      close(map_fd);
      return -1;
    }
    bpf_link* link = nullptr;
    if (hashed_only_) {
      link = bpf_program__attach_iter(skel_->progs.count_hashed_entries, nullptr);
    } else {
      union bpf_iter_link_info linfo;
      std::memset(&linfo, 0, sizeof(linfo));
      linfo.map.map_fd = static_cast<__u32>(map_fd);
      bpf_iter_attach_opts opts;
      std::memset(&opts, 0, sizeof(opts));
      opts.sz = sizeof(opts);
      opts.link_info = &linfo;
      opts.link_info_len = sizeof(linfo);
      link = bpf_program__attach_iter(skel_->progs.count_entries, &opts);
    }
    skel_->bss->entries = 0;
    if (link) {
      int iter = bpf_iter_create(bpf_link__fd(link));
      if (iter >= 0) {
        char buf[256];
        ssize_t n;
        while ((n = read(iter, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
        }
        if (n == 0)
          count = static_cast<long long>(*static_cast<volatile __u64*>(&skel_->bss->entries));
        close(iter);
      }
      bpf_link__destroy(link);
    }
    close(map_fd);
    return count;
  }

 private:
  // The map iterator first; if the kernel refuses it, the iter/tcp walk
  // with the agent's map in place of the object's own.
  bool LoadFor(uint32_t map_id, int map_fd) {
    Unload();
    for (bool hashed_only : {false, true}) {
      skel_ = churn_count_bpf__open();
      if (!skel_) return false;
      bpf_program__set_autoload(skel_->progs.count_entries, !hashed_only);
      bpf_program__set_autoload(skel_->progs.count_hashed_entries, hashed_only);
      if (bpf_map__reuse_fd(skel_->maps.conns, map_fd) == 0 && churn_count_bpf__load(skel_) == 0) {
        hashed_only_ = hashed_only;
        loaded_for_ = map_id;
        return true;
      }
      Unload();
    }
    return false;
  }
  void Unload() {
    if (skel_) churn_count_bpf__destroy(skel_);
    skel_ = nullptr;
    loaded_for_ = 0;
  }
  churn_count_bpf* skel_ = nullptr;
  uint32_t loaded_for_ = 0;
  uint32_t failed_for_ = 0;
  bool hashed_only_ = false;
};

// What one socket-storage element costs the kernel, from its BTF: the
// element (header + value) and, once per socket, the storage that links a
// socket's elements, each rounded up to its kmalloc size class. Charged to
// the socket (sk_omem_alloc), not to the map, so memlock leaves it out.
struct StorageCost {
  long elem_header = 0;
  long per_socket = 0;
  long Bytes(uint32_t value_size) const {
    if (elem_header <= 0) return 0;
    return KmallocClass(elem_header + long(value_size)) + KmallocClass(per_socket);
  }
  static long KmallocClass(long n) {
    if (n <= 0) return 0;
    if (n <= 8) return 8;
    if (n > 64 && n <= 96) return 96;
    if (n > 128 && n <= 192) return 192;
    long c = 8;
    while (c < n) c *= 2;
    return c;
  }
};

StorageCost ReadStorageCost() {
  StorageCost cost;
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return cost;
  int id = btf__find_by_name_kind(vmlinux, "bpf_local_storage_elem", BTF_KIND_STRUCT);
  if (id > 0) cost.elem_header = long(btf__resolve_size(vmlinux, id));
  id = btf__find_by_name_kind(vmlinux, "bpf_local_storage", BTF_KIND_STRUCT);
  if (id > 0) cost.per_socket = long(btf__resolve_size(vmlinux, id));
  btf__free(vmlinux);
  return cost;
}

// Host-wide context: TCP sockets (inuse, TIME_WAIT) and slab memory.
struct HostStats {
  long tcp_inuse = 0;
  long tcp_tw = 0;
  double slab_mb = 0;
};

HostStats ReadHost() {
  HostStats h;
  std::ifstream sockstat("/proc/net/sockstat");
  std::string line;
  while (std::getline(sockstat, line))
    std::sscanf(line.c_str(), "TCP: inuse %ld orphan %*d tw %ld", &h.tcp_inuse, &h.tcp_tw);
  std::ifstream meminfo("/proc/meminfo");
  while (std::getline(meminfo, line)) {
    long kb = 0;
    if (std::sscanf(line.c_str(), "Slab: %ld kB", &kb) == 1) h.slab_mb = double(kb) / 1024;
  }
  return h;
}

// --- loopback server ----------------------------------------------------------

// Listeners on 0.0.0.0:base..base+ports-1, bound to lo, so one listener
// accepts for every 127.x.y.z. Every full request (kRequestBytes) is
// answered with kResponseBytes; the server closes when the client does.
class Server {
 public:
  ~Server() { Stop(); }

  // Listeners on base..base+ports-1; on failure nothing stays open.
  bool Listen(uint16_t base, int ports, std::string* error) {
    std::vector<int> fds;
    auto fail = [&](const std::string& what) {
      *error = what + ": " + std::strerror(errno);
      for (int fd : fds) close(fd);
      return false;
    };
    for (int p = 0; p < ports; ++p) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) return fail("socket");
      fds.push_back(fd);
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3) != 0)
        return fail("SO_BINDTODEVICE lo");
      sockaddr_in sa = Loopback(htonl(INADDR_ANY), static_cast<uint16_t>(base + p));
      if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || listen(fd, 4096) != 0)
        return fail("port " + std::to_string(base + p));
    }
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    AddFd(wake_, kWake);
    listeners_ = fds;
    for (int fd : listeners_) AddFd(fd, kListener);
    pending_.assign(1 << 20, 0);
    thread_ = std::thread([this] { Loop(); });
    return true;
  }

  void Stop() {
    if (!thread_.joinable()) return;
    uint64_t one = 1;
    (void)!write(wake_, &one, sizeof(one));
    thread_.join();
    for (int fd : listeners_) close(fd);
    for (int fd : open_) close(fd);
    close(wake_);
    close(epoll_);
  }

  std::atomic<uint64_t> accepted{0}, served{0}, closed{0}, errors{0};

 private:
  enum : uint32_t { kWake = 1, kListener = 2, kConn = 3 };

  void AddFd(int fd, uint32_t kind) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t{kind} << 32) | uint32_t(fd);
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
  }

  void CloseConn(int fd) {
    epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    open_.erase(fd);
    closed.fetch_add(1, std::memory_order_relaxed);
  }

  void Loop() {
    epoll_event events[256];
    char buf[4096];
    char response[kResponseBytes];
    std::memset(response, 'r', sizeof(response));
    for (;;) {
      int n = epoll_wait(epoll_, events, 256, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return;
      for (int i = 0; i < n; ++i) {
        const uint32_t kind = uint32_t(events[i].data.u64 >> 32);
        const int fd = int(events[i].data.u64 & 0xffffffff);
        if (kind == kWake) return;
        if (kind == kListener) {
          for (;;) {
            int c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c < 0) {
              if (errno != EAGAIN && errno != EINTR) errors.fetch_add(1);
              break;
            }
            if (size_t(c) >= pending_.size()) {
              close(c);
              errors.fetch_add(1);
              continue;
            }
            pending_[size_t(c)] = 0;
            open_.insert(c);
            AddFd(c, kConn);
            accepted.fetch_add(1, std::memory_order_relaxed);
          }
          continue;
        }
        ssize_t got = recv(fd, buf, sizeof(buf), 0);
        if (got > 0) {
          uint32_t& pending = pending_[size_t(fd)];
          pending += uint32_t(got);
          while (pending >= kRequestBytes) {
            pending -= uint32_t(kRequestBytes);
            if (send(fd, response, sizeof(response), MSG_NOSIGNAL) != ssize_t(sizeof(response)))
              errors.fetch_add(1);
            served.fetch_add(1, std::memory_order_relaxed);
          }
        } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          if (got < 0) errors.fetch_add(1);
          CloseConn(fd);
        }
      }
    }
  }

  int epoll_ = -1;
  int wake_ = -1;
  std::vector<int> listeners_;
  std::vector<uint32_t> pending_;
  std::unordered_set<int> open_;
  std::thread thread_;
};

// --- churn load -------------------------------------------------------------

struct ChurnProgress {
  std::atomic<uint64_t> completed{0};
  std::atomic<bool> done{false};
  std::atomic<bool> abort{false};
};

struct ChurnResult {
  uint64_t started = 0;         // connect() called
  uint64_t failed_at_once = 0;  // connect() returned an error other than EINPROGRESS
  uint64_t failed_later = 0;    // SO_ERROR after EPOLLOUT
  uint64_t established = 0;
  uint64_t completed = 0;  // response read in full, closed by the client
  uint64_t protocol_errors = 0;
  uint64_t abandoned = 0;  // still open at the drain deadline
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  int peak_in_flight = 0;
  double seconds = 0;
  std::map<std::string, uint64_t> errors;
};

// Connection i goes to address i % addresses on port i / addresses, so every
// connection has its own backend and the first --addresses connections all
// use the first port.
ChurnResult DriveChurn(const Options& o, uint16_t base_port, ChurnProgress* progress) {
  ChurnResult r;
  enum : uint8_t { kFree = 0, kConnecting, kAwaiting };
  struct Conn {
    uint8_t state = kFree;
    uint32_t got = 0;
  };
  std::vector<Conn> conns(1 << 20);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  char request[kRequestBytes];
  std::memset(request, 'q', sizeof(request));
  int in_flight = 0;

  auto finish = [&](int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns[size_t(fd)].state = kFree;
    --in_flight;
  };
  auto connected = [&](int fd) {
    ++r.established;
    if (send(fd, request, sizeof(request), MSG_NOSIGNAL) != ssize_t(sizeof(request))) {
      ++r.protocol_errors;
      ++r.errors[std::string("send: ") + std::strerror(errno)];
      finish(fd);
      return;
    }
    r.bytes_sent += sizeof(request);
    conns[size_t(fd)].state = kAwaiting;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
  };

  const auto t0 = Clock::now();
  int next = 0;
  bool starting = true;
  std::optional<Clock::time_point> drain_deadline;
  epoll_event events[512];
  char buf[512];
  for (;;) {
    const double elapsed = SecondsSince(t0);
    if (starting && (elapsed > o.load_limit || progress->abort)) starting = false;
    while (starting && next < o.connections && in_flight < o.concurrency &&
           double(next) < elapsed * o.rate + 1) {
      const int i = next++;
      const int address = i % o.addresses;
      const int port = (i / o.addresses) % o.ports;
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0 || size_t(fd) >= conns.size()) {
        ++r.failed_at_once;
        ++r.errors[std::string("socket: ") + std::strerror(errno)];
        if (fd >= 0) close(fd);
        continue;
      }
      ++r.started;
      sockaddr_in sa = Loopback(BackendAddress(kChurnSecondOctet, address),
                                static_cast<uint16_t>(base_port + port));
      const int rc = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
      if (rc != 0 && errno != EINPROGRESS) {
        ++r.failed_at_once;
        ++r.errors[std::string("connect: ") + std::strerror(errno)];
        close(fd);
        continue;
      }
      ++in_flight;
      r.peak_in_flight = std::max(r.peak_in_flight, in_flight);
      conns[size_t(fd)] = Conn{kConnecting, 0};
      epoll_event ev{};
      ev.events = EPOLLOUT;
      ev.data.fd = fd;
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      if (rc == 0) connected(fd);
    }
    if (next >= o.connections) starting = false;
    if (!starting) {
      if (in_flight == 0) break;
      if (!drain_deadline) drain_deadline = Clock::now() + std::chrono::seconds(15);
      if (Clock::now() > *drain_deadline || progress->abort) {
        for (size_t fd = 0; fd < conns.size(); ++fd) {
          if (conns[fd].state == kFree) continue;
          ++r.abandoned;
          finish(int(fd));
        }
        break;
      }
    }
    int timeout_ms = 10;
    if (starting) {
      const double wait = (double(next) / o.rate - SecondsSince(t0)) * 1000;
      timeout_ms = std::clamp(int(std::ceil(wait)), 0, 10);
    }
    const int n = epoll_wait(ep, events, 512, timeout_ms);
    for (int e = 0; e < n; ++e) {
      const int fd = events[e].data.fd;
      Conn& c = conns[size_t(fd)];
      if (c.state == kConnecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          ++r.failed_later;
          ++r.errors[std::string("connect (async): ") + std::strerror(err)];
          finish(fd);
        } else {
          connected(fd);
        }
      } else if (c.state == kAwaiting) {
        const ssize_t got = recv(fd, buf, sizeof(buf), 0);
        if (got > 0) {
          r.bytes_received += uint64_t(got);
          c.got += uint32_t(got);
          if (c.got >= kResponseBytes) {
            ++r.completed;
            progress->completed.fetch_add(1, std::memory_order_relaxed);
            finish(fd);  // the client closes first
          }
        } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          ++r.protocol_errors;
          ++r.errors[got == 0 ? std::string("closed before the response")
                              : std::string("recv: ") + std::strerror(errno)];
          finish(fd);
        }
      }
    }
  }
  close(ep);
  r.seconds = SecondsSince(t0);
  progress->done = true;
  return r;
}

// --- reporting ----------------------------------------------------------------

void Out(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void Out(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::vprintf(fmt, args);
  va_end(args);
  std::fflush(stdout);
}

class Checks {
 public:
  void Add(bool ok, const std::string& what) {
    Out("  [%s] %s\n", ok ? "PASS" : "FAIL", what.c_str());
    items_.push_back({ok, what});
  }
  void Target(bool met, const std::string& what) {
    Out("  [%s] %s\n", met ? "TARGET MET" : "TARGET MISSED", what.c_str());
    targets_.push_back({met, what});
  }
  bool AllPassed() const {
    return std::all_of(items_.begin(), items_.end(), [](const auto& i) { return i.first; });
  }
  void Summary() const {
    size_t failed = 0;
    for (const auto& [ok, what] : items_) failed += ok ? 0 : 1;
    Out("checks: %zu passed, %zu failed\n", items_.size() - failed, failed);
    for (const auto& [ok, what] : items_)
      if (!ok) Out("  FAILED: %s\n", what.c_str());
    for (const auto& [met, what] : targets_)
      Out("  target %s: %s\n", met ? "met" : "MISSED", what.c_str());
  }

 private:
  std::vector<std::pair<bool, std::string>> items_;
  std::vector<std::pair<bool, std::string>> targets_;
};

std::string Fmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Fmt(const char* fmt, ...) {
  char buf[1024];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, args);
  va_end(args);
  return buf;
}

uint16_t FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = Loopback(htonl(INADDR_LOOPBACK), 0);
  socklen_t len = sizeof(sa);
  bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  close(fd);
  return ntohs(sa.sin_port);
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

// The agent reports asynchronously (ring buffer, a sweep every second), so
// exact checks scrape until what they compare has arrived. Bounded, so that
// a count that never arrives still reaches its check and fails there.
constexpr auto kSettleTimeout = std::chrono::seconds(15);
constexpr auto kSettlePoll = std::chrono::milliseconds(200);

// Scrapes until `settled` holds for a successful scrape, the agent exits or
// kSettleTimeout passes; returns the last scrape. `scrapes` counts them.
template <typename Settled>
Metrics ScrapeUntil(AgentProcess& agent, uint16_t port, bool gzip, bool openmetrics,
                    Settled settled, int* scrapes = nullptr) {
  const auto deadline = Clock::now() + kSettleTimeout;
  for (;;) {
    Metrics m = Scrape(port, gzip, openmetrics);
    if (scrapes) ++*scrapes;
    if ((m.ok && settled(m)) || Clock::now() >= deadline || !agent.Alive()) return m;
    std::this_thread::sleep_for(kSettlePoll);
  }
}

struct KernelView {
  uint64_t memlock = 0;
  long long storage_entries = -1;
  uint32_t storage_value_size = 0;
};

// The agent's socket-storage map (per-connection state).
const MapInfo* StorageMap(const std::vector<MapInfo>& maps) {
  const MapInfo* found = nullptr;
  for (const auto& m : maps) {
    if (m.type != BPF_MAP_TYPE_SK_STORAGE) continue;
    if (!found || m.name == "conns") found = &m;
  }
  return found;
}

KernelView ReadKernel(pid_t pid, StorageCounter& counter) {
  KernelView k;
  const auto maps = AgentMaps(pid);
  for (const auto& m : maps) k.memlock += m.memlock;
  if (const MapInfo* s = StorageMap(maps)) {
    k.storage_entries = counter.Count(s->id);
    k.storage_value_size = s->value_size;
  }
  return k;
}

void PrintMaps(pid_t pid) {
  uint64_t total = 0;
  Out("  agent's BPF maps (fdinfo memlock = the kernel's map_mem_usage):\n");
  for (const auto& m : AgentMaps(pid)) {
    Out("    %-16s %-14s value %6u B  max_entries %8u  memlock %10llu B\n", m.name.c_str(),
        MapTypeName(m.type), m.value_size, m.max_entries,
        static_cast<unsigned long long>(m.memlock));
    total += m.memlock;
  }
  Out("    total memlock %.2f MiB\n", double(total) / (1 << 20));
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

// --- live phase: 1,000 backends with open keep-alive connections -----------------

// RunLive and RunChurn record every failure, a phase cut short included, as
// a failed check: the checks alone decide the exit status.
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

// --- churn phase ----------------------------------------------------------------

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
  std::fprintf(stderr,
               "usage: churn --agent PATH [--phase both|live|churn] [--connections N] "
               "[--addresses N] [--ports N] [--rate PER_S] [--concurrency N] "
               "[--live-backends N] [--live-rounds N] [--live-scrapes N] "
               "[--sample-interval S] [--scrape-interval S|0] [--settle S] [--load-limit S] "
               "[--base-port P]\n");
  return 2;
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
  if (o.agent.empty() || (o.phase != "both" && o.phase != "live" && o.phase != "churn"))
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
    std::fprintf(stderr, "churn: needs root (runs the agent, reads its BPF maps)\n");
    return 1;
  }
  char resolved[PATH_MAX];
  if (!realpath(o.agent.c_str(), resolved) || access(resolved, X_OK) != 0) {
    std::fprintf(stderr, "churn: %s is not an executable\n", o.agent.c_str());
    return 1;
  }
  o.agent = resolved;
  signal(SIGPIPE, SIG_IGN);
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
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
  uint16_t base = o.base_port;
  bool listening = false;
  for (int attempt = 0; attempt < 20; ++attempt) {
    error.clear();
    if ((listening = server.Listen(base, o.ports, &error))) break;
    base = static_cast<uint16_t>(base + 100);
  }
  if (!listening) {
    std::fprintf(stderr, "churn: cannot listen: %s\n", error.c_str());
    return 1;
  }

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
