// The agent under test as a child process, and what /proc says about it.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/churn/common.h"

namespace sockeye::bench::churn {

// utime + stime of a /proc/PID/stat or /proc/PID/task/TID/stat file, in
// seconds; 0 if it cannot be read.
double StatCpuSeconds(const std::string& path);

struct ProcStatus {
  double rss_mb = 0;
  double hwm_mb = 0;
  double cpu_s = 0;
};

ProcStatus ReadProc(pid_t pid);

// CPU seconds of the agent's main thread (its event loop: ring buffer,
// sweeps, expiry; start-up too) and of all its other threads (the HTTP
// server: scrapes are gathered, rendered and compressed there).
struct ThreadCpu {
  double main_s = 0;
  double others_s = 0;
};

ThreadCpu ReadThreadCpu(pid_t pid);

// A free port on 127.0.0.1 for the agent's web listener.
uint16_t FreeLoopbackPort();

class AgentProcess {
 public:
  AgentProcess(std::string binary, std::string log_path)
      : binary_(std::move(binary)), log_path_(std::move(log_path)) {}
  ~AgentProcess() { Stop(); }

  bool Start(const std::vector<std::string>& args, std::string* error) {
    std::vector<std::string> argv_s{binary_};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    command_.clear();
    for (const auto& a : argv_s) command_ += (command_.empty() ? "" : " ") + a;
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) {
      *error = std::string("fork: ") + std::strerror(errno);
      return false;
    }
    if (pid_ == 0) {
      // The agent must not outlive the bench, whatever stops it.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(127);
      int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (log >= 0) {
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
      }
      std::vector<char*> argv;
      for (auto& a : argv_s) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary_.c_str(), argv.data());
      _exit(127);
    }
    return true;
  }

  // Still running? Records the exit status the first time it is seen.
  bool Alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_status_ = status;
      pid_ = -1;
      return false;
    }
    return true;
  }

  // SIGTERM, then up to 10 s for a clean exit, then SIGKILL.
  std::string Stop() {
    if (pid_ <= 0) return exit_status_ ? Describe(*exit_status_) : "not running";
    kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      if (!Alive()) return Describe(*exit_status_);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_status_ = status;
    return "did not exit within 10 s of SIGTERM, killed";
  }

  bool clean_exit() const {
    return exit_status_ && WIFEXITED(*exit_status_) && WEXITSTATUS(*exit_status_) == 0;
  }
  pid_t pid() const { return pid_; }
  const std::string& command() const { return command_; }

  std::string LogTail(size_t lines) const {
    std::ifstream in(log_path_);
    std::vector<std::string> all;
    std::string line;
    while (std::getline(in, line)) all.push_back(line);
    std::string out;
    for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
      out += "    | " + all[i] + "\n";
    return out;
  }

 private:
  static std::string Describe(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
    return "stopped";
  }

  std::string binary_;
  std::string log_path_;
  std::string command_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

}  // namespace sockeye::bench::churn
