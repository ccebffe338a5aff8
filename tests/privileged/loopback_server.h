// A small TCP server for the privileged tests, run on loopback by the test
// itself. Protocol: the client sends "<response-bytes> <padding>\n"; the
// server answers with exactly that many bytes (after an optional delay), or
// resets the connection, and keeps the connection open for more requests.
// bench/churn shares its listener setup (ListenTcp, MakeAddress) for its own
// epoll server, which must hold 100,000 connections and fixed-size messages.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sockeye::testing {

// A TCP socket listening on `address` with SO_REUSEADDR, or -1 with errno set
// (nothing stays open then). `type_flags` is or'ed into the socket type
// (SOCK_NONBLOCK, SOCK_CLOEXEC); a non-null `device` binds the socket to that
// interface (SO_BINDTODEVICE), so that a listener on 0.0.0.0 accepts only
// what arrives there. `failed_step`, if given, names the step that failed.
inline int ListenTcp(const sockaddr_storage& address, int backlog, int type_flags = 0,
                     const char* device = nullptr, std::string* failed_step = nullptr) {
  auto fail = [failed_step](int fd, const char* step) {
    const int saved = errno;
    if (fd >= 0) close(fd);
    if (failed_step) *failed_step = step;
    errno = saved;
    return -1;
  };
  const int fd = socket(address.ss_family, SOCK_STREAM | type_flags, 0);
  if (fd < 0) return fail(fd, "socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (device && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device,
                           static_cast<socklen_t>(std::strlen(device) + 1)) != 0)
    return fail(fd, "SO_BINDTODEVICE");
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0)
    return fail(fd, "bind");
  if (listen(fd, backlog) != 0) return fail(fd, "listen");
  return fd;
}

enum class Behavior { kRespond, kResetAfterRequest, kRespondThenReset };

