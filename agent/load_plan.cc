#include "agent/load_plan.h"

namespace sockeye {

LoadFallbacks::LoadFallbacks(LoadPlan first, bool sweep_may_fall_back) {
  const bool receive_may_fall_back = first.receive != ReceiveHook::kTcpProbe;
  const bool sweep_falls_back = sweep_may_fall_back && first.storage_sweep;
  plans_.push_back(first);
  if (receive_may_fall_back) plans_.push_back({first.storage_sweep, ReceiveHook::kTcpProbe});
  if (sweep_falls_back) {
    plans_.push_back({false, first.receive});
    if (receive_may_fall_back) plans_.push_back({false, ReceiveHook::kTcpProbe});
  }
}

std::optional<LoadPlan> LoadFallbacks::After(LoadStep step) {
  const LoadPlan failed = current();
  switch (step) {
    case LoadStep::kLoad:
      break;
    case LoadStep::kSweepLoad:
    case LoadStep::kSweepAttach:
      if (!failed.storage_sweep) return std::nullopt;  // iter/tcp has no fallback
      storage_sweep_ruled_out_ = true;
      break;
    case LoadStep::kReceiveLoad:
    case LoadStep::kReceiveAttach:
      if (failed.receive == ReceiveHook::kTcpProbe) return std::nullopt;
      receive_ruled_out_ = true;
      break;
    case LoadStep::kOtherLoad:
    case LoadStep::kOther:
      return std::nullopt;
  }
  for (size_t next = current_ + 1; next < plans_.size(); ++next) {
    const LoadPlan& plan = plans_[next];
    if (storage_sweep_ruled_out_ && plan.storage_sweep) continue;
    if (receive_ruled_out_ && plan.receive != ReceiveHook::kTcpProbe) continue;
    current_ = next;
    return plan;
  }
  return std::nullopt;
}

std::optional<LoadRefusal> ParseLoadRefusal(std::string_view message) {
  constexpr std::string_view kPrefix = "libbpf: ";
  if (message.substr(0, kPrefix.size()) == kPrefix) message.remove_prefix(kPrefix.size());
  LoadRefusal refusal;
  std::string_view rest;
  if (message.substr(0, 6) == "prog '") {
    rest = message.substr(6);
  } else if (message.substr(0, 5) == "map '") {
    refusal.is_map = true;
    rest = message.substr(5);
  } else {
    return std::nullopt;
  }
  const size_t quote = rest.find("': ");
  if (quote == std::string_view::npos || quote == 0) return std::nullopt;
  const std::string_view what = rest.substr(quote + 3);
  auto starts = [&](std::string_view s) { return what.substr(0, s.size()) == s; };
  const bool refused = refusal.is_map
                           ? starts("failed to create:")
                           : starts("failed to load") || starts("BPF program load failed");
  if (!refused) return std::nullopt;
  refusal.name = std::string(rest.substr(0, quote));
  return refusal;
}

}  // namespace sockeye
