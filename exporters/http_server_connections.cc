// ConnectionDispatcher: a connection from accept to close. It stays in one
// file (over 400 lines): the reader and the workers hand connections to each
// other, both keep the per-client counts the caps rest on, and a TLS
// handshake is one more step of reading a request header (the TLS calls
// themselves are in http_server_tls.cc).
#include "exporters/http_server_connections.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

#include "exporters/http_server_limits.h"
#include "exporters/http_server_stream.h"
#include "exporters/http_server_tls.h"

namespace sockeye::metrics {

using http_limits::EffectiveMaxConnections;
using http_limits::kHeaderTimeout;
using http_limits::kKeepAliveMaxRequests;
using http_limits::kKeepAliveTimeout;
using http_limits::kMaxBusyWorkersPerClient;
using http_limits::kMaxConnectionsPerClient;
using http_limits::kMaxHeaderBytes;
using http_limits::kReadWriteTimeout;
using http_limits::kResponseDeadline;
using http_limits::kWorkerThreads;

namespace {

constexpr std::string_view kHeaderEnd = "\r\n\r\n";
// The answers to a request header over kMaxHeaderBytes: 414 when its
// request line alone is (as httplib answers a request line over its own
// limit of 8 KiB), 431 otherwise.
constexpr std::string_view kUriTooLongResponse =
    "HTTP/1.1 414 URI Too Long\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 17\r\n"
    "Connection: close\r\n"
    "\r\n"
    "414 uri too long\n";
constexpr std::string_view kHeaderTooLargeResponse =
    "HTTP/1.1 431 Request Header Fields Too Large\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 36\r\n"
    "Connection: close\r\n"
    "\r\n"
    "431 request header fields too large\n";

// OpenSSL writes with write(), which raises SIGPIPE on a connection the
// client has reset; blocked in the server's threads, it stays pending there
// and the write fails with EPIPE instead of ending the process.
void BlockSigpipe() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Sends a canned error response without waiting for the client, then reads
// what the client already sent (up to a bound): closing a socket with
// unread data resets the connection, which can destroy the response before
// the client reads it.
void AnswerBeforeClosing(int fd, SSL* ssl, std::string_view response) {
  if (ssl != nullptr) {
    TlsStep step = TlsStep::kProgress;
    TlsWrite(ssl, response.data(), response.size(), &step);
    return;
  }
  [[maybe_unused]] ssize_t sent =
      send(fd, response.data(), response.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  shutdown(fd, SHUT_WR);
  std::array<char, 4096> sink;
  for (int i = 0; i < 16 && recv(fd, sink.data(), sink.size(), MSG_DONTWAIT) > 0; ++i) {
  }
}

// The client's address without the port: what the per-client cap counts.
// v4-mapped IPv6 addresses count as their IPv4 address.
std::string ClientAddress(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return {};
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
  } else if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], text, sizeof(text));
    } else {
      inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    }
  }
  return text;
}

}  // namespace

struct ConnectionDispatcher::Connection {
  explicit Connection(int fd_in) : fd(fd_in) {}
  ~Connection() {
    ssl.reset();  // its close_notify needs the socket
    close(fd);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const int fd;
  SslPtr ssl;                      // null: plain HTTP
  bool watching_writable = false;  // epoll also waits for EPOLLOUT (a TLS write is stuck)
  std::string client;              // set once admitted: counted in open_by_client_
  std::string buffer;              // received, not yet handed to httplib
  size_t requests = 0;             // served on this connection
  Clock::time_point header_deadline;
  // A kept-alive connection is closed quietly if nothing arrives by then.
  Clock::time_point idle_deadline = Clock::time_point::max();
};

ConnectionDispatcher::ConnectionDispatcher(ServeFn serve,
                                           std::shared_ptr<ScrapeStatsCollector> stats,
                                           TlsSource tls)
    : serve_(std::move(serve)),
      stats_(std::move(stats)),
      tls_(std::move(tls)),
      max_connections_(EffectiveMaxConnections()) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    const int err = errno;
    if (epoll_fd_ >= 0) close(epoll_fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
    throw std::system_error(err, std::generic_category(), "metrics server: epoll");
  }
  epoll_event event{.events = EPOLLIN, .data = {.fd = wake_fd_}};
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event);
  try {
    reader_ = std::thread([this] { ReadHeaders(); });
    for (size_t i = 0; i < kWorkerThreads; ++i) workers_.emplace_back([this] { Work(); });
  } catch (...) {  // no destructor runs for a constructor that throws
    Stop();
    close(epoll_fd_);
    close(wake_fd_);
    throw;
  }
}

