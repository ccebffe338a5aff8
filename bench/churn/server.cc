#include "bench/churn/server.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bench/churn/common.h"
#include "tests/privileged/loopback_server.h"

namespace sockeye::bench::churn {

bool Server::Listen(uint16_t base, int ports, std::string* error) {
  std::vector<int> fds;
  for (int p = 0; p < ports; ++p) {
    const uint16_t port = static_cast<uint16_t>(base + p);
    std::string step;
    const int fd = testing::ListenTcp(testing::LoopbackServer::MakeAddress("0.0.0.0", port), 4096,
                                      SOCK_NONBLOCK | SOCK_CLOEXEC, "lo", &step);
    if (fd < 0) {
      const std::string what = step == "socket"            ? step
                               : step == "SO_BINDTODEVICE" ? "SO_BINDTODEVICE lo"
                                                           : "port " + std::to_string(port);
      *error = what + ": " + std::strerror(errno);
      for (int open_fd : fds) close(open_fd);
      return false;
    }
    fds.push_back(fd);
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

void Server::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  (void)!write(wake_, &one, sizeof(one));
  thread_.join();
  for (int fd : listeners_) close(fd);
  for (int fd : open_) close(fd);
  close(wake_);
  close(epoll_);
}

void Server::AddFd(int fd, uint32_t kind) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = (uint64_t{kind} << 32) | uint32_t(fd);
  epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
}

void Server::CloseConn(int fd) {
  epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
  close(fd);
  open_.erase(fd);
  closed.fetch_add(1, std::memory_order_relaxed);
}

void Server::Loop() {
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

}  // namespace sockeye::bench::churn
