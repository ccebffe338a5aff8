#include "agent/check_report.h"

#include <sys/utsname.h>

#include <fstream>
#include <string>

#include "agent/bpf_loader.h"
#include "agent/capabilities.h"
#include "agent/version.h"

namespace sockeye {
namespace {

// "none [integrity] confidentiality" -> "integrity".
std::string LockdownMode() {
  std::ifstream file("/sys/kernel/security/lockdown");
  std::string line;
  if (!std::getline(file, line)) return "unknown (securityfs not readable)";
  auto open = line.find('[');
  auto close = line.find(']');
  if (open == std::string::npos || close == std::string::npos) return line;
  return line.substr(open + 1, close - open - 1);
}

}  // namespace

int RunCheck(const Config& config, std::FILE* out) {
  utsname uts{};
  uname(&uts);
  std::fprintf(out, "sockeye %s (%s) --check\n\n", SOCKEYE_VERSION, SOCKEYE_REVISION);
  std::fprintf(out, "kernel:        %s %s %s\n", uts.sysname, uts.release, uts.machine);
  std::fprintf(out, "lockdown:      %s\n", LockdownMode().c_str());
  std::fprintf(out, "probe mode:    %s\n", ProbeModeName(config.probe_mode));
  std::fprintf(out, "capabilities:\n");
  for (const auto& cap : AgentCapabilities(config.bpf_stats, !config.processes.empty())) {
    std::fprintf(out, "  %-20s %-4s %s%s\n", cap.name.c_str(),
                 cap.effective ? "yes" : (cap.required ? "NO" : "no"),
                 cap.required ? "" : "optional: ", cap.needed_for.c_str());
  }

  LoaderSettings settings = LoaderSettingsFrom(config);
  std::string error;
  auto probes = BpfProbes::Load(settings, &error);
  if (!probes) {
    std::fprintf(out, "\nresult:        FAILED: %s\n", error.c_str());
    return 1;
  }
  std::fprintf(out, "btf:           %s\n", probes->btf_source().c_str());
  std::fprintf(out, "hot slots:     %s\n", probes->hot_slots_summary().c_str());
  std::fprintf(out, "\nhooks (loaded and attached):\n");
  size_t off = 0;
  for (const auto& p : probes->probes()) {
    std::fprintf(out, "  %-18s %-7s %s\n", p.hook.c_str(), p.mode.c_str(), p.target.c_str());
    off += p.reduced_coverage ? 1 : 0;
  }
  std::fprintf(out, "\nprograms (instructions processed by the verifier; 0 = kernel < 5.16):\n");
  for (const auto& s : probes->ProgramStatistics())
    std::fprintf(out, "  %-28s %8u\n", s.name.c_str(), s.verified_insns);
  if (!probes->unavailable().empty()) {
    std::fprintf(out,
                 "\nnot available on this kernel (other choices were used where they exist):\n");
    for (const auto& why : probes->unavailable()) std::fprintf(out, "  - %s\n", why.c_str());
  }
  std::fprintf(out, "\nresult:        OK: the agent can run here%s\n",
               off ? " (with the reduced coverage shown as mode off above)" : "");
  return 0;
}

}  // namespace sockeye