ConnectionDispatcher::~ConnectionDispatcher() {
  Stop();
  close(epoll_fd_);
  close(wake_fd_);
}

void ConnectionDispatcher::Stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  ready_cv_.notify_all();
  Wake();
  if (reader_.joinable()) reader_.join();
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  // Only this thread is left; what was queued is closed unserved.
  waiting_.clear();
  inbox_.clear();
  ready_.clear();
  queued_by_client_.clear();
}

void ConnectionDispatcher::Admit(int fd) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      inbox_.push_back(std::make_unique<Connection>(fd));
      fd = -1;
    }
  }
  if (fd >= 0) {
    close(fd);
  } else {
    Wake();
  }
}

void ConnectionDispatcher::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t written = write(wake_fd_, &one, sizeof(one));
}

// ---------------------------------------------------------------------------
// Reader thread

void ConnectionDispatcher::ReadHeaders() {
  BlockSigpipe();
  std::array<epoll_event, 64> events{};
  for (;;) {
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                             MillisecondsToNextDeadline());
    for (int i = 0; i < n; ++i) {
      if (events[static_cast<size_t>(i)].data.fd == wake_fd_) {
        uint64_t count = 0;
        [[maybe_unused]] ssize_t read_bytes = read(wake_fd_, &count, sizeof(count));
      } else {
        OnReadable(events[static_cast<size_t>(i)].data.fd);
      }
    }
    std::vector<ConnectionPtr> arrived;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      arrived.swap(inbox_);
    }
    for (ConnectionPtr& connection : arrived) Intake(std::move(connection));
    ExpireDeadlines();
  }
}

void ConnectionDispatcher::Intake(ConnectionPtr connection) {
  if (connection->client.empty()) {
    // New: admitted or refused here. Only this thread admits, so the counts
    // it checks can only go down before it adds to them.
    if (!Accepted(*connection)) return;
    connection->header_deadline = Clock::now() + kHeaderTimeout;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++open_;
      ++open_by_client_[connection->client];
    }
    // The context in force when the connection arrived serves it to the
    // end, also across a reload.
    if (TlsContext tls = tls_ ? tls_() : nullptr) {
      connection->ssl = NewTlsSession(tls.get(), connection->fd);
      if (!connection->ssl) {
        Release(std::move(connection));
        return;
      }
    }
  }
  if (connection->buffer.find(kHeaderEnd) != std::string::npos) {
    Dispatch(std::move(connection));  // a pipelined request, already in
    return;
  }
  const int fd = connection->fd;
  // The ClientHello may be in already, and a kept-alive TLS connection may
  // have its next request decrypted inside OpenSSL, where epoll cannot see
  // it.
  SSL* ssl = connection->ssl.get();
  const bool try_now = ssl != nullptr && (!TlsHandshakeDone(ssl) || TlsHasPending(ssl));
  Watch(std::move(connection));
  if (try_now) OnReadable(fd);
}

// Applies the caps to a new connection; when it is refused, closes it and
// returns false.
bool ConnectionDispatcher::Accepted(Connection& connection) {
  std::string client = ClientAddress(connection.fd);
  if (client.empty()) return false;  // already gone
  size_t open = 0;
  size_t open_by_client = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    open = open_;
    auto it = open_by_client_.find(client);
    if (it != open_by_client_.end()) open_by_client = it->second;
  }
  RejectReason reason = RejectReason::kClientLimit;
  bool admit = open_by_client < kMaxConnectionsPerClient;
  if (admit && open >= max_connections_) {
    reason = RejectReason::kServerLimit;
    admit = EvictOne();
  }
  if (!admit) {
    stats_->RecordRejection(reason);
    return false;  // the caller's unique_ptr closes the socket
  }
  connection.client = std::move(client);
  return true;
}

