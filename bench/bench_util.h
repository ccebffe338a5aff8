// Helpers shared by the benchmarks: an HTTP client for the agent's /metrics
// on loopback and the process memory figures of /proc/PID/status.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <span>
#include <string>
#include <string_view>

#include "agent/unique_fd.h"

namespace sockeye::bench {

// The pid of the calling process, for the /proc helpers below.
constexpr pid_t kSelf = 0;

inline std::string ProcFile(pid_t pid, std::string_view name) {
  return (pid == kSelf ? std::string("/proc/self/") : "/proc/" + std::to_string(pid) + "/") +
         std::string(name);
}

// Memory figures of /proc/PID/status in KiB; 0 when the process is gone.
struct MemoryStatus {
  long rss_kib = 0;  // VmRSS
  long hwm_kib = 0;  // VmHWM, the peak RSS
};

inline MemoryStatus ReadMemoryStatus(pid_t pid) {
  MemoryStatus s;
  std::ifstream status(ProcFile(pid, "status"));
  std::string line;
  while (std::getline(status, line)) {
    const std::string_view l(line);
    if (l.starts_with("VmRSS:")) s.rss_kib = std::strtol(line.c_str() + 6, nullptr, 10);
    if (l.starts_with("VmHWM:")) s.hwm_kib = std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return s;
}

// Resets the kernel's peak-RSS mark (VmHWM) to the current RSS (writing 5
// to clear_refs), so that a later VmHWM is the peak since this call.
inline bool ResetPeakRss(pid_t pid) {
  std::ofstream clear_refs(ProcFile(pid, "clear_refs"));
  clear_refs << "5";
  clear_refs.flush();
  return clear_refs.good();
}

struct HttpGetOptions {
  bool gzip = false;         // Accept-Encoding: gzip
  bool openmetrics = false;  // Accept as Prometheus sends it
};

// One GET with Connection: close from 127.0.0.1 to 127.0.0.1:port, read
// until the server closes. Every piece of the response as it arrives
// (status line, headers and body, chunk framing included) goes to
// on_data(std::string_view); decoding is the caller's business. The
// receive buffer is the caller's too: scrape_cost measures the peak RSS of
// a process that scrapes itself, so the client must allocate nothing that
// grows with the response (nor move glibc's dynamic mmap threshold).
// Returns false with *error set if the exchange failed part way.
template <typename OnData>
bool HttpGet(uint16_t port, std::string_view path, const HttpGetOptions& options,
             std::span<char> buffer, OnData&& on_data, std::string* error) {
  const UniqueFd socket_fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int fd = socket_fd.get();
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  // A wedged agent fails the scrape instead of hanging the bench.
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    *error = std::string("connect: ") + std::strerror(errno);
    return false;
  }
  std::string request = "GET " + std::string(path) +
                        " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nConnection: close\r\n";
  if (options.gzip) request += "Accept-Encoding: gzip\r\n";
  if (options.openmetrics) {
    request +=
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n";
  }
  request += "\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    *error = "send failed";
    return false;
  }
  bool ok = true;
  for (;;) {
    const ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n > 0) {
      on_data(std::string_view(buffer.data(), static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = std::string("recv: ") + std::strerror(errno);
      ok = false;
    }
    break;
  }
  return ok;
}

}  // namespace sockeye::bench
