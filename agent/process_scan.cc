#include "agent/process_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string_view>

namespace sockeye {
namespace {

struct DirCloser {
  void operator()(DIR* dir) const { closedir(dir); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

bool IsPid(std::string_view name) {
  return !name.empty() && name.find_first_not_of("0123456789") == std::string_view::npos;
}

void AddSocketInodes(const std::string& fd_dir, std::vector<uint64_t>* inodes) {
  DirPtr fds(opendir(fd_dir.c_str()));
  if (!fds) return;
  while (dirent* fd = readdir(fds.get())) {
    char target[64];
    const std::string link = fd_dir + "/" + fd->d_name;
    ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    unsigned long long ino = 0;
    if (std::sscanf(target, "socket:[%llu]", &ino) == 1) inodes->push_back(ino);
  }
}

}  // namespace

ProcessScan ScanProcesses(const std::vector<std::string>& comms, const std::string& proc_root,
                          uint64_t own_device, uint64_t own_inode) {
  ProcessScan scan;
  DirPtr proc(opendir(proc_root.c_str()));
  if (!proc) return scan;
  while (dirent* entry = readdir(proc.get())) {
    if (!IsPid(entry->d_name)) continue;
    const std::string base = proc_root + "/" + entry->d_name;
    if (!comms.empty()) {
      std::ifstream comm_file(base + "/comm");
      std::string comm;
      if (!std::getline(comm_file, comm)) continue;
      bool wanted = false;
      for (const auto& name : comms) wanted = wanted || name == comm;
      if (!wanted) continue;
      AddSocketInodes(base + "/fd", &scan.socket_inodes);
    }
    // Opened before it is compared, so the identity checked is that of the
    // namespace held open (the process may exit and its PID be reused).
    UniqueFd fd(open((base + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd.valid() || fstat(fd.get(), &st) != 0) {
      // ENOENT: the process exited during the scan.
      if (errno != ENOENT && scan.namespaces_unreadable++ == 0)
        scan.first_unreadable = base + "/ns/net: " + std::strerror(errno);
      continue;
    }
    const auto device = static_cast<uint64_t>(st.st_dev);
    const auto inode = static_cast<uint64_t>(st.st_ino);
    if (device == own_device && inode == own_inode) continue;
    bool known = false;
    for (const auto& ns : scan.other_namespaces)
      known = known || (ns.device == device && ns.inode == inode);
    if (!known) scan.other_namespaces.push_back({device, inode, std::move(fd)});
  }
  return scan;
}

bool OpenOwnNetworkNamespace(NetworkNamespace* own) {
  own->fd = UniqueFd(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!own->fd.valid() || fstat(own->fd.get(), &st) != 0) return false;
  own->device = static_cast<uint64_t>(st.st_dev);
  own->inode = static_cast<uint64_t>(st.st_ino);
  return true;
}

std::string SwitchNetworkNamespace(int ns_fd, const char* which) {
  if (setns(ns_fd, CLONE_NEWNET) == 0) return "";
  const int err = errno;
  std::string reason = std::string(which) + " network namespace failed: " + std::strerror(err);
  if (err == EPERM) {
    reason +=
        " (setns needs CAP_SYS_ADMIN and no seccomp rule against it; for the packaged "
        "service see \"Proxies in containers\" in "
        "/usr/share/doc/sockeye/examples/override.conf.example)";
  }
  return reason;
}

}  // namespace sockeye
