// The metrics server's connections from accept to close, in front of
// httplib's request handling. One thread reads request headers from every
// connection at once (epoll), enforcing the connection caps, the header
// size and the header deadline; a small pool of workers serves the requests
// whose header has arrived, each through a ConnectionStream with deadlines,
// and gives kept-alive connections back to the reader. Stalled clients thus
// cost a file descriptor and a buffer, never a worker, and an honest scrape
// always finds one. The limits are in exporters/http_server_limits.h. With
// TLS, the reader also runs the handshakes, without blocking, within the
// same header deadline (exporters/http_server_tls.h).
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "exporters/scrape_stats.h"
#include "exporters/tls_context.h"

namespace sockeye::metrics {

class ConnectionDispatcher {
 public:
  // Serves one request from `stream`, as httplib's Server::process_request.
  using ServeFn =
      std::function<bool(httplib::Stream& stream, bool close_connection, bool& connection_closed)>;

  // The TLS context for a new connection; null: plain HTTP.
  using TlsSource = std::function<TlsContext()>;

  // Starts the reader and worker threads.
  ConnectionDispatcher(ServeFn serve, std::shared_ptr<ScrapeStatsCollector> stats,
                       TlsSource tls = {});
  ~ConnectionDispatcher();  // Stop()s
  ConnectionDispatcher(const ConnectionDispatcher&) = delete;
  ConnectionDispatcher& operator=(const ConnectionDispatcher&) = delete;

  // Takes a freshly accepted socket (and closes it in the end). Never
  // blocks: the caps are applied on the reader thread.
  void Admit(int fd);
  // Closes the connections waiting for a request, lets the requests being
  // served finish (their deadlines bound that), joins the threads.
  // Idempotent.
  void Stop();

 private:
  using Clock = std::chrono::steady_clock;
  struct Connection;
  using ConnectionPtr = std::unique_ptr<Connection>;

  // Reader thread.
  void ReadHeaders();
  void Intake(ConnectionPtr connection);
  bool Accepted(Connection& connection);
  bool EvictOne();
  void OnReadable(int fd);
  void OnTlsReadable(int fd);
  void TakeHeaderBytes(int fd, size_t old_size);
  void WatchFor(int fd, bool writable);
  void ExpireDeadlines();
  int MillisecondsToNextDeadline() const;
  void Watch(ConnectionPtr connection);
  ConnectionPtr Unwatch(int fd);

  // Workers.
  void Work();
  ConnectionPtr TakeReady();
  void Serve(ConnectionPtr connection);

  // Any thread.
  void Dispatch(ConnectionPtr connection);
  void GiveBack(ConnectionPtr connection);
  void Wake();
  void Reject(ConnectionPtr connection, RejectReason reason);
  void Release(ConnectionPtr connection);

  const ServeFn serve_;
  const std::shared_ptr<ScrapeStatsCollector> stats_;
  const TlsSource tls_;
  const size_t max_connections_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: the inbox has connections, or stopping

  // The reader's: connections waiting for (the rest of) a request header.
  std::unordered_map<int, ConnectionPtr> waiting_;

  std::mutex mu_;
  std::condition_variable ready_cv_;
  bool stopping_ = false;                                   // guarded by mu_
  std::vector<ConnectionPtr> inbox_;                        // guarded by mu_
  std::deque<ConnectionPtr> ready_;                         // guarded by mu_
  size_t open_ = 0;                                         // guarded by mu_
  std::unordered_map<std::string, size_t> open_by_client_;  // guarded by mu_
  std::unordered_map<std::string, size_t> busy_by_client_;  // guarded by mu_
  // Requests in ready_ by client (TakeReady()'s order).
  std::unordered_map<std::string, size_t> queued_by_client_;  // guarded by mu_
  // When a worker last took a request of each client with an open
  // connection (TakeReady()'s order among clients with as many requests).
  std::unordered_map<std::string, Clock::time_point> last_served_;  // guarded by mu_

  std::mutex stop_mu_;  // serializes Stop
  std::thread reader_;
  std::vector<std::thread> workers_;
};

}  // namespace sockeye::metrics