class LoopbackServer {
 public:
  LoopbackServer(const std::string& address, Behavior behavior = Behavior::kRespond,
                 std::chrono::milliseconds delay = std::chrono::milliseconds(0), uint16_t port = 0)
      : behavior_(behavior), delay_(delay) {
    family_ = address.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    sockaddr_storage addr = MakeAddress(address, port);
    listen_fd_ = ListenTcp(addr, 128);
    if (listen_fd_ < 0)
      throw std::runtime_error("test server cannot listen on " + address + ": " +
                               std::strerror(errno));
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(family_ == AF_INET ? reinterpret_cast<sockaddr_in*>(&addr)->sin_port
                                     : reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    address_ = address;
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~LoopbackServer() {
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    acceptor_.join();
    std::vector<std::thread> workers;
    {
      std::lock_guard lock(mutex_);
      // A client whose FIN can never arrive (a test that cut the link) would
      // leave its worker in recv() for good.
      for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
      workers.swap(workers_);
    }
    for (auto& t : workers) t.join();  // each takes mutex_ as it ends
  }

  uint16_t port() const { return port_; }
  // Every response starts with these bytes (cut to the response's length),
  // e.g. an HTTP/1.1 status line; the rest stays padding. Call before any
  // client connects.
  void set_response_head(std::string head) { response_head_ = std::move(head); }
  const std::string& address() const { return address_; }

  static sockaddr_storage MakeAddress(const std::string& address, uint16_t port) {
    sockaddr_storage storage{};
    if (address.find(':') != std::string::npos) {
      auto* a6 = reinterpret_cast<sockaddr_in6*>(&storage);
      a6->sin6_family = AF_INET6;
      a6->sin6_port = htons(port);
      inet_pton(AF_INET6, address.c_str(), &a6->sin6_addr);
    } else {
      auto* a4 = reinterpret_cast<sockaddr_in*>(&storage);
      a4->sin_family = AF_INET;
      a4->sin_port = htons(port);
      inet_pton(AF_INET, address.c_str(), &a4->sin_addr);
    }
    return storage;
  }

 private:
  void AcceptLoop() {
    for (;;) {
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      std::lock_guard lock(mutex_);
      open_fds_.insert(fd);
      workers_.emplace_back([this, fd] {
        Serve(fd);
        std::lock_guard done(mutex_);
        open_fds_.erase(fd);
        close(fd);
      });
    }
  }

  void Serve(int fd) {
    std::string pending;
    char buffer[4096];
    for (;;) {
      ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      pending.append(buffer, static_cast<size_t>(n));
      size_t newline;
      while ((newline = pending.find('\n')) != std::string::npos) {
        size_t response_bytes = std::stoul(pending.substr(0, newline));
        pending.erase(0, newline + 1);
        if (behavior_ == Behavior::kResetAfterRequest) {
          linger hard{1, 0};  // the close() after Serve() sends RST
          setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
          return;
        }
        if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
        std::string body(response_bytes, 'r');
        body.replace(0, std::min(response_head_.size(), body.size()), response_head_);
        size_t sent = 0;
        while (sent < body.size()) {
          ssize_t w = send(fd, body.data() + sent, body.size() - sent, MSG_NOSIGNAL);
          if (w <= 0) break;
          sent += static_cast<size_t>(w);
        }
        if (behavior_ == Behavior::kRespondThenReset) {
          linger hard{1, 0};  // the reset follows the response at once
          setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
          return;
        }
      }
    }
  }

  // Set before any client connects (the serving threads read it unlocked).
  std::string response_head_;
  Behavior behavior_;
  std::chrono::milliseconds delay_;
  int family_ = AF_INET;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::string address_;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<std::thread> workers_;
  std::set<int> open_fds_;  // accepted connections not yet closed, under mutex_
};

// Client side: a blocking connection speaking the protocol above.
class Client {
 public:
  Client(const std::string& address, uint16_t port) {
    sockaddr_storage addr = LoopbackServer::MakeAddress(address, port);
    fd_ = socket(addr.ss_family, SOCK_STREAM, 0);
    connect_result_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    connect_errno_ = connect_result_ == 0 ? 0 : errno;
  }
  ~Client() {
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return connect_result_ == 0; }
  int connect_errno() const { return connect_errno_; }
  int fd() const { return fd_; }

  // Sends a request of exactly request_bytes asking for response_bytes,
  // then reads the whole response. Returns the bytes read.
  // With `how` = kSendfile the request goes out through sendfile(2) from a
  // memfd: the kernel's sendpage/splice path, not tcp_sendmsg (before
  // Linux 6.5) nor sock_sendmsg.
  enum class SendPath { kSend, kSendfile };
  size_t Request(size_t request_bytes, size_t response_bytes, bool peek_first = false,
                 SendPath how = SendPath::kSend) {
    std::string request = std::to_string(response_bytes) + " ";
    if (request.size() + 1 > request_bytes) throw std::runtime_error("request too short");
    request.append(request_bytes - request.size() - 1, 'q');
    request.push_back('\n');
    if (how == SendPath::kSendfile) {
      if (!SendFile(request)) return 0;
    } else if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(request.size())) {
      return 0;
    }
    std::vector<char> buffer(1 << 16);
    if (peek_first) {
      // Block until data is there, then look without consuming it.
      ssize_t peeked = recv(fd_, buffer.data(), buffer.size(), MSG_PEEK);
      if (peeked <= 0) return 0;
    }
    size_t got = 0;
    while (got < response_bytes) {
      ssize_t n = recv(fd_, buffer.data(), std::min(buffer.size(), response_bytes - got), 0);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    return got;
  }

  void Close() {
    close(fd_);
    fd_ = -1;
  }

 private:
  bool SendFile(const std::string& data) {
    int file = memfd_create("sockeye-test-request", 0);
    if (file < 0) return false;
    bool ok = write(file, data.data(), data.size()) == ssize_t(data.size());
    off_t offset = 0;
    while (ok && size_t(offset) < data.size()) {
      ssize_t n = sendfile(fd_, file, &offset, data.size() - size_t(offset));
      ok = n > 0;
    }
    close(file);
    return ok;
  }

  int fd_ = -1;
  int connect_result_ = -1;
  int connect_errno_ = 0;
};

}  // namespace sockeye::testing
