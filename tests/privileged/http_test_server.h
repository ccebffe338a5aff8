// A small HTTP/1.x server and client for the LoopbackTraffic tests: the
// server answers command lines with chosen statuses and delays, so that a
// test knows every status, byte and delay it should see.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace sockeye::testing {

using namespace std::chrono_literals;

inline void WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Answers one command line at a time on each connection:
//   "S <code> <header-ms> <body-ms>"  status line and headers after header-ms,
//                                     the 5-byte body body-ms later
//   "I <code>"  "100 Continue", then the final response in a later segment
//   "J <code>"  "100 Continue" and the final response in one segment
//   "W <code>"  the final response in one writev(): headers, then body
//   "V <code>"  one writev() of "100 Continue", the final headers and the body
//   "P"         "+OK\r\n": a protocol that is not HTTP
//   "H"         closes the connection without an answer
//   "X <code>"  answers, then shutdown(SHUT_WR) and close(), as HAProxy closes
//   "M"         never answers
class HttpServer {
 public:
  // Listens on `address`, on `port` (0: any free one).
  explicit HttpServer(const char* address, uint16_t port = 0) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, address, &sa.sin_addr);
    sa.sin_port = htons(port);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
    listen(listen_fd_, 16);
    socklen_t len = sizeof(sa);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    address_ = address;
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~HttpServer() {
    stop_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    acceptor_.join();
    for (auto& t : workers_) t.join();
  }
  std::string backend() const { return address_ + ":" + std::to_string(port_); }
  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }

 private:
  void Accept() {
    for (;;) {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      workers_.emplace_back([this, fd] { Serve(fd); });
    }
  }
  void Serve(int fd) {
    std::string buffer;
    char chunk[256];
    for (;;) {
      const size_t eol = buffer.find('\n');
      if (eol == std::string::npos) {
        const ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n <= 0) break;
        buffer.append(chunk, static_cast<size_t>(n));
        continue;
      }
      const std::string line = buffer.substr(0, eol);
      buffer.erase(0, eol + 1);
      char kind = 0;
      int code = 0, header_ms = 0, body_ms = 0;
      std::sscanf(line.c_str(), "%c %d %d %d", &kind, &code, &header_ms, &body_ms);
      const std::string final_response =
          "HTTP/1.1 " + std::to_string(code) + " X\r\nContent-Length: 5\r\n\r\n";
      if (kind == 'S') {
        std::this_thread::sleep_for(std::chrono::milliseconds(header_ms));
        WriteAll(fd, final_response);
        std::this_thread::sleep_for(std::chrono::milliseconds(body_ms));
        WriteAll(fd, "hello");
      } else if (kind == 'I') {
        WriteAll(fd, "HTTP/1.1 100 Continue\r\n\r\n");
        std::this_thread::sleep_for(20ms);
        WriteAll(fd, final_response + "hello");
      } else if (kind == 'J') {
        WriteAll(fd, "HTTP/1.1 100 Continue\r\n\r\n" + final_response + "hello");
      } else if (kind == 'W' || kind == 'V') {
        const std::string interim = "HTTP/1.1 100 Continue\r\n\r\n", body = "hello";
        std::vector<iovec> parts;
        auto part = [&parts](const std::string& bytes) {
          parts.push_back({const_cast<char*>(bytes.data()), bytes.size()});
        };
        if (kind == 'V') part(interim);
        part(final_response);
        part(body);
        // Small enough for one call on a blocking socket.
        if (writev(fd, parts.data(), static_cast<int>(parts.size())) < 0) break;
      } else if (kind == 'P') {
        WriteAll(fd, "+OK\r\n");
      } else if (kind == 'H') {
        break;
      } else if (kind == 'X') {
        WriteAll(fd, final_response + "hello");
        shutdown(fd, SHUT_WR);
        break;
      } else if (kind == 'M') {
        while (!stop_ && read(fd, chunk, sizeof(chunk)) > 0) {
        }
        break;
      }
    }
    close(fd);
  }

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::string address_;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

// One client connection that sends command lines and reads answers.
class HttpClient {
 public:
  explicit HttpClient(const HttpServer& server) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(server.port());
    inet_pton(AF_INET, server.address().c_str(), &sa.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~HttpClient() { Close(); }
  bool connected() const { return connected_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  // shutdown(SHUT_WR), then close() at once: the kernel traces FIN_WAIT1
  // twice when our FIN is not acknowledged yet.
  void ShutdownThenClose() {
    shutdown(fd_, SHUT_WR);
    Close();
  }
  // Closes with a reset (SO_LINGER 0) instead of a FIN.
  void Reset() {
    linger abort{.l_onoff = 1, .l_linger = 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
    Close();
  }
  // Sends `command` and reads until the answer ends with `last`.
  bool Ask(const std::string& command, const std::string& last) {
    WriteAll(fd_, command + "\n");
    std::string got;
    char chunk[512];
    while (got.size() < last.size() || got.compare(got.size() - last.size(), last.size(), last)) {
      const ssize_t n = read(fd_, chunk, sizeof(chunk));
      if (n <= 0) return false;
      got.append(chunk, static_cast<size_t>(n));
    }
    return true;
  }
  void Send(const std::string& command) { WriteAll(fd_, command + "\n"); }
  // Reads until the server closes.
  void WaitForClose() {
    char chunk[64];
    while (read(fd_, chunk, sizeof(chunk)) > 0) {
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

}  // namespace sockeye::testing
