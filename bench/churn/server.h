// The churn bench's loopback server: listeners on 0.0.0.0:base..base+ports-1,
// bound to lo, so one listener accepts for every 127.x.y.z. Every full request
// (kRequestBytes) is answered with kResponseBytes; the server closes when the
// client does. One epoll thread, so that it holds 100,000 short connections and
// 1,000 live ones (the privileged tests' LoopbackServer runs a thread per
// connection and a text protocol; the listener setup is shared with it).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace sockeye::bench::churn {

class Server {
 public:
  Server() = default;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server() { Stop(); }

  // Listeners on base..base+ports-1; on failure nothing stays open.
  bool Listen(uint16_t base, int ports, std::string* error);
  void Stop();

  std::atomic<uint64_t> accepted{0}, served{0}, closed{0}, errors{0};

 private:
  enum : uint32_t { kWake = 1, kListener = 2, kConn = 3 };

  void AddFd(int fd, uint32_t kind);
  void CloseConn(int fd);
  void Loop();

  int epoll_ = -1;
  int wake_ = -1;
  std::vector<int> listeners_;
  std::vector<uint32_t> pending_;
  std::unordered_set<int> open_;
  std::thread thread_;
};

}  // namespace sockeye::bench::churn
