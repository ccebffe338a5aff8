// The socket as httplib sees it while a worker serves one request: first the
// bytes the header reader already took off the socket, then the socket
// itself, with deadlines. httplib's own socket stream waits up to its read
// or write timeout for every single recv or send, so a client trickling a
// byte at a time could hold a worker indefinitely; here every wait is also
// bounded by a deadline for the whole request or response.
#pragma once

#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <string>

typedef struct ssl_st SSL;

namespace sockeye::metrics {

class ConnectionStream final : public httplib::Stream {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Timeout { kNone, kRead, kWrite };

  // `buffered` is served before anything is read from `fd`; `fd` (and
  // `ssl`, the TLS session on it, null for plain HTTP) stay owned by the
  // caller.
  ConnectionStream(int fd, SSL* ssl, std::string buffered, Clock::time_point read_deadline,
                   Clock::time_point write_deadline);

  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return fd_; }

  // Which wait, if any, gave up: the connection was dropped for it.
  Timeout timed_out() const { return timed_out_; }
  // Bytes received but not consumed by httplib: the start of a pipelined
  // next request.
  std::string TakeUnread();

 private:
  // Waits for `events` on the socket until the per-wait timeout or the
  // deadline; false (and timed_out_ set to `reason`) when neither came.
  bool WaitFor(short events, Clock::time_point deadline, Timeout reason) const;
  ssize_t TlsTransfer(const char* write_from, char* read_into, size_t size);

  const int fd_;
  SSL* const ssl_;
  std::string buffered_;
  size_t consumed_ = 0;  // of buffered_
  const Clock::time_point read_deadline_;
  const Clock::time_point write_deadline_;
  mutable Timeout timed_out_ = Timeout::kNone;
};

}  // namespace sockeye::metrics