// Drops a waiting connection to make room for a new one: an idle kept-alive
// one first, else one of the client holding the most connections, the one
// that has waited longest for its header. Returns false when every
// connection is being served. By the client's count, because a flood of new
// connections from many addresses otherwise made a just-accepted honest
// scrape the oldest waiting one, dropped before its header was read
// (tests/e2e/endpoint_abuse.sh).
bool ConnectionDispatcher::EvictOne() {
  std::unique_lock<std::mutex> lock(mu_);
  auto rank = [this](const Connection& c) {
    const bool idle = c.idle_deadline != Clock::time_point::max();
    auto it = open_by_client_.find(c.client);
    const size_t held = it == open_by_client_.end() ? 0 : it->second;
    // Larger is kept: idle first out, then the heaviest client's oldest.
    return std::make_tuple(idle ? 0 : 1, -static_cast<long long>(held), c.header_deadline);
  };
  Connection* victim = nullptr;
  decltype(rank(std::declval<const Connection&>())) victim_rank;
  for (const auto& [fd, connection] : waiting_) {
    auto r = rank(*connection);
    if (victim == nullptr || r < victim_rank) {
      victim = connection.get();
      victim_rank = r;
    }
  }
  lock.unlock();  // Reject() takes it again
  if (victim == nullptr) return false;
  Reject(Unwatch(victim->fd), RejectReason::kServerLimit);
  return true;
}

void ConnectionDispatcher::Watch(ConnectionPtr connection) {
  connection->watching_writable = false;
  epoll_event event{.events = EPOLLIN, .data = {.fd = connection->fd}};
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, connection->fd, &event) != 0) {
    Release(std::move(connection));
    return;
  }
  const int fd = connection->fd;
  waiting_[fd] = std::move(connection);
}

ConnectionDispatcher::ConnectionPtr ConnectionDispatcher::Unwatch(int fd) {
  auto it = waiting_.find(fd);
  if (it == waiting_.end()) return nullptr;
  ConnectionPtr connection = std::move(it->second);
  waiting_.erase(it);
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  return connection;
}

void ConnectionDispatcher::OnReadable(int fd) {
  auto it = waiting_.find(fd);
  if (it == waiting_.end()) return;
  Connection& connection = *it->second;
  if (connection.ssl) {
    OnTlsReadable(fd);
    return;
  }
  std::array<char, 4096> chunk;
  const ssize_t n = recv(fd, chunk.data(), chunk.size(), MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {  // the client left (or reset) before sending a whole request
    Release(Unwatch(fd));
    return;
  }
  const size_t before = connection.buffer.size();
  connection.buffer.append(chunk.data(), static_cast<size_t>(n));
  TakeHeaderBytes(fd, before);
}

// A TLS connection's socket is ready: a step of its handshake, then
// whatever request bytes have arrived.
void ConnectionDispatcher::OnTlsReadable(int fd) {
  Connection& connection = *waiting_.at(fd);
  SSL* ssl = connection.ssl.get();
  if (!TlsHandshakeDone(ssl)) {
    const TlsStep step = TlsHandshake(ssl);
    if (step == TlsStep::kClosed || step == TlsStep::kFailed) {
      Reject(Unwatch(fd), RejectReason::kTlsHandshake);
      return;
    }
    if (step != TlsStep::kProgress) {
      WatchFor(fd, step == TlsStep::kWantWrite);
      return;
    }
  }
  const size_t before = connection.buffer.size();
  const TlsStep step = TlsReadAvailable(ssl, &connection.buffer, kMaxHeaderBytes);
  if (step == TlsStep::kClosed || step == TlsStep::kFailed) {
    Release(Unwatch(fd));
    return;
  }
  WatchFor(fd, step == TlsStep::kWantWrite);
  if (connection.buffer.size() > before) TakeHeaderBytes(fd, before);
}

void ConnectionDispatcher::WatchFor(int fd, bool writable) {
  Connection& connection = *waiting_.at(fd);
  if (connection.watching_writable == writable) return;
  epoll_event event{.events = EPOLLIN | (writable ? EPOLLOUT : 0u), .data = {.fd = fd}};
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event);
  connection.watching_writable = writable;
}

