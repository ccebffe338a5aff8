#include "bench/churn/load.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

namespace sockeye::bench::churn {

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

}  // namespace sockeye::bench::churn
