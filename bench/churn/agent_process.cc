#include "bench/churn/agent_process.h"

#include <dirent.h>
#include <sys/socket.h>

#include <cstdlib>
#include <iterator>
#include <sstream>

#include "bench/bench_util.h"

namespace sockeye::bench::churn {

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

ProcStatus ReadProc(pid_t pid) {
  ProcStatus s;
  const bench::MemoryStatus memory = bench::ReadMemoryStatus(pid);
  s.rss_mb = double(memory.rss_kib) / 1024;
  s.hwm_mb = double(memory.hwm_kib) / 1024;
  s.cpu_s = StatCpuSeconds("/proc/" + std::to_string(pid) + "/stat");
  return s;
}

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

uint16_t FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = Loopback(htonl(INADDR_LOOPBACK), 0);
  socklen_t len = sizeof(sa);
  bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  close(fd);
  return ntohs(sa.sin_port);
}

}  // namespace sockeye::bench::churn