// New request bytes are in the connection's buffer from `old_size` on:
// hands it to a worker once its header is complete, or refuses a header over
// the limit.
void ConnectionDispatcher::TakeHeaderBytes(int fd, size_t old_size) {
  Connection& connection = *waiting_.at(fd);
  connection.idle_deadline = Clock::time_point::max();
  // The end of the header may straddle the previous chunk.
  const size_t end = connection.buffer.find(kHeaderEnd, old_size >= 3 ? old_size - 3 : 0);
  if (end != std::string::npos && end + kHeaderEnd.size() <= kMaxHeaderBytes) {
    Dispatch(Unwatch(fd));
  } else if (connection.buffer.size() >= kMaxHeaderBytes) {
    const bool uri_too_long = connection.buffer.find('\n') >= kMaxHeaderBytes;
    AnswerBeforeClosing(fd, connection.ssl.get(),
                        uri_too_long ? kUriTooLongResponse : kHeaderTooLargeResponse);
    stats_->RecordResponse(uri_too_long ? 414 : 431);
    Reject(Unwatch(fd), RejectReason::kHeaderTooLarge);
  }
}

void ConnectionDispatcher::ExpireDeadlines() {
  const auto now = Clock::now();
  std::vector<int> idle;
  std::vector<int> late;
  for (const auto& [fd, connection] : waiting_) {
    if (now >= connection->idle_deadline) {
      idle.push_back(fd);
    } else if (now >= connection->header_deadline) {
      late.push_back(fd);
    }
  }
  for (int fd : idle) Release(Unwatch(fd));
  for (int fd : late) Reject(Unwatch(fd), RejectReason::kHeaderTimeout);
}

int ConnectionDispatcher::MillisecondsToNextDeadline() const {
  // Also bounds how long a missed wake-up could go unnoticed.
  constexpr int kLongestWaitMs = 1000;
  if (waiting_.empty()) return kLongestWaitMs;
  Clock::time_point next = Clock::time_point::max();
  for (const auto& [fd, connection] : waiting_) {
    next = std::min({next, connection->idle_deadline, connection->header_deadline});
  }
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
  return static_cast<int>(std::clamp<decltype(wait)>(wait, 0, kLongestWaitMs));
}

// ---------------------------------------------------------------------------
// Workers

void ConnectionDispatcher::Work() {
  BlockSigpipe();
  while (ConnectionPtr connection = TakeReady()) Serve(std::move(connection));
}

namespace {

// A health check costs nothing to answer and is what a load balancer or an
// orchestrator judges the agent by: it goes first.
bool IsHealthCheck(const std::string& request) {
  return request.starts_with("GET /healthz ") || request.starts_with("HEAD /healthz ");
}

}  // namespace

