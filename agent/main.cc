// sockeye: per-backend TCP metrics for proxy hosts, from kernel probes.
#include <signal.h>

#include <cstdio>

#include "agent/agent.h"
#include "agent/check_report.h"
#include "agent/command_line.h"
#include "agent/config.h"
#include "agent/log.h"

int main(int argc, char** argv) {
  using namespace sockeye;

  ParseOutcome parsed = ParseCommandLine(argc, argv);
  if (!parsed.config) {
    std::fputs(parsed.message.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    if (!parsed.message.empty() && parsed.message.back() != '\n')
      std::fputc('\n', parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  SetLogLevel(parsed.config->log_level);
  if (parsed.config->check_only) {
    if (parsed.config->log_level == LogLevel::kInfo) SetLogLevel(LogLevel::kError);
    return RunCheck(*parsed.config, stdout);
  }

  // Signals are taken synchronously on the event thread; blocked before any
  // thread starts so that the HTTP threads never receive them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::string error;
  auto agent = Agent::Start(*parsed.config, &error);
  if (!agent) {
    std::fprintf(stderr, "sockeye: %s\n", error.c_str());
    return 1;
  }

  const timespec no_wait{0, 0};
  for (;;) {
    agent->Tick(100);
    int sig = sigtimedwait(&signals, nullptr, &no_wait);
    if (sig == SIGINT || sig == SIGTERM) break;
    if (sig == SIGHUP) {
      ParseOutcome reloaded = ParseCommandLine(argc, argv);
      if (reloaded.config) {
        agent->Reload(*reloaded.config);
      } else {
        LogError("reload failed, keeping the running configuration: " + reloaded.message);
      }
    }
  }
  LogInfo("shutting down");
  agent->Flush(false);
  return 0;
}
