#include "exporters/http_server_stream.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "exporters/http_server_limits.h"
#include "exporters/http_server_tls.h"

namespace sockeye::metrics {
namespace {

// Numeric address and port of a socket's peer or local end, as httplib
// reports them (v4-mapped addresses stay in their IPv6 form).
void AddressOf(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  auto* raw = reinterpret_cast<sockaddr*>(&address);
  if ((peer ? getpeername(fd, raw, &length) : getsockname(fd, raw, &length)) != 0) return;
  char host[NI_MAXHOST];
  char service[NI_MAXSERV];
  if (getnameinfo(raw, length, host, sizeof(host), service, sizeof(service),
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return;
  }
  ip = host;
  port = std::atoi(service);
}

}  // namespace

ConnectionStream::ConnectionStream(int fd, SSL* ssl, std::string buffered,
                                   Clock::time_point read_deadline,
                                   Clock::time_point write_deadline)
    : fd_(fd),
      ssl_(ssl),
      buffered_(std::move(buffered)),
      read_deadline_(read_deadline),
      write_deadline_(write_deadline) {}

bool ConnectionStream::WaitFor(short events, Clock::time_point deadline, Timeout reason) const {
  for (;;) {
    const auto now = Clock::now();
    const auto wait = std::min<Clock::duration>(deadline - now, http_limits::kReadWriteTimeout);
    const auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    if (wait_ms <= 0) break;
    pollfd entry{.fd = fd_, .events = events, .revents = 0};
    const int ready = poll(&entry, 1, static_cast<int>(wait_ms));
    // An error or hang-up counts as ready: the recv or send that follows
    // reports it.
    if (ready > 0) return true;
    if (ready == 0) break;
    if (errno != EINTR) return false;
  }
  timed_out_ = reason;
  return false;
}

bool ConnectionStream::is_readable() const {
  return consumed_ < buffered_.size() || (ssl_ != nullptr && TlsHasPending(ssl_)) ||
         WaitFor(POLLIN, read_deadline_, Timeout::kRead);
}

bool ConnectionStream::is_writable() const {
  return WaitFor(POLLOUT, write_deadline_, Timeout::kWrite);
}

ssize_t ConnectionStream::read(char* ptr, size_t size) {
  if (consumed_ < buffered_.size()) {
    const size_t n = std::min(size, buffered_.size() - consumed_);
    std::memcpy(ptr, buffered_.data() + consumed_, n);
    consumed_ += n;
    return static_cast<ssize_t>(n);
  }
  if (ssl_ != nullptr) return TlsTransfer(nullptr, ptr, size);
  for (;;) {
    if (!WaitFor(POLLIN, read_deadline_, Timeout::kRead)) return -1;
    const ssize_t n = recv(fd_, ptr, size, MSG_DONTWAIT);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return n;
  }
}

ssize_t ConnectionStream::write(const char* ptr, size_t size) {
  if (ssl_ != nullptr) return TlsTransfer(ptr, nullptr, size);
  for (;;) {
    if (!WaitFor(POLLOUT, write_deadline_, Timeout::kWrite)) return -1;
    const ssize_t n = send(fd_, ptr, size, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return n;
  }
}

void ConnectionStream::get_remote_ip_and_port(std::string& ip, int& port) const {
  AddressOf(fd_, /*peer=*/true, ip, port);
}

void ConnectionStream::get_local_ip_and_port(std::string& ip, int& port) const {
  AddressOf(fd_, /*peer=*/false, ip, port);
}

// Either direction may have to wait for the other: TLS 1.3 key updates
// and session tickets are written while reading, and so on. Writes
// `write_from` when given, else reads into `read_into`.
ssize_t ConnectionStream::TlsTransfer(const char* write_from, char* read_into, size_t size) {
  const bool writing = write_from != nullptr;
  for (;;) {
    TlsStep step = TlsStep::kProgress;
    const size_t n =
        writing ? TlsWrite(ssl_, write_from, size, &step) : TlsRead(ssl_, read_into, size, &step);
    if (n > 0) return static_cast<ssize_t>(n);
    const Clock::time_point deadline = writing ? write_deadline_ : read_deadline_;
    const Timeout reason = writing ? Timeout::kWrite : Timeout::kRead;
    if (step == TlsStep::kWantRead) {
      if (!WaitFor(POLLIN, deadline, reason)) return -1;
    } else if (step == TlsStep::kWantWrite) {
      if (!WaitFor(POLLOUT, deadline, reason)) return -1;
    } else {
      return step == TlsStep::kClosed ? 0 : -1;
    }
  }
}

std::string ConnectionStream::TakeUnread() {
  std::string rest = buffered_.substr(consumed_);
  buffered_.clear();
  consumed_ = 0;
  return rest;
}

}  // namespace sockeye::metrics