// The next request to serve, null once stopping: a health check first; else
// the request of the client with the fewest requests queued or being served
// (then the client served longest ago, then the oldest request), among
// clients under their share of workers. A scraper sends one request at a
// time, so a client that floods the server with concurrent requests only
// ever delays itself. Measured with 1,000 greedy scrapers from 100 addresses
// (tests/e2e/endpoint_abuse.sh): a first-come queue kept an honest scraper
// waiting more than 5 s behind them, and round-robin over clients 1.6 to 2 s
// once it kept its connection alive (about one turn of the hundred clients,
// with ~570 requests queued); this order, at most 174 ms.
ConnectionDispatcher::ConnectionPtr ConnectionDispatcher::TakeReady() {
  std::unique_lock<std::mutex> lock(mu_);
  ConnectionPtr taken;
  ready_cv_.wait(lock, [this, &taken] {
    if (stopping_) return true;
    auto best = ready_.end();
    std::pair<size_t, Clock::time_point> best_rank;
    for (auto it = ready_.begin(); it != ready_.end(); ++it) {
      const std::string& client = (*it)->client;
      auto busy = busy_by_client_.find(client);
      const size_t busy_count = busy == busy_by_client_.end() ? 0 : busy->second;
      if (busy_count >= kMaxBusyWorkersPerClient) continue;
      if (IsHealthCheck((*it)->buffer)) {
        best = it;
        break;
      }
      auto served = last_served_.find(client);
      const std::pair<size_t, Clock::time_point> rank{
          queued_by_client_[client] + busy_count,
          served == last_served_.end() ? Clock::time_point::min() : served->second};
      if (best == ready_.end() || rank < best_rank) {
        best = it;
        best_rank = rank;
      }
    }
    if (best == ready_.end()) return false;
    taken = std::move(*best);
    ready_.erase(best);
    return true;
  });
  if (stopping_) return nullptr;  // `taken` (if any) is closed unserved
  auto queued = queued_by_client_.find(taken->client);
  if (--queued->second == 0) queued_by_client_.erase(queued);
  ++busy_by_client_[taken->client];
  last_served_[taken->client] = Clock::now();
  return taken;
}

void ConnectionDispatcher::Serve(ConnectionPtr connection) {
  const auto start = Clock::now();
  const bool last = ++connection->requests >= kKeepAliveMaxRequests;
  ConnectionStream stream(connection->fd, connection->ssl.get(), std::move(connection->buffer),
                          start + kReadWriteTimeout, start + kResponseDeadline);
  bool closed_by_request = false;
  bool ok = false;
  try {
    ok = serve_(stream, last, closed_by_request);
  } catch (...) {  // httplib catches handler exceptions; anything else ends the connection
    ok = false;
  }
  connection->buffer = stream.TakeUnread();
  if (stream.timed_out() == ConnectionStream::Timeout::kRead) {
    stats_->RecordRejection(RejectReason::kReadTimeout);
  } else if (stream.timed_out() == ConnectionStream::Timeout::kWrite) {
    stats_->RecordRejection(RejectReason::kWriteTimeout);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto busy = busy_by_client_.find(connection->client);
    if (--busy->second == 0) busy_by_client_.erase(busy);
  }
  ready_cv_.notify_all();  // a request of this client may be waiting for its turn
  if (!ok || closed_by_request || last || stream.timed_out() != ConnectionStream::Timeout::kNone) {
    Release(std::move(connection));
  } else {
    GiveBack(std::move(connection));
  }
}

// ---------------------------------------------------------------------------
// Any thread

void ConnectionDispatcher::Dispatch(ConnectionPtr connection) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      ++queued_by_client_[connection->client];
      ready_.push_back(std::move(connection));
      connection = nullptr;
    }
  }
  if (connection) {
    Release(std::move(connection));
  } else {
    ready_cv_.notify_one();
  }
}

// A kept-alive connection goes back to the reader to wait for its next
// request.
void ConnectionDispatcher::GiveBack(ConnectionPtr connection) {
  const auto now = Clock::now();
  connection->header_deadline = now + kHeaderTimeout;
  // Part of a pipelined request is not idleness.
  if (connection->buffer.empty()) connection->idle_deadline = now + kKeepAliveTimeout;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      inbox_.push_back(std::move(connection));
      connection = nullptr;
    }
  }
  if (connection) {
    Release(std::move(connection));
  } else {
    Wake();
  }
}

void ConnectionDispatcher::Reject(ConnectionPtr connection, RejectReason reason) {
  stats_->RecordRejection(reason);
  Release(std::move(connection));
}

void ConnectionDispatcher::Release(ConnectionPtr connection) {
  if (!connection) return;
  if (!connection->client.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    --open_;
    auto it = open_by_client_.find(connection->client);
    if (--it->second == 0) {
      open_by_client_.erase(it);
      last_served_.erase(connection->client);
    }
  }
  connection.reset();  // closes the socket
}

}  // namespace sockeye::metrics
